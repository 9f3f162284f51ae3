import TriageJSON

/// One labelled query as the edge decided it: what `triage tune` fits the routing thresholds on.
public struct TunePoint: Sendable, Equatable {
    /// The decision's calibrated confidence.
    public var confidence: Double
    /// The summed probability of the model's out-of-scope labels.
    public var outOfScopeScore: Double
    /// The feature distance to the nearest in-scope class (0 for a model without `oos_distance`).
    public var outOfScopeDistance: Double
    /// The classifier itself said out of scope (such a query never stays at the edge).
    public var decidedOutOfScope: Bool
    /// The router's other rules (complexity) would let the edge answer it.
    public var eligible: Bool
    /// The true label is out of scope.
    public var goldOutOfScope: Bool
    /// The decided intent is the true one (false for every out-of-scope query).
    public var correct: Bool
    /// The true label, so that cross-validation folds keep every label's share.
    public var stratum: String

    public init(confidence: Double, outOfScopeScore: Double, outOfScopeDistance: Double = 0, decidedOutOfScope: Bool,
                eligible: Bool = true, goldOutOfScope: Bool, correct: Bool, stratum: String = "") {
        self.confidence = confidence; self.outOfScopeScore = outOfScopeScore; self.outOfScopeDistance = outOfScopeDistance
        self.decidedOutOfScope = decidedOutOfScope
        self.eligible = eligible; self.goldOutOfScope = goldOutOfScope; self.correct = correct && !goldOutOfScope
        self.stratum = stratum
    }
}

/// The two cuts the edge's keep-or-escalate decision uses.
public struct EdgeCut: Sendable, Equatable {
    /// Answer at the edge only at or above this confidence…
    public var minConfidence: Double
    /// …and only when the summed out-of-scope probability is at most this…
    public var maxOutOfScopeScore: Double
    /// …and the feature distance at most this (infinity: no such cut).
    public var maxOutOfScopeDistance: Double
    public init(minConfidence: Double, maxOutOfScopeScore: Double, maxOutOfScopeDistance: Double = .infinity) {
        self.minConfidence = minConfidence; self.maxOutOfScopeScore = maxOutOfScopeScore
        self.maxOutOfScopeDistance = maxOutOfScopeDistance
    }

    /// Whether the edge answers this query under these cuts.
    public func answers(_ p: TunePoint) -> Bool {
        !p.decidedOutOfScope && p.eligible && p.confidence >= minConfidence && p.outOfScopeScore <= maxOutOfScopeScore
            && p.outOfScopeDistance <= maxOutOfScopeDistance
    }
}

/// What a cut does to a set of labelled queries.
public struct EdgeOutcome: Sendable, Equatable {
    public var inScope = 0, outOfScope = 0
    /// In-scope queries answered at the edge (right or wrong).
    public var keptInScope = 0
    /// Answers at the edge that are wrong: a wrong intent, or any answer to an out-of-scope query.
    public var wrongAnswers = 0
    /// Out-of-scope queries answered at the edge (under-routing).
    public var outOfScopeAnswered = 0
    public init() {}

    public var answered: Int { keptInScope + outOfScopeAnswered }
    /// Share of in-scope queries the edge keeps.
    public var keptShare: Double { inScope == 0 ? 0 : Double(keptInScope) / Double(inScope) }
    /// Share of the edge's answers that are wrong.
    public var edgeError: Double { answered == 0 ? 0 : Double(wrongAnswers) / Double(answered) }
    /// Share of out-of-scope queries answered at the edge.
    public var underRouting: Double { outOfScope == 0 ? 0 : Double(outOfScopeAnswered) / Double(outOfScope) }

    public static func + (a: EdgeOutcome, b: EdgeOutcome) -> EdgeOutcome {
        var r = EdgeOutcome()
        r.inScope = a.inScope + b.inScope; r.outOfScope = a.outOfScope + b.outOfScope
        r.keptInScope = a.keptInScope + b.keptInScope; r.wrongAnswers = a.wrongAnswers + b.wrongAnswers
        r.outOfScopeAnswered = a.outOfScopeAnswered + b.outOfScopeAnswered
        return r
    }

