import Foundation
import Synchronization
import Testing
import TriageCascade
@testable import TriageRecord

/// The response cache in a file: what one connection (one process) stores, another reads;
/// the TTL and the size bound hold across them; least recently used goes first.
@Suite struct ResponseCacheFileTests {
    @Test func answersOutliveTheConnectionThatStoredThem() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let path = dir.file("cache/responses.sqlite")
        let clock = Mutex<Double>(1_700_000_000)
        func cache(capacity: Int = 10) throws -> ResponseCache {
            ResponseCache(ttl: 300, capacity: capacity, historyTurns: 3, storage: try SQLiteResponseCache(path: path),
                          now: { clock.withLock { $0 } })
        }
        let first = try cache()
        let key = first.key(query: "Where is my card?", history: [("user", "hi"), ("assistant", "hello")])
        first.store(key, answer: "It is on its way.", route: .small, reason: "out_of_scope")

        // A second connection, as a second process would open it.
        let second = try cache()
        #expect(second.key(query: "where  is my CARD?", history: [("user", "hi"), ("assistant", "hello")]) == key)
        #expect(second.lookup(key) == ResponseCache.Entry(answer: "It is on its way.", route: .small, reason: "out_of_scope",
                                                          storedAt: 1_700_000_000))
        #expect(second.lookup(first.key(query: "Where is my card?", history: [])) == nil)

        // Past the TTL it is gone, for every connection.
        clock.withLock { $0 += 301 }
        #expect(second.lookup(key) == nil)
        #expect(first.count == 0)
        #expect((try SQLiteResponseCache(path: path)).errors == 0)

        // Only the owner may read the file: cloud answers can say what was asked.
        for file in [path, path + "-wal", path + "-shm"] where FileManager.default.fileExists(atPath: file) {
            let mode = try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int
            #expect(mode == 0o600, "\(file)")
        }
    }

    @Test func leastRecentlyUsedGoesFirst() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let clock = Mutex<Double>(1_700_000_000)
        let storage = try SQLiteResponseCache(path: dir.file("responses.sqlite"))
        let cache = ResponseCache(ttl: 300, capacity: 2, historyTurns: 0, storage: storage, now: { clock.withLock { $0 += 1; return $0 } })
        cache.store("a", answer: "A", route: .small, reason: "r")
        cache.store("b", answer: "B", route: .large, reason: "r")
        #expect(cache.lookup("a")?.answer == "A")      // a is now more recent than b
        cache.store("c", answer: "C", route: .small, reason: "r")
        #expect(cache.count == 2)
        #expect(cache.lookup("b") == nil)
        #expect(cache.lookup("a")?.answer == "A" && cache.lookup("c")?.route == .small)
        // The same key again replaces, it does not add.
        cache.store("c", answer: "C2", route: .large, reason: "r")
        #expect(cache.count == 2 && cache.lookup("c")?.answer == "C2")
    }

    @Test func memoryOrTheDefaultFileAsConfigured() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        #expect(try SQLiteResponseCache.storage(configuredPath: "memory") is InMemoryResponseCache)
        let file = try SQLiteResponseCache.storage(configuredPath: nil, environment: { $0 == "XDG_CACHE_HOME" ? dir.path : nil })
        #expect((file as? SQLiteResponseCache)?.path == dir.file("triage/responses.sqlite"))
        #expect(SQLiteResponseCache.defaultPath(environment: { $0 == "HOME" ? "/home/u" : nil }) == "/home/u/.cache/triage/responses.sqlite")
        // A path that cannot be a file is an error when the cache is opened, not a silent miss later.
        #expect(throws: RecordError.self) { try SQLiteResponseCache(path: dir.path) }
    }
}
