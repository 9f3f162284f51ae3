// A thin, Foundation-free layer over the SQLite C API: one connection, prepared statements
// with bound parameters only (values never go into SQL text), every statement finalized,
// every failure a `RecordError` naming the database path and SQLite's own message.

import CSQLite
import TriageSystem

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A failure of the decision record: what was being done, on which database, and why.
public struct RecordError: Error, CustomStringConvertible, Equatable {
    /// The database file.
    public let path: String
    /// What was being done ("open", "insert a decision", "migrate to schema version 2", …).
    public let operation: String
    /// SQLite's primary or extended result code; 0 when the failure is not SQLite's.
    public let code: Int32
    /// `sqlite3_errmsg` (or the operating system's reason).
    public let message: String

    public init(path: String, operation: String, code: Int32, message: String) {
        self.path = path; self.operation = operation; self.code = code; self.message = message
    }

    public var description: String {
        let suffix = code != 0 ? " (SQLite error \(code))" : ""
        return "decision record \(path): cannot \(operation): \(message)\(suffix)"
    }

    /// SQLITE_BUSY or SQLITE_LOCKED: another connection holds the lock; worth retrying.
    public var isBusy: Bool {
        let primary = code & 0xFF
        return primary == SQLITE_BUSY || primary == SQLITE_LOCKED
    }

    /// SQLITE_READONLY: the database, its directory or the connection does not allow writes.
    public var isReadOnly: Bool { code & 0xFF == SQLITE_READONLY }
}

/// `SQLITE_TRANSIENT`: SQLite copies bound text before the bind call returns.
private var transient: sqlite3_destructor_type { unsafeBitCast(-1 as Int, to: sqlite3_destructor_type.self) }

/// One SQLite connection. Not thread-safe by itself: `DecisionStore` serialises access.
final class Connection {
    let path: String
    let handle: OpaquePointer
    /// Total time `withRetry` keeps retrying SQLITE_BUSY (and the busy handler's timeout).
    let busyTimeoutMs: Int32

    init(path: String, readOnly: Bool, busyTimeoutMs: Int32) throws {
        self.path = path
        self.busyTimeoutMs = busyTimeoutMs
        var db: OpaquePointer?
        let flags = (readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE))
            | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            var message = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
            // "unable to open database file" says little: add the operating system's reason.
            if let db, rc & 0xFF == SQLITE_CANTOPEN, sqlite3_system_errno(db) != 0 {
                message += " (\(String(cString: strerror(sqlite3_system_errno(db)))))"
            }
            if let db { sqlite3_close_v2(db) }
            throw RecordError(path: path, operation: readOnly ? "open read-only" : "open", code: rc, message: message)
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
        // A busy handler that polls every ~1 ms (jittered) for up to busyTimeoutMs. SQLite's
        // own busy_timeout handler backs off to 100 ms sleeps, and a writer committing
        // in a loop then takes the lock back every time: measured here, a second process
        // got no write in until the first had finished all of its 200. Polling often makes
        // two `triage` processes take turns. The context pointer carries the timeout.
        sqlite3_busy_handler(db, { context, count in
            let limitMs = Int(bitPattern: context)
            if Int(count) >= limitMs { return 0 }
            usleep(UInt32(500 + Int.random(in: 0..<1000)))
            return 1
        }, UnsafeMutableRawPointer(bitPattern: Int(max(busyTimeoutMs, 1))))
    }

    deinit {
        // close_v2: should a statement still be alive, the handle closes once it is finalized.
        sqlite3_close_v2(handle)
    }

    func error(_ operation: String, _ rc: Int32) -> RecordError {
        RecordError(path: path, operation: operation, code: rc, message: String(cString: sqlite3_errmsg(handle)))
    }

    func prepare(_ sql: String, for operation: String) throws -> Statement {
        try Statement(connection: self, sql: sql, operation: operation)
    }

    /// Runs SQL without parameters (DDL, PRAGMAs, BEGIN/COMMIT); the text is always a constant.
    func execute(_ sql: String, for operation: String) throws {
        var message: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &message)
        if rc != SQLITE_OK {
            let text = message.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle))
            sqlite3_free(message)
            throw RecordError(path: path, operation: operation, code: rc, message: text)
        }
    }

    /// The single value a query such as `PRAGMA user_version` returns.
    func scalarInt(_ sql: String, for operation: String) throws -> Int {
        let st = try prepare(sql, for: operation)
        guard try st.step() else { return 0 }
        return st.int(0)
    }

    func scalarText(_ sql: String, for operation: String) throws -> String? {
        let st = try prepare(sql, for: operation)
        guard try st.step() else { return nil }
        return st.optionalText(0)
    }

    var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    var inTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }

    func rollbackIfNeeded() {
        if inTransaction { sqlite3_exec(handle, "ROLLBACK", nil, nil, nil) }
    }

    /// Runs `body`, retrying it while SQLite reports BUSY/LOCKED, until `busyTimeoutMs` has
    /// passed. The busy handler already waits inside SQLite; this covers the cases where
    /// SQLite returns BUSY without calling it (e.g. a WAL reader racing a checkpoint).
    func withRetry<T>(_ body: () throws -> T) throws -> T {
        let deadline = Clock.seconds() + Double(busyTimeoutMs) / 1000
        var attempt = 0
        while true {
            do {
                return try body()
            } catch let e as RecordError where e.isBusy && Clock.seconds() < deadline {
                rollbackIfNeeded()
                attempt += 1
                let base = min(0.050, 0.001 * Double(1 << min(attempt, 6)))
                Clock.sleep(seconds: base * Double.random(in: 0.5...1.5))
            } catch {
                rollbackIfNeeded()
                throw error
            }
        }
    }

    /// `BEGIN IMMEDIATE … COMMIT` around `body`, rolled back on any error and retried as a
    /// whole on BUSY. IMMEDIATE takes the write lock up front, so two writers never deadlock
    /// upgrading a read transaction.
    func transaction<T>(_ operation: String, _ body: () throws -> T) throws -> T {
        try withRetry {
            try execute("BEGIN IMMEDIATE", for: operation)
            do {
                let result = try body()
                try execute("COMMIT", for: operation)
                return result
            } catch {
                rollbackIfNeeded()
                throw error
            }
        }
    }
}

