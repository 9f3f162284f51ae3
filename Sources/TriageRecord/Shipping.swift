// The local side of shipping the record to the fleet's database.
//
// Every decision row has an id that grows with commit order (SQLite has one writer at a
// time), so "shipped" is one number: the highest row id the fleet database has confirmed
// (`meta.shipped_decision_id`). It moves only after the remote COMMIT was acknowledged, and
// the remote insert ignores (node, uid) pairs it already holds. So whatever fails in
// between — the connection, the database, this process — the next run sends the same rows
// again and the fleet database keeps each once.
//
// Bounded backlog: with `record.max_pending`, the unshipped decisions never exceed that
// many. Past it, the oldest unshipped ones are deleted and counted in a gap row (how many,
// their time span and cost), which is shipped and reported like a decision: a loss the
// operator sees, never a silent one. Rows the shipper is sending at that moment (the
// in-flight batch, recorded in meta) are not dropped, so a row is never both shipped and
// counted as lost.

import CSQLite
import TriageCascade
import TriageSystem

/// Decisions dropped unshipped, in one run of the backlog bound.
public struct RecordGap: Sendable, Equatable {
    public var uid: String
    public var node: String
    public var recordedAt: Double
    public var firstTimestamp: Double
    public var lastTimestamp: Double
    public var dropped: Int
    public var costUSD: Double
    public var reason: String
    public init(uid: String, node: String, recordedAt: Double, firstTimestamp: Double, lastTimestamp: Double,
                dropped: Int, costUSD: Double, reason: String) {
        self.uid = uid; self.node = node; self.recordedAt = recordedAt; self.firstTimestamp = firstTimestamp
        self.lastTimestamp = lastTimestamp; self.dropped = dropped; self.costUSD = costUSD; self.reason = reason
    }
}

/// A review label as shipped: the decision it belongs to, by its fleet key, and the revision
/// of the import that set it (the fleet keeps the highest: the last import wins there too).
public struct ShippedLabel: Sendable, Equatable {
    public var node: String
    public var uid: String
    public var label: String?
    public var correct: Bool?
    public var labelledAt: Double
    public var revision: Int
    public init(node: String, uid: String, label: String?, correct: Bool?, labelledAt: Double, revision: Int) {
        self.node = node; self.uid = uid; self.label = label; self.correct = correct; self.labelledAt = labelledAt
        self.revision = revision
    }
}

/// What the shipper sends next: decisions and gaps past the watermarks, oldest first, and the
/// review labels imported (or corrected) since the last confirmed one.
///
/// A decision's review queue entry and candidate result travel with it (they are written in
/// the decision's own transaction). `reviewBackfill` holds decisions the fleet already has
/// whose entries it may lack: those shipped by a triage before schema 5, which did not send
/// them; they go again, entries only.
public struct PendingBatch: Sendable {
    public var decisions: [Decision]
    public var reviewBackfill: [Decision]
    public var gaps: [RecordGap]
    public var labels: [ShippedLabel]
    /// The watermarks to store once the fleet database has confirmed this batch.
    public var lastDecisionID: Int
    public var lastGapID: Int
    public var lastReviewID: Int
    public var lastLabelRevision: Int
    /// True when there is nothing to send and no watermark to move.
    public var isEmpty: Bool
}

extension DecisionStore {
    static let shippedDecisionKey = "shipped_decision_id"
    static let shippedGapKey = "shipped_gap_id"
    /// The highest decision id whose review entry and candidate result the fleet has.
    static let shippedReviewKey = "shipped_review_id"
    /// The highest label revision the fleet has, and the last revision handed out.
    static let shippedLabelKey = "shipped_label_revision"
    static let labelRevisionKey = "label_revision"
    static let inFlightKey = "shipping_in_flight"
    /// An in-flight mark older than this is from a shipper that died: it no longer protects rows.
    static let inFlightLifetime = 600.0
    public static let backlogGapReason = "backlog_bound"

    static func metaInt(_ conn: Connection, _ key: String) throws -> Int {
        let st = try conn.prepare("SELECT value FROM meta WHERE key = ?1", for: "read \(key)")
        try st.bind(1, key)
        guard try st.step() else { return 0 }
        return Int(st.text(0)) ?? 0
    }

