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
