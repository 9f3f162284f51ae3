#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import TriageClassifier
import TriageModel
import TriageSystem

/// The limits of the batching queue (TEI's router flags).
public struct QueueLimits: Sendable {
    /// Tokens in one forward pass (the sum of the sequences' lengths).
    public var maxBatchTokens = 16_384
    /// Sequences in one forward pass.
    public var maxBatchRequests = 64
    /// Sequences admitted and not yet answered; past it `submit` refuses at once (overloaded).
    public var maxConcurrentRequests = 512
    /// Seconds a request may wait in the queue before it is answered "timed out" (0: no limit).
    public var requestTimeout = 30.0
    public init() {}
}

/// What one request's sequences went through in the queue.
public struct BatchTiming: Sendable {
    /// Seconds from admission to the start of the first forward pass that carried it.
    public var queueSeconds = 0.0
    /// Seconds of forward passes that carried its sequences.
    public var inferenceSeconds = 0.0
}

/// Dynamic batching: requests from many callers are queued and one worker thread, which
/// owns the `Workspace`, runs them together under a token and a sequence budget. A batch
/// starts as soon as the worker is free (whatever has arrived meanwhile goes together);
/// there is no timer. Each sequence is packed without padding, so its logits do not depend
/// on what it was batched with (bit for bit on INT8; FP32 matrix products may split their
/// sums differently with the batch's row count).
public final class BatchQueue: @unchecked Sendable {
    public let limits: QueueLimits
    /// Called on the worker after each forward pass with its sequences and tokens (metrics).
    private let batchObserver = Mutex<(@Sendable (_ sequences: Int, _ tokens: Int) -> Void)?>(nil)

    private final class Job {
        let classifier: Classifier
        let sequences: [[Int32]]
        let admitted: Double
        let deadline: Double
        var results: [Classification?]
        var remaining: Int
        var timing = BatchTiming()
        var started = false
        var failed = false
        let completion: @Sendable (Result<([Classification], BatchTiming), ServiceError>) -> Void
        init(classifier: Classifier, sequences: [[Int32]], admitted: Double, deadline: Double,
             completion: @escaping @Sendable (Result<([Classification], BatchTiming), ServiceError>) -> Void) {
            self.classifier = classifier; self.sequences = sequences; self.admitted = admitted; self.deadline = deadline
            self.completion = completion
            results = Array(repeating: nil, count: sequences.count)
            remaining = sequences.count
        }
    }
    private struct Entry { let job: Job; let index: Int }

    private let lock = ConditionLock()
    private var pending: [Entry] = []
    private var head = 0
    private var admitted = 0
    private var stopping = false
    private var thread: pthread_t?

    public init(limits: QueueLimits) {
        self.limits = limits
        thread = startThread { [self] in workerLoop() }
    }

    /// `observer` is told the sequences and tokens of every forward pass, on the worker thread.
    public func observeBatches(_ observer: @escaping @Sendable (_ sequences: Int, _ tokens: Int) -> Void) {
        batchObserver.withLock { $0 = observer }
    }

    /// Sequences admitted and not yet answered.
    public var inFlight: Int { lock.withLock { admitted } }
    /// Sequences waiting for a forward pass.
    public var waiting: Int { lock.withLock { pending.count - head } }

    /// Queues `sequences` (token ids, [CLS] … [SEP]) for `classifier`; `completion` runs on
    /// the worker thread with their classifications in order. Throws `overloaded` at once when the
    /// admission limit would be passed, `unavailable` once stopped.
    public func submit(classifier: Classifier, sequences: [[Int32]],
                       completion: @escaping @Sendable (Result<([Classification], BatchTiming), ServiceError>) -> Void) throws(ServiceError) {
        let now = Clock.seconds()
        let job = Job(classifier: classifier, sequences: sequences, admitted: now,
                      deadline: limits.requestTimeout > 0 ? now + limits.requestTimeout : .infinity, completion: completion)
        let refusal: ServiceError? = lock.withLock {
            if stopping { return ServiceError(.unavailable, "the server is shutting down") }
            if admitted + sequences.count > limits.maxConcurrentRequests {
                return ServiceError(.overloaded, "Model is overloaded")
            }
            admitted += sequences.count
            for i in sequences.indices { pending.append(Entry(job: job, index: i)) }
            lock.broadcast()
            return nil
        }
        if let refusal { throw refusal }
        if sequences.isEmpty { finish(job) }
    }

