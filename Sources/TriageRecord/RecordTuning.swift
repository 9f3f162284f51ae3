import TriageCascade
import TriageClassifier

/// `triage tune --from-record`: the edge confidence threshold re-fitted on the decisions that
/// reviewers labelled, so that the edge comes back inside its error budget (or, with room to
/// spare, keeps more). Seed 001's auto-tune nudged thresholds ±0.02 at a time; this fits the
/// threshold on the labels instead, within ±`maxStep` of the current one per run, so a
/// small or odd batch of labels cannot swing routing far.
///
/// The labelled decisions over-represent the review band (every one is queued, against a
/// random sample of the plain answers), so each label counts for the decisions of its review
/// stratum that it stands for (`stratumWeights`): averaged as they come, the labels made the
/// edge look several times as wrong as it was and the proposal tighten a threshold that was
/// inside its budget.
public struct RecordTuning: Sendable, Equatable {
    public var current: Double
    public var proposed: Double
    /// The labelled decisions used, and the edge error among them at each threshold.
    public var labelled: Int
    public var errorBefore: Double?
    public var errorAfter: Double?
    public var withinBudget: Bool
    /// Over every decision in the window: the edge share now and with the proposal, and the
    /// change in cloud cost that moving queries across the threshold implies.
    public var edgeShareBefore: Double
    public var edgeShareAfter: Double
    public var costChangeUSD: Double
    public var decisions: Int

    /// A labelled decision as the tuner sees it.
    public static func point(_ d: QueuedDecision, gold: String, maxComplexity: Double, isOutOfScope: (String) -> Bool) -> TunePoint {
        let goldOOS = isOutOfScope(gold)
        return TunePoint(confidence: d.confidence, outOfScopeScore: d.outOfScope ? 1 : 0, decidedOutOfScope: d.outOfScope,
                         eligible: d.complexity <= maxComplexity, goldOutOfScope: goldOOS,
                         correct: !d.outOfScope && d.label == gold, stratum: goldOOS ? "oos" : gold)
    }

    /// Whether the edge would answer `d` at threshold `t` (its other rules as recorded).
    static func atEdge(_ d: Decision, _ t: Double, maxComplexity: Double) -> Bool {
        !d.outOfScope && d.confidence >= t && d.complexity.total <= maxComplexity
    }

    /// One review stratum of the window: its decisions, and how many of them were labelled.
    public struct Stratum: Sendable, Equatable {
        public var reason: ReviewReason
        public var decisions: Int
        public var labelled: Int
        /// The decisions each label stands for.
        public var weight: Double { labelled > 0 ? max(1, Double(decisions) / Double(labelled)) : 1 }
    }

    /// The review strata of `all` (every decision of the window) and of the labelled `items`,
    /// and each item's weight: the decisions of its stratum over the labels of that stratum.
    /// A review-band answer is always queued, so its label stands for itself; a sampled plain
    /// answer, queued at `review.sample_rate`, stands for about 1 / rate of them.
    public static func stratumWeights(items: [QueuedDecision], all: [Decision]) -> (weights: [Double], strata: [Stratum]) {
        var decisions: [ReviewReason: Int] = [:], labelled: [ReviewReason: Int] = [:]
        for d in all { if let s = ReviewReason.stratum(of: d) { decisions[s, default: 0] += 1 } }
        for item in items { labelled[item.reviewReason, default: 0] += 1 }
        let strata = ReviewReason.allCases.map { Stratum(reason: $0, decisions: decisions[$0] ?? 0, labelled: labelled[$0] ?? 0) }
        let weight = Dictionary(uniqueKeysWithValues: strata.map { ($0.reason, $0.weight) })
        return (items.map { weight[$0.reviewReason] ?? 1 }, strata.filter { $0.decisions > 0 || $0.labelled > 0 })
    }

    /// `weights` (one per point; all 1 when nil) say how many decisions each label stands for.
    public init(points: [TunePoint], weights: [Double]? = nil, all: [Decision], current: Double, maxComplexity: Double,
                maxEdgeError: Double, maxStep: Double = 0.05) {
        precondition(weights == nil || weights!.count == points.count)
        self.current = current
        labelled = points.count
        decisions = all.count
        let weights = weights ?? Array(repeating: 1, count: points.count)
        func error(_ t: Double) -> Double? {
            let cut = EdgeCut(minConfidence: t, maxOutOfScopeScore: 1)
            var answered = 0.0, wrong = 0.0
            for (p, w) in zip(points, weights) where cut.answers(p) {
                answered += w
                if !p.correct { wrong += w }
            }
            return answered > 0 ? wrong / answered : nil
        }
        // Candidate thresholds: the grid between current ± maxStep, in 0.005 steps.
        let lo = max(0, current - maxStep), hi = min(1, current + maxStep)
        let grid = stride(from: (lo * 200).rounded(.up), through: (hi * 200).rounded(.down), by: 1).map { $0 / 200 }
        // The lowest threshold (the most kept at the edge) within the budget; if none is, the
        // strictest allowed.
        let fitting = grid.first { (error($0) ?? 0) <= maxEdgeError + 1e-12 }
        let chosen = fitting ?? grid.last ?? current
        proposed = chosen
        withinBudget = fitting != nil
        errorBefore = error(current)
        errorAfter = error(chosen)
        let n = Double(max(1, all.count))
        let before = all.filter { Self.atEdge($0, current, maxComplexity: maxComplexity) }
        let after = all.filter { Self.atEdge($0, chosen, maxComplexity: maxComplexity) }
        edgeShareBefore = Double(before.count) / n
        edgeShareAfter = Double(after.count) / n
        // Queries that move to the edge save what the cloud cost them; queries that leave it
        // will cost what an average cloud-answered query cost in the window.
        let cloud = all.filter { $0.route == .small || $0.route == .large }
        let meanCloudCost = cloud.isEmpty ? 0 : cloud.reduce(0) { $0 + $1.costUSD } / Double(cloud.count)
        var change = 0.0
        for d in all {
            let was = Self.atEdge(d, current, maxComplexity: maxComplexity), will = Self.atEdge(d, chosen, maxComplexity: maxComplexity)
            if !was && will { change -= d.route == .edge ? 0 : d.costUSD }
            if was && !will { change += meanCloudCost }
        }
        costChangeUSD = change
    }
}