    static func setMeta(_ conn: Connection, _ key: String, _ value: String) throws {
        let st = try conn.prepare("INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                                  for: "write \(key)")
        try st.bind(1, key)
        try st.bind(2, value)
        try st.step()
    }

    /// The shipper's next batch: up to `limit` decisions and every pending gap. Marks the
    /// batch in flight so the backlog bound leaves its rows alone until it is confirmed.
    public func pendingBatch(limit: Int) throws -> PendingBatch {
        try withConnection { conn in
            try conn.transaction("read the rows to ship") { () -> PendingBatch in
                let shipped = try DecisionStore.metaInt(conn, DecisionStore.shippedDecisionKey)
                let rows = try DecisionStore.readRows(conn, since: nil, afterID: shipped, limit: max(1, limit))
                let shippedGap = try DecisionStore.metaInt(conn, DecisionStore.shippedGapKey)
                let gaps = try DecisionStore.readGapRows(conn, afterID: shippedGap)
                let last = rows.last?.id ?? shipped
                let lastGap = gaps.last?.id ?? shippedGap
                // Review entries of decisions shipped without them (before schema 5).
                let shippedReview = try DecisionStore.metaInt(conn, DecisionStore.shippedReviewKey)
                var backfill: [(id: Int, decision: Decision)] = []
                var lastReview = last
                if shippedReview < shipped {
                    backfill = try DecisionStore.readRows(conn, since: nil, afterID: shippedReview, limit: max(1, limit))
                    let reachedShipped = backfill.count < max(1, limit) || backfill.contains { $0.id > shipped }
                    backfill.removeAll { $0.id > shipped }
                    // Decisions past the watermark go with their entries in `decisions`.
                    lastReview = reachedShipped ? last : (backfill.last?.id ?? shipped)
                    backfill.removeAll { $0.decision.reviewReason == nil && $0.decision.candidate == nil }
                }
                let shippedLabel = try DecisionStore.metaInt(conn, DecisionStore.shippedLabelKey)
                let labels = try DecisionStore.readLabelRows(conn, afterRevision: shippedLabel, limit: max(1, limit), node: node)
                let lastLabel = labels.last?.revision ?? shippedLabel
                if !rows.isEmpty || !gaps.isEmpty {
                    try DecisionStore.setMeta(conn, DecisionStore.inFlightKey, "\(last) \(lastGap) \(Clock.unixTime())")
                }
                // Rows recorded before schema 3 have no node: they were recorded on this box.
                func withNode(_ r: (id: Int, decision: Decision)) -> Decision {
                    var d = r.decision
                    if d.node.isEmpty { d.node = node }
                    return d
                }
                let isEmpty = rows.isEmpty && gaps.isEmpty && labels.isEmpty && backfill.isEmpty && lastReview == shippedReview
                return PendingBatch(decisions: rows.map(withNode), reviewBackfill: backfill.map(withNode), gaps: gaps.map(\.gap),
                                    labels: labels, lastDecisionID: last, lastGapID: lastGap, lastReviewID: lastReview,
                                    lastLabelRevision: lastLabel, isEmpty: isEmpty)
            }
        }
    }

    /// Moves the watermarks after the fleet database confirmed a batch (never backwards: two
    /// shippers may confirm out of order) and clears the in-flight mark.
    public func markShipped(_ batch: PendingBatch) throws {
        try withConnection { conn in
            try conn.transaction("note the shipped rows") {
                let d = try DecisionStore.metaInt(conn, DecisionStore.shippedDecisionKey)
                if batch.lastDecisionID > d {
                    try DecisionStore.setMeta(conn, DecisionStore.shippedDecisionKey, "\(batch.lastDecisionID)")
                }
                let g = try DecisionStore.metaInt(conn, DecisionStore.shippedGapKey)
                if batch.lastGapID > g { try DecisionStore.setMeta(conn, DecisionStore.shippedGapKey, "\(batch.lastGapID)") }
                let r = try DecisionStore.metaInt(conn, DecisionStore.shippedReviewKey)
                if batch.lastReviewID > r { try DecisionStore.setMeta(conn, DecisionStore.shippedReviewKey, "\(batch.lastReviewID)") }
                let l = try DecisionStore.metaInt(conn, DecisionStore.shippedLabelKey)
                if batch.lastLabelRevision > l {
                    try DecisionStore.setMeta(conn, DecisionStore.shippedLabelKey, "\(batch.lastLabelRevision)")
                }
                let del = try conn.prepare("DELETE FROM meta WHERE key = ?1", for: "clear the in-flight mark")
                try del.bind(1, DecisionStore.inFlightKey)
                try del.step()
            }
        }
    }

    /// Review labels past the label watermark, oldest revision first, keyed by their
    /// decision's fleet key (an empty node, from before schema 3, is this box's).
    static func readLabelRows(_ conn: Connection, afterRevision: Int, limit: Int, node: String) throws -> [ShippedLabel] {
        let st = try conn.prepare("""
            SELECT d.node, d.uid, l.label, l.correct, l.labelled_at, l.revision
            FROM review_labels l JOIN decisions d ON d.id = l.decision_id
            WHERE l.revision > ?1 ORDER BY l.revision LIMIT ?2
            """, for: "read the labels to ship")
        try st.bind(1, afterRevision)
        try st.bind(2, limit)
        var out: [ShippedLabel] = []
        while try st.step() {
            out.append(ShippedLabel(node: st.text(0).isEmpty ? node : st.text(0), uid: st.text(1), label: st.optionalText(2),
                                    correct: st.isNull(3) ? nil : st.bool(3), labelledAt: st.double(4), revision: st.int(5)))
        }
        return out
    }

    /// Review labels not yet confirmed by the fleet database.
    public func pendingLabelCount() throws -> Int {
        try withConnection { conn in
            try conn.withRetry { () -> Int in
                let shipped = try DecisionStore.metaInt(conn, DecisionStore.shippedLabelKey)
                let st = try conn.prepare("SELECT count(*) FROM review_labels WHERE revision > ?1", for: "count pending labels")
                try st.bind(1, shipped)
                return try st.step() ? st.int(0) : 0
            }
        }
    }

    /// Decisions and gaps not yet confirmed by the fleet database.
    public func pendingCounts() throws -> (decisions: Int, gaps: Int) {
        try withConnection { conn in
            try conn.withRetry { () -> (Int, Int) in
                let shipped = try DecisionStore.metaInt(conn, DecisionStore.shippedDecisionKey)
                let st = try conn.prepare("SELECT count(*) FROM decisions WHERE id > ?1", for: "count pending decisions")
                try st.bind(1, shipped)
                let d = try st.step() ? st.int(0) : 0
                let shippedGap = try DecisionStore.metaInt(conn, DecisionStore.shippedGapKey)
                let g = try conn.prepare("SELECT count(*) FROM gaps WHERE id > ?1", for: "count pending gaps")
                try g.bind(1, shippedGap)
                return (d, try g.step() ? g.int(0) : 0)
            }
        }
    }

    /// Every gap recorded at or after `since` (by its last dropped decision; all when nil).
    public func gaps(since: Double? = nil) throws -> [RecordGap] {
        try withConnection { conn in
            try conn.withRetry { try DecisionStore.readGapRows(conn, afterID: 0).map(\.gap) }
        }.filter { since == nil || $0.lastTimestamp >= since! }
    }

    static func readGapRows(_ conn: Connection, afterID: Int) throws -> [(id: Int, gap: RecordGap)] {
        let st = try conn.prepare("""
            SELECT id, uid, node, recorded_at, first_timestamp, last_timestamp, dropped, cost_usd, reason
            FROM gaps WHERE id > ?1 ORDER BY id
            """, for: "read gaps")
        try st.bind(1, afterID)
        var out: [(Int, RecordGap)] = []
        while try st.step() {
            out.append((st.int(0), RecordGap(uid: st.text(1), node: st.text(2), recordedAt: st.double(3),
                                             firstTimestamp: st.double(4), lastTimestamp: st.double(5),
                                             dropped: st.int(6), costUSD: st.double(7), reason: st.text(8))))
        }
        return out
    }

    /// Called inside the insert's transaction: keeps the unshipped decisions at or below
    /// `maxPending` by dropping the oldest unprotected ones into a gap. Cheap when under the
    /// bound: row ids only grow, so `lastID − watermark` bounds the backlog from above and
    /// the exact count runs only when that bound is passed.
    static func enforceBacklogBound(_ conn: Connection, lastID: Int64, maxPending: Int, node: String) throws {
        let shipped = try metaInt(conn, shippedDecisionKey)
        guard Int(lastID) - shipped > maxPending else { return }
        let counter = try conn.prepare("SELECT count(*) FROM decisions WHERE id > ?1", for: "count pending decisions")
        try counter.bind(1, shipped)
        let pending = try counter.step() ? counter.int(0) : 0
        guard pending > maxPending else { return }
        // Rows (and a gap) of a live shipper's in-flight batch are left alone.
        var protected = shipped
        var protectedGap = try metaInt(conn, shippedGapKey)
        let flight = try conn.prepare("SELECT value FROM meta WHERE key = ?1", for: "read the in-flight mark")
        try flight.bind(1, inFlightKey)
        if try flight.step() {
            let parts = flight.text(0).split(separator: " ")
            if parts.count == 3, let id = Int(parts[0]), let gap = Int(parts[1]), let at = Double(parts[2]),
               Clock.unixTime() - at < inFlightLifetime {
                protected = max(protected, id)
                protectedGap = max(protectedGap, gap)
            }
        }
        let pick = try conn.prepare("""
            SELECT count(*), max(id), min(timestamp), max(timestamp), total(cost_usd) FROM
                (SELECT id, timestamp, cost_usd FROM decisions WHERE id > ?1 ORDER BY id LIMIT ?2)
            """, for: "pick decisions to drop")
        try pick.bind(1, protected)
        try pick.bind(2, pending - maxPending)
        guard try pick.step(), pick.int(0) > 0 else { return }
        let (count, cutoff, first, last, cost) = (pick.int(0), pick.int(1), pick.double(2), pick.double(3), pick.double(4))
        // What was stored beside the dropped decisions goes with them (their foreign keys
        // would refuse the delete otherwise).
        for table in ["review_labels", "review_queue", "candidate_results"] {
            let dep = try conn.prepare("DELETE FROM \(table) WHERE decision_id > ?1 AND decision_id <= ?2",
                                       for: "drop what was stored beside unshipped decisions")
            try dep.bind(1, protected)
            try dep.bind(2, cutoff)
            try dep.step()
        }
        let del = try conn.prepare("DELETE FROM decisions WHERE id > ?1 AND id <= ?2", for: "drop unshipped decisions")
        try del.bind(1, protected)
        try del.bind(2, cutoff)
        try del.step()
        // One growing gap while it is unshipped, so a long outage is one row, not thousands.
        let open = try conn.prepare("SELECT id FROM gaps WHERE id > ?1 AND node = ?2 AND reason = ?3 ORDER BY id DESC LIMIT 1",
                                    for: "find the open gap")
        try open.bind(1, protectedGap)
        try open.bind(2, node)
        try open.bind(3, backlogGapReason)
        if try open.step() {
            let id = open.int(0)
            let up = try conn.prepare("""
                UPDATE gaps SET dropped = dropped + ?2, cost_usd = cost_usd + ?3,
                    first_timestamp = min(first_timestamp, ?4), last_timestamp = max(last_timestamp, ?5), recorded_at = ?6
                WHERE id = ?1
                """, for: "extend the gap")
            try up.bind(1, id); try up.bind(2, count); try up.bind(3, cost); try up.bind(4, first); try up.bind(5, last)
            try up.bind(6, Clock.unixTime())
            try up.step()
        } else {
            let ins = try conn.prepare("""
                INSERT INTO gaps (uid, node, recorded_at, first_timestamp, last_timestamp, dropped, cost_usd, reason)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                """, for: "record a gap")
            try ins.bind(1, newUID()); try ins.bind(2, node); try ins.bind(3, Clock.unixTime()); try ins.bind(4, first)
            try ins.bind(5, last); try ins.bind(6, count); try ins.bind(7, cost); try ins.bind(8, backlogGapReason)
            try ins.step()
        }
        // The dropped rows are accounted for by the gap: the watermark may pass them when
        // nothing unshipped lies below them.
        if protected == shipped {
            try setMeta(conn, shippedDecisionKey, "\(cutoff)")
            if try metaInt(conn, shippedReviewKey) == shipped { try setMeta(conn, shippedReviewKey, "\(cutoff)") }
        }
    }
}
