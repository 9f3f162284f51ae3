import TriageCascade
import TriageJSON
import TriageSystem

// The review queue: decisions a human should look at (`Decision.reviewReason`), kept in a
// table beside `decisions` with the query text the reviewer needs, and the labels that
// come back. The labels measure what the record alone cannot: how often the edge (and the
// small tier) was right.

extension Schema {
    static let v4Review = [
        """
        CREATE TABLE review_queue (
            decision_id INTEGER PRIMARY KEY REFERENCES decisions(id),
            reason      TEXT NOT NULL,
            query_text  TEXT
        )
        """,
        """
        CREATE TABLE review_labels (
            decision_id INTEGER PRIMARY KEY REFERENCES decisions(id),
            label       TEXT,
            correct     INTEGER,
            labelled_at REAL NOT NULL
        )
        """,
        """
        CREATE TABLE candidate_results (
            decision_id      INTEGER PRIMARY KEY REFERENCES decisions(id),
            model_version    TEXT NOT NULL,
            label            TEXT NOT NULL,
            confidence       REAL NOT NULL,
            out_of_scope     INTEGER NOT NULL,
            route            TEXT NOT NULL,
            reason           TEXT NOT NULL,
            candidate_served INTEGER NOT NULL,
            edge_ms          REAL NOT NULL
        )
        """,
    ]
}

extension Schema {
    /// Every import of a label takes the next revision (a counter in meta that never goes
    /// back), so the shipper's watermark over revisions finds labels that arrived, or were
    /// corrected, after their decision was shipped. Labels imported before version 5 get
    /// revisions 1…n here and go on the next sync.
    static let v5LabelRevisions = [
        "ALTER TABLE review_labels ADD COLUMN revision INTEGER NOT NULL DEFAULT 0",
        "UPDATE review_labels SET revision = (SELECT count(*) FROM review_labels r WHERE r.rowid <= review_labels.rowid)",
        "CREATE INDEX review_labels_revision ON review_labels(revision)",
        """
        INSERT INTO meta (key, value) SELECT 'label_revision', CAST(count(*) AS TEXT) FROM review_labels WHERE true
            ON CONFLICT(key) DO UPDATE SET value = excluded.value
        """,
    ]
}

/// One decision in the review queue, with its label once it has one.
public struct QueuedDecision: Sendable, Equatable {
    public var id: Int
    public var timestamp: Double
    public var reviewReason: ReviewReason
    /// The text kept for the reviewer (nil with review.keep_text off and no --record-text).
    public var query: String?
    public var label: String
    public var confidence: Double
    public var outOfScope: Bool
    public var route: Route
    public var reason: String
    public var answer: String
    public var modelVersion: String
    public var complexity: Double
    /// The reviewer's intent label, or their verdict on a cloud answer.
    public var goldLabel: String?
    public var correct: Bool?

    /// Whether the answer given was right: the verdict when there is one, else whether the
    /// edge answered the gold intent (an edge answer is always an in-scope intent, so any
    /// out-of-scope gold label makes it wrong).
    public var answerWasRight: Bool? {
        if let correct { return correct }
        guard let goldLabel, route == .edge else { return nil }
        return goldLabel == label
    }

    /// Unix seconds as "YYYY-MM-DD HH:MM:SSZ" (UTC).
    public static func utc(_ t: Double) -> String { formatUTC(t) }

    public var json: JSONValue {
        .object([
            ("id", .int(id)), ("time", .string(formatUTC(timestamp))), ("review_reason", .string(reviewReason.rawValue)),
            ("query", query.map { .string($0) } ?? .null), ("edge_label", .string(label)), ("confidence", .number(confidence)),
            ("out_of_scope", .bool(outOfScope)), ("route", .string(route.rawValue)), ("reason", .string(reason)),
            ("answer", .string(answer)),
        ])
    }
}

/// A decision's key across the fleet: the box that recorded it and its random id.
public struct DecisionKey: Hashable, Sendable {
    public var node: String
    public var uid: String
    public init(node: String, uid: String) { self.node = node; self.uid = uid }
    public init(_ d: Decision) { self.init(node: d.node, uid: d.uid) }
}

