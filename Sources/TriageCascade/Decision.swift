// What the cascade decided for one query, with everything an operator needs to account for
// it afterwards: the signals, the route and its reason, every cloud call with its attempts,
// tokens and dollars, and where the time went. The record module stores these.

/// Where a query was answered.
public enum Route: String, Sendable, CaseIterable {
    /// The edge classifier answered from the answer book.
    case edge
    /// The small cloud tier (e.g. Claude Haiku) answered.
    case small
    /// The large cloud tier (e.g. Claude Sonnet) answered.
    case large
    /// Nothing could answer (out of scope and the cloud unavailable).
    case none
}

/// The seed complexity score and its four parts, each in [0, 1].
public struct ComplexityScore: Sendable, Equatable {
    public var total: Double
    public var length: Double
    public var syntax: Double
    public var uncertainty: Double
    public var emotion: Double
    public init(total: Double, length: Double, syntax: Double, uncertainty: Double, emotion: Double) {
        self.total = total; self.length = length; self.syntax = syntax; self.uncertainty = uncertainty; self.emotion = emotion
    }
}

/// One cloud tier's part in answering a query.
public struct TierCall: Sendable, Equatable {
    public var tier: String            // "small" or "large"
    public var model: String
    /// HTTP status of each attempt; 0 for an attempt that got no HTTP response.
    public var statuses: [Int]
    public var attempts: Int { statuses.count }
    public var inputTokens: Int
    public var outputTokens: Int
    public var costUSD: Double
    public var latencyMs: Double
    public var succeeded: Bool
    /// The circuit breaker was open: no request was sent.
    public var rejectedByBreaker: Bool
    /// The answer-confidence check of a small-tier answer (nil for the large tier or a failure).
    public var answerConfidence: Double?
    public var error: String?

    public init(tier: String, model: String, statuses: [Int], inputTokens: Int, outputTokens: Int, costUSD: Double,
                latencyMs: Double, succeeded: Bool, rejectedByBreaker: Bool, answerConfidence: Double?, error: String?) {
        self.tier = tier; self.model = model; self.statuses = statuses; self.inputTokens = inputTokens
        self.outputTokens = outputTokens; self.costUSD = costUSD; self.latencyMs = latencyMs; self.succeeded = succeeded
        self.rejectedByBreaker = rejectedByBreaker; self.answerConfidence = answerConfidence; self.error = error
    }
}

/// Milliseconds per stage of one query.
public struct StageLatency: Sendable, Equatable {
    public var tokenizeMs: Double
    public var edgeMs: Double
    public var cloudMs: Double
    public var totalMs: Double
    public init(tokenizeMs: Double = 0, edgeMs: Double = 0, cloudMs: Double = 0, totalMs: Double = 0) {
        self.tokenizeMs = tokenizeMs; self.edgeMs = edgeMs; self.cloudMs = cloudMs; self.totalMs = totalMs
    }
}

/// In shadow mode every query goes to the cloud; this is what the edge would have done,
/// and the cloud's own reading of the intent, so the report can measure the edge's routing.
public struct ShadowComparison: Sendable, Equatable {
    /// Route and reason the edge would have chosen on its own.
    public var edgeRoute: Route
    public var edgeReason: String
    /// The intent the cloud model named for the query (nil if it named none it knows).
    public var cloudLabel: String?
    public init(edgeRoute: Route, edgeReason: String, cloudLabel: String?) {
        self.edgeRoute = edgeRoute; self.edgeReason = edgeReason; self.cloudLabel = cloudLabel
    }
}

/// A second edge model run beside the primary one: in shadow (share 0) it only records what
/// it would have done; on a canary share it answers its part of the traffic, and then the
/// primary's view is what this records.
public struct CandidateResult: Sendable, Equatable {
    /// The model that did not answer: the candidate's version in shadow, the primary's when
    /// the candidate served the query (so both sides are always compared).
    public var modelVersion: String
    public var label: String
    public var confidence: Double
    public var outOfScope: Bool
    /// Where it would have sent the query.
    public var route: Route
    public var reason: String
    /// True when the candidate answered this query (canary), false in shadow.
    public var candidateServed: Bool
    public var edgeMs: Double
    public init(modelVersion: String, label: String, confidence: Double, outOfScope: Bool, route: Route, reason: String,
                candidateServed: Bool, edgeMs: Double) {
        self.modelVersion = modelVersion; self.label = label; self.confidence = confidence; self.outOfScope = outOfScope
        self.route = route; self.reason = reason; self.candidateServed = candidateServed; self.edgeMs = edgeMs
    }
}

