import TriageSystem
import Synchronization

/// Where cached answers live: in this process's memory, or in a file that several
/// processes share and that outlives them (`SQLiteResponseCache` in TriageRecord). Entries
/// carry wall-clock times so that a file written yesterday is judged by today's clock.
public protocol ResponseCacheStorage: Sendable {
    /// The entry under `key` if it was stored at or after `notBefore`; a hit counts as a use.
    func entry(_ key: String, notBefore: Double, now: Double) -> ResponseCache.Entry?
    /// Stores (or replaces) an entry, then drops the least recently used past `capacity`.
    func store(_ key: String, _ entry: ResponseCache.Entry, capacity: Int)
    var count: Int { get }
}

/// Cloud answers kept for a while, keyed by SHA-256 of the query and the last turns of
/// history: the same question in the same context within the TTL is answered again for
/// free. Bounded: the least recently used entry goes first.
public final class ResponseCache: Sendable {
    public struct Entry: Sendable, Equatable {
        public var answer: String
        public var route: Route
        public var reason: String
        /// Wall-clock seconds since 1970.
        public var storedAt: Double
        public init(answer: String, route: Route, reason: String, storedAt: Double) {
            self.answer = answer; self.route = route; self.reason = reason; self.storedAt = storedAt
        }
    }

    public let ttl: Double
    public let capacity: Int
    public let historyTurns: Int
    public let storage: ResponseCacheStorage
    private let now: @Sendable () -> Double

    public init(ttl: Double = 300, capacity: Int = 1000, historyTurns: Int = 3,
                storage: ResponseCacheStorage = InMemoryResponseCache(),
                now: @escaping @Sendable () -> Double = { Clock.unixTime() }) {
        self.ttl = ttl; self.capacity = max(1, capacity); self.historyTurns = max(0, historyTurns)
        self.storage = storage; self.now = now
    }

    /// SHA-256 over the normalised query and the last `historyTurns` turns, each field
    /// length-prefixed so that no two different inputs can produce the same byte string.
    public func key(query: String, history: [(role: String, content: String)]) -> String {
        var bytes: [UInt8] = []
        func add(_ s: String) {
            let u = Array(s.utf8)
            bytes += Array(String(u.count).utf8) + [0x3A] + u
        }
        add(query.lowercased().split(whereSeparator: { $0.isWhitespace }).joined(separator: " "))
        for turn in history.suffix(historyTurns) { add(turn.role); add(turn.content) }
        return SHA256.hex(bytes)
    }

    public func lookup(_ key: String) -> Entry? {
        let t = now()
        return storage.entry(key, notBefore: t - ttl, now: t)
    }

    public func store(_ key: String, answer: String, route: Route, reason: String) {
        storage.store(key, Entry(answer: answer, route: route, reason: reason, storedAt: now()), capacity: capacity)
    }

    public var count: Int { storage.count }
}

/// The cache of one process: a dictionary and a recency list behind a lock.
public final class InMemoryResponseCache: ResponseCacheStorage {
    private let state = Mutex<(entries: [String: ResponseCache.Entry], order: [String])>(([:], []))
    public init() {}

    public func entry(_ key: String, notBefore: Double, now: Double) -> ResponseCache.Entry? {
        state.withLock { s in
            guard let e = s.entries[key] else { return nil }
            s.order.removeAll { $0 == key }
            if e.storedAt < notBefore {
                s.entries[key] = nil
                return nil
            }
            s.order.append(key)
            return e
        }
    }

    public func store(_ key: String, _ entry: ResponseCache.Entry, capacity: Int) {
        state.withLock { s in
            if s.entries[key] != nil { s.order.removeAll { $0 == key } }
            s.entries[key] = entry
            s.order.append(key)
            while s.order.count > capacity {
                let old = s.order.removeFirst()
                s.entries[old] = nil
            }
        }
    }

    public var count: Int { state.withLock { $0.entries.count } }
}
