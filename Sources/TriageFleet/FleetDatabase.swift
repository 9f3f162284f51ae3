// The fleet's shared PostgreSQL database: its schema (versioned and migrated by triage
// under an advisory lock, so two boxes starting at once never race), idempotent inserts of
// shipped decisions and gaps, and the reads of `triage report --db postgres://…`.
//
// Every decision is one row keyed by (node, uid); its tier calls travel with it as a JSON
// array (one row, one insert, one conflict check). Each batch is one transaction, and
// `ON CONFLICT (node, uid) DO NOTHING` makes sending it again harmless: a batch whose
// COMMIT went through but whose acknowledgement was lost is simply re-sent.

import Logging
import PostgresNIO
import TriageCascade
import TriageJSON
import TriageRecord
import TriageSystem

public final class FleetDatabase: @unchecked Sendable {
    public let url: FleetURL
    let connection: PostgresConnection
    let logger: Logger
    /// Seconds one operation (connect, a batch, a read) may take before the connection is
    /// closed and the operation fails: a database that stops answering cannot hang a shipper.
    public let operationTimeout: Double

    /// The PostgreSQL schema version this code writes.
    public static var schemaVersion: Int { migrations.count }
    /// Key of the advisory lock that serialises migrations across boxes ("triage" in ASCII).
    static let migrationLockKey: Int64 = 0x7472_6961_6765

    static let migrations: [[String]] = [
        // Version 1.
        [
            """
            CREATE TABLE decisions (
                node                   text             NOT NULL,
                uid                    text             NOT NULL,
                timestamp              double precision NOT NULL,
                model_version          text             NOT NULL,
                route                  text             NOT NULL,
                reason                 text             NOT NULL,
                label                  text             NOT NULL,
                confidence             double precision NOT NULL,
                out_of_scope           boolean          NOT NULL,
                complexity             double precision NOT NULL,
                complexity_length      double precision NOT NULL,
                complexity_syntax      double precision NOT NULL,
                complexity_uncertainty double precision NOT NULL,
                complexity_emotion     double precision NOT NULL,
                category               text             NOT NULL,
                cost_usd               double precision NOT NULL,
                tokenize_ms            double precision NOT NULL,
                edge_ms                double precision NOT NULL,
                cloud_ms               double precision NOT NULL,
                total_ms               double precision NOT NULL,
                cached                 boolean          NOT NULL,
                review                 boolean          NOT NULL,
                query_text             text,
                query_hash             text             NOT NULL,
                answer                 text             NOT NULL,
                shadow_edge_route      text,
                shadow_edge_reason     text,
                shadow_cloud_label     text,
                tiers                  jsonb            NOT NULL,
                shipped_at             timestamptz      NOT NULL DEFAULT now(),
                PRIMARY KEY (node, uid)
            )
            """,
            "CREATE INDEX decisions_timestamp ON decisions (timestamp)",
            """
            CREATE TABLE gaps (
                node            text             NOT NULL,
                uid             text             NOT NULL,
                recorded_at     double precision NOT NULL,
                first_timestamp double precision NOT NULL,
                last_timestamp  double precision NOT NULL,
                dropped         bigint           NOT NULL,
                cost_usd        double precision NOT NULL,
                reason          text             NOT NULL,
                shipped_at      timestamptz      NOT NULL DEFAULT now(),
                PRIMARY KEY (node, uid)
            )
            """,
        ],
        // Version 2: the review queue, its labels and the candidate model's results, keyed
        // like decisions by the (node, uid) of the decision they belong to. No foreign keys:
        // a label may arrive before its decision (two shippers on one record), and the
        // report joins them.
        [
            """
            CREATE TABLE review_queue (
                node        text NOT NULL,
                uid         text NOT NULL,
                reason      text NOT NULL,
                query_text  text,
                shipped_at  timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (node, uid)
            )
            """,
            """
            CREATE TABLE candidate_results (
                node             text             NOT NULL,
                uid              text             NOT NULL,
                model_version    text             NOT NULL,
                label            text             NOT NULL,
                confidence       double precision NOT NULL,
                out_of_scope     boolean          NOT NULL,
                route            text             NOT NULL,
                reason           text             NOT NULL,
                candidate_served boolean          NOT NULL,
                edge_ms          double precision NOT NULL,
                shipped_at       timestamptz      NOT NULL DEFAULT now(),
                PRIMARY KEY (node, uid)
            )
            """,
            """
            CREATE TABLE review_labels (
                node        text             NOT NULL,
                uid         text             NOT NULL,
                label       text,
                correct     boolean,
                labelled_at double precision NOT NULL,
                revision    bigint           NOT NULL,
                shipped_at  timestamptz      NOT NULL DEFAULT now(),
                PRIMARY KEY (node, uid)
            )
            """,
        ],
    ]