/// What a reviewer said about one decision: the intent (or "oos"), or a verdict on a cloud answer.
public struct LabelVerdict: Sendable, Equatable {
    public var label: String?
    public var correct: Bool?
    public init(label: String?, correct: Bool?) { self.label = label; self.correct = correct }
}

/// The review figures of a report, computed the same way whichever database the rows came from.
public enum ReviewFigures {
    public static func compute(decisions: [Decision], labels: [DecisionKey: LabelVerdict]) -> (MeasuredAccuracy, CandidateComparison?) {
        (MeasuredAccuracy(decisions: decisions, labels: labels), CandidateComparison(decisions: decisions, labels: labels))
    }
}

/// A label coming back from review: an intent label, or a verdict on the answer.
public struct ReviewLabel: Sendable, Equatable {
    public var id: Int
    public var label: String?
    public var correct: Bool?
    public init(id: Int, label: String?, correct: Bool?) { self.id = id; self.label = label; self.correct = correct }

    /// One line of an import file: `{"id", "label"}` or `{"id", "correct": bool}`.
    public static func parse(_ line: String) throws -> ReviewLabel {
        let v = try JSONValue.parse(line)
        guard let id = v["id"]?.intValue else { throw RecordError(path: "", operation: "read a label", code: 0, message: "needs an integer \"id\"") }
        let label = v["label"]?.stringValue
        let correct = v["correct"]?.boolValue
        guard label != nil || correct != nil else {
            throw RecordError(path: "", operation: "read a label", code: 0, message: "id \(id) needs \"label\" (a string) or \"correct\" (true or false)")
        }
        if let label, label.isEmpty { throw RecordError(path: "", operation: "read a label", code: 0, message: "id \(id): empty label") }
        return ReviewLabel(id: id, label: label, correct: correct)
    }
}

extension DecisionStore {
    static let insertReviewSQL = "INSERT INTO review_queue (decision_id, reason, query_text) VALUES (?1, ?2, ?3)"

    /// The candidate model's view and the review queue entry of a decision, inside
    /// `insert`'s transaction.
    static func queueForReview(_ conn: Connection, id: Int64, _ d: Decision) throws {
        if let c = d.candidate {
            let st = try conn.prepare("""
                INSERT INTO candidate_results (decision_id, model_version, label, confidence, out_of_scope, route, reason,
                                               candidate_served, edge_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                """, for: "record the candidate model's result")
            try st.bind(1, Int(id))
            try st.bind(2, c.modelVersion)
            try st.bind(3, c.label)
            try st.bind(4, c.confidence)
            try st.bind(5, c.outOfScope)
            try st.bind(6, c.route.rawValue)
            try st.bind(7, c.reason)
            try st.bind(8, c.candidateServed)
            try st.bind(9, c.edgeMs)
            _ = try st.step()
        }
        guard let reason = d.reviewReason else { return }
        let st = try conn.prepare(insertReviewSQL, for: "queue a decision for review")
        try st.bind(1, Int(id))
        try st.bind(2, reason.rawValue)
        try st.bind(3, d.reviewText)
        _ = try st.step()
    }

    /// The queue since `since` (all when nil), oldest first; `unlabelledOnly` leaves out what
    /// has a label already.
    public func reviewItems(since: Double? = nil, unlabelledOnly: Bool = false) throws -> [QueuedDecision] {
        try withConnection { conn in
            try conn.withRetry { () -> [QueuedDecision] in
                var sql = """
                    SELECT d.id, d.timestamp, q.reason, coalesce(q.query_text, d.query_text), d.label, d.confidence,
                           d.out_of_scope, d.route, d.reason, d.answer, l.label, l.correct, d.model_version, d.complexity
                    FROM review_queue q JOIN decisions d ON d.id = q.decision_id
                    LEFT JOIN review_labels l ON l.decision_id = q.decision_id
                    WHERE 1 = 1
                    """
                if since != nil { sql += " AND d.timestamp >= ?1" }
                if unlabelledOnly { sql += " AND l.decision_id IS NULL" }
                sql += " ORDER BY d.timestamp, d.id"
                let st = try conn.prepare(sql, for: "read the review queue")
                if let since { try st.bind(1, since) }
                var out: [QueuedDecision] = []
                while try st.step() {
                    guard let reason = ReviewReason(rawValue: st.text(2)), let route = Route(rawValue: st.text(7)) else { continue }
                    out.append(QueuedDecision(
                        id: st.int(0), timestamp: st.double(1), reviewReason: reason, query: st.optionalText(3),
                        label: st.text(4), confidence: st.double(5), outOfScope: st.bool(6), route: route,
                        reason: st.text(8), answer: st.text(9), modelVersion: st.text(12), complexity: st.double(13),
                        goldLabel: st.optionalText(10), correct: st.isNull(11) ? nil : st.bool(11)))
                }
                return out
            }
        }
    }