/// Why a decision is in the review queue.
public enum ReviewReason: String, Sendable, CaseIterable {
    /// Answered at the edge between the review and answer bands.
    case reviewBand = "review_band"
    /// Answered at the edge because no cloud tier could answer.
    case fallback
    /// The small tier's answer was doubtful and escalated to the large tier.
    case doubtfulAnswer = "doubtful_answer"
    /// A random sample of the plain, confident edge answers: the unbiased part of the estimate.
    case sample

    /// The review stratum `d` belongs to: why it is queued — every decision of the first three
    /// kinds is — or, for `.sample`, the population the random sample is drawn from (plain
    /// edge answers and small-tier answers not served from the cache). Nil: never queued.
    public static func stratum(of d: Decision) -> ReviewReason? {
        if d.route == .edge && d.reason == "cloud_unavailable" { return .fallback }
        if d.route == .edge && d.review { return .reviewBand }
        if d.reason == "low_answer_confidence" && d.route == .large { return .doubtfulAnswer }
        if (d.route == .edge || d.route == .small) && !d.cached { return .sample }
        return nil
    }
}

public struct Decision: Sendable, Equatable {
    /// Seconds since the Unix epoch.
    public var timestamp: Double
    /// Identifies the edge model that made the decision (name and content fingerprint).
    public var modelVersion: String
    public var route: Route
    /// optimal_edge, edge_review, high_complexity, low_confidence, out_of_scope,
    /// escalation_keywords, low_answer_confidence, cloud_unavailable, cache_hit, offline, shadow …
    public var reason: String
    /// The edge classifier's label, calibrated confidence and out-of-scope verdict.
    public var label: String
    public var confidence: Double
    public var outOfScope: Bool
    public var complexity: ComplexityScore
    /// The task category that chose the first cloud tier (greeting, faq, …).
    public var category: String
    public var tiers: [TierCall]
    public var costUSD: Double
    public var latency: StageLatency
    public var cached: Bool
    /// Answered at the edge with confidence between the review and answer bands.
    public var review: Bool
    /// The query text, only when the operator asked for it (`--record-text`).
    public var queryText: String?
    /// A salted SHA-256 of the query, so repeats can be counted without keeping the text.
    public var queryHash: String
    public var answer: String
    public var shadow: ShadowComparison?
    /// Why a human should look at this decision (nil: not queued for review).
    public var reviewReason: ReviewReason?
    /// The query text kept for the reviewer (even without --record-text, unless
    /// review.keep_text is off); stored apart from `queryText`.
    public var reviewText: String?
    /// The candidate edge model's view of the same query (shadow or canary).
    public var candidate: CandidateResult?
    /// A random 128-bit id (32 hex digits), unique across the fleet: with `node` it makes
    /// shipping idempotent. Empty until the record assigns one.
    public var uid: String
    /// The box that recorded the decision (config `node`, default the host name); empty
    /// until the record assigns it.
    public var node: String

    public init(timestamp: Double, modelVersion: String, route: Route, reason: String, label: String, confidence: Double,
                outOfScope: Bool, complexity: ComplexityScore, category: String, tiers: [TierCall], costUSD: Double,
                latency: StageLatency, cached: Bool, review: Bool, queryText: String?, queryHash: String, answer: String,
                shadow: ShadowComparison?, uid: String = "", node: String = "", reviewReason: ReviewReason? = nil,
                reviewText: String? = nil) {
        self.reviewReason = reviewReason; self.reviewText = reviewText
        self.timestamp = timestamp; self.modelVersion = modelVersion; self.route = route; self.reason = reason
        self.label = label; self.confidence = confidence; self.outOfScope = outOfScope; self.complexity = complexity
        self.category = category; self.tiers = tiers; self.costUSD = costUSD; self.latency = latency; self.cached = cached
        self.review = review; self.queryText = queryText; self.queryHash = queryHash; self.answer = answer; self.shadow = shadow
        self.uid = uid; self.node = node
    }
}

/// Where decisions go before the answer is shown. `record` must not return until the
/// decision is durable: a crash after it returns loses nothing.
public protocol DecisionSink: Sendable {
    func record(_ decision: Decision) throws
}