    /// Within both budgets (counts compared exactly: wrong ≤ budget × answered).
    public func meets(maxEdgeError: Double, maxUnderRouting: Double) -> Bool {
        Double(wrongAnswers) <= maxEdgeError * Double(answered) + 1e-9
            && Double(outOfScopeAnswered) <= maxUnderRouting * Double(outOfScope) + 1e-9
    }

    public var json: JSONValue {
        .object([("in_scope", .int(inScope)), ("out_of_scope", .int(outOfScope)), ("kept_in_scope", .int(keptInScope)),
                 ("answered", .int(answered)), ("wrong_answers", .int(wrongAnswers)),
                 ("oos_answered", .int(outOfScopeAnswered)), ("kept_share", .number(keptShare)),
                 ("edge_error", .number(edgeError)), ("under_routing", .number(underRouting))])
    }
}

/// Fits the edge's routing thresholds to an error budget: of all the cuts on a grid, the one
/// that keeps the most in-scope queries at the edge while at most `maxEdgeError` of the edge's
/// answers are wrong and at most `maxUnderRouting` of the out-of-scope queries are answered there.
/// Ties go to fewer wrong answers, then fewer out-of-scope answers, then the higher confidence
/// cut and the lower out-of-scope cut (the stricter cut that keeps the same queries).
public enum RoutingTuner {
    /// Candidate confidence cuts: 0, 0.005, …, 1.
    public static let confidenceGrid: [Double] = (0...200).map { Double($0) / 200 }
    /// Candidate out-of-scope score cuts: 0.005, 0.01, …, 1 (1: no such rule).
    public static let scoreGrid: [Double] = (1...200).map { Double($0) / 200 }

    public static func outcome(_ points: [TunePoint], _ cut: EdgeCut) -> EdgeOutcome {
        var o = EdgeOutcome()
        for p in points {
            if p.goldOutOfScope { o.outOfScope += 1 } else { o.inScope += 1 }
            guard cut.answers(p) else { continue }
            if p.goldOutOfScope { o.outOfScopeAnswered += 1 } else { o.keptInScope += 1 }
            if !p.correct { o.wrongAnswers += 1 }
        }
        return o
    }

    /// Whether outcome `a` with cut `ca` is preferred to `b` with cut `cb`.
    static func better(_ a: EdgeOutcome, _ ca: EdgeCut, than b: EdgeOutcome, _ cb: EdgeCut) -> Bool {
        if a.keptInScope != b.keptInScope { return a.keptInScope > b.keptInScope }
        if a.wrongAnswers != b.wrongAnswers { return a.wrongAnswers < b.wrongAnswers }
        if a.outOfScopeAnswered != b.outOfScopeAnswered { return a.outOfScopeAnswered < b.outOfScopeAnswered }
        if ca.minConfidence != cb.minConfidence { return ca.minConfidence > cb.minConfidence }
        if ca.maxOutOfScopeScore != cb.maxOutOfScopeScore { return ca.maxOutOfScopeScore < cb.maxOutOfScopeScore }
        return ca.maxOutOfScopeDistance < cb.maxOutOfScopeDistance
    }

    /// The index of the largest grid value ≤ x (-1 if none).
    static func gridIndex(atOrBelow x: Double, in grid: [Double]) -> Int {
        var k = min(grid.count - 1, max(-1, Int((x * 200).rounded(.down))))
        while k >= 0 && grid[k] > x { k -= 1 }
        while k + 1 < grid.count && grid[k + 1] <= x { k += 1 }
        return k
    }

    /// Candidate distance cuts for points with a feature distance: the in-scope points' distances
    /// at the 50th, 51st, …, 99th, 99.5th and 99.9th percentiles (nearest rank, rounded up to
    /// 1e-4; a lower cut would send most routine queries away), and infinity. Only infinity for
    /// points without one.
    public static func distanceGrid(_ points: [TunePoint]) -> [Double] {
        let d = points.filter { !$0.goldOutOfScope }.map(\.outOfScopeDistance).sorted()
        guard let last = d.last, last > 0 else { return [.infinity] }
        var grid = Set<Double>()
        for q in Array(stride(from: 0.50, through: 0.99, by: 0.01)) + [0.995, 0.999] {
            let rank = max(1, Int((q * Double(d.count)).rounded(.up)))
            grid.insert((d[rank - 1] * 1e4).rounded(.up) / 1e4)
        }
        return grid.sorted() + [.infinity]
    }

