// Review labels, review queue entries and candidate results in the fleet database, against a
// real PostgreSQL server (scripts/with-postgres.sh starts one for `make test`): labels imported
// before and after a sync, corrected labels (the last import wins there too), two nodes, the
// entries of decisions shipped by a triage that did not send them, and `triage report` giving
// the same measured accuracy, budgets and candidate comparison on the SQLite file and on
// postgres://.

import Foundation
import Glibc
import PostgresNIO
import Testing
import TriageCascade
@testable import TriageFleet
import TriageJSON
@testable import TriageRecord

/// A decision queued for review (by its route and index) with a candidate result on most of
/// them: edge answers in the review band, sampled plain edge answers and sampled small-tier
/// answers, and doubtful small-tier answers that the large tier replaced.
func reviewedDecision(_ i: Int, node: String = "", t0: Double = 1_760_000_000) -> Decision {
    var d = sampleDecision(i, node: node, t0: t0)
    d.label = ["card_arrival", "lost_or_stolen_card", "top_up_failed"][i % 3]
    switch d.route {
    case .edge:
        d.reviewReason = d.review ? .reviewBand : (i % 2 == 0 ? .sample : nil)
        if i % 10 == 1 { d.reason = "cloud_unavailable"; d.reviewReason = .fallback }
    case .small: d.reviewReason = i % 4 == 2 ? .sample : nil
    case .large: d.reviewReason = .doubtfulAnswer
    case .none: d.reviewReason = nil
    }
    d.reviewText = d.reviewReason == nil ? nil : "review text \(i) — ünïcode"
    if i % 7 != 3 {
        // On the canary share the candidate answered and the record keeps the primary's view.
        let served = i % 2 == 1
        if served { d.modelVersion = "cand@2" }
        let agrees = i % 4 != 0
        d.candidate = CandidateResult(modelVersion: served ? "m@1" : "cand@2", label: agrees ? d.label : "card_arrival",
                                      confidence: 0.6 + Double(i % 30) / 100, outOfScope: i % 9 == 0,
                                      route: i % 3 == 0 ? .small : .edge, reason: "optimal_edge",
                                      candidateServed: served, edgeMs: 1.5 + Double(i % 5))
    }
    return d
}

/// A reviewer's label for a queued decision: mostly the edge's own label, sometimes another
/// intent or out of scope; a verdict for cloud answers. `round` changes some of them, as a
/// correction would.
func reviewerLabel(_ item: QueuedDecision, round: Int = 0) -> ReviewLabel {
    let k = item.id + round
    if item.route == .small || item.route == .large {
        return ReviewLabel(id: item.id, label: k % 3 == 0 ? "oos" : item.label, correct: k % 5 != 0)
    }
    return ReviewLabel(id: item.id, label: k % 4 == 0 ? "top_up_failed" : k % 6 == 0 ? "oos" : item.label, correct: nil)
}

// Part of FleetServerTests, which is serialized: its outage test stops the server, which must
// not happen under these tests' feet.
extension FleetServerTests {

    /// The review figures computed from what two boxes hold locally, and from the fleet database.
    static func localFigures(_ stores: [DecisionStore]) throws -> (decisions: [Decision], labels: [DecisionKey: LabelVerdict]) {
        var decisions: [Decision] = [], labels: [DecisionKey: LabelVerdict] = [:]
        for s in stores {
            decisions += try s.decisions()
            labels.merge(try s.labels()) { _, b in b }
        }
        decisions.sort { ($0.timestamp, $0.node, $0.uid) < ($1.timestamp, $1.node, $1.uid) }
        return (decisions, labels)
    }