    static let quietLogger = Logger(label: "triage.fleet", factory: { _ in SwiftLogNoOpLogHandler() })

    init(url: FleetURL, connection: PostgresConnection, operationTimeout: Double) {
        self.url = url
        self.connection = connection
        self.logger = FleetDatabase.quietLogger
        self.operationTimeout = operationTimeout
    }

    /// Connects (within `operationTimeout`) and brings the schema to the current version.
    public static func connect(_ url: FleetURL, operationTimeout: Double = 30, migrate: Bool = true) async throws -> FleetDatabase {
        var options = PostgresConnection.Configuration.Options()
        options.connectTimeout = .milliseconds(Int64(operationTimeout * 1000))
        let tls: PostgresConnection.Configuration.TLS
        switch url.sslMode {
        case .disable: tls = .disable
        case .prefer: tls = .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
        case .require: tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
        }
        var config = PostgresConnection.Configuration(host: url.host, port: url.port, username: url.user,
                                                      password: url.password, database: url.database, tls: tls)
        config.options = options
        let configuration = config
        let connection: PostgresConnection
        do {
            connection = try await withDeadline(operationTimeout, onTimeout: {}) {
                try await PostgresConnection.connect(configuration: configuration, id: 1, logger: quietLogger)
            }
        } catch {
            throw FleetError(url.redact("cannot connect to \(url): \(describe(error))"))
        }
        let db = FleetDatabase(url: url, connection: connection, operationTimeout: operationTimeout)
        if migrate {
            do { try await db.migrate() } catch {
                try? await connection.close()
                throw error
            }
        }
        return db
    }

    public func close() async {
        try? await connection.close()
    }

    /// Runs `body` within the operation timeout; on timeout the connection is closed (its
    /// state is unknown) and the error says so.
    func timed<T: Sendable>(_ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let connection = self.connection
        do {
            return try await withDeadline(operationTimeout, onTimeout: { try? await connection.close() }, body)
        } catch let e as FleetError {
            throw FleetError(url.redact("\(what): \(e.description)"))
        } catch {
            throw FleetError(url.redact("\(what) on \(url): \(FleetDatabase.describe(error))"))
        }
    }

    // MARK: Schema

    /// Creates or migrates the schema in one transaction holding an advisory lock: a second
    /// box migrating at the same moment waits, then finds the work done.
    public func migrate() async throws {
        let connection = self.connection, logger = self.logger
        // Already current (the usual case): no transaction, no lock.
        if let version = try? await schemaVersionOnServer(), version == FleetDatabase.schemaVersion { return }
        try await timed("migrate the fleet schema") {
            try await connection.query("BEGIN", logger: logger)
            do {
                try await connection.query("SELECT pg_advisory_xact_lock(\(FleetDatabase.migrationLockKey))", logger: logger)
                try await connection.query("CREATE TABLE IF NOT EXISTS triage_schema (version integer NOT NULL)", logger: logger)
                var version = 0
                for try await v in try await connection.query("SELECT version FROM triage_schema", logger: logger).decode(Int.self) {
                    version = max(version, v)
                }
                if version > FleetDatabase.schemaVersion {
                    throw FleetError("fleet schema version \(version) was written by a newer triage (this one knows \(FleetDatabase.schemaVersion))")
                }
                if version < FleetDatabase.schemaVersion {
                    for (index, statements) in FleetDatabase.migrations.enumerated() where index + 1 > version {
                        for sql in statements { try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger) }
                    }
                    try await connection.query("DELETE FROM triage_schema", logger: logger)
                    try await connection.query("INSERT INTO triage_schema (version) VALUES (\(FleetDatabase.schemaVersion))", logger: logger)
                }
                try await connection.query("COMMIT", logger: logger)
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
        }
    }

