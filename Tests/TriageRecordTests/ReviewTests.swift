import Foundation
import Testing
import TriageCascade
@testable import TriageRecord

/// The review queue in the record and the accuracy measured from its labels.
@Suite struct ReviewTests {
    /// 900 plain edge answers of which 50 sampled and labelled (48 right), 100 review-band
    /// answers all labelled (80 right). Weighted by stratum: 0.9 · 48/50 + 0.1 · 80/100 =
    /// 0.944, where averaging the 150 labels would say 128/150 = 0.853. Only the sampled
    /// stratum has sampling error: 1.96 · sqrt(0.9² · p(1−p)/54 · 850/899) with the
    /// Agresti–Coull p = 50/54 gives a half-width of 0.0611.
    @Test func stratifiedEstimateByHand() {
        let e = EdgeAccuracyEstimate(strata: [
            .init(name: "plain", answers: 900, labelled: 50, correct: 48),
            .init(name: "band", answers: 100, labelled: 100, correct: 80),
            .init(name: "fallback", answers: 7, labelled: 0, correct: 0),
        ])
        #expect(abs(e.accuracy! - 0.944) < 1e-12)
        #expect(abs(e.low! - (0.944 - 0.061129741)) < 1e-8)
        #expect(e.high == 1)
        #expect(e.unrepresented == 7 && e.labelled == 150)
        #expect(EdgeAccuracyEstimate(strata: [.init(name: "plain", answers: 10, labelled: 0, correct: 0)]).accuracy == nil)
    }

    @Test func queueLabelsAndMeasuredAccuracyInTheRecord() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let store = try DecisionStore(path: dir.file("r.sqlite"))
        // 20 plain edge answers (4 sampled), 3 in the review band, one fallback, one doubtful
        // small answer escalated to large, one sampled small answer, one plain small answer.
        var ids: [String: Int] = [:]
        func add(_ name: String, route: Route, reason: String = "optimal_edge", review: Bool = false,
                 why: ReviewReason?, label: String = "card_arrival") throws {
            var d = makeDecision(route: route, reason: reason, label: label, review: review, queryHash: name)
            d.reviewReason = why
            d.reviewText = why == nil ? nil : "text of \(name)"
            ids[name] = Int(try store.insert(d))
        }
        for i in 0..<20 { try add("plain\(i)", route: .edge, why: i < 4 ? .sample : nil) }
        for i in 0..<3 { try add("band\(i)", route: .edge, reason: "edge_review", review: true, why: .reviewBand) }
        try add("fallback", route: .edge, reason: "cloud_unavailable", review: true, why: .fallback)
        try add("doubtful", route: .large, reason: "low_answer_confidence", why: .doubtfulAnswer)
        try add("smallSample", route: .small, reason: "low_confidence", why: .sample)
        try add("smallPlain", route: .small, reason: "low_confidence", why: nil)

        let queue = try store.reviewItems()
        #expect(queue.count == 10)
        #expect(queue.allSatisfy { $0.query == "text of " + $0.answerHashlessName(ids) })
        #expect(try store.edgeAnswerCounts() == [.sample: 20, .reviewBand: 3, .fallback: 1])

        // All or nothing: an id outside the queue stops the whole import.
        #expect(throws: RecordError.self) {
            try store.importLabels([ReviewLabel(id: ids["plain0"]!, label: "card_arrival", correct: nil),
                                    ReviewLabel(id: ids["plain10"]!, label: "card_arrival", correct: nil)])
        }
        #expect(try store.reviewItems(unlabelledOnly: true).count == 10)

        try store.importLabels([
            ReviewLabel(id: ids["plain0"]!, label: "card_arrival", correct: nil),
            ReviewLabel(id: ids["plain1"]!, label: "card_arrival", correct: nil),
            ReviewLabel(id: ids["plain2"]!, label: "card_arrival", correct: nil),
            ReviewLabel(id: ids["plain3"]!, label: "lost_or_stolen_card", correct: nil),
            ReviewLabel(id: ids["band0"]!, label: "oos", correct: nil),
            ReviewLabel(id: ids["band1"]!, label: "card_arrival", correct: nil),
            ReviewLabel(id: ids["smallSample"]!, label: nil, correct: true),
            ReviewLabel(id: ids["doubtful"]!, label: nil, correct: false),
        ])
        // A second label for the same decision replaces the first.
        try store.importLabels([ReviewLabel(id: ids["band1"]!, label: "card_arrival", correct: nil)])
        #expect(try store.reviewItems(unlabelledOnly: true).count == 2)

        let report = try store.report()
        let m = try #require(report.measured)
        // plain: 20 answers, 3/4 right; band: 3 answers, 1/2 right; fallback: unlabelled.
        #expect(abs(m.edge.accuracy! - (20.0 / 23 * 0.75 + 3.0 / 23 * 0.5)) < 1e-12)
        #expect(m.edge.unrepresented == 1)
        #expect(m.smallLabelled == 1 && m.smallCorrect == 1)
        #expect(report.accuracySource == "review labels" && report.accuracyEstimate == m.edge.accuracy)
        #expect(report.text.contains("Measured accuracy"))
        let json = report.json
        #expect(json["measured_accuracy"]?["edge"]?["labelled"]?.intValue == 6)
        #expect(json["measured_accuracy"]?["edge"]?["error_budget"]?["budget"]?.doubleValue == 0.05)
    }

    @Test func labelLinesAreCheckedOneByOne() throws {
        #expect(try ReviewLabel.parse(#"{"id": 3, "label": "card_arrival", "query": "x"}"#) == ReviewLabel(id: 3, label: "card_arrival", correct: nil))
        #expect(try ReviewLabel.parse(#"{"id": 4, "correct": false}"#) == ReviewLabel(id: 4, label: nil, correct: false))
        for bad in [#"{"label": "x"}"#, #"{"id": 1}"#, #"{"id": "1", "label": "x"}"#, #"{"id": 1, "label": ""}"#, "not json"] {
            #expect(throws: (any Error).self) { try ReviewLabel.parse(bad) }
        }
    }
}

extension QueuedDecision {
    /// The name a test decision was added under, found by its id.
    func answerHashlessName(_ ids: [String: Int]) -> String { ids.first { $0.value == id }?.key ?? "?" }
}
