import Foundation
import Testing
import TriageCascade
@testable import TriageRecord

/// The local side of shipping review labels, queue entries and candidate results: what the
/// shipper's batches hold, the label watermark, and the one computation of the review figures.
@Suite struct ReviewShippingTests {
    /// `n` edge decisions, every third sampled into the queue, every other one with a candidate.
    func fill(_ store: DecisionStore, _ n: Int) throws -> [Int] {
        var queued: [Int] = []
        for i in 0..<n {
            var d = makeDecision(timestamp: 1_700_000_000 + Double(i), label: i % 2 == 0 ? "card_arrival" : "order_status")
            if i % 3 == 0 { d.reviewReason = .sample; d.reviewText = "text \(i)" }
            if i % 2 == 0 {
                d.candidate = CandidateResult(modelVersion: "cand@1", label: "order_status", confidence: 0.9, outOfScope: false,
                                              route: .edge, reason: "optimal_edge", candidateServed: i % 4 == 0, edgeMs: 3)
            }
            let id = Int(try store.insert(d))
            if i % 3 == 0 { queued.append(id) }
        }
        return queued
    }

    @Test func decisionsReadBackWithTheirQueueEntryAndCandidateResult() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let store = try DecisionStore(path: dir.file("r.sqlite"), node: "n1")
        _ = try fill(store, 12)
        let rows = try store.decisions()
        #expect(rows.map { $0.reviewReason != nil } == (0..<12).map { $0 % 3 == 0 })
        #expect(rows.map { $0.reviewText } == (0..<12).map { $0 % 3 == 0 ? "text \($0)" : nil })
        #expect(rows.map { $0.candidate?.candidateServed } == (0..<12).map { $0 % 2 == 0 ? ($0 % 4 == 0) : nil })
        let batch = try store.pendingBatch(limit: 100)
        #expect(batch.decisions == rows && batch.reviewBackfill.isEmpty && batch.labels.isEmpty)
    }

    /// Labels arrive after their decisions were shipped, and are corrected: every import is
    /// a new revision past the watermark, and the shipper sends the latest one.
    @Test func labelsImportedOrCorrectedAfterShippingArePending() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let store = try DecisionStore(path: dir.file("r.sqlite"), node: "n1")
        let queued = try fill(store, 30)
        let first = try store.pendingBatch(limit: 100)
        #expect(first.decisions.count == 30 && first.labels.isEmpty)
        try store.markShipped(first)
        #expect(try store.pendingBatch(limit: 100).isEmpty)

        try store.importLabels(queued.prefix(4).map { ReviewLabel(id: $0, label: "card_arrival", correct: nil) })
        let labels = try store.pendingBatch(limit: 100)
        #expect(labels.decisions.isEmpty && labels.labels.map(\.revision) == [1, 2, 3, 4] && !labels.isEmpty)
        #expect(labels.labels.allSatisfy { $0.node == "n1" && $0.uid.count == 32 && $0.label == "card_arrival" })
        try store.markShipped(labels)
        #expect(try store.pendingLabelCount() == 0 && (try store.pendingBatch(limit: 100)).isEmpty)

        // A correction of one of them: pending again, with the new label and a higher revision.
        try store.importLabels([ReviewLabel(id: queued[1], label: "oos", correct: nil)])
        let again = try store.pendingBatch(limit: 100)
        #expect(again.labels.count == 1 && again.labels[0].label == "oos" && again.labels[0].revision == 5)
        #expect(again.labels[0].uid == labels.labels[1].uid)
        // Batches of labels respect the limit, oldest revision first; re-importing every
        // label replaces revision 5 too, so the pending ones are 6…15.
        try store.importLabels(queued.map { ReviewLabel(id: $0, label: nil, correct: true) })
        #expect(try store.pendingBatch(limit: 3).labels.map(\.revision) == [6, 7, 8])
        #expect(try store.pendingLabelCount() == queued.count)
    }

    /// The backlog bound drops unshipped decisions that are queued, labelled and compared with
    /// a candidate (their rows would refuse the delete otherwise).
    @Test func backlogBoundDropsDecisionsWithReviewRows() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let store = try DecisionStore(path: dir.file("r.sqlite"), node: "n1", maxPending: 10)
        let queued = try fill(store, 9)
        try store.importLabels(queued.map { ReviewLabel(id: $0, label: "card_arrival", correct: nil) })
        for i in 0..<6 {
            var d = makeDecision(timestamp: 1_800_000_000 + Double(i))
            d.reviewReason = .sample
            try store.insert(d)
        }
        #expect(try store.pendingCounts().decisions == 10)
        #expect(try store.gaps().map(\.dropped) == [5])
        #expect(try store.integrityCheck() == "ok")
        // No label, queue entry or candidate result is left without its decision.
        let labels = try store.labels()
        let uids = Set(try store.decisions().map(\.uid))
        #expect(labels.keys.allSatisfy { uids.contains($0.uid) } && labels.count == 1)
    }

    /// The review figures computed from the decisions and their labels (what both databases
    /// give the report) equal those computed from the queue and the stratum counts.
    @Test func figuresFromDecisionsEqualFiguresFromTheQueue() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let store = try DecisionStore(path: dir.file("r.sqlite"), node: "n1")
        for i in 0..<60 {
            let route: Route = i % 6 == 5 ? .small : .edge
            var d = makeDecision(timestamp: 1_700_000_000 + Double(i), route: route,
                                 reason: i % 11 == 0 ? "cloud_unavailable" : "optimal_edge", label: ["a", "b", "c"][i % 3],
                                 review: i % 5 == 0)
            d.reviewReason = i % 11 == 0 ? .fallback : i % 5 == 0 ? .reviewBand : i % 2 == 0 || route == .small ? .sample : nil
            d.candidate = CandidateResult(modelVersion: "c@1", label: ["a", "b", "c"][(i / 2) % 3], confidence: 0.9,
                                          outOfScope: false, route: .edge, reason: "optimal_edge", candidateServed: false, edgeMs: 1)
            try store.insert(d)
        }
        try store.importLabels(try store.reviewItems().map { item in
            item.route == .small ? ReviewLabel(id: item.id, label: nil, correct: item.id % 3 != 0)
                : ReviewLabel(id: item.id, label: item.id % 4 == 0 ? "b" : item.label, correct: nil)
        })
        let (measured, comparison) = ReviewFigures.compute(decisions: try store.decisions(), labels: try store.labels())
        let fromQueue = MeasuredAccuracy(items: try store.reviewItems(), edgeAnswers: try store.edgeAnswerCounts())
        #expect(measured == fromQueue)
        #expect(measured.edge.accuracy != nil && measured.smallSuccess != nil)
        let goldLabelled = try store.reviewItems().filter { $0.goldLabel != nil }.count
        #expect(comparison?.queries == 60 && comparison?.candidate.labelled == goldLabelled)
        #expect(try store.report().measured == measured)
    }
}