/// A prepared statement; finalized when the last reference goes away.
final class Statement {
    let connection: Connection
    let handle: OpaquePointer
    let operation: String

    init(connection: Connection, sql: String, operation: String) throws {
        self.connection = connection
        self.operation = operation
        var st: OpaquePointer?
        let rc = sqlite3_prepare_v2(connection.handle, sql, -1, &st, nil)
        guard rc == SQLITE_OK, let st else {
            if let st { sqlite3_finalize(st) }
            throw connection.error(operation, rc)
        }
        handle = st
    }

    deinit { sqlite3_finalize(handle) }

    private func check(_ rc: Int32) throws {
        if rc != SQLITE_OK { throw connection.error(operation, rc) }
    }

    // MARK: Binding (1-based indices, as in SQLite)

    func bind(_ index: Int32, _ value: Double) throws { try check(sqlite3_bind_double(handle, index, value)) }
    func bind(_ index: Int32, _ value: Int) throws { try check(sqlite3_bind_int64(handle, index, Int64(value))) }
    func bind(_ index: Int32, _ value: Bool) throws { try check(sqlite3_bind_int64(handle, index, value ? 1 : 0)) }
    func bindNull(_ index: Int32) throws { try check(sqlite3_bind_null(handle, index)) }

    func bind(_ index: Int32, _ value: String) throws {
        var text = value
        let rc = text.withUTF8 { buf -> Int32 in
            // An empty buffer may have no base address, which SQLite would read as NULL.
            guard let base = buf.baseAddress, buf.count > 0 else {
                return sqlite3_bind_text(handle, index, "", 0, transient)
            }
            return base.withMemoryRebound(to: CChar.self, capacity: buf.count) {
                sqlite3_bind_text(handle, index, $0, Int32(buf.count), transient)
            }
        }
        try check(rc)
    }

    func bind(_ index: Int32, _ value: String?) throws {
        if let value { try bind(index, value) } else { try bindNull(index) }
    }

    func bind(_ index: Int32, _ value: Double?) throws {
        if let value { try bind(index, value) } else { try bindNull(index) }
    }

    // MARK: Stepping

    /// True when a row is available, false when the statement is done.
    @discardableResult
    func step() throws -> Bool {
        let rc = sqlite3_step(handle)
        if rc == SQLITE_ROW { return true }
        if rc == SQLITE_DONE { return false }
        throw connection.error(operation, rc)
    }

    func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    // MARK: Columns (0-based indices, as in SQLite)

    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }
    func double(_ column: Int32) -> Double { sqlite3_column_double(handle, column) }
    func int(_ column: Int32) -> Int { Int(sqlite3_column_int64(handle, column)) }
    func bool(_ column: Int32) -> Bool { sqlite3_column_int64(handle, column) != 0 }
    func optionalDouble(_ column: Int32) -> Double? { isNull(column) ? nil : double(column) }

    func text(_ column: Int32) -> String { optionalText(column) ?? "" }

    func optionalText(_ column: Int32) -> String? {
        guard let p = sqlite3_column_text(handle, column) else { return nil }
        let n = Int(sqlite3_column_bytes(handle, column))
        return String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
    }
}