    @Test(.enabled(if: TestPostgres.available)) func labelsBeforeAndAfterSyncCorrectionsAndTwoNodesReachTheFleet() async throws {
        let scratch = try Scratch()
        defer { scratch.cleanup() }
        let db = try await TestPostgres.freshDatabase()
        let url = try FleetURL(db.url, environment: { _ in TestPostgres.password })
        let a = try DecisionStore(path: scratch.file("a.sqlite"), node: "box-a")
        let b = try DecisionStore(path: scratch.file("b.sqlite"), node: "box-b")
        for i in 0..<90 {
            try a.insert(reviewedDecision(i, t0: 1_760_000_000))
            try b.insert(reviewedDecision(i + 1000, t0: 1_760_000_011))
        }
        let queueA = try a.reviewItems(), queueB = try b.reviewItems()
        #expect(queueA.count > 30 && queueB.count > 30)
        let candidatesA = try a.decisions().filter { $0.candidate != nil }.count
        let candidatesB = try b.decisions().filter { $0.candidate != nil }.count

        // Box A labels half its queue before the first sync; box B nothing yet.
        let firstHalf = Array(queueA.prefix(queueA.count / 2))
        try a.importLabels(firstHalf.map { reviewerLabel($0) })
        let ra = Replicator(store: a, url: url), rb = Replicator(store: b, url: url)
        let shippedA = try await ra.shipPending(), shippedB = try await rb.shipPending()
        #expect(shippedA.newDecisions == 90 && shippedA.reviewEntries == queueA.count && shippedA.candidateResults == candidatesA)
        #expect(shippedA.labels == firstHalf.count)
        #expect(shippedB.newDecisions == 90 && shippedB.reviewEntries == queueB.count && shippedB.candidateResults == candidatesB)
        #expect(shippedB.labels == 0)
        #expect(try a.pendingLabelCount() == 0)

        // After the sync: A labels the rest and corrects three of its earlier labels (a
        // reviewer changing their mind), B labels everything; both ship again.
        let corrected = firstHalf.prefix(3).map { item -> ReviewLabel in
            var l = reviewerLabel(item)
            l.label = l.label == "lost_or_stolen_card" ? "card_arrival" : "lost_or_stolen_card"
            return l
        }
        try a.importLabels(queueA.dropFirst(queueA.count / 2).map { reviewerLabel($0) })
        try a.importLabels(corrected)
        try b.importLabels(queueB.map { reviewerLabel($0, round: 1) })
        #expect(try a.pendingLabelCount() == queueA.count - firstHalf.count + 3)
        let againA = try await ra.shipPending(), againB = try await rb.shipPending()
        #expect(againA.newDecisions == 0 && againA.reviewEntries == 0 && againA.candidateResults == 0)
        #expect(againA.labels == queueA.count - firstHalf.count + 3, "the rest and the three corrections")
        #expect(againB.labels == queueB.count)
        #expect(try await ra.shipPending() == Replicator.Shipment(), "nothing left to send")

        // The fleet holds exactly what the boxes hold: every decision with its queue entry and
        // candidate result, and every box's latest labels (the corrections included).
        let fleet = try await FleetDatabase.connect(url)
        let loaded = try await fleet.load(since: nil)
        let local = try FleetServerTests.localFigures([a, b])
        #expect(loaded.decisions.count == 180)
        let byKey = Dictionary(uniqueKeysWithValues: loaded.decisions.map { (DecisionKey($0), $0) })
        for d in local.decisions { #expect(byKey[DecisionKey(d)] == d, "decision \(d.node)/\(d.uid) changed on the way") }
        #expect(loaded.labels == local.labels)
        // Queue ids are local row ids; the timestamps of these decisions are unique.
        let uidAt = Dictionary(uniqueKeysWithValues: try a.decisions().map { ($0.timestamp, $0.uid) })
        for l in corrected {
            let item = try #require(queueA.first { $0.id == l.id })
            let key = DecisionKey(node: "box-a", uid: try #require(uidAt[item.timestamp]))
            #expect(loaded.labels[key]?.label == l.label, "the correction won in PostgreSQL")
        }

        // One computation: the fleet's figures are those of the boxes' rows put together.
        let fromFleet = ReviewFigures.compute(decisions: loaded.decisions, labels: loaded.labels)
        let fromBoxes = ReviewFigures.compute(decisions: local.decisions, labels: local.labels)
        #expect(fromFleet.0 == fromBoxes.0)
        #expect(fromFleet.1 == fromBoxes.1)
        #expect(fromFleet.0.edge.accuracy != nil && fromFleet.0.smallSuccess != nil && fromFleet.1 != nil)

        // A shipper delivering an older revision late (two shippers on one record) does not
        // undo the correction: the higher revision stays.
        let stale = ShippedLabel(node: "box-a", uid: try #require(loaded.labels.keys.first { $0.node == "box-a" }).uid,
                                 label: "stale", correct: nil, labelledAt: 0, revision: 1)
        let staleResult = try await fleet.insert(decisions: [], gaps: [], reviewBackfill: [], labels: [stale])
        #expect(staleResult.labels == 0)
        let after = try await fleet.load(since: nil)
        #expect(after.labels == local.labels)
        await fleet.close()
        await ra.close()
        await rb.close()
    }

    /// Decisions shipped by a triage that sent no review entries (fleet schema 1): the next
    /// sync sends their queue entries and candidate results, and nothing twice.
    @Test(.enabled(if: TestPostgres.available)) func entriesOfDecisionsShippedWithoutThemAreBackfilled() async throws {
        let scratch = try Scratch()
        defer { scratch.cleanup() }
        let db = try await TestPostgres.freshDatabase()
        let url = try FleetURL(db.url, environment: { _ in TestPostgres.password })
        let store = try DecisionStore(path: scratch.file("a.sqlite"), node: "box-a")
        for i in 0..<70 { try store.insert(reviewedDecision(i)) }
        // What the old shipper did: decisions only, and the decision watermark alone moved.
        let fleet = try await FleetDatabase.connect(url)
        let old = try store.pendingBatch(limit: 50)
        let bare = old.decisions.map { d -> Decision in
            var b = d
            b.reviewReason = nil; b.reviewText = nil; b.candidate = nil
            return b
        }
        #expect(try await fleet.insert(decisions: bare, gaps: [], reviewBackfill: [], labels: []).newReviewEntries == 0)
        try store.withConnection { conn in try DecisionStore.setMeta(conn, DecisionStore.shippedDecisionKey, "\(old.lastDecisionID)") }
        for i in 70..<80 { try store.insert(reviewedDecision(i)) }

        var options = Replicator.Options()
        options.batchSize = 20
        let replicator = Replicator(store: store, url: url, options: options)
        let shipped = try await replicator.shipPending()
        let local = try store.decisions()
        #expect(shipped.newDecisions == 30)
        #expect(shipped.reviewEntries == local.filter { $0.reviewReason != nil }.count)
        #expect(shipped.candidateResults == local.filter { $0.candidate != nil }.count)
        let loaded = try await fleet.load(since: nil)
        let byUID = Dictionary(uniqueKeysWithValues: loaded.decisions.map { ($0.uid, $0) })
        for d in local { #expect(byUID[d.uid] == d) }
        #expect(try await replicator.shipPending() == Replicator.Shipment())
        await fleet.close()
        await replicator.close()
    }

    /// The real binary: `triage review import` and `triage sync` into PostgreSQL, then
    /// `triage report` on the SQLite file and on postgres:// print the same measured accuracy,
    /// error-budget spend, small-tier success and candidate comparison — also after a label
    /// was corrected and shipped again.
    @Test(.enabled(if: TestPostgres.available)) func reportOnTheRecordAndOnTheFleetShowTheSameFigures() async throws {
        let scratch = try Scratch()
        defer { scratch.cleanup() }
        let db = try await TestPostgres.freshDatabase()
        let env = ["TRIAGE_PG_PASSWORD": TestPostgres.password, "XDG_CACHE_HOME": scratch.file("cache")]
        let record = scratch.file("box.sqlite")
        do {
            let store = try DecisionStore(path: record, node: "box-one")
            for i in 0..<150 { try store.insert(reviewedDecision(i)) }
        }
        let config = try scratch.config(node: "box-one", postgres: nil)

        func importLabels(round: Int, only: Int? = nil) async throws {
            let store = try DecisionStore(path: record, node: "box-one")
            let items = try store.reviewItems()
            let lines = items.prefix(only ?? items.count).map { item -> String in
                let l = reviewerLabel(item, round: round)
                var pairs: [(String, JSONValue)] = [("id", .int(l.id))]
                if let label = l.label { pairs.append(("label", .string(label))) }
                if let c = l.correct { pairs.append(("correct", .bool(c))) }
                return JSONValue.object(pairs).serialized
            }
            let file = scratch.file("labels-\(round).jsonl")
            try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
            let imported = try await triage(["review", "import", "--db", record, file], environment: env)
            try #require(imported.status == 0, "\(imported.stderr)")
        }
        func sync() async throws -> JSONValue {
            let s = try await triage(["sync", "--json", "--to", db.url, "--db", record, "--config", config], environment: env)
            try #require(s.status == 0, "\(s.stdout) \(s.stderr)")
            return try JSONValue.parse(s.stdout)
        }
        func reports() async throws -> (local: JSONValue, fleet: JSONValue, localText: String, fleetText: String) {
            var out: [String] = []
            for source in [record, db.url] {
                for format in [["--json"], []] {
                    let r = try await triage(["report", "--db", source, "--config", config] + format, environment: env)
                    try #require(r.status == 0, "\(r.stderr)")
                    out.append(r.stdout)
                }
            }
            return (try JSONValue.parse(out[0]), try JSONValue.parse(out[2]), out[1], out[3])
        }
        /// The report's review sections as text: from "Measured accuracy" to "Shadow mode".
        func reviewSections(_ text: String) -> String {
            guard let start = text.range(of: "Measured accuracy"), let end = text.range(of: "Shadow mode") else { return "" }
            return String(text[start.lowerBound..<end.lowerBound])
        }
        func expectSame(_ r: (local: JSONValue, fleet: JSONValue, localText: String, fleetText: String)) {
            for key in ["measured_accuracy", "candidate", "health_score", "status", "alerts"] {
                #expect(r.local[key]?.serialized == r.fleet[key]?.serialized, "\(key) differs between the record and the fleet")
            }
            #expect(r.local["measured_accuracy"]?["edge"]?["accuracy"]?.doubleValue != nil)
            #expect(r.local["measured_accuracy"]?["small"]?["success_rate"]?.doubleValue != nil)
            #expect(r.local["measured_accuracy"]?["edge"]?["error_budget"]?["spent"]?.doubleValue != nil)
            #expect(r.local["candidate"]?["recommendation"]?.stringValue != nil)
            #expect(!reviewSections(r.localText).isEmpty && reviewSections(r.localText) == reviewSections(r.fleetText))
        }

        // Labels before the first sync (part of the queue), the rest after it.
        try await importLabels(round: 0, only: 40)
        let first = try await sync()
        #expect(first["new"]?.intValue == 150 && first["labels"]?.intValue == 40)
        expectSame(try await reports())
        try await importLabels(round: 0)
        let second = try await sync()
        #expect(second["new"]?.intValue == 0 && (second["labels"]?.intValue ?? 0) > 40 && second["pending_labels"]?.intValue == 0)
        let before = try await reports()
        expectSame(before)
        // A corrected round of labels (every label imported again, a third of them changed):
        // the figures move, on the box and in the fleet alike.
        try await importLabels(round: 1)
        let third = try await sync()
        #expect(third["labels"]?.intValue == second["labels"]?.intValue, "every label imported again goes again")
        let after = try await reports()
        expectSame(after)
        #expect(before.local["measured_accuracy"]?.serialized != after.local["measured_accuracy"]?.serialized,
                "the correction changed the measured accuracy")
    }
}
