#if canImport(Glibc)
import Glibc
#endif

/// A fixed set of threads for blocking work — the cloud calls of `ask` (libcurl, retries
/// with back-off) and the record's SQLite writes — so that they never block the batching
/// worker or the server's event loops. Its queue is bounded: past `maxQueued` waiting
/// jobs, `run` refuses at once (overloaded).
public final class BlockingPool: @unchecked Sendable {
    public let threadCount: Int
    public let maxQueued: Int
    private let lock = ConditionLock()
    private var jobs: [() -> Void] = []
    private var stopping = false
    private var workers: [pthread_t] = []
    private var busy = 0

    public init(threads: Int, maxQueued: Int) {
        threadCount = max(1, threads)
        self.maxQueued = maxQueued
        for _ in 0..<threadCount {
            if let t = startThread({ [self] in loop() }) { workers.append(t) }
        }
    }

    /// Jobs running or waiting.
    public var load: Int { lock.withLock { busy + jobs.count } }

    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        let result: Result<T, any Error> = await withCheckedContinuation { continuation in
            let refused: ServiceError? = lock.withLock {
                if stopping { return ServiceError(.unavailable, "the server is shutting down") }
                if jobs.count >= maxQueued { return ServiceError(.overloaded, "too many requests waiting for the cloud tiers") }
                jobs.append { continuation.resume(returning: Result { try body() }) }
                lock.broadcast()
                return nil
            }
            if let refused { continuation.resume(returning: .failure(refused)) }
        }
        return try result.get()
    }

    /// Finishes the queued jobs, then stops the threads.
    public func shutdown() {
        let ts: [pthread_t] = lock.withLock {
            stopping = true
            lock.broadcast()
            let ts = workers
            workers = []
            return ts
        }
        for t in ts { pthread_join(t, nil) }
    }

    deinit { shutdown() }

    private func loop() {
        while true {
            let job: (() -> Void)? = lock.withLock {
                while jobs.isEmpty && !stopping { lock.wait() }
                if jobs.isEmpty { return nil }
                busy += 1
                return jobs.removeFirst()
            }
            guard let job else { return }
            job()
            lock.withLock { busy -= 1 }
        }
    }
}
