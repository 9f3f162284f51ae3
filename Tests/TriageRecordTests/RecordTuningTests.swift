import Testing
import TriageCascade
import TriageClassifier
@testable import TriageRecord

/// `tune --from-record` on crafted labelled decisions whose answer is known by hand.
@Suite struct RecordTuningTests {
    func points(_ groups: [(confidence: Double, right: Int, wrong: Int)]) -> [TunePoint] {
        groups.flatMap { g in
            (0..<(g.right + g.wrong)).map { i in
                TunePoint(confidence: g.confidence, outOfScopeScore: 0, decidedOutOfScope: false, goldOutOfScope: false,
                          correct: i < g.right, stratum: "x")
            }
        }
    }

    /// Ten wrong answers at 0.905 put the edge at 10 % error against a 5 % budget; above
    /// 0.905 nothing is wrong, so the threshold moves up to the next grid step, 0.91.
    @Test func overBudgetMovesTheThresholdUp() {
        let p = points([(0.905, 10, 10), (0.97, 80, 0)])
        let all = [makeDecision(route: .edge, confidence: 0.905), makeDecision(route: .edge, confidence: 0.97),
                   makeDecision(route: .small, confidence: 0.88, costUSD: 0.002), makeDecision(route: .small, confidence: 0.5, costUSD: 0.004)]
        let t = RecordTuning(points: p, all: all, current: 0.90, maxComplexity: 0.75, maxEdgeError: 0.05)
        #expect(t.proposed == 0.91 && t.withinBudget)
        #expect(abs(t.errorBefore! - 0.10) < 1e-12 && t.errorAfter == 0)
        #expect(t.edgeShareBefore == 0.5 && t.edgeShareAfter == 0.25)
        // The 0.905 query leaves the edge: it will cost the mean cloud-answered query, $0.003.
        #expect(abs(t.costChangeUSD - 0.003) < 1e-12)
    }

    /// Everything right down to 0.87: the threshold may come down, but by at most 0.05.
    @Test func slackMovesItDownWithinTheBound() {
        let p = points([(0.87, 20, 0), (0.97, 80, 0)])
        let all = [makeDecision(route: .small, confidence: 0.87, costUSD: 0.002), makeDecision(route: .edge, confidence: 0.97)]
        let t = RecordTuning(points: p, all: all, current: 0.90, maxComplexity: 0.75, maxEdgeError: 0.05)
        #expect(t.proposed == 0.85 && t.withinBudget)
        #expect(t.edgeShareBefore == 0.5 && t.edgeShareAfter == 1)
        #expect(abs(t.costChangeUSD + 0.002) < 1e-12)   // the 0.87 query's cloud cost is saved
    }

    /// Wrong answers even at 0.97: one run moves at most to current + 0.05 and says it is not enough.
    @Test func stillOverBudgetStopsAtTheBound() {
        let p = points([(0.97, 50, 50)])
        let t = RecordTuning(points: p, all: [], current: 0.90, maxComplexity: 0.75, maxEdgeError: 0.05)
        #expect(t.proposed == 0.95 && !t.withinBudget)
    }
}

/// Labels weighted by review stratum: hand-counted populations where averaging the labels as
/// they come gives the opposite answer.
@Suite struct RecordTuningWeightTests {
    func item(_ reason: ReviewReason, confidence: Double, right: Bool) -> (QueuedDecision, TunePoint) {
        let q = QueuedDecision(id: 0, timestamp: 0, reviewReason: reason, query: nil, label: "card_arrival",
                               confidence: confidence, outOfScope: false, route: .edge, reason: "confident", answer: "",
                               modelVersion: "m", complexity: 0, goldLabel: right ? "card_arrival" : "card_delivery_estimate",
                               correct: right)
        return (q, TunePoint(confidence: confidence, outOfScopeScore: 0, decidedOutOfScope: false, goldOutOfScope: false,
                             correct: right, stratum: "x"))
    }

    /// 200 plain edge answers at 0.97, 10 of them sampled and labelled (all right), and 20
    /// review-band answers at 0.905, all labelled, 4 wrong. Unweighted: 4 wrong of 30 labels =
    /// 13.3 % against a 5 % budget, so the threshold would go up. Weighted: the sample stratum
    /// holds the 200 plain edge answers and 30 small-tier answers, so each of its 10 labels
    /// stands for 23 decisions: 4 wrong of 10 × 23 + 20 = 1.6 %, inside the budget, and the
    /// threshold may come down (nothing below 0.90 is labelled).
    @Test func sampledLabelsStandForTheirWholeStratum() {
        var all: [Decision] = []
        for _ in 0..<200 { all.append(makeDecision(route: .edge, confidence: 0.97)) }
        for _ in 0..<20 { var d = makeDecision(route: .edge, confidence: 0.905); d.review = true; all.append(d) }
        for _ in 0..<30 { all.append(makeDecision(route: .small, confidence: 0.6, costUSD: 0.002)) }
        let labelled = (0..<10).map { _ in item(.sample, confidence: 0.97, right: true) }
            + (0..<20).map { i in item(.reviewBand, confidence: 0.905, right: i >= 4) }
        let (weights, strata) = RecordTuning.stratumWeights(items: labelled.map(\.0), all: all)
        // The sample stratum is every plain edge answer and every small-tier answer: 230 for 10 labels.
        #expect(strata.first { $0.reason == .sample }.map { ($0.decisions, $0.labelled) } ?? (0, 0) == (230, 10))
        #expect(strata.first { $0.reason == .reviewBand }.map { ($0.decisions, $0.labelled) } ?? (0, 0) == (20, 20))
        #expect(weights.prefix(10).allSatisfy { $0 == 23 } && weights.suffix(20).allSatisfy { $0 == 1 })

        let unweighted = RecordTuning(points: labelled.map(\.1), all: all, current: 0.90, maxComplexity: 0.75, maxEdgeError: 0.05)
        #expect(abs(unweighted.errorBefore! - 4.0 / 30) < 1e-12 && unweighted.proposed > 0.90)

        let weighted = RecordTuning(points: labelled.map(\.1), weights: weights, all: all, current: 0.90, maxComplexity: 0.75,
                                    maxEdgeError: 0.05)
        #expect(abs(weighted.errorBefore! - 4.0 / 250) < 1e-12)
        #expect(weighted.withinBudget && weighted.proposed == 0.85)
    }
}