    public func schemaVersionOnServer() async throws -> Int {
        let connection = self.connection, logger = self.logger
        return try await timed("read the fleet schema version") {
            var version = 0
            for try await v in try await connection.query("SELECT version FROM triage_schema", logger: logger).decode(Int.self) {
                version = max(version, v)
            }
            return version
        }
    }

    // MARK: Shipping

    static let decisionColumns = """
        node, uid, timestamp, model_version, route, reason, label, confidence, out_of_scope,
        complexity, complexity_length, complexity_syntax, complexity_uncertainty, complexity_emotion,
        category, cost_usd, tokenize_ms, edge_ms, cloud_ms, total_ms, cached, review,
        query_text, query_hash, answer, shadow_edge_route, shadow_edge_reason, shadow_cloud_label, tiers
        """
    static let decisionColumnCount = 29
    static let gapColumns = "node, uid, recorded_at, first_timestamp, last_timestamp, dropped, cost_usd, reason"

    /// What one batch added to the fleet database.
    public struct Inserted: Sendable, Equatable {
        public var newDecisions = 0
        public var newGaps = 0
        /// Review queue entries and candidate results it did not have yet.
        public var newReviewEntries = 0
        public var newCandidateResults = 0
        /// Labels stored (new, or a later revision of one it had).
        public var labels = 0
    }

    /// Inserts a batch in one transaction; returns how many decisions and gaps were new
    /// (the rest were already there). Returns only after the COMMIT was acknowledged.
    public func insert(decisions: [Decision], gaps: [RecordGap]) async throws -> (newDecisions: Int, newGaps: Int) {
        let inserted = try await insert(decisions: decisions, gaps: gaps, reviewBackfill: [], labels: [])
        return (inserted.newDecisions, inserted.newGaps)
    }