    /// Stores labels, all or none: every id must be a queued decision. A second label for
    /// the same decision replaces the first. Returns how many were stored.
    @discardableResult
    public func importLabels(_ labels: [ReviewLabel], at time: Double = Clock.unixTime()) throws -> Int {
        try withConnection { conn in
            try conn.transaction("import review labels") { () -> Int in
                let known = try conn.prepare("SELECT 1 FROM review_queue WHERE decision_id = ?1", for: "check a review id")
                var unknown: [Int] = []
                for l in labels {
                    known.reset()
                    try known.bind(1, l.id)
                    if try !known.step() { unknown.append(l.id) }
                }
                guard unknown.isEmpty else {
                    throw RecordError(path: path, operation: "import review labels", code: 0,
                                      message: "not in the review queue: id \(unknown.prefix(10).map(String.init).joined(separator: ", "))"
                                          + (unknown.count > 10 ? " and \(unknown.count - 10) more" : "") + "; nothing was imported")
                }
                let st = try conn.prepare("""
                    INSERT OR REPLACE INTO review_labels (decision_id, label, correct, labelled_at, revision) VALUES (?1, ?2, ?3, ?4, ?5)
                    """, for: "store a review label")
                // The last import wins, here and (through the revision) in the fleet database.
                var revision = try DecisionStore.metaInt(conn, DecisionStore.labelRevisionKey)
                for l in labels {
                    revision += 1
                    st.reset()
                    try st.bind(1, l.id)
                    try st.bind(2, l.label)
                    if let c = l.correct { try st.bind(3, c) } else { try st.bindNull(3) }
                    try st.bind(4, time)
                    try st.bind(5, revision)
                    _ = try st.step()
                }
                try DecisionStore.setMeta(conn, DecisionStore.labelRevisionKey, "\(revision)")
                return labels.count
            }
        }
    }

    /// The labels of the decisions since `since` (all when nil), by fleet key as
    /// `decisions(since:)` reads it.
    public func labels(since: Double? = nil) throws -> [DecisionKey: LabelVerdict] {
        try withConnection { conn in
            try conn.withRetry { () -> [DecisionKey: LabelVerdict] in
                let st = try conn.prepare("""
                    SELECT d.node, d.uid, l.label, l.correct FROM review_labels l JOIN decisions d ON d.id = l.decision_id
                    """ + (since == nil ? "" : " WHERE d.timestamp >= ?1"), for: "read review labels")
                if let since { try st.bind(1, since) }
                var out: [DecisionKey: LabelVerdict] = [:]
                while try st.step() {
                    out[DecisionKey(node: st.text(0), uid: st.text(1))] = LabelVerdict(label: st.optionalText(2),
                                                                                     correct: st.isNull(3) ? nil : st.bool(3))
                }
                return out
            }
        }
    }

    /// Edge answers since `since`, counted by review stratum: answered in the review band,
    /// as a fallback, and the plain rest (of which the queue holds a random sample).
    public func edgeAnswerCounts(since: Double? = nil) throws -> [ReviewReason: Int] {
        try withConnection { conn in
            try conn.withRetry { () -> [ReviewReason: Int] in
                let sql = """
                    SELECT CASE WHEN reason = 'cloud_unavailable' THEN 'fallback'
                                WHEN review = 1 THEN 'review_band' ELSE 'sample' END, count(*)
                    FROM decisions WHERE route = 'edge'
                    """ + (since == nil ? "" : " AND timestamp >= ?1") + " GROUP BY 1"
                let st = try conn.prepare(sql, for: "count edge answers")
                if let since { try st.bind(1, since) }
                var out: [ReviewReason: Int] = [:]
                while try st.step() { if let r = ReviewReason(rawValue: st.text(0)) { out[r] = st.int(1) } }
                return out
            }
        }
    }
}