    /// The async form of `submit`.
    public func classify(classifier: Classifier, sequences: [[Int32]]) async throws(ServiceError) -> ([Classification], BatchTiming) {
        let result: Result<([Classification], BatchTiming), ServiceError> = await withCheckedContinuation { continuation in
            do throws(ServiceError) {
                try submit(classifier: classifier, sequences: sequences) { continuation.resume(returning: $0) }
            } catch {
                continuation.resume(returning: .failure(error))
            }
        }
        return try result.get()
    }

    /// Stops after what was admitted has run; later submissions are refused.
    public func shutdown() {
        let t: pthread_t? = lock.withLock {
            stopping = true
            lock.broadcast()
            let t = thread
            thread = nil
            return t
        }
        if let t { pthread_join(t, nil) }
    }

    deinit { shutdown() }

    private func workerLoop() {
        var workspace = Workspace()
        while true {
            // Take what is there, up to the budgets; a batch holds one model (a reload
            // between two requests gives them different classifiers).
            let batch: [Entry] = lock.withLock {
                while head == pending.count && !stopping { lock.wait() }
                if head == pending.count { return [] }
                var taken: [Entry] = [], tokens = 0
                let now = Clock.seconds()
                while head < pending.count {
                    let e = pending[head]
                    if e.job.failed { head += 1; continue }
                    if now > e.job.deadline && !e.job.started {
                        head += 1; e.job.failed = true
                        expire(e.job)
                        continue
                    }
                    let n = e.job.sequences[e.index].count
                    if !taken.isEmpty && (taken.count >= limits.maxBatchRequests || tokens + n > limits.maxBatchTokens
                                          || taken[0].job.classifier !== e.job.classifier) { break }
                    taken.append(e); tokens += n; head += 1
                }
                if head > 4096 && head * 2 > pending.count { pending.removeFirst(head); head = 0 }
                return taken
            }
            if batch.isEmpty {
                if lock.withLock({ stopping && head == pending.count }) { return }
                continue
            }
            run(batch, workspace: &workspace)
        }
    }

    /// Called with the lock held.
    private func expire(_ job: Job) {
        admitted -= job.remaining
        let seconds = limits.requestTimeout
        let completion = job.completion
        // Outside the lock's critical path in effect: completion only resumes a continuation.
        completion(.failure(ServiceError(.timedOut, "the request waited more than \(seconds) s in the queue")))
    }

    private func run(_ batch: [Entry], workspace: inout Workspace) {
        let start = Clock.seconds()
        var tokens: [Int32] = [], lengths: [Int] = []
        for e in batch {
            let s = e.job.sequences[e.index]
            tokens += s
            lengths.append(s.count)
        }
        let classifier = batch[0].job.classifier
        let result: Result<ModelOutput, ServiceError>
        do {
            result = .success(try classifier.model.forward(PackedSequences(tokens: tokens, lengths: lengths), workspace: &workspace))
        } catch {
            result = .failure(ServiceError(.internal, "inference failed: \(error)"))
        }
        // Each row's decision needs more of the pass than its logits (the feature distance
        // reads the head's input), so it is made here, while the output is at hand.
        let decided: [Classification]? = (try? result.get()).map { output in
            batch.indices.map { row in
                classifier.decide(logits: Array(output.logits(row)), tokenCount: lengths[row],
                                  distance: classifier.distance(output, row))
            }
        }
        let seconds = Clock.seconds() - start
        batchObserver.withLock { $0 }?(batch.count, tokens.count)
        var finished: [Job] = []
        var timed = Set<ObjectIdentifier>()
        lock.withLock {
            for (row, e) in batch.enumerated() {
                let job = e.job
                if !job.started { job.started = true; job.timing.queueSeconds = start - job.admitted }
                // Every forward pass that carried some of its sequences counts once.
                if timed.insert(ObjectIdentifier(job)).inserted { job.timing.inferenceSeconds += seconds }
                if let decided { job.results[e.index] = decided[row] } else { job.failed = true }
                job.remaining -= 1
                admitted -= 1
                if job.remaining == 0 { finished.append(job) }
            }
        }
        for job in finished where !job.failed { finish(job) }
        if case .failure(let error) = result {
            // Each failed job is told once, when its first failing batch ends.
            var told = Set<ObjectIdentifier>()
            for e in batch where told.insert(ObjectIdentifier(e.job)).inserted {
                lock.withLock {
                    // Its other sequences will be skipped: release their admission now.
                    let rest = pendingCount(of: e.job)
                    admitted -= rest
                    e.job.remaining -= rest
                }
                e.job.completion(.failure(error))
            }
        }
    }

    private func pendingCount(of job: Job) -> Int {
        var n = 0
        for i in head..<pending.count where pending[i].job === job { n += 1 }
        return n
    }

    private func finish(_ job: Job) {
        job.completion(.success((job.results.map { $0! }, job.timing)))
    }
}
