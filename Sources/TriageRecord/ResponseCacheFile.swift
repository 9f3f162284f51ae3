import CSQLite
import Synchronization
import TriageCascade
import TriageSystem

#if canImport(Glibc)
import Glibc
#endif

/// The response cache in a SQLite file, so that a cloud answer outlives the process that
/// paid for it: a second `triage ask` of the same question, or `serve` after a restart,
/// answers from it. Several processes may share the file (WAL, busy timeout). A cache is
/// an optimisation, so a failing file never fails a query: a read error is a miss, a write
/// error skips the store, and both are counted in `errors`.
public final class SQLiteResponseCache: ResponseCacheStorage {
    public let path: String
    private let connection: Mutex<Connection>
    private let failures = Atomic<Int>(0)

    /// `$XDG_CACHE_HOME/triage/responses.sqlite`, else `~/.cache/triage/responses.sqlite`.
    public static func defaultPath(environment: (String) -> String? = { Environment.get($0) }) -> String {
        if let xdg = environment("XDG_CACHE_HOME"), xdg.hasPrefix("/") {
            return FileSystem.join(xdg, "triage/responses.sqlite")
        }
        var home = environment("HOME") ?? ""
        if home.isEmpty, let pw = getpwuid(getuid()), let dir = pw.pointee.pw_dir { home = String(cString: dir) }
        if home.isEmpty { home = "." }
        return FileSystem.join(home, ".cache/triage/responses.sqlite")
    }

    /// The storage `cache.path` asks for: "memory" keeps answers in this process only; a
    /// path (or, when unset, the default path) a shared file.
    public static func storage(configuredPath: String?, environment: (String) -> String? = { Environment.get($0) }) throws
        -> ResponseCacheStorage
    {
        if configuredPath == "memory" { return InMemoryResponseCache() }
        return try SQLiteResponseCache(path: configuredPath ?? defaultPath(environment: environment))
    }

    /// Opens (creating it and its directory) the cache file at `path`.
    public init(path: String, busyTimeoutMs: Int32 = 5000) throws {
        self.path = path
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
            let dir = String(path[..<slash])
            do { try FileSystem.createDirectory(dir) } catch {
                throw RecordError(path: path, operation: "create its directory", code: 0, message: "\(error)")
            }
        }
        // Cloud answers may say what was asked: only the owner reads the file. Created 0600
        // before SQLite opens it, so its -wal and -shm files (SQLite gives them the main
        // file's mode) are never readable by others either.
        let fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        if fd >= 0 { close(fd) }
        let conn = try Connection(path: path, readOnly: false, busyTimeoutMs: busyTimeoutMs)
        _ = try conn.withRetry { try conn.scalarText("PRAGMA journal_mode=WAL", for: "switch to write-ahead logging") }
        // A lost cache entry costs one cloud call again, so no fsync per store.
        try conn.withRetry { try conn.execute("PRAGMA synchronous=NORMAL", for: "set synchronous=NORMAL") }
        try conn.withRetry {
            try conn.execute("""
                CREATE TABLE IF NOT EXISTS responses (
                    key TEXT PRIMARY KEY, answer TEXT NOT NULL, route TEXT NOT NULL, reason TEXT NOT NULL,
                    stored_at REAL NOT NULL, used_at REAL NOT NULL)
                """, for: "create the cache table")
            try conn.execute("CREATE INDEX IF NOT EXISTS responses_used ON responses (used_at)", for: "create the cache index")
        }
        chmod(path, 0o600)
        connection = Mutex(conn)
    }

    /// Reads and writes that failed (each treated as a miss or a skipped store).
    public var errors: Int { failures.load(ordering: .relaxed) }

    public func entry(_ key: String, notBefore: Double, now: Double) -> ResponseCache.Entry? {
        do {
            return try connection.withLock { conn in
                try conn.withRetry {
                    let select = try conn.prepare("SELECT answer, route, reason, stored_at FROM responses WHERE key = ?1",
                                                  for: "read a cached answer")
                    try select.bind(1, key)
                    guard try select.step() else { return nil }
                    let storedAt = select.double(3)
                    guard storedAt >= notBefore, let route = Route(rawValue: select.text(1)) else {
                        let delete = try conn.prepare("DELETE FROM responses WHERE key = ?1", for: "drop an expired answer")
                        try delete.bind(1, key)
                        _ = try delete.step()
                        return nil
                    }
                    let entry = ResponseCache.Entry(answer: select.text(0), route: route, reason: select.text(2), storedAt: storedAt)
                    let touch = try conn.prepare("UPDATE responses SET used_at = ?2 WHERE key = ?1", for: "mark a cached answer used")
                    try touch.bind(1, key)
                    try touch.bind(2, now)
                    _ = try touch.step()
                    return entry
                }
            }
        } catch {
            failures.add(1, ordering: .relaxed)
            return nil
        }
    }

    public func store(_ key: String, _ entry: ResponseCache.Entry, capacity: Int) {
        do {
            try connection.withLock { conn in
                try conn.transaction("store a cached answer") {
                    let insert = try conn.prepare("""
                        INSERT OR REPLACE INTO responses (key, answer, route, reason, stored_at, used_at)
                        VALUES (?1, ?2, ?3, ?4, ?5, ?5)
                        """, for: "store a cached answer")
                    try insert.bind(1, key)
                    try insert.bind(2, entry.answer)
                    try insert.bind(3, entry.route.rawValue)
                    try insert.bind(4, entry.reason)
                    try insert.bind(5, entry.storedAt)
                    _ = try insert.step()
                    // Least recently used out first, down to the capacity.
                    let evict = try conn.prepare("""
                        DELETE FROM responses WHERE key IN (
                            SELECT key FROM responses ORDER BY used_at ASC
                            LIMIT max(0, (SELECT count(*) FROM responses) - ?1))
                        """, for: "evict cached answers")
                    try evict.bind(1, capacity)
                    _ = try evict.step()
                }
            }
        } catch {
            failures.add(1, ordering: .relaxed)
        }
    }

    public var count: Int {
        (try? connection.withLock { conn in try conn.scalarInt("SELECT count(*) FROM responses", for: "count cached answers") }) ?? 0
    }
}
