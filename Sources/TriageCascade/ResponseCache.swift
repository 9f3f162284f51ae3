import TriageSystem
import Synchronization

/// Cloud answers kept for a while, keyed by SHA-256 of the query and the last turns of
/// history: the same question in the same context within the TTL is answered again for
/// free. Bounded: the least recently used entry goes first.
public final class ResponseCache: Sendable {
    public struct Entry: Sendable, Equatable {
        public var answer: String
        public var route: Route
        public var reason: String
        public var storedAt: Double
    }

    public let ttl: Double
    public let capacity: Int
    public let historyTurns: Int
    private let state = Mutex<(entries: [String: Entry], order: [String])>(([:], []))
    private let now: @Sendable () -> Double

    public init(ttl: Double = 300, capacity: Int = 1000, historyTurns: Int = 2,
                now: @escaping @Sendable () -> Double = { Clock.seconds() }) {
        self.ttl = ttl; self.capacity = max(1, capacity); self.historyTurns = max(0, historyTurns); self.now = now
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
        return state.withLock { s in
            guard let e = s.entries[key] else { return nil }
            if t - e.storedAt > ttl {
                s.entries[key] = nil
                s.order.removeAll { $0 == key }
                return nil
            }
            s.order.removeAll { $0 == key }
            s.order.append(key)
            return e
        }
    }

    public func store(_ key: String, answer: String, route: Route, reason: String) {
        let t = now()
        state.withLock { s in
            if s.entries[key] != nil { s.order.removeAll { $0 == key } }
            s.entries[key] = Entry(answer: answer, route: route, reason: reason, storedAt: t)
            s.order.append(key)
            while s.order.count > capacity {
                let old = s.order.removeFirst()
                s.entries[old] = nil
            }
        }
    }

    public var count: Int { state.withLock { $0.entries.count } }
}