    /// Inserts a batch in one transaction: decisions with their review queue entries and
    /// candidate results, the entries of `reviewBackfill` (decisions the fleet already
    /// has), gaps and labels. Entries are immutable (`DO NOTHING`); a label replaces the
    /// stored one only when its revision is higher, so the last import wins even when two
    /// shippers deliver revisions out of order. Returns only after the COMMIT was acknowledged.
    public func insert(decisions: [Decision], gaps: [RecordGap], reviewBackfill: [Decision],
                       labels: [ShippedLabel]) async throws -> Inserted {
        let connection = self.connection, logger = self.logger
        let withEntries = decisions + reviewBackfill
        let queueQuery = FleetDatabase.reviewQueueInsert(withEntries.filter { $0.reviewReason != nil })
        let candidateQuery = FleetDatabase.candidateInsert(withEntries.filter { $0.candidate != nil })
        let labelQuery = FleetDatabase.labelInsert(labels)
        var decisionQuery: PostgresQuery?
        if !decisions.isEmpty {
            var binds = PostgresBindings(capacity: decisions.count * FleetDatabase.decisionColumnCount)
            var sql = "INSERT INTO decisions (\(FleetDatabase.decisionColumns)) VALUES "
            for (row, d) in decisions.enumerated() {
                let base = row * FleetDatabase.decisionColumnCount
                sql += (row == 0 ? "(" : ", (")
                sql += (1...FleetDatabase.decisionColumnCount).map { "$\(base + $0)" + ($0 == FleetDatabase.decisionColumnCount ? "::jsonb" : "") }
                    .joined(separator: ", ") + ")"
                binds.append(d.node); binds.append(d.uid); binds.append(d.timestamp); binds.append(d.modelVersion)
                binds.append(d.route.rawValue); binds.append(d.reason); binds.append(d.label); binds.append(d.confidence)
                binds.append(d.outOfScope); binds.append(d.complexity.total); binds.append(d.complexity.length)
                binds.append(d.complexity.syntax); binds.append(d.complexity.uncertainty); binds.append(d.complexity.emotion)
                binds.append(d.category); binds.append(d.costUSD); binds.append(d.latency.tokenizeMs); binds.append(d.latency.edgeMs)
                binds.append(d.latency.cloudMs); binds.append(d.latency.totalMs); binds.append(d.cached); binds.append(d.review)
                binds.append(d.queryText); binds.append(d.queryHash); binds.append(d.answer)
                binds.append(d.shadow?.edgeRoute.rawValue); binds.append(d.shadow?.edgeReason); binds.append(d.shadow?.cloudLabel)
                binds.append(TierCallsJSON.encode(d.tiers))
            }
            sql += " ON CONFLICT (node, uid) DO NOTHING RETURNING uid"
            decisionQuery = PostgresQuery(unsafeSQL: sql, binds: binds)
        }
        var gapQuery: PostgresQuery?
        if !gaps.isEmpty {
            var binds = PostgresBindings(capacity: gaps.count * 8)
            var sql = "INSERT INTO gaps (\(FleetDatabase.gapColumns)) VALUES "
            for (row, g) in gaps.enumerated() {
                let b = row * 8
                sql += (row == 0 ? "" : ", ") + "(" + (1...8).map { "$\(b + $0)" }.joined(separator: ", ") + ")"
                binds.append(g.node); binds.append(g.uid); binds.append(g.recordedAt); binds.append(g.firstTimestamp)
                binds.append(g.lastTimestamp); binds.append(g.dropped); binds.append(g.costUSD); binds.append(g.reason)
            }
            // A gap grows while it is unshipped; a re-sent one may carry a larger count.
            sql += """
                 ON CONFLICT (node, uid) DO UPDATE SET dropped = GREATEST(gaps.dropped, excluded.dropped),
                    cost_usd = GREATEST(gaps.cost_usd, excluded.cost_usd),
                    first_timestamp = LEAST(gaps.first_timestamp, excluded.first_timestamp),
                    last_timestamp = GREATEST(gaps.last_timestamp, excluded.last_timestamp)
                 RETURNING (xmax = 0)
                """
            gapQuery = PostgresQuery(unsafeSQL: sql, binds: binds)
        }
        let dq = decisionQuery, gq = gapQuery
        return try await timed("ship a batch of \(decisions.count) decisions") {
            try await connection.query("BEGIN", logger: logger)
            do {
                var result = Inserted()
                if let dq {
                    for try await _ in try await connection.query(dq, logger: logger).decode(String.self) { result.newDecisions += 1 }
                }
                if let gq {
                    for try await inserted in try await connection.query(gq, logger: logger).decode(Bool.self) where inserted { result.newGaps += 1 }
                }
                if let queueQuery {
                    for try await _ in try await connection.query(queueQuery, logger: logger).decode(String.self) { result.newReviewEntries += 1 }
                }
                if let candidateQuery {
                    for try await _ in try await connection.query(candidateQuery, logger: logger).decode(String.self) { result.newCandidateResults += 1 }
                }
                if let labelQuery {
                    for try await _ in try await connection.query(labelQuery, logger: logger).decode(String.self) { result.labels += 1 }
                }
                try await connection.query("COMMIT", logger: logger)
                return result
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
        }
    }

    /// A multi-row INSERT of `rows` (each `columns` binds), with `tail` after the VALUES.
    static func multiRowInsert<T>(_ table: String, _ columns: [String], _ rows: [T], tail: String,
                                  _ bind: (T, inout PostgresBindings) -> Void) -> PostgresQuery? {
        guard !rows.isEmpty else { return nil }
        var binds = PostgresBindings(capacity: rows.count * columns.count)
        var sql = "INSERT INTO \(table) (\(columns.joined(separator: ", "))) VALUES "
        for (row, value) in rows.enumerated() {
            let base = row * columns.count
            sql += (row == 0 ? "(" : ", (") + (1...columns.count).map { "$\(base + $0)" }.joined(separator: ", ") + ")"
            bind(value, &binds)
        }
        return PostgresQuery(unsafeSQL: sql + " " + tail, binds: binds)
    }

    static func reviewQueueInsert(_ decisions: [Decision]) -> PostgresQuery? {
        multiRowInsert("review_queue", ["node", "uid", "reason", "query_text"], decisions,
                       tail: "ON CONFLICT (node, uid) DO NOTHING RETURNING uid") { d, b in
            b.append(d.node); b.append(d.uid); b.append(d.reviewReason?.rawValue ?? ""); b.append(d.reviewText)
        }
    }

    static func candidateInsert(_ decisions: [Decision]) -> PostgresQuery? {
        multiRowInsert("candidate_results", ["node", "uid", "model_version", "label", "confidence", "out_of_scope", "route",
                                             "reason", "candidate_served", "edge_ms"], decisions,
                       tail: "ON CONFLICT (node, uid) DO NOTHING RETURNING uid") { d, b in
            let c = d.candidate!
            b.append(d.node); b.append(d.uid); b.append(c.modelVersion); b.append(c.label); b.append(c.confidence)
            b.append(c.outOfScope); b.append(c.route.rawValue); b.append(c.reason); b.append(c.candidateServed); b.append(c.edgeMs)
        }
    }

    static func labelInsert(_ labels: [ShippedLabel]) -> PostgresQuery? {
        multiRowInsert("review_labels", ["node", "uid", "label", "correct", "labelled_at", "revision"], labels, tail: """
            ON CONFLICT (node, uid) DO UPDATE SET label = excluded.label, correct = excluded.correct,
                labelled_at = excluded.labelled_at, revision = excluded.revision, shipped_at = now()
            WHERE review_labels.revision < excluded.revision
            RETURNING uid
            """) { l, b in
            b.append(l.node); b.append(l.uid); b.append(l.label); b.append(l.correct); b.append(l.labelledAt); b.append(l.revision)
        }
    }

    // MARK: Reading

    /// Every decision with `timestamp >= since` (all when nil), oldest first, with its review
    /// queue entry and candidate result; every gap whose last dropped decision is in the
    /// window; and the review labels of the window's decisions — in one read-only snapshot.
    public func load(since: Double?) async throws -> (decisions: [Decision], gaps: [RecordGap], labels: [DecisionKey: LabelVerdict]) {
        let connection = self.connection, logger = self.logger
        return try await timed("read the fleet record") {
            try await connection.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: logger)
            do {
                let from = since ?? -Double.greatestFiniteMagnitude
                var decisions: [Decision] = []
                let rows = try await connection.query("""
                    SELECT \(unescaped: FleetDatabase.decisionColumnsText),
                           q.reason, q.query_text, c.model_version, c.label, c.confidence, c.out_of_scope, c.route, c.reason,
                           c.candidate_served, c.edge_ms
                    FROM decisions d LEFT JOIN review_queue q ON q.node = d.node AND q.uid = d.uid
                         LEFT JOIN candidate_results c ON c.node = d.node AND c.uid = d.uid
                    WHERE d.timestamp >= \(from) ORDER BY d.timestamp, d.node, d.uid
                    """, logger: logger)
                for try await row in rows {
                    decisions.append(try FleetDatabase.decodeDecision(row.makeRandomAccess()))
                }
                var gaps: [RecordGap] = []
                let gapRows = try await connection.query("""
                    SELECT \(unescaped: FleetDatabase.gapColumns) FROM gaps WHERE last_timestamp >= \(from) ORDER BY recorded_at, node, uid
                    """, logger: logger)
                for try await (node, uid, recordedAt, first, last, dropped, cost, reason) in gapRows
                    .decode((String, String, Double, Double, Double, Int, Double, String).self) {
                    gaps.append(RecordGap(uid: uid, node: node, recordedAt: recordedAt, firstTimestamp: first, lastTimestamp: last,
                                          dropped: dropped, costUSD: cost, reason: reason))
                }
                var labels: [DecisionKey: LabelVerdict] = [:]
                let labelRows = try await connection.query("""
                    SELECT l.node, l.uid, l.label, l.correct FROM review_labels l
                    JOIN decisions d ON d.node = l.node AND d.uid = l.uid WHERE d.timestamp >= \(from)
                    """, logger: logger)
                for try await (node, uid, label, correct) in labelRows.decode((String, String, String?, Bool?).self) {
                    labels[DecisionKey(node: node, uid: uid)] = LabelVerdict(label: label, correct: correct)
                }
                try await connection.query("COMMIT", logger: logger)
                return (decisions, gaps, labels)
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
        }
    }

    /// The columns read back: `tiers` as text, so the JSON comes back exactly as it was sent.
    static let decisionColumnsText = decisionColumns.split(separator: ",").map { column -> String in
        let name = String(column.filter { !$0.isWhitespace })
        return name == "tiers" ? "d.tiers::text" : "d." + name
    }.joined(separator: ", ")

    static func decodeDecision(_ r: PostgresRandomAccessRow) throws -> Decision {
        func s(_ i: Int) throws -> String { try r[i].decode(String.self) }
        func os(_ i: Int) throws -> String? { try r[i].decode(String?.self) }
        func d(_ i: Int) throws -> Double { try r[i].decode(Double.self) }
        func b(_ i: Int) throws -> Bool { try r[i].decode(Bool.self) }
        let routeText = try s(4)
        guard let route = Route(rawValue: routeText) else { throw FleetError("fleet record: unknown route '\(routeText)'") }
        var shadow: ShadowComparison?
        if let edgeRoute = try os(25) {
            guard let er = Route(rawValue: edgeRoute) else { throw FleetError("fleet record: unknown route '\(edgeRoute)'") }
            shadow = ShadowComparison(edgeRoute: er, edgeReason: try os(26) ?? "", cloudLabel: try os(27))
        }
        var decision = Decision(
            timestamp: try d(2), modelVersion: try s(3), route: route, reason: try s(5), label: try s(6),
            confidence: try d(7), outOfScope: try b(8),
            complexity: ComplexityScore(total: try d(9), length: try d(10), syntax: try d(11), uncertainty: try d(12),
                                        emotion: try d(13)),
            category: try s(14), tiers: try TierCallsJSON.decode(try s(28)), costUSD: try d(15),
            latency: StageLatency(tokenizeMs: try d(16), edgeMs: try d(17), cloudMs: try d(18), totalMs: try d(19)),
            cached: try b(20), review: try b(21), queryText: try os(22), queryHash: try s(23), answer: try s(24),
            shadow: shadow, uid: try s(1), node: try s(0),
            reviewReason: try os(29).flatMap(ReviewReason.init(rawValue:)), reviewText: try os(30))
        if let version = try os(31) {
            let routeText = try s(35)
            guard let route = Route(rawValue: routeText) else { throw FleetError("fleet record: unknown route '\(routeText)'") }
            decision.candidate = CandidateResult(modelVersion: version, label: try s(32), confidence: try d(33), outOfScope: try b(34),
                                                 route: route, reason: try s(36), candidateServed: try b(37), edgeMs: try d(38))
        }
        return decision
    }

    // MARK: Errors

    /// A PostgreSQL error in words: the server's message and SQLSTATE, or the network's
    /// reason. PSQLError's own description is deliberately generic.
    static func describe(_ error: any Error) -> String {
        if let e = error as? PSQLError {
            if let message = e.serverInfo?[.message] {
                let state = e.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
                return message + state
            }
            if let underlying = e.underlying { return "\(e.code): \(describe(underlying))" }
            return "\(e.code)"
        }
        if let e = error as? FleetError { return e.description }
        return "\(error)"
    }
}

/// Runs `body`, failing with a timeout after `seconds` (and running `onTimeout`, which
/// should make `body` fail promptly, e.g. by closing its connection). Returns at the deadline
/// even if `body` ignores cancellation: a task group would wait for it, and a connect or a
/// query to a database that stopped answering may never finish on its own.
func withDeadline<T: Sendable>(_ seconds: Double, onTimeout: @escaping @Sendable () async -> Void,
                               _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let settled = SettledFlag()
    return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        let work = Task {
            do {
                let value = try await body()
                if settled.claim() { continuation.resume(returning: value) }
            } catch {
                if settled.claim() { continuation.resume(throwing: error) }
            }
        }
        Task {
            try? await Task.sleep(nanoseconds: UInt64(max(0, seconds) * 1e9))
            guard settled.claim() else { return }
            continuation.resume(throwing: FleetError("no answer within \(fmtSeconds(seconds))"))
            work.cancel()
            await onTimeout()
        }
    }
}

