import TriageSystem

/// The edge's real accuracy, measured from human labels of the review queue.
///
/// Not every edge answer is reviewed, and the ones that are were not picked alike: every
/// answer in the review band and every fallback answer is queued, but only a random sample
/// (`review.sample_rate`) of the plain, confident ones. Averaging the labels as they come
/// would weigh the doubtful answers far above their share of the traffic. So each kind is a
/// stratum: its accuracy is estimated from its own labels and weighted by how many edge
/// answers of that kind there were (a stratified estimate), and the 95 % interval adds up
/// the strata's variances, each from an Agresti–Coull adjusted proportion so that a stratum
/// whose labels were all right still has an honest width.
public struct EdgeAccuracyEstimate: Sendable, Equatable {
    public struct Stratum: Sendable, Equatable {
        public var name: String
        /// Edge answers of this kind in the window.
        public var answers: Int
        /// Of those, how many were labelled, and how many of the labelled ones were right.
        public var labelled: Int
        public var correct: Int
        public var accuracy: Double? { labelled > 0 ? Double(correct) / Double(labelled) : nil }
    }

    public var strata: [Stratum]
    /// The weighted accuracy and its 95 % interval; nil when no stratum with answers has a label.
    public var accuracy: Double?
    public var low: Double?
    public var high: Double?
    /// Answers in strata that have no label at all, left out of the estimate (and its weights).
    public var unrepresented: Int

    public var labelled: Int { strata.reduce(0) { $0 + $1.labelled } }

    public init(strata: [Stratum]) {
        self.strata = strata
        let covered = strata.filter { $0.answers > 0 && $0.labelled > 0 }
        unrepresented = strata.filter { $0.labelled == 0 }.reduce(0) { $0 + $1.answers }
        let total = Double(covered.reduce(0) { $0 + $1.answers })
        guard total > 0 else { accuracy = nil; low = nil; high = nil; return }
        var estimate = 0.0, variance = 0.0
        for s in covered {
            let weight = Double(s.answers) / total
            let n = Double(s.labelled)
            estimate += weight * Double(s.correct) / n
            let adjusted = (Double(s.correct) + 2) / (n + 4)
            // Finite population: a stratum that was labelled in full has no sampling error.
            let fpc = max(0, (Double(s.answers) - n) / max(1, Double(s.answers) - 1))
            variance += weight * weight * adjusted * (1 - adjusted) / (n + 4) * fpc
        }
        accuracy = estimate
        let half = 1.96 * variance.squareRoot()
        low = max(0, estimate - half)
        high = min(1, estimate + half)
    }
}
