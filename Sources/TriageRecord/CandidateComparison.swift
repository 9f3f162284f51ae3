import TriageCascade

/// The primary and the candidate edge model side by side over the decisions where both ran:
/// how often they agree, how much each would keep at the edge, how often each is right on
/// the queries a reviewer labelled, how long each takes, and what to do about it.
public struct CandidateComparison: Sendable, Equatable {
    public struct Side: Sendable, Equatable {
        public var modelVersion: String
        /// Queries this model would have answered at the edge.
        public var edgeShare: Double
        /// Labelled queries, and how many this model labelled right (out of scope included).
        public var labelled: Int
        public var correct: Int
        public var accuracy: Double? { labelled > 0 ? Double(correct) / Double(labelled) : nil }
        public var edgeMsP50: Double?
    }

    public var queries: Int
    /// Queries the candidate answered (canary share).
    public var candidateServed: Int
    /// Same coarse verdict (the intent, or out of scope) from both.
    public var agreement: Double
    public var primary: Side
    public var candidate: Side
    /// promote, keep or not_enough_data, and why.
    public var recommendation: String
    public var why: String

    /// Fewer labelled queries than this and the comparison says so instead of recommending.
    public static let minimumLabelled = 30

    /// Over the decisions where a candidate ran, with the labels of those a reviewer labelled.
    public init?(decisions: [Decision], labels: [DecisionKey: LabelVerdict]) {
        self.init(rows: decisions.compactMap { d in d.candidate.map { (d, $0, labels[DecisionKey(d)]?.label) } })
    }

    /// One row per decision where both models ran: the decision (the answering model's
    /// view), the other model's view, and the reviewer's label if any.
    public init?(rows: [(decision: Decision, other: CandidateResult, gold: String?)]) {
        guard !rows.isEmpty else { return nil }
        struct View { var version: String; var coarse: String; var atEdge: Bool; var ms: Double }
        var prim: [View] = [], cand: [View] = []
        var golds: [String?] = []
        for (d, o, gold) in rows {
            let answering = View(version: d.modelVersion, coarse: d.outOfScope ? "oos" : d.label,
                                 atEdge: d.route == .edge && d.reason != "cloud_unavailable", ms: d.latency.edgeMs)
            let otherView = View(version: o.modelVersion, coarse: o.outOfScope ? "oos" : o.label, atEdge: o.route == .edge, ms: o.edgeMs)
            if o.candidateServed { cand.append(answering); prim.append(otherView) } else { prim.append(answering); cand.append(otherView) }
            golds.append(gold)
        }
        queries = rows.count
        candidateServed = rows.filter { $0.other.candidateServed }.count
        agreement = Double(zip(prim, cand).filter { $0.coarse == $1.coarse }.count) / Double(rows.count)
        func side(_ views: [View]) -> Side {
            var labelled = 0, correct = 0
            for (v, g) in zip(views, golds) {
                guard let g else { continue }
                labelled += 1
                // Right when the coarse verdict is the gold label: the intent, or "oos".
                if v.coarse == g { correct += 1 }
            }
            let ms = views.map(\.ms).sorted()
            let versions = Dictionary(grouping: views, by: \.version).max { $0.value.count < $1.value.count }?.key ?? ""
            return Side(modelVersion: versions, edgeShare: Double(views.filter(\.atEdge).count) / Double(views.count),
                        labelled: labelled, correct: correct, edgeMsP50: ms.isEmpty ? nil : ms[ms.count / 2])
        }
        primary = side(prim)
        candidate = side(cand)
        if candidate.labelled < Self.minimumLabelled {
            recommendation = "not_enough_data"
            why = "\(candidate.labelled) labelled queries where both models ran; at least \(Self.minimumLabelled) are needed (label the review queue)"
        } else if let ca = candidate.accuracy, let pa = primary.accuracy, ca >= pa, candidate.edgeShare >= primary.edgeShare - 0.02 {
            recommendation = "promote"
            why = "right on \(candidate.correct)/\(candidate.labelled) labelled queries against \(primary.correct)/\(primary.labelled), "
                + "and keeps \(Int((candidate.edgeShare * 100).rounded())) % at the edge against \(Int((primary.edgeShare * 100).rounded())) %"
        } else {
            recommendation = "keep"
            why = "the candidate is right on \(candidate.correct)/\(candidate.labelled) labelled queries against the primary's \(primary.correct)/\(primary.labelled)"
                + ", edge share \(Int((candidate.edgeShare * 100).rounded())) % against \(Int((primary.edgeShare * 100).rounded())) %"
        }
    }
}
