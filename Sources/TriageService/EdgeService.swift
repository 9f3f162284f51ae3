import Synchronization
import TriageCascade
import TriageClassifier
import TriageCloud
import TriageModel
import TriageRecord
import TriageSystem
// The tokenizer is reached through the classifier; imported by name so that an incremental
// build recompiles this module when the tokenizer's layout changes (it did not, and a stale
// inlined field offset crashed /tokenize).
import TriageTokenizer

/// The limits of a long-running service.
public struct ServiceLimits: Sendable {
    public var queue = QueueLimits()
    /// Inputs in one request (TEI's --max-client-batch-size).
    public var maxClientBatchSize = 32
    /// Threads for blocking cloud calls, and how many `ask` requests may wait for one.
    public var cloudThreads = 8
    public var maxCloudQueued = 256
    public init() {}
}

/// One input of a prediction: a text, or a pair of texts ([CLS] a [SEP] b [SEP]).
public enum PredictInput: Sendable, Equatable {
    case single(String)
    case pair(String, String)
    public var characterCount: Int {
        switch self {
        case .single(let a): return a.count
        case .pair(let a, let b): return a.count + b.count
        }
    }
}

/// What a batch of inputs came to, with where its time went.
public struct ClassifiedBatch: Sendable {
    public let engine: Engine
    public let results: [Classification]
    public let tokenizeSeconds: Double
    public let timing: BatchTiming
    public var tokens: Int { results.reduce(0) { $0 + $1.tokenCount } }
}

/// One decision of `ask`, with where its time went.
public struct AskOutcome: Sendable {
    public let decision: Decision
    public let tokenizeSeconds: Double
    public let timing: BatchTiming
    public let tokens: Int
}

/// One token of `tokenize`.
public struct TokenPiece: Sendable, Equatable {
    public let id: Int
    public let text: String
    public let special: Bool
}

/// The engine behind a batching queue, for many concurrent callers: what `triage serve`
/// runs (TEI's router → queue → backend). Requests in flight keep the engine they started
/// with; `reload` swaps in a new one for later requests, or leaves the old one serving.
public final class EdgeService: Sendable {
    public let limits: ServiceLimits
    public let queue: BatchQueue
    public let cloud: BlockingPool
    private let current: Mutex<Engine>
    private let reloading = Mutex(false)

    public init(engine: Engine, limits: ServiceLimits = ServiceLimits()) {
        self.limits = limits
        current = Mutex(engine)
        queue = BatchQueue(limits: limits.queue)
        cloud = BlockingPool(threads: limits.cloudThreads, maxQueued: limits.maxCloudQueued)
    }

    public var engine: Engine { current.withLock { $0 } }

    /// Loads the model directory and config again (same settings, same record connection)
    /// and serves later requests with them. A model or config that does not load is
    /// refused with its error and the running engine keeps serving.
    @discardableResult
    public func reload(warn: (String) -> Void = { _ in }) throws(ServiceError) -> Engine {
        let old = engine
        let fresh: Engine
        do { fresh = try Engine.load(old.settings, store: old.store, warn: warn) } catch let e as ServiceError { throw e } catch {
            throw ServiceError(.internal, "\(error)")
        }
        current.withLock { $0 = fresh }
        return fresh
    }

    /// Token ids of each input, checked against the model's length limit.
    func encode(_ inputs: [PredictInput], classifier: Classifier, truncate: Bool) throws(ServiceError) -> [[Int32]] {
        let maxTokens = classifier.maxTokens
        var out: [[Int32]] = []
        out.reserveCapacity(inputs.count)
        for input in inputs {
            let (a, b): (String, String?)
            switch input {
            case .single(let t): (a, b) = (t, nil)
            case .pair(let x, let y): (a, b) = (x, y)
            }
            var e = classifier.tokenizer.encode(a, pair: b, maxLength: truncate ? maxTokens : 0)
            if e.count > maxTokens {
                guard truncate else {
                    throw ServiceError(.inputTooLong, "Input validation error: `inputs` must have less than \(maxTokens) tokens. Given: \(e.count)")
                }
                e = classifier.tokenizer.encode(a, pair: b, maxLength: maxTokens)
            }
            out.append(e.ids)
        }
        return out
    }

