// The durable decision record: one row per query in `decisions`, one row per cloud tier call
// in `tier_calls`, a random per-database salt in `meta`. `record` returns only after its
// transaction has committed, so the CLI can print the answer knowing the decision is kept.

import CSQLite
import TriageCascade
import TriageJSON
import TriageSystem

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Salted query hashes: SHA-256(salt ‖ UTF-8 of the query) in lower-case hex. The salt is
/// random per database, so repeats can be counted inside one record but hashes from two
/// deployments cannot be joined, and a hash cannot be reversed by hashing a dictionary of
/// likely questions without the salt.
public struct QueryHasher: Sendable, Equatable {
    public let salt: [UInt8]
    public init(salt: [UInt8]) { self.salt = salt }

    public func hash(_ query: String) -> String { SHA256.hex(salt + Array(query.utf8)) }

    /// 32 bytes from the system's cryptographically secure generator (getrandom on Linux).
    public static func randomSalt() -> [UInt8] {
        var g = SystemRandomNumberGenerator()
        return (0..<32).map { _ in UInt8.random(in: 0...255, using: &g) }
    }
}

/// Thread-safe: one connection per store, every use of it under `lock`. Separate stores
/// (or processes) on the same file coordinate through SQLite's locks and the busy timeout.
public final class DecisionStore: DecisionSink, @unchecked Sendable {
    /// How long a writer waits for another process's transaction before giving up.
    public static let defaultBusyTimeoutMs: Int32 = 5000
    static let saltKey = "query_hash_salt"

    public let path: String
    public let readOnly: Bool
    /// Hashes queries with this database's salt.
    public let hasher: QueryHasher
    /// The journal mode in effect ("wal" unless the file system cannot do WAL).
    public let journalMode: String
    /// The box's name, written into every decision it records.
    public let node: String
    /// The unshipped backlog is kept at or below this many decisions: past it the oldest
    /// unshipped ones are dropped and the loss recorded as a gap (nil: no bound).
    public let maxPending: Int?
    private let connection: Connection
    private let lock = PThreadMutex()

    /// The schema version this code writes.
    public static var schemaVersion: Int { Schema.currentVersion }

    /// `$XDG_STATE_HOME/triage/decisions.sqlite` when XDG_STATE_HOME is set to an absolute
    /// path (the XDG spec ignores relative ones), else `$HOME/.local/state/triage/decisions.sqlite`.
    public static func defaultPath(environment: (String) -> String? = { Environment.get($0) }) -> String {
        if let state = environment("XDG_STATE_HOME"), state.hasPrefix("/") {
            return FileSystem.join(FileSystem.join(state, "triage"), "decisions.sqlite")
        }
        var home = environment("HOME") ?? ""
        if home.isEmpty, let pw = getpwuid(getuid()), let dir = pw.pointee.pw_dir { home = String(cString: dir) }
        if home.isEmpty { home = "." }
        return FileSystem.join(home, ".local/state/triage/decisions.sqlite")
    }

    /// Opens (creating it and its directory when writable) the record at `path` and brings its
    /// schema to the current version. Read-only opens never create or migrate anything: they
    /// need an existing record at the current version.
    public init(path: String, readOnly: Bool = false, busyTimeoutMs: Int32 = DecisionStore.defaultBusyTimeoutMs,
                node: String? = nil, maxPending: Int? = nil) throws {
        self.path = path
        self.readOnly = readOnly
        self.node = node ?? DecisionStore.hostName()
        self.maxPending = maxPending
        if readOnly {
            guard FileSystem.exists(path) else {
                throw RecordError(path: path, operation: "open read-only", code: 0,
                                  message: "no such file (nothing has been recorded yet)")
            }
        } else if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
            let dir = String(path[..<slash])
            do { try FileSystem.createDirectory(dir) } catch {
                throw RecordError(path: path, operation: "create its directory", code: 0, message: "\(error)")
            }
            // createDirectory tolerates EEXIST, so a regular file in the way is caught here.
            guard FileSystem.isDirectory(dir) else {
                throw RecordError(path: path, operation: "create its directory", code: 0, message: "\(dir) exists and is not a directory")
            }
        }
        let conn = try Connection(path: path, readOnly: readOnly, busyTimeoutMs: busyTimeoutMs)