    /// The best cut within the budgets, or nil when no cut on the grid meets them. For each
    /// out-of-scope cut (score, and distance when the points have one), one pass counts the
    /// answerable queries by confidence cell; sums from the top cell down give every confidence
    /// cut's outcome.
    public static func fit(_ points: [TunePoint], maxEdgeError: Double, maxUnderRouting: Double) -> (cut: EdgeCut, outcome: EdgeOutcome)? {
        var total = EdgeOutcome()
        for p in points { if p.goldOutOfScope { total.outOfScope += 1 } else { total.inScope += 1 } }
        let n = confidenceGrid.count
        var best: (cut: EdgeCut, outcome: EdgeOutcome)? = nil
        let byCell = points.map { gridIndex(atOrBelow: $0.confidence, in: confidenceGrid) }
        let distances = distanceGrid(points)
        for s in scoreGrid { for dist in distances {
            var kept = [Int](repeating: 0, count: n), wrong = kept, oos = kept
            let outer = EdgeCut(minConfidence: 0, maxOutOfScopeScore: s, maxOutOfScopeDistance: dist)
            for (p, k) in zip(points, byCell) where k >= 0 && outer.answers(p) {
                if p.goldOutOfScope { oos[k] += 1 } else { kept[k] += 1 }
                if !p.correct { wrong[k] += 1 }
            }
            var o = total
            for k in stride(from: n - 1, through: 0, by: -1) {
                o.keptInScope += kept[k]; o.wrongAnswers += wrong[k]; o.outOfScopeAnswered += oos[k]
                guard o.meets(maxEdgeError: maxEdgeError, maxUnderRouting: maxUnderRouting) else { continue }
                let cut = EdgeCut(minConfidence: confidenceGrid[k], maxOutOfScopeScore: s, maxOutOfScopeDistance: dist)
                if best == nil || better(o, cut, than: best!.outcome, best!.cut) { best = (cut, o) }
            }
        } }
        return best
    }

    /// The review band's top: the lowest grid confidence (at or above the edge cut) above which
    /// the edge's answers are wrong at most half the budget; answers between the cut and it are
    /// flagged for review, where most of the edge's mistakes are.
    public static func answerBand(_ points: [TunePoint], cut: EdgeCut, maxEdgeError: Double) -> Double {
        for b in confidenceGrid where b >= cut.minConfidence {
            let o = outcome(points, EdgeCut(minConfidence: b, maxOutOfScopeScore: cut.maxOutOfScopeScore,
                                            maxOutOfScopeDistance: cut.maxOutOfScopeDistance))
            if Double(o.wrongAnswers) <= maxEdgeError / 2 * Double(o.answered) + 1e-9 { return b }
        }
        return 1
    }

    /// Stratified folds: within each true label, queries in input order go to folds 0, 1, …, k-1
    /// in turn (no randomness, so the figure is repeatable).
    public static func folds(_ points: [TunePoint], k: Int) -> [Int] {
        var seen: [String: Int] = [:]
        return points.map { p in
            let i = seen[p.stratum, default: 0]
            seen[p.stratum] = i + 1
            return i % k
        }
    }

    public struct CrossValidation: Sendable {
        public var folds: Int
        /// The cut fitted on the other folds, per fold (nil: nothing met the budgets there, so
        /// that fold's edge answers nothing).
        public var cuts: [EdgeCut?]
        /// Each fold's queries under the cut fitted without them, summed over the folds.
        public var heldOut: EdgeOutcome
    }

    /// k-fold cross-validation of the fit: the figure a cut fitted on other queries gets.
    public static func crossValidate(_ points: [TunePoint], k: Int, maxEdgeError: Double, maxUnderRouting: Double) -> CrossValidation {
        let fold = folds(points, k: k)
        var cuts: [EdgeCut?] = []
        var held = EdgeOutcome()
        for f in 0..<k {
            let train = zip(points, fold).filter { $0.1 != f }.map(\.0)
            let test = zip(points, fold).filter { $0.1 == f }.map(\.0)
            let cut = fit(train, maxEdgeError: maxEdgeError, maxUnderRouting: maxUnderRouting)?.cut
            cuts.append(cut)
            held = held + outcome(test, cut ?? EdgeCut(minConfidence: 2, maxOutOfScopeScore: 0))
        }
        return CrossValidation(folds: k, cuts: cuts, heldOut: held)
    }