    /// Classifies inputs through the queue: together with whatever other callers sent
    /// meanwhile, with the same results as alone.
    public func classify(_ inputs: [PredictInput], truncate: Bool) async throws(ServiceError) -> ClassifiedBatch {
        if inputs.isEmpty { throw ServiceError(.empty, "`inputs` cannot be empty") }
        if inputs.count > limits.maxClientBatchSize {
            throw ServiceError(.tooManyInputs, "batch size \(inputs.count) > maximum allowed batch size \(limits.maxClientBatchSize)")
        }
        let engine = self.engine
        let start = Clock.seconds()
        let sequences = try encode(inputs, classifier: engine.classifier, truncate: truncate)
        let tokenized = Clock.seconds() - start
        let (results, timing) = try await queue.classify(classifier: engine.classifier, sequences: sequences)
        return ClassifiedBatch(engine: engine, results: results, tokenizeSeconds: tokenized, timing: timing)
    }

    /// One decision of the cascade: the edge classification through the queue, then the
    /// routing, any cloud calls and the record write on the blocking pool. The decision is
    /// recorded before this returns.
    public func ask(_ query: String, history: [ChatMessage] = [], offline: Bool = false) async throws(ServiceError) -> AskOutcome {
        let engine = self.engine
        let start = Clock.seconds()
        // The cascade truncates silently, as `triage ask` does.
        let sequences = try encode([.single(query)], classifier: engine.classifier, truncate: true)
        let tokenized = Clock.seconds() - start
        let (edges, timing) = try await queue.classify(classifier: engine.classifier, sequences: sequences)
        let edge = edges[0]
        var candidateEdge: (Classification, Double)? = nil
        if let candidate = engine.candidate {
            // The candidate goes through the same queue (its own batches) as the primary.
            let c = candidate.classifier
            let ids = try encode([.single(query)], classifier: c, truncate: true)
            let (candidateEdges, candidateTiming) = try await queue.classify(classifier: c, sequences: ids)
            candidateEdge = (candidateEdges[0], (candidateTiming.queueSeconds + candidateTiming.inferenceSeconds) * 1e3)
        }
        let cascade = offline ? engine.offlineCascade : engine.cascade
        let found = candidateEdge
        do {
            let decision = try await cloud.run {
                try cascade.answer(query, history: history, edge: edge, candidateEdge: found, startedAt: start,
                                   tokenizeMs: tokenized * 1e3, inferenceMs: (timing.queueSeconds + timing.inferenceSeconds) * 1e3)
            }
            return AskOutcome(decision: decision, tokenizeSeconds: tokenized, timing: timing, tokens: sequences[0].count)
        } catch let e as ServiceError {
            throw e
        } catch {
            throw ServiceError(.internal, "the decision could not be recorded: \(error)")
        }
    }

    /// The tokens of each text as the model sees them (TEI's /tokenize).
    public func tokenize(_ texts: [String], addSpecialTokens: Bool) -> [[TokenPiece]] {
        let tokenizer = engine.classifier.tokenizer
        let maxTokens = engine.classifier.maxTokens
        return texts.map { text in
            var ids = tokenizer.encode(text, maxLength: maxTokens).ids
            if !addSpecialTokens { ids = Array(ids.dropFirst().dropLast()) }
            return ids.map { id in
                TokenPiece(id: Int(id), text: tokenizer.vocabulary[Int(id)],
                           special: id == tokenizer.clsId || id == tokenizer.sepId || id == tokenizer.padId)
            }
        }
    }

    /// Finishes what was admitted, then stops the worker and the cloud threads.
    public func shutdown() {
        queue.shutdown()
        cloud.shutdown()
    }
}
