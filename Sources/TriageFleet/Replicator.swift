// Ships a box's decision record to the fleet database.
//
// `shipPending()` sends everything pending once, in batches: read a batch past the local
// watermark, insert it in one remote transaction (ON CONFLICT DO NOTHING), and only after
// the COMMIT was acknowledged move the local watermark. A failure anywhere leaves the
// watermark where it was, so the next attempt re-sends the batch and the database keeps
// each row once. `run()` does that forever: on a schedule while the database answers,
// with jittered exponential back-off (1 s doubling to 60 s) while it does not. Its
// `status` (pending rows, last success, last error) is what `serve` exports.

import PostgresNIO
import TriageRecord
import TriageSystem

#if canImport(Glibc)
import Glibc
#endif

public final class Replicator: @unchecked Sendable {
    public struct Options: Sendable {
        /// Decisions per remote transaction.
        public var batchSize = 500
        /// Seconds one remote operation may take.
        public var operationTimeout = 30.0
        /// Seconds between rounds while everything is shipped.
        public var interval = 1.0
        /// Back-off while the database is unreachable: first wait and cap, in seconds.
        public var backoffBase = 1.0
        public var backoffMax = 60.0
        public init() {}
    }

    /// What one `shipPending()` did.
    public struct Shipment: Sendable, Equatable {
        public var batches = 0
        /// Decisions the database did not have yet.
        public var newDecisions = 0
        /// Decisions it already had (a re-sent batch whose acknowledgement was lost).
        public var alreadyThere = 0
        public var gaps = 0
        /// Review queue entries and candidate results the database did not have yet.
        public var reviewEntries = 0
        public var candidateResults = 0
        /// Review labels stored (new, or a later revision of one it had).
        public var labels = 0
        public init() {}
    }

    public struct Status: Sendable {
        public var node: String
        public var pendingDecisions: Int
        public var pendingGaps: Int
        public var pendingLabels = 0
        /// Unix seconds of the last round that left nothing pending.
        public var lastSuccess: Double?
        /// The last error (password redacted) and when; nil after a success.
        public var lastError: String?
        public var lastErrorAt: Double?
        public var consecutiveFailures: Int
        public var shippedTotal: Int
    }

    public let store: DecisionStore
    public let url: FleetURL
    public let options: Options
    private let lock = StateLock()
    private var database: FleetDatabase?
    private var state: Status

    public init(store: DecisionStore, url: FleetURL, options: Options = Options()) {
        self.store = store
        self.url = url
        self.options = options
        state = Status(node: store.node, pendingDecisions: 0, pendingGaps: 0, lastSuccess: nil, lastError: nil,
                       lastErrorAt: nil, consecutiveFailures: 0, shippedTotal: 0)
    }

    /// A snapshot of the shipper's state, with the pending counts read now.
    public var status: Status {
        var s = lock.withLock { state }
        if let p = try? store.pendingCounts() { s.pendingDecisions = p.decisions; s.pendingGaps = p.gaps }
        if let l = try? store.pendingLabelCount() { s.pendingLabels = l }
        return s
    }

    private func connection() async throws -> FleetDatabase {
        if let db = lock.withLock({ database }) { return db }
        let db = try await FleetDatabase.connect(url, operationTimeout: options.operationTimeout)
        lock.withLock { database = db }
        return db
    }

    private func dropConnection() async {
        let db = lock.withLock { () -> FleetDatabase? in defer { database = nil }; return database }
        await db?.close()
    }

    public func close() async { await dropConnection() }

    /// Ships everything pending now. Throws (password redacted) if the database cannot be
    /// reached or refuses a batch; whatever was confirmed before stays confirmed.
    @discardableResult
    public func shipPending() async throws -> Shipment {
        var shipment = Shipment()
        do {
            while true {
                let batch = try store.pendingBatch(limit: options.batchSize)
                if batch.isEmpty { break }
                let db = try await connection()
                let inserted = try await db.insert(decisions: batch.decisions, gaps: batch.gaps,
                                                   reviewBackfill: batch.reviewBackfill, labels: batch.labels)
                try store.markShipped(batch)
                shipment.batches += 1
                shipment.newDecisions += inserted.newDecisions
                shipment.alreadyThere += batch.decisions.count - inserted.newDecisions
                shipment.gaps += batch.gaps.count
                shipment.reviewEntries += inserted.newReviewEntries
                shipment.candidateResults += inserted.newCandidateResults
                shipment.labels += inserted.labels
                lock.withLock { state.shippedTotal += inserted.newDecisions }
            }
        } catch {
            await dropConnection()
            let message = url.redact((error as? FleetError)?.description ?? FleetDatabase.describe(error))
            lock.withLock {
                state.lastError = message
                state.lastErrorAt = Clock.unixTime()
                state.consecutiveFailures += 1
            }
            throw FleetError(message)
        }
        lock.withLock {
            state.lastSuccess = Clock.unixTime()
            state.lastError = nil
            state.consecutiveFailures = 0
        }
        return shipment
    }

    /// The wait before the next attempt after `failures` consecutive failures: full jitter
    /// over an exponential ceiling, so a fleet that lost its database does not come back in step.
    public func backoff(afterFailures failures: Int) -> Double {
        let ceiling = min(options.backoffMax, options.backoffBase * Double(1 << min(max(failures - 1, 0), 30)))
        return Double.random(in: (ceiling / 2)...ceiling)
    }

    /// Ships until the task is cancelled: every `interval` while the database answers, with
    /// back-off while it does not. `onRound` sees each round's outcome (for logs).
    public func run(onRound: (@Sendable (Result<Shipment, FleetError>) -> Void)? = nil) async {
        while !Task.isCancelled {
            var wait = options.interval
            do {
                let shipment = try await shipPending()
                onRound?(.success(shipment))
            } catch {
                onRound?(.failure(error as? FleetError ?? FleetError(url.redact("\(error)"))))
                wait = backoff(afterFailures: lock.withLock { state.consecutiveFailures })
            }
            do { try await Task.sleep(nanoseconds: UInt64(wait * 1e9)) } catch { break }
        }
        await dropConnection()
    }
}

/// A small pthread mutex for the replicator's state.
final class StateLock: @unchecked Sendable {
    private let m: UnsafeMutablePointer<pthread_mutex_t>
    init() {
        m = .allocate(capacity: 1)
        m.initialize(to: pthread_mutex_t())
        pthread_mutex_init(m, nil)
    }
    deinit { pthread_mutex_destroy(m); m.deallocate() }
    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(m)
        defer { pthread_mutex_unlock(m) }
        return try body()
    }
}