/// Claimed once: whichever of the work and the deadline comes first resumes the caller.
final class SettledFlag: @unchecked Sendable {
    private let lock = StateLock()
    private var done = false
    func claim() -> Bool { lock.withLock { if done { return false }; done = true; return true } }
}

func fmtSeconds(_ s: Double) -> String { s == s.rounded() ? "\(Int(s)) s" : "\(s) s" }

/// Tier calls as the JSON array stored in the fleet database.
enum TierCallsJSON {
    static func encode(_ tiers: [TierCall]) -> String {
        JSONValue.array(tiers.map { t in
            .object([("tier", .string(t.tier)), ("model", .string(t.model)), ("statuses", .array(t.statuses.map { .int($0) })),
                     ("input_tokens", .int(t.inputTokens)), ("output_tokens", .int(t.outputTokens)),
                     ("cost_usd", .number(t.costUSD)), ("latency_ms", .number(t.latencyMs)), ("succeeded", .bool(t.succeeded)),
                     ("rejected_by_breaker", .bool(t.rejectedByBreaker)),
                     ("answer_confidence", t.answerConfidence.map { .number($0) } ?? .null),
                     ("error", t.error.map { .string($0) } ?? .null)])
        }).serialized
    }

    static func decode(_ text: String) throws -> [TierCall] {
        guard let items = (try? JSONValue.parse(text))?.arrayValue else { throw FleetError("fleet record: tiers is not a JSON array") }
        return try items.map { v in
            guard let tier = v["tier"]?.stringValue, let model = v["model"]?.stringValue,
                  let statuses = v["statuses"]?.arrayValue, let input = v["input_tokens"]?.intValue,
                  let output = v["output_tokens"]?.intValue, let cost = v["cost_usd"]?.doubleValue,
                  let latency = v["latency_ms"]?.doubleValue, let ok = v["succeeded"]?.boolValue,
                  let breaker = v["rejected_by_breaker"]?.boolValue else {
                throw FleetError("fleet record: a tier call lacks a field")
            }
            return TierCall(tier: tier, model: model, statuses: statuses.compactMap { $0.intValue }, inputTokens: input,
                            outputTokens: output, costUSD: cost, latencyMs: latency, succeeded: ok, rejectedByBreaker: breaker,
                            answerConfidence: v["answer_confidence"]?.doubleValue, error: v["error"]?.stringValue)
        }
    }
}