    /// The trade-off at the chosen out-of-scope cut: every confidence cut's outcome.
    public static func curve(_ points: [TunePoint], maxOutOfScopeScore: Double,
                             maxOutOfScopeDistance: Double = .infinity) -> [(minConfidence: Double, outcome: EdgeOutcome)] {
        confidenceGrid.map { t in
            (t, outcome(points, EdgeCut(minConfidence: t, maxOutOfScopeScore: maxOutOfScopeScore, maxOutOfScopeDistance: maxOutOfScopeDistance)))
        }
    }

    /// The trade-off as an SVG chart: share of in-scope queries kept at the edge (x) against the
    /// share of the edge's answers that are wrong (y), one point per confidence cut, the budget
    /// as a dashed line and the chosen cut circled.
    public static func svg(curve: [(minConfidence: Double, outcome: EdgeOutcome)], chosen: EdgeCut, maxEdgeError: Double) -> String {
        let w = 640.0, h = 420.0, left = 64.0, right = 20.0, top = 36.0, bottom = 52.0
        let yMax = max(0.05, (curve.map(\.outcome.edgeError).max() ?? 0.05) * 1.05, maxEdgeError * 1.5)
        func x(_ v: Double) -> Double { left + v * (w - left - right) }
        func y(_ v: Double) -> Double { h - bottom - v / yMax * (h - top - bottom) }
        func n(_ v: Double) -> String { String((v * 10).rounded() / 10) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" viewBox=\"0 0 \(Int(w)) \(Int(h))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(n(left))\" y=\"20\" font-size=\"14\">Edge share against edge error per confidence cut (max oos score \(chosen.maxOutOfScopeScore))</text>\n"
        for i in 0...10 {
            let v = Double(i) / 10
            s += "<line x1=\"\(n(x(v)))\" y1=\"\(n(y(0)))\" x2=\"\(n(x(v)))\" y2=\"\(n(y(yMax)))\" stroke=\"#eee\"/>"
            s += "<text x=\"\(n(x(v)))\" y=\"\(n(y(0) + 16))\" text-anchor=\"middle\">\(i * 10)%</text>\n"
        }
        for i in 0...5 {
            let v = yMax * Double(i) / 5
            s += "<line x1=\"\(n(x(0)))\" y1=\"\(n(y(v)))\" x2=\"\(n(x(1)))\" y2=\"\(n(y(v)))\" stroke=\"#eee\"/>"
            s += "<text x=\"\(n(x(0) - 6))\" y=\"\(n(y(v) + 4))\" text-anchor=\"end\">\((v * 1000).rounded() / 10)%</text>\n"
        }
        s += "<text x=\"\(n(x(0.5)))\" y=\"\(n(h - 12))\" text-anchor=\"middle\">in-scope queries kept at the edge</text>\n"
        s += "<text transform=\"translate(16 \(n(y(yMax / 2)))) rotate(-90)\" text-anchor=\"middle\">edge answers wrong</text>\n"
        s += "<line x1=\"\(n(x(0)))\" y1=\"\(n(y(maxEdgeError)))\" x2=\"\(n(x(1)))\" y2=\"\(n(y(maxEdgeError)))\" stroke=\"#c33\" stroke-dasharray=\"6 4\"/>\n"
        let pts = curve.filter { $0.outcome.answered > 0 }.map { "\(n(x($0.outcome.keptShare))),\(n(y($0.outcome.edgeError)))" }
        s += "<polyline fill=\"none\" stroke=\"#1f5fa8\" stroke-width=\"1.5\" points=\"\(pts.joined(separator: " "))\"/>\n"
        if let c = curve.first(where: { $0.minConfidence == chosen.minConfidence }) {
            s += "<circle cx=\"\(n(x(c.outcome.keptShare)))\" cy=\"\(n(y(c.outcome.edgeError)))\" r=\"5\" fill=\"none\" stroke=\"#c33\" stroke-width=\"2\"/>\n"
            s += "<text x=\"\(n(x(c.outcome.keptShare) - 8))\" y=\"\(n(y(c.outcome.edgeError) - 10))\" text-anchor=\"end\">min confidence \(chosen.minConfidence)</text>\n"
        }
        return s + "</svg>\n"
    }
}