/// What the labels say about the edge and the small tier over a window.
public struct MeasuredAccuracy: Sendable, Equatable {
    public var edge: EdgeAccuracyEstimate
    /// Labelled edge answers per edge label: (labelled, right).
    public var perIntent: [(label: String, labelled: Int, correct: Int)]
    /// Sampled small-tier answers with a verdict: (labelled, right).
    public var smallLabelled: Int
    public var smallCorrect: Int
    public var smallSuccess: Double? { smallLabelled > 0 ? Double(smallCorrect) / Double(smallLabelled) : nil }

    public static func == (a: MeasuredAccuracy, b: MeasuredAccuracy) -> Bool {
        a.edge == b.edge && a.smallLabelled == b.smallLabelled && a.smallCorrect == b.smallCorrect
            && a.perIntent.map { "\($0.label):\($0.labelled):\($0.correct)" } == b.perIntent.map { "\($0.label):\($0.labelled):\($0.correct)" }
    }

    /// From the decisions of a window and the labels of those in the review queue: what both
    /// `report` on a SQLite record and `report --db postgres://…` compute, from rows loaded
    /// from either. Edge answers are counted by stratum (a fallback, the review band, or the
    /// plain rest, of which the queue holds a random sample).
    public init(decisions: [Decision], labels: [DecisionKey: LabelVerdict]) {
        var edgeAnswers: [ReviewReason: Int] = [:]
        var items: [QueuedDecision] = []
        for d in decisions {
            if d.route == .edge {
                edgeAnswers[d.reason == "cloud_unavailable" ? .fallback : d.review ? .reviewBand : .sample, default: 0] += 1
            }
            guard let reviewReason = d.reviewReason, let verdict = labels[DecisionKey(d)] else { continue }
            items.append(QueuedDecision(id: 0, timestamp: d.timestamp, reviewReason: reviewReason, query: nil, label: d.label,
                                        confidence: d.confidence, outOfScope: d.outOfScope, route: d.route, reason: d.reason,
                                        answer: d.answer, modelVersion: d.modelVersion, complexity: d.complexity.total,
                                        goldLabel: verdict.label, correct: verdict.correct))
        }
        self.init(items: items, edgeAnswers: edgeAnswers)
    }

    /// From the queue's labelled items and the count of edge answers of each kind.
    public init(items: [QueuedDecision], edgeAnswers: [ReviewReason: Int]) {
        var strata: [ReviewReason: (labelled: Int, correct: Int)] = [:]
        var intents: [String: (labelled: Int, correct: Int)] = [:]
        var small = (labelled: 0, correct: 0)
        for item in items {
            guard let right = item.answerWasRight else { continue }
            if item.route == .edge {
                let stratum: ReviewReason = item.reason == "cloud_unavailable" ? .fallback
                    : item.reviewReason == .reviewBand ? .reviewBand : .sample
                // Only the random sample stands for the plain edge answers.
                if stratum == .sample && item.reviewReason != .sample { continue }
                strata[stratum, default: (0, 0)].labelled += 1
                strata[stratum, default: (0, 0)].correct += right ? 1 : 0
                intents[item.label, default: (0, 0)].labelled += 1
                intents[item.label, default: (0, 0)].correct += right ? 1 : 0
            } else if item.route == .small && item.reviewReason == .sample {
                small.labelled += 1
                small.correct += right ? 1 : 0
            }
        }
        edge = EdgeAccuracyEstimate(strata: [ReviewReason.sample, .reviewBand, .fallback].map { r in
            EdgeAccuracyEstimate.Stratum(name: r == .sample ? "plain (sampled)" : r.rawValue.replacingUnderscores(),
                                         answers: edgeAnswers[r] ?? 0, labelled: strata[r]?.labelled ?? 0,
                                         correct: strata[r]?.correct ?? 0)
        })
        perIntent = intents.map { (label: $0.key, labelled: $0.value.labelled, correct: $0.value.correct) }
            .sorted { $0.labelled != $1.labelled ? $0.labelled > $1.labelled : $0.label < $1.label }
        smallLabelled = small.labelled
        smallCorrect = small.correct
    }
}