        if readOnly {
            journalMode = try conn.withRetry { try conn.scalarText("PRAGMA journal_mode", for: "read the journal mode") } ?? ""
            let version = try conn.withRetry { try conn.scalarInt("PRAGMA user_version", for: "read the schema version") }
            guard version == Schema.currentVersion else {
                let why = version > Schema.currentVersion
                    ? "schema version \(version) was written by a newer triage (this one knows \(Schema.currentVersion))"
                    : version == 0 ? "not a triage decision record (schema version 0)"
                    : "schema version \(version) is older than \(Schema.currentVersion); open it once for writing (any `triage ask`) to migrate it"
                throw RecordError(path: path, operation: "open read-only", code: 0, message: why)
            }
            guard let salt = try DecisionStore.readSalt(conn) else {
                throw RecordError(path: path, operation: "open read-only", code: 0, message: "the query-hash salt is missing")
            }
            hasher = QueryHasher(salt: salt)
        } else {
            // WAL: readers never block the writer and a commit appends to one file.
            journalMode = try conn.withRetry {
                try conn.scalarText("PRAGMA journal_mode=WAL", for: "switch to write-ahead logging")
            } ?? ""
            // Durability. A decision must survive once `record` returns. In WAL mode,
            // synchronous=NORMAL only fsyncs the WAL at checkpoints: a committed transaction
            // survives the process being killed (the WAL is in the OS page cache) but can be
            // lost on power failure or a kernel crash. FULL fsyncs the WAL at every commit,
            // so a returned `record` survives both. Measured on the development machine
            // (test `durabilityCostIsMeasured`): FULL 0.6–1.9 ms per record, NORMAL 0.09 ms.
            // A millisecond or two per query is small next to a cloud call and comparable to
            // an edge inference, and the promise is "committed before the answer is
            // printed", so FULL it is.
            try conn.withRetry { try conn.execute("PRAGMA synchronous=FULL", for: "set synchronous=FULL") }
            try conn.execute("PRAGMA foreign_keys=ON", for: "enable foreign keys")
            try DecisionStore.migrate(conn)
            hasher = QueryHasher(salt: try DecisionStore.loadOrCreateSalt(conn))
        }
        connection = conn
    }

    /// Opens the record at the default path.
    public convenience init(environment: (String) -> String? = { Environment.get($0) }) throws {
        try self.init(path: DecisionStore.defaultPath(environment: environment))
    }

    // MARK: Schema and salt

    /// Brings the schema to the current version inside one IMMEDIATE transaction. The version
    /// is read again inside it: another process may have migrated while this one waited.
    static func migrate(_ conn: Connection, to target: Int = Schema.currentVersion) throws {
        let seen = try conn.withRetry { try conn.scalarInt("PRAGMA user_version", for: "read the schema version") }
        if seen > Schema.currentVersion {
            throw RecordError(path: conn.path, operation: "open", code: 0,
                              message: "schema version \(seen) was written by a newer triage (this one knows \(Schema.currentVersion))")
        }
        if seen >= target { return }
        try conn.transaction("migrate the schema") {
            let version = try conn.scalarInt("PRAGMA user_version", for: "read the schema version")
            guard version < target else { return }
            for migration in Schema.migrations where migration.version > version && migration.version <= target {
                for sql in migration.statements {
                    try conn.execute(sql, for: "migrate to schema version \(migration.version) (\(migration.summary))")
                }
            }
            // PRAGMA takes no bound parameters; the value is a constant of this code, not input.
            try conn.execute("PRAGMA user_version = \(target)", for: "set the schema version")
        }
    }

    static func readSalt(_ conn: Connection) throws -> [UInt8]? {
        try conn.withRetry { () -> [UInt8]? in
            let st = try conn.prepare("SELECT value FROM meta WHERE key = ?1", for: "read the query-hash salt")
            try st.bind(1, saltKey)
            guard try st.step() else { return nil }
            guard let salt = decodeHex(st.text(0)), !salt.isEmpty else {
                throw RecordError(path: conn.path, operation: "read the query-hash salt", code: 0, message: "the stored salt is not hex")
            }
            return salt
        }
    }

    /// The salt is created once per database; concurrent first opens agree on one salt
    /// because the insert is `OR IGNORE` and the value is read back in the same transaction.
    static func loadOrCreateSalt(_ conn: Connection) throws -> [UInt8] {
        if let salt = try readSalt(conn) { return salt }
        try conn.transaction("create the query-hash salt") {
            let st = try conn.prepare("INSERT OR IGNORE INTO meta(key, value) VALUES (?1, ?2)", for: "create the query-hash salt")
            try st.bind(1, saltKey)
            try st.bind(2, encodeHex(QueryHasher.randomSalt()))
            try st.step()
        }
        guard let salt = try readSalt(conn) else {
            throw RecordError(path: conn.path, operation: "create the query-hash salt", code: 0, message: "salt missing after insert")
        }
        return salt
    }

    /// The schema version of the open database.
    public func currentSchemaVersion() throws -> Int {
        try withConnection { conn in
            try conn.withRetry { try conn.scalarInt("PRAGMA user_version", for: "read the schema version") }
        }
    }

    /// Runs `body` on the connection under the store's lock (tests and diagnostics).
    func withConnection<T>(_ body: (Connection) throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(connection)
    }

    /// A PRAGMA's current value as text; `name` is a constant of the caller, never input.
    func pragma(_ name: String) throws -> String? {
        try withConnection { conn in
            try conn.withRetry { try conn.scalarText("PRAGMA \(name)", for: "read PRAGMA \(name)") }
        }
    }

    /// The host name (gethostname), the default node name.
    public static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "localhost" : name
    }

    /// 128 random bits from the system's CSPRNG as 32 lower-case hex digits.
    public static func newUID() -> String {
        var g = SystemRandomNumberGenerator()
        return encodeHex((0..<16).map { _ in UInt8.random(in: 0...255, using: &g) })
    }

    // MARK: Writing

    /// The salted hash of a query for this database.
    public func queryHash(_ query: String) -> String { hasher.hash(query) }

    static let insertDecisionSQL = """
        INSERT INTO decisions (
            timestamp, model_version, route, reason, label, confidence, out_of_scope,
            complexity, complexity_length, complexity_syntax, complexity_uncertainty, complexity_emotion,
            category, cost_usd, tokenize_ms, edge_ms, cloud_ms, total_ms, cached, review,
            query_text, query_hash, answer, shadow_edge_route, shadow_edge_reason, shadow_cloud_label, uid, node
        ) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20,
                  ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28)
        """

    static let insertTierCallSQL = """
        INSERT INTO tier_calls (
            decision_id, position, tier, model, attempts, statuses, input_tokens, output_tokens,
            cost_usd, latency_ms, succeeded, rejected_by_breaker, answer_confidence, error
        ) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
        """

    /// Stores one decision and its tier calls in one transaction and returns once it has
    /// committed (durable: see the synchronous=FULL note in `init`).
    public func record(_ decision: Decision) throws {
        _ = try insert(decision)
    }

    /// `record`, returning the new row's id.
    @discardableResult
    public func insert(_ d: Decision) throws -> Int64 {
        if readOnly {
            throw RecordError(path: path, operation: "record a decision", code: SQLITE_READONLY,
                              message: "the record was opened read-only")
        }
        return try withConnection { conn in
            try conn.transaction("record a decision") { () -> Int64 in
                let st = try conn.prepare(DecisionStore.insertDecisionSQL, for: "record a decision")
                try st.bind(1, d.timestamp)
                try st.bind(2, d.modelVersion)
                try st.bind(3, d.route.rawValue)
                try st.bind(4, d.reason)
                try st.bind(5, d.label)
                try st.bind(6, d.confidence)
                try st.bind(7, d.outOfScope)
                try st.bind(8, d.complexity.total)
                try st.bind(9, d.complexity.length)
                try st.bind(10, d.complexity.syntax)
                try st.bind(11, d.complexity.uncertainty)
                try st.bind(12, d.complexity.emotion)
                try st.bind(13, d.category)
                try st.bind(14, d.costUSD)
                try st.bind(15, d.latency.tokenizeMs)
                try st.bind(16, d.latency.edgeMs)
                try st.bind(17, d.latency.cloudMs)
                try st.bind(18, d.latency.totalMs)
                try st.bind(19, d.cached)
                try st.bind(20, d.review)
                try st.bind(21, d.queryText)
                try st.bind(22, d.queryHash)
                try st.bind(23, d.answer)
                try st.bind(24, d.shadow?.edgeRoute.rawValue)
                try st.bind(25, d.shadow?.edgeReason)
                try st.bind(26, d.shadow?.cloudLabel)
                try st.bind(27, d.uid.isEmpty ? DecisionStore.newUID() : d.uid)
                try st.bind(28, d.node.isEmpty ? node : d.node)
                try st.step()
                let id = conn.lastInsertRowID
                if !d.tiers.isEmpty {
                    let tc = try conn.prepare(DecisionStore.insertTierCallSQL, for: "record a tier call")
                    for (position, t) in d.tiers.enumerated() {
                        tc.reset()
                        try tc.bind(1, Int(id))
                        try tc.bind(2, position)
                        try tc.bind(3, t.tier)
                        try tc.bind(4, t.model)
                        try tc.bind(5, t.attempts)
                        try tc.bind(6, JSONValue.array(t.statuses.map { .int($0) }).serialized)
                        try tc.bind(7, t.inputTokens)
                        try tc.bind(8, t.outputTokens)
                        try tc.bind(9, t.costUSD)
                        try tc.bind(10, t.latencyMs)
                        try tc.bind(11, t.succeeded)
                        try tc.bind(12, t.rejectedByBreaker)
                        try tc.bind(13, t.answerConfidence)
                        try tc.bind(14, t.error)
                        try tc.step()
                    }
                }
                try DecisionStore.queueForReview(conn, id: id, d)
                if let maxPending { try DecisionStore.enforceBacklogBound(conn, lastID: id, maxPending: maxPending, node: node) }
                return id
            }
        }
    }

    // MARK: Reading

    /// A decision with what was stored beside it in the same transaction: its review queue
    /// entry and the candidate model's view (both shipped with it to the fleet).
    static let selectDecisionColumns = """
        SELECT d.id, d.timestamp, d.model_version, d.route, d.reason, d.label, d.confidence, d.out_of_scope,
               d.complexity, d.complexity_length, d.complexity_syntax, d.complexity_uncertainty, d.complexity_emotion,
               d.category, d.cost_usd, d.tokenize_ms, d.edge_ms, d.cloud_ms, d.total_ms, d.cached, d.review,
               d.query_text, d.query_hash, d.answer, d.shadow_edge_route, d.shadow_edge_reason, d.shadow_cloud_label, d.uid, d.node,
               q.reason, q.query_text,
               c.model_version, c.label, c.confidence, c.out_of_scope, c.route, c.reason, c.candidate_served, c.edge_ms
        FROM decisions d LEFT JOIN review_queue q ON q.decision_id = d.id LEFT JOIN candidate_results c ON c.decision_id = d.id
        """
    static let selectTierColumns = """
        SELECT decision_id, tier, model, statuses, input_tokens, output_tokens, cost_usd, latency_ms,
               succeeded, rejected_by_breaker, answer_confidence, error
        FROM tier_calls
        """

    /// Every decision with `timestamp >= since` (all when nil), oldest first, with its tier
    /// calls in the order they were made. Read in one transaction: a consistent snapshot
    /// even while other processes write.
    public func decisions(since: Double? = nil) throws -> [Decision] {
        try withConnection { conn in
            try conn.withRetry { () -> [Decision] in
                try conn.execute("BEGIN", for: "read decisions")
                defer { conn.rollbackIfNeeded() }
                let result = try DecisionStore.readDecisions(conn, since: since)
                try conn.execute("COMMIT", for: "read decisions")
                return result
            }
        }
    }

    /// The number of decisions with `timestamp >= since` (all when nil).
    /// SQLite's own consistency check of the whole file: "ok" when it is sound.
    public func integrityCheck() throws -> String {
        try withConnection { conn in
            try conn.withRetry { () -> String in try conn.scalarText("PRAGMA integrity_check", for: "check integrity") ?? "" }
        }
    }

    public static func integrityCheck(path: String) throws -> String {
        try DecisionStore(path: path, readOnly: true).integrityCheck()
    }

    public func count(since: Double? = nil) throws -> Int {
        try withConnection { conn in
            try conn.withRetry { () -> Int in
                let st = try conn.prepare(since == nil ? "SELECT count(*) FROM decisions"
                                          : "SELECT count(*) FROM decisions WHERE timestamp >= ?1", for: "count decisions")
                if let since { try st.bind(1, since) }
                return try st.step() ? st.int(0) : 0
            }
        }
    }

    private static func parseRoute(_ text: String, row: Int, path: String) throws -> Route {
        guard let r = Route(rawValue: text) else {
            throw RecordError(path: path, operation: "read decisions", code: 0, message: "row \(row): unknown route '\(text)'")
        }
        return r
    }

    static func readDecisions(_ conn: Connection, since: Double?) throws -> [Decision] {
        try readRows(conn, since: since, afterID: nil, limit: nil).map(\.decision)
    }

    /// Decisions with `timestamp >= since`, or the first `limit` with `id > afterID` (the
    /// shipper's batches), with their row ids, in time (resp. id) order.
    static func readRows(_ conn: Connection, since: Double?, afterID: Int?, limit: Int?) throws -> [(id: Int, decision: Decision)] {
        let selection: String
        if afterID != nil {
            selection = "SELECT id FROM decisions WHERE id > ?1 ORDER BY id LIMIT ?2"
        } else {
            selection = since == nil ? "" : "SELECT id FROM decisions WHERE timestamp >= ?1"
        }
        func bindSelection(_ st: Statement) throws {
            if let afterID { try st.bind(1, afterID); try st.bind(2, limit ?? Int.max) } else if let since { try st.bind(1, since) }
        }
        // Tier calls first, grouped by decision id.
        var tiers: [Int: [TierCall]] = [:]
        do {
            let sql = selectTierColumns + (selection.isEmpty ? "" : " WHERE decision_id IN (\(selection))")
                + " ORDER BY decision_id, position"
            let st = try conn.prepare(sql, for: "read tier calls")
            try bindSelection(st)
            while try st.step() {
                let statusesText = st.text(3)
                guard let parsed = try? JSONValue.parse(statusesText), let items = parsed.arrayValue else {
                    throw RecordError(path: conn.path, operation: "read tier calls", code: 0,
                                      message: "decision \(st.int(0)): statuses '\(statusesText)' is not a JSON array")
                }
                let call = TierCall(tier: st.text(1), model: st.text(2), statuses: items.compactMap { $0.intValue },
                                    inputTokens: st.int(4), outputTokens: st.int(5), costUSD: st.double(6),
                                    latencyMs: st.double(7), succeeded: st.bool(8), rejectedByBreaker: st.bool(9),
                                    answerConfidence: st.optionalDouble(10), error: st.optionalText(11))
                tiers[st.int(0), default: []].append(call)
            }
        }
        let sql = selectDecisionColumns + (selection.isEmpty ? "" : " WHERE d.id IN (\(selection))")
            + (afterID != nil ? " ORDER BY d.id" : " ORDER BY d.timestamp, d.id")
        let st = try conn.prepare(sql, for: "read decisions")
        try bindSelection(st)
        var out: [(id: Int, decision: Decision)] = []
        while try st.step() {
            let id = st.int(0)
            var shadow: ShadowComparison?
            if let edgeRoute = st.optionalText(24) {
                shadow = ShadowComparison(edgeRoute: try parseRoute(edgeRoute, row: id, path: conn.path),
                                          edgeReason: st.text(25), cloudLabel: st.optionalText(26))
            }
            var candidate: CandidateResult?
            if let candidateVersion = st.optionalText(31) {
                candidate = CandidateResult(modelVersion: candidateVersion, label: st.text(32), confidence: st.double(33),
                                            outOfScope: st.bool(34), route: try parseRoute(st.text(35), row: id, path: conn.path),
                                            reason: st.text(36), candidateServed: st.bool(37), edgeMs: st.double(38))
            }
            var decision = Decision(
                timestamp: st.double(1), modelVersion: st.text(2),
                route: try parseRoute(st.text(3), row: id, path: conn.path),
                reason: st.text(4), label: st.text(5), confidence: st.double(6), outOfScope: st.bool(7),
                complexity: ComplexityScore(total: st.double(8), length: st.double(9), syntax: st.double(10),
                                            uncertainty: st.double(11), emotion: st.double(12)),
                category: st.text(13), tiers: tiers[id] ?? [], costUSD: st.double(14),
                latency: StageLatency(tokenizeMs: st.double(15), edgeMs: st.double(16), cloudMs: st.double(17),
                                      totalMs: st.double(18)),
                cached: st.bool(19), review: st.bool(20), queryText: st.optionalText(21), queryHash: st.text(22),
                answer: st.text(23), shadow: shadow, uid: st.text(27), node: st.text(28),
                reviewReason: st.optionalText(29).flatMap(ReviewReason.init(rawValue:)), reviewText: st.optionalText(30))
            decision.candidate = candidate
            out.append((id, decision))
        }
        return out
    }
}

// MARK: Hex

func encodeHex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count * 2)
    for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
    return String(decoding: out, as: UTF8.self)
}

func decodeHex(_ text: String) -> [UInt8]? {
    let u = Array(text.utf8)
    guard u.count % 2 == 0 else { return nil }
    func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x61...0x66: return c - 0x61 + 10
        case 0x41...0x46: return c - 0x41 + 10
        default: return nil
        }
    }
    var out: [UInt8] = []
    out.reserveCapacity(u.count / 2)
    var i = 0
    while i < u.count {
        guard let hi = nibble(u[i]), let lo = nibble(u[i + 1]) else { return nil }
        out.append(hi << 4 | lo)
        i += 2
    }
    return out
}

/// A plain mutex (no Foundation); heap-allocated so its address never moves.
final class PThreadMutex: @unchecked Sendable {
    private let m: UnsafeMutablePointer<pthread_mutex_t>
    init() {
        m = .allocate(capacity: 1)
        m.initialize(to: pthread_mutex_t())
        pthread_mutex_init(m, nil)
    }
    deinit {
        pthread_mutex_destroy(m)
        m.deallocate()
    }
    func lock() { pthread_mutex_lock(m) }
    func unlock() { pthread_mutex_unlock(m) }
}
