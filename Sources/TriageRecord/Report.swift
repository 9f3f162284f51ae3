// The operator's report, computed from recorded decisions: traffic, routes, money, savings,
// latency, the review queue, shadow-mode agreement, the seed alerts, a health score with its
// status, SLA checks and one concrete recommendation per finding.
//
// Definitions (also written into the JSON so a reader need not find this file):
// - escalation: a query whose small-tier call answered but was judged not good enough, then
//   sent to the large tier (a large call refused by an open breaker was never sent, so it
//   does not count); escalation_rate = escalations / total_queries (the SLA's ≤ 0.15).
// - fallback: a query answered by a tier other than the one meant to answer it because that
//   one failed: the small tier failed and the large one answered, or the cloud failed and
//   the edge's own answer was given (reason cloud_unavailable). Not an escalation.
// - unanswered: route none (nothing could answer, or --offline and the cloud was needed).
// - availability: share of queries answered by the tier meant to answer them,
//   (total − unanswered − fallbacks) / total; SLA ≥ 0.999 (seed 001).
// - cloud_rate: queries with at least one cloud tier call (sent, or refused by an open
//   breaker) / total_queries.
// - edge_utilisation: among queries the edge model did not flag out of scope, the share it
//   answered at the edge — in shadow mode, would have answered (ShadowComparison.edgeRoute).
//   Out-of-scope queries are excluded because the edge is not meant to answer them: counting
//   them would blame the model for the traffic mix; out_of_scope_rate is reported beside it.
// - accuracy_estimate: the shadow agreement rate when shadow rows exist, else unknown (null).
// - percentiles: nearest rank on total latency — the smallest value with at least p % of the
//   values at or below it (rank ⌈p·n/100⌉ of the sorted values).

import TriageCascade
import TriageCloud
import TriageJSON
import TriageSystem

/// Price of one cloud tier in dollars per million tokens.
public struct TierPrice: Sendable, Equatable {
    public var inputPerMillion: Double
    public var outputPerMillion: Double
    public init(inputPerMillion: Double, outputPerMillion: Double) {
        self.inputPerMillion = inputPerMillion; self.outputPerMillion = outputPerMillion
    }
    public func cost(inputTokens: Double, outputTokens: Double) -> Double {
        (inputTokens * inputPerMillion + outputTokens * outputPerMillion) / 1_000_000
    }
    /// The price a cloud tier's config sets: the one set of prices the cascade bills with.
    public init(_ tier: CloudTierConfig) {
        self.init(inputPerMillion: tier.inputUSDPerMTok, outputPerMillion: tier.outputUSDPerMTok)
    }
}

/// Every threshold and target of the report; the defaults are the seed values.
public struct ReportPolicy: Sendable, Equatable {
    // Alerts (seed).
    public var minEdgeUtilisation = 0.80
    public var minAccuracy = 0.85
    public var maxCostPerQueryUSD = 0.01
    public var maxP95LatencyMs = 150.0
    // Error budgets: the share of wrong answers each tier may give (config error_budget).
    public var edgeErrorBudget = 0.05
    public var smallErrorBudget = 0.10
    // Health score (seed): start, bands and penalties.
    public var healthStart = 100
    public var edgeUtilisationWarn = 0.90
    public var edgeUtilisationWarnPenalty = 10
    public var edgeUtilisationCritical = 0.80
    public var edgeUtilisationCriticalPenalty = 20
    public var accuracyWarn = 0.90
    public var accuracyWarnPenalty = 15
    public var accuracyCritical = 0.80
    public var accuracyCriticalPenalty = 30
    public var alertPenalty = 5
    public var maxAlertPenalty = 30
    // Status bands (seed): excellent ≥ 90, good ≥ 75, fair ≥ 60, poor ≥ 40, else critical.
    public var excellentAtLeast = 90
    public var goodAtLeast = 75
    public var fairAtLeast = 60
    public var poorAtLeast = 40
    // SLA targets (seed).
    public var slaP50Ms = 1000.0
    public var slaP95Ms = 2500.0
    public var slaP99Ms = 3000.0
    public var slaMaxEscalationRate = 0.15
    /// Availability SLA (seed 001: 99.9 %), and what missing it costs the health score:
    /// −10 below the SLA, −20 more below 0.99; the score is then scaled by availability, so
    /// a window where nothing was answered scores 0.
    public var slaAvailability = 0.999
    public var availabilityWarnPenalty = 10
    public var availabilityCritical = 0.99
    public var availabilityCriticalPenalty = 20
    // Money: the cloud config's prices (`TriageConfig.small`/`.large`, whose defaults are the
    // seed's), and the token estimate used when a tier has no real calls.
    public var smallTierPrice = TierPrice(CloudTierConfig.small)
    public var largeTierPrice = TierPrice(CloudTierConfig.large)
    /// Edge cost per query from the config (record.edge_cost_usd), for projections.
    public var edgeCostUSD = 0.0
    /// Projections at this many queries a day instead of the observed rate.
    public var volumePerDay: Double? = nil
    /// Monthly cost of one edge box, for the break-even volume.
    public var boxCostPerMonthUSD: Double? = nil
    /// Trends: the window is cut into this many equal time buckets; a trend whose fitted
    /// change over the window is within this fraction of its mean is "stable".
    public var trendBuckets = 8
    public var trendStableFraction = 0.05
    public var defaultInputTokens = 150.0
    public var defaultOutputTokens = 200.0
    // Findings beyond the seed alerts (not seed values: chosen here, configurable).
    public var overRoutingWarn = 0.10
    public var underRoutingWarn = 0.05
    /// At most this many review-flagged queries are listed (most recent first).
    public var maxReviewListed = 50

    public init() {}

    /// The seed policy with the prices and edge cost of a config.
    public init(config: TriageConfig) {
        self.init()
        smallTierPrice = TierPrice(config.small)
        largeTierPrice = TierPrice(config.large)
        edgeCostUSD = config.edgeCostUSD
        edgeErrorBudget = config.edgeErrorBudget
        smallErrorBudget = config.smallErrorBudget
    }
}

public struct Report: Sendable {
    public enum Status: String, Sendable, Equatable {
        case excellent, good, fair, poor, critical
        /// No decisions in the window: no score.
        case noData = "no_data"
    }

    public struct TierStats: Sendable, Equatable {
        public var tier: String
        /// Tier calls recorded (one per query that reached this tier, however many attempts).
        public var calls = 0
        public var successfulCalls = 0
        public var failedCalls = 0
        public var breakerRejections = 0
        public var attempts = 0
        public var inputTokens = 0
        public var outputTokens = 0
        /// Cost of every call of this tier, failed ones included.
        public var costUSD = 0.0
        /// Cost of the successful calls.
        public var successfulCostUSD = 0.0
        /// successfulCostUSD / successfulCalls.
        public var costPerInferenceUSD: Double?
        /// Mean tokens of the successful calls that reported usage.
        public var meanInputTokens: Double?
        public var meanOutputTokens: Double?
    }

    public struct Savings: Sendable, Equatable {
        public var tier: String
        /// What every query in the window would have cost on this tier alone.
        public var hypotheticalCostUSD: Double
        /// hypotheticalCostUSD − the recorded total cost.
        public var savingsUSD: Double
        /// savingsUSD / hypotheticalCostUSD (nil when that is 0).
        public var savingsRate: Double?
        /// Queries priced with the tokens of their own answering cloud call.
        public var observedQueries: Int
        /// Queries priced with the estimate below (edge, cache, unanswered).
        public var estimatedQueries: Int
        public var estimateInputTokens: Double
        public var estimateOutputTokens: Double
        /// "observed_mean" (this tier's real calls in the window) or "default".
        public var estimateSource: String
    }

    public struct ShadowStats: Sendable, Equatable {
        public var queries: Int
        public var agreements: Int
        public var overRouted: Int
        public var underRouted: Int
        public var edgeWouldAnswer: Int
        public var agreementRate: Double
        public var overRoutingRate: Double
        public var underRoutingRate: Double
    }

    public struct Alert: Sendable, Equatable {
        /// edge_utilisation, accuracy, cost_per_query, p95_latency
        public var name: String
        public var value: Double
        public var threshold: Double
        /// "below" or "above": which side of the threshold fires.
        public var comparison: String
        public var message: String
    }

    public struct SLACheck: Sendable, Equatable {
        /// p50_latency_ms, p95_latency_ms, p99_latency_ms, escalation_rate
        public var name: String
        public var value: Double?
        public var target: Double
        public var met: Bool?
    }

    public struct ReviewItem: Sendable, Equatable {
        public var timestamp: Double
        public var label: String
        public var confidence: Double
        public var queryHash: String
        public var queryText: String?
    }

    public let policy: ReportPolicy
    public let generatedAt: Double
    public let since: Double?
    public let firstTimestamp: Double?
    public let lastTimestamp: Double?

    public let totalQueries: Int
    public let routeCounts: [Route: Int]
    public let edgeShare: Double?
    public let smallShare: Double?
    public let largeShare: Double?
    public let noneShare: Double?
    public let escalations: Int
    public let escalationRate: Double?
    /// Answered by another tier than the one meant to (see the definitions above).
    public let fallbacks: Int
    public let unanswered: Int
    public let answered: Int
    public let availability: Double?
    /// Decisions dropped unshipped by the backlog bound (record.max_pending), in gaps.
    public let gaps: [RecordGap]
    public let droppedUnshipped: Int
    /// Projections, break-even, breakdowns and trends.
    public let depth: ReportDepth
    /// Escalations among the queries that reached the small tier.
    public let smallToLargeRate: Double?
    public let cloudQueries: Int
    public let cloudRate: Double?
    public let cacheHits: Int
    public let cacheHitRate: Double?
    public let outOfScope: Int
    public let outOfScopeRate: Double?
    /// Decisions per reason, most frequent first (ties by name).
    public let reasonCounts: [(reason: String, count: Int)]
    public let uniqueQueries: Int
    /// Queries whose salted hash was already seen earlier in the window.
    public let repeatedQueries: Int

    public let totalCostUSD: Double
    public let costPerQueryUSD: Double?
    public let small: TierStats
    public let large: TierStats
    public let savingsVsLarge: Savings
    public let savingsVsSmall: Savings
    public static let savingsMethod = """
        hypothetical cost if every query had gone to that tier alone, at its per-token prices: \
        a query answered by a cloud tier is priced with the input/output tokens of its answering call; \
        every other query (edge, cache hit, unanswered, or a call without usage) with the mean input/output \
        tokens of that tier's successful calls in the window, or the default estimate when it had none; \
        savings = hypothetical cost - recorded total cost
        """

    public let latencyP50Ms: Double?
    public let latencyP95Ms: Double?
    public let latencyP99Ms: Double?
    public let latencyMeanMs: Double?
    public let latencyMaxMs: Double?
    public let edgeLatencyP95Ms: Double?
    public let cloudLatencyP95Ms: Double?

    public let reviewCount: Int
    /// Most recent first, at most policy.maxReviewListed.
    public let reviewItems: [ReviewItem]

    public let shadow: ShadowStats?
    public let accuracyEstimate: Double?
    /// Where `accuracyEstimate` comes from: "review labels", "shadow agreement" or "unknown".
    public let accuracySource: String
    /// What the review labels measured (nil when none were given).
    public let measured: MeasuredAccuracy?
    /// The candidate edge model against the primary (nil when none ran).
    public let candidate: CandidateComparison?
    public let inScopeQueries: Int
    public let edgeUtilisation: Double?
    /// Why the edge did not answer in-scope queries: reason → count, most frequent first.
    public let edgeMissReasons: [(reason: String, count: Int)]

    public let alerts: [Alert]
    public let healthScore: Int?
    public let status: Status
    public let sla: [SLACheck]
    public let slaMet: Bool?
    /// One concrete line per alert or finding.
    public private(set) var recommendations: [String] = []

    public static let edgeUtilisationDefinition = """
        share of in-scope queries (not flagged out of scope by the edge model) answered at the edge; \
        in shadow mode, the share the edge would have answered
        """
    public static let escalationDefinition = "queries sent to the large tier after the small tier (breaker-refused calls excluded), over all queries"

    /// Computes the report over `decisions` with `timestamp >= since` (all when nil).
    public init(decisions all: [Decision], gaps allGaps: [RecordGap] = [], since: Double? = nil, now: Double = Clock.unixTime(),
                policy: ReportPolicy = ReportPolicy(), measured: MeasuredAccuracy? = nil,
                candidate: CandidateComparison? = nil) {
        self.candidate = candidate
        self.policy = policy
        gaps = since.map { s in allGaps.filter { $0.lastTimestamp >= s } } ?? allGaps
        droppedUnshipped = gaps.reduce(0) { $0 + $1.dropped }
        self.generatedAt = now
        self.since = since
        let ds = since.map { s in all.filter { $0.timestamp >= s } } ?? all
        let n = ds.count
        func rate(_ k: Int, _ d: Int) -> Double? { d > 0 ? Double(k) / Double(d) : nil }

        totalQueries = n
        firstTimestamp = ds.map(\.timestamp).min()
        lastTimestamp = ds.map(\.timestamp).max()

        var routes: [Route: Int] = [:]
        for r in Route.allCases { routes[r] = 0 }
        var reasons: [String: Int] = [:]
        var escalations = 0, reachedSmall = 0, cloud = 0, cached = 0, oos = 0, fallbacks = 0
        var seen = Set<String>()
        var repeats = 0
        for d in ds {
            routes[d.route, default: 0] += 1
            reasons[d.reason, default: 0] += 1
            if let s = d.tiers.firstIndex(where: { $0.tier == "small" }) {
                reachedSmall += 1
                if d.tiers[s].succeeded, d.tiers[(s + 1)...].contains(where: { $0.tier == "large" && !$0.rejectedByBreaker }) {
                    escalations += 1
                }
            }
            if Report.isFallback(d) { fallbacks += 1 }
            if !d.tiers.isEmpty { cloud += 1 }
            if d.cached { cached += 1 }
            if d.outOfScope { oos += 1 }
            if !seen.insert(d.queryHash).inserted { repeats += 1 }
        }
        routeCounts = routes
        edgeShare = rate(routes[.edge]!, n)
        smallShare = rate(routes[.small]!, n)
        largeShare = rate(routes[.large]!, n)
        noneShare = rate(routes[.none]!, n)
        self.escalations = escalations
        escalationRate = rate(escalations, n)
        self.fallbacks = fallbacks
        unanswered = routes[.none]!
        answered = n - unanswered
        availability = rate(n - unanswered - fallbacks, n)
        smallToLargeRate = rate(escalations, reachedSmall)
        cloudQueries = cloud
        cloudRate = rate(cloud, n)
        cacheHits = cached
        cacheHitRate = rate(cached, n)
        outOfScope = oos
        outOfScopeRate = rate(oos, n)
        reasonCounts = Report.sortedCounts(reasons)
        uniqueQueries = seen.count
        repeatedQueries = repeats

        // Money.
        let total = ds.reduce(0.0) { $0 + $1.costUSD }
        totalCostUSD = total
        costPerQueryUSD = n > 0 ? total / Double(n) : nil
        var tierStats = ["small": TierStats(tier: "small"), "large": TierStats(tier: "large")]
        var tokenSums: [String: (input: Int, output: Int, calls: Int)] = [:]
        for d in ds {
            for t in d.tiers {
                var s = tierStats[t.tier] ?? TierStats(tier: t.tier)
                s.calls += 1
                s.attempts += t.attempts
                s.inputTokens += t.inputTokens
                s.outputTokens += t.outputTokens
                s.costUSD += t.costUSD
                if t.succeeded {
                    s.successfulCalls += 1
                    s.successfulCostUSD += t.costUSD
                    if t.inputTokens + t.outputTokens > 0 {
                        var sum = tokenSums[t.tier] ?? (0, 0, 0)
                        sum.input += t.inputTokens; sum.output += t.outputTokens; sum.calls += 1
                        tokenSums[t.tier] = sum
                    }
                } else if t.rejectedByBreaker {
                    s.breakerRejections += 1
                } else {
                    s.failedCalls += 1
                }
                tierStats[t.tier] = s
            }
        }
        for (name, var s) in tierStats {
            if s.successfulCalls > 0 { s.costPerInferenceUSD = s.successfulCostUSD / Double(s.successfulCalls) }
            if let sum = tokenSums[name], sum.calls > 0 {
                s.meanInputTokens = Double(sum.input) / Double(sum.calls)
                s.meanOutputTokens = Double(sum.output) / Double(sum.calls)
            }
            tierStats[name] = s
        }
        small = tierStats["small"]!
        large = tierStats["large"]!

        func savings(_ stats: TierStats, _ price: TierPrice) -> Savings {
            let observedMean = stats.meanInputTokens != nil
            let estIn = stats.meanInputTokens ?? policy.defaultInputTokens
            let estOut = stats.meanOutputTokens ?? policy.defaultOutputTokens
            var hypothetical = 0.0, observed = 0, estimated = 0
            for d in ds where d.route != .none {
                if let call = Report.answeringCall(d) {
                    observed += 1
                    hypothetical += price.cost(inputTokens: Double(call.inputTokens), outputTokens: Double(call.outputTokens))
                } else {
                    estimated += 1
                    hypothetical += price.cost(inputTokens: estIn, outputTokens: estOut)
                }
            }
            let saved = hypothetical - total
            return Savings(tier: stats.tier, hypotheticalCostUSD: hypothetical, savingsUSD: saved,
                           savingsRate: hypothetical > 0 ? saved / hypothetical : nil,
                           observedQueries: observed, estimatedQueries: estimated,
                           estimateInputTokens: estIn, estimateOutputTokens: estOut,
                           estimateSource: observedMean ? "observed_mean" : "default")
        }
        savingsVsLarge = savings(large, policy.largeTierPrice)
        savingsVsSmall = savings(small, policy.smallTierPrice)

        // Latency.
        let latencies = ds.map(\.latency.totalMs).sorted()
        latencyP50Ms = Report.percentile(sorted: latencies, 50)
        latencyP95Ms = Report.percentile(sorted: latencies, 95)
        latencyP99Ms = Report.percentile(sorted: latencies, 99)
        latencyMeanMs = n > 0 ? latencies.reduce(0, +) / Double(n) : nil
        latencyMaxMs = latencies.last
        edgeLatencyP95Ms = Report.percentile(ds.filter { $0.route == .edge }.map(\.latency.totalMs), 95)
        cloudLatencyP95Ms = Report.percentile(ds.filter { !$0.tiers.isEmpty }.map(\.latency.totalMs), 95)

        // Review queue.
        let flagged = ds.filter(\.review)
        reviewCount = flagged.count
        reviewItems = flagged.reversed().prefix(max(0, policy.maxReviewListed)).map {
            ReviewItem(timestamp: $0.timestamp, label: $0.label, confidence: $0.confidence,
                       queryHash: $0.queryHash, queryText: $0.queryText)
        }

        // Shadow mode.
        let shadowRows = ds.filter { $0.shadow != nil }
        if shadowRows.isEmpty {
            shadow = nil
        } else {
            var agree = 0, over = 0, under = 0, edgeAnswers = 0
            for d in shadowRows {
                let s = d.shadow!
                let edgeLabel: String? = d.outOfScope ? nil : d.label
                let agrees = edgeLabel == s.cloudLabel
                let wouldAnswer = s.edgeRoute == .edge
                if agrees { agree += 1 }
                if wouldAnswer { edgeAnswers += 1 }
                if !wouldAnswer && !d.outOfScope && agrees { over += 1 }
                if wouldAnswer && !agrees { under += 1 }
            }
            let m = Double(shadowRows.count)
            shadow = ShadowStats(queries: shadowRows.count, agreements: agree, overRouted: over, underRouted: under,
                                 edgeWouldAnswer: edgeAnswers, agreementRate: Double(agree) / m,
                                 overRoutingRate: Double(over) / m, underRoutingRate: Double(under) / m)
        }
        // Human labels measure the edge's accuracy itself; shadow agreement with the cloud
        // model is the fallback estimate.
        self.measured = measured.flatMap { $0.edge.accuracy == nil && $0.smallSuccess == nil ? nil : $0 }
        if let acc = self.measured?.edge.accuracy {
            accuracyEstimate = acc
            accuracySource = "review labels"
        } else {
            accuracyEstimate = shadow?.agreementRate
            accuracySource = shadow == nil ? "unknown (no review labels, no shadow-mode rows)" : "shadow agreement"
        }

        // Edge utilisation over in-scope queries (would-be route in shadow mode).
        let inScope = ds.filter { !$0.outOfScope }
        inScopeQueries = inScope.count
        var atEdge = 0
        var missReasons: [String: Int] = [:]
        for d in inScope {
            let route = d.shadow?.edgeRoute ?? d.route
            if route == .edge { atEdge += 1 } else { missReasons[d.shadow?.edgeReason ?? d.reason, default: 0] += 1 }
        }
        edgeUtilisation = rate(atEdge, inScope.count)
        edgeMissReasons = Report.sortedCounts(missReasons)

        // Alerts (seed).
        var alerts: [Alert] = []
        if let eu = edgeUtilisation, eu < policy.minEdgeUtilisation {
            alerts.append(Alert(name: "edge_utilisation", value: eu, threshold: policy.minEdgeUtilisation, comparison: "below",
                                message: "edge utilisation \(fmt(eu, 2)) < \(fmt(policy.minEdgeUtilisation, 2))"))
        }
        if let acc = accuracyEstimate, acc < policy.minAccuracy {
            alerts.append(Alert(name: "accuracy", value: acc, threshold: policy.minAccuracy, comparison: "below",
                                message: "estimated accuracy \(fmt(acc, 2)) < \(fmt(policy.minAccuracy, 2))"))
        }
        if let cpq = costPerQueryUSD, cpq > policy.maxCostPerQueryUSD {
            alerts.append(Alert(name: "cost_per_query", value: cpq, threshold: policy.maxCostPerQueryUSD, comparison: "above",
                                message: "cost per query $\(fmt(cpq, 4)) > $\(fmt(policy.maxCostPerQueryUSD, 4))"))
        }
        if let av = availability, av < policy.slaAvailability {
            alerts.append(Alert(name: "availability", value: av, threshold: policy.slaAvailability, comparison: "below",
                                message: "availability \(fmt(av * 100, 2)) % < \(fmt(policy.slaAvailability * 100, 1)) % "
                                    + "(\(unanswered) unanswered, \(fallbacks) fallbacks)"))
        }
        if droppedUnshipped > 0 {
            alerts.append(Alert(name: "dropped_unshipped", value: Double(droppedUnshipped), threshold: 0, comparison: "above",
                                message: "\(plural(droppedUnshipped, "decision", "decisions")) dropped unshipped (record.max_pending)"))
        }
        if let p95 = latencyP95Ms, p95 > policy.maxP95LatencyMs {
            alerts.append(Alert(name: "p95_latency", value: p95, threshold: policy.maxP95LatencyMs, comparison: "above",
                                message: "p95 latency \(fmt(p95, 1)) ms > \(fmt(policy.maxP95LatencyMs, 1)) ms"))
        }
        self.alerts = alerts

        // Health and status.
        if n == 0 {
            healthScore = nil
            status = .noData
        } else {
            let score = Report.healthScore(edgeUtilisation: edgeUtilisation, accuracy: accuracyEstimate,
                                           alertCount: alerts.count, availability: availability, policy: policy)
            healthScore = score
            status = Report.status(score: score, policy: policy)
        }

        // SLA.
        let checks: [(String, Double?, Double)] = [
            ("p50_latency_ms", latencyP50Ms, policy.slaP50Ms), ("p95_latency_ms", latencyP95Ms, policy.slaP95Ms),
            ("p99_latency_ms", latencyP99Ms, policy.slaP99Ms), ("escalation_rate", escalationRate, policy.slaMaxEscalationRate),
        ]
        sla = checks.map { name, value, target in
            SLACheck(name: name, value: value, target: target, met: value.map { $0 <= target })
        } + [SLACheck(name: "availability", value: availability, target: policy.slaAvailability,
                      met: availability.map { $0 >= policy.slaAvailability })]
        slaMet = n == 0 ? nil : sla.allSatisfy { $0.met == true }

        let largeEstimate = (input: large.meanInputTokens ?? policy.defaultInputTokens,
                             output: large.meanOutputTokens ?? policy.defaultOutputTokens)
        let largePrice = policy.largeTierPrice
        depth = ReportDepth(decisions: ds, since: since, now: now, policy: policy,
                            allLargeCostUSD: savingsVsLarge.hypotheticalCostUSD, totalCostUSD: total,
                            allLargeCostOf: { d in
                                // The same pricing as savingsVsLarge, one decision at a time.
                                guard d.route != .none else { return 0 }
                                if let call = Report.answeringCall(d) {
                                    return largePrice.cost(inputTokens: Double(call.inputTokens), outputTokens: Double(call.outputTokens))
                                }
                                return largePrice.cost(inputTokens: largeEstimate.input, outputTokens: largeEstimate.output)
                            })
        recommendations = makeRecommendations()
    }

    /// Answered, but not by the tier meant to answer: see the definitions at the top.
    public static func isFallback(_ d: Decision) -> Bool {
        if d.route == .none { return false }
        if d.reason == "cloud_unavailable" { return true }
        if d.route == .large, let s = d.tiers.firstIndex(where: { $0.tier == "small" }), !d.tiers[s].succeeded { return true }
        return false
    }

    // MARK: Pieces, public for tests and reuse

    /// Nearest-rank percentile: the value at rank ⌈percent·n/100⌉ (1-based) of the sorted
    /// values; nil for no values. Integer arithmetic, so 95 % of 20 is exactly rank 19.
    public static func percentile(_ values: [Double], _ percent: Int) -> Double? {
        percentile(sorted: values.sorted(), percent)
    }

    static func percentile(sorted: [Double], _ percent: Int) -> Double? {
        guard !sorted.isEmpty else { return nil }
        let p = min(max(percent, 0), 100)
        let rank = max(1, (p * sorted.count + 99) / 100)
        return sorted[rank - 1]
    }

    /// Seed health score: from `healthStart`, −10 if edge utilisation < 0.90 and −20 more
    /// below 0.80; −15 if accuracy < 0.90 and −30 more below 0.80 (unknown values cost
    /// nothing); −5 per alert, at most −30 for alerts; never below 0.
    public static func healthScore(edgeUtilisation: Double?, accuracy: Double?, alertCount: Int,
                                   availability: Double? = nil, policy: ReportPolicy = ReportPolicy()) -> Int {
        var score = policy.healthStart
        if let av = availability {
            if av < policy.slaAvailability { score -= policy.availabilityWarnPenalty }
            if av < policy.availabilityCritical { score -= policy.availabilityCriticalPenalty }
        }
        if let eu = edgeUtilisation {
            if eu < policy.edgeUtilisationWarn { score -= policy.edgeUtilisationWarnPenalty }
            if eu < policy.edgeUtilisationCritical { score -= policy.edgeUtilisationCriticalPenalty }
        }
        if let acc = accuracy {
            if acc < policy.accuracyWarn { score -= policy.accuracyWarnPenalty }
            if acc < policy.accuracyCritical { score -= policy.accuracyCriticalPenalty }
        }
        score -= min(policy.alertPenalty * alertCount, policy.maxAlertPenalty)
        // Scaled by availability: what was not answered cannot be healthy.
        let scaled = Double(max(0, score)) * (availability ?? 1)
        return max(0, Int(scaled.rounded(.down)))
    }

    public static func status(score: Int, policy: ReportPolicy = ReportPolicy()) -> Status {
        if score >= policy.excellentAtLeast { return .excellent }
        if score >= policy.goodAtLeast { return .good }
        if score >= policy.fairAtLeast { return .fair }
        if score >= policy.poorAtLeast { return .poor }
        return .critical
    }

    /// The call that produced a cloud answer: the last successful call of the answering
    /// tier (else the last successful one), if it reported token usage.
    static func answeringCall(_ d: Decision) -> TierCall? {
        let ok = d.tiers.filter { $0.succeeded && $0.inputTokens + $0.outputTokens > 0 }
        return ok.last(where: { $0.tier == d.route.rawValue }) ?? ok.last
    }

    static func sortedCounts(_ counts: [String: Int]) -> [(reason: String, count: Int)] {
        counts.map { (reason: $0.key, count: $0.value) }.sorted { $0.count != $1.count ? $0.count > $1.count : $0.reason < $1.reason }
    }

    private func makeRecommendations() -> [String] {
        var out: [String] = []
        let p = policy
        if totalQueries == 0 {
            return ["no decisions recorded in this window: nothing to recommend yet"]
        }
        for alert in alerts {
            switch alert.name {
            case "edge_utilisation":
                let misses = edgeMissReasons.reduce(0) { $0 + $1.count }
                let top = edgeMissReasons.prefix(2).map { "\(pct(Double($0.count) / Double(max(misses, 1)))) were \($0.reason)" }
                var advice = "lower the confidence threshold or retrain the edge model"
                if edgeMissReasons.first?.reason == "high_complexity" { advice = "raise the complexity threshold or retrain the edge model" }
                out.append("edge utilisation \(fmt(alert.value, 2)) < \(fmt(alert.threshold, 2)): \(advice); of the \(misses) in-scope queries not answered at the edge, "
                           + top.joined(separator: ", "))
            case "accuracy" where measured != nil:
                let worst = measured!.perIntent.filter { $0.correct < $0.labelled }.prefix(3)
                out.append("measured edge accuracy \(fmt(alert.value, 2)) < \(fmt(alert.threshold, 2)) (review labels): "
                           + "raise the confidence threshold (`triage tune --from-record`) and retrain with the labelled queries"
                           + (worst.isEmpty ? "" : "; most wrong: " + worst.map { $0.label }.joined(separator: ", ")))
            case "accuracy":
                let s = shadow!
                out.append("estimated accuracy \(fmt(alert.value, 2)) < \(fmt(alert.threshold, 2)) (shadow agreement over \(s.queries) queries): "
                           + "retrain the edge model on the \(plural(s.queries - s.agreements, "query", "queries")) where it disagreed with the cloud; "
                           + "until then raise the confidence threshold (under-routing \(fmt(s.underRoutingRate, 2)))")
            case "cost_per_query":
                let cloudCost = small.costUSD + large.costUSD
                let largePart = cloudCost > 0 ? large.costUSD / cloudCost : 0
                out.append("cost per query $\(fmt(alert.value, 4)) > $\(fmt(alert.threshold, 4)): the large tier took \(pct(largePart)) of the cloud spend; "
                           + "send more categories to the small tier first, answer more at the edge, or lengthen the cache TTL (cache hit rate \(fmt(cacheHitRate ?? 0, 2)))")
            case "availability":
                out.append("availability \(fmt(alert.value * 100, 2)) % < \(fmt(alert.threshold * 100, 1)) %: \(plural(unanswered, "query was", "queries were")) not answered and "
                           + "\(plural(fallbacks, "was", "were")) answered by a fallback; check the cloud tiers' reachability, keys and breakers")
            case "dropped_unshipped":
                out.append("\(plural(droppedUnshipped, "decision was", "decisions were")) dropped before reaching the fleet database (record.max_pending): "
                           + "check the database and `triage sync`, or raise the bound")
            case "p95_latency":
                let edgeP95 = edgeLatencyP95Ms.map { "\(fmt($0, 1)) ms" } ?? "n/a"
                let cloudP95 = cloudLatencyP95Ms.map { "\(fmt($0, 1)) ms" } ?? "n/a"
                out.append("p95 latency \(fmt(alert.value, 1)) ms > \(fmt(alert.threshold, 1)) ms: \(pct(cloudRate ?? 0)) of queries waited for the cloud "
                           + "(cloud p95 \(cloudP95), edge p95 \(edgeP95)); answer more at the edge, lower max_tokens, or use the cache")
            default: break
            }
        }
        // The availability SLA has its own line among the alerts' recommendations.
        for check in sla where check.met == false && check.name != "availability" {
            if check.name == "escalation_rate" {
                out.append("SLA: escalation rate \(fmt(check.value ?? 0, 2)) exceeds the \(fmt(check.target, 2)) target: "
                           + "\(pct(smallToLargeRate ?? 0)) of small-tier answers were escalated; move the categories that escalate most straight to the large tier, or tune the answer check")
            } else {
                out.append("SLA: \(slaLabel(check.name)) \(fmt(check.value ?? 0, 1)) ms exceeds the \(fmt(check.target, 0)) ms target: "
                           + "check cloud latency, retries and timeouts")
            }
        }
        if let s = shadow {
            if s.overRoutingRate > p.overRoutingWarn {
                out.append("over-routing \(fmt(s.overRoutingRate, 2)) > \(fmt(p.overRoutingWarn, 2)): the edge escalated \(plural(s.overRouted, "query", "queries")) whose label the cloud confirmed; "
                           + "a lower confidence threshold would keep them at the edge")
            }
            if s.underRoutingRate > p.underRoutingWarn {
                out.append("under-routing \(fmt(s.underRoutingRate, 2)) > \(fmt(p.underRoutingWarn, 2)): the edge would have answered \(plural(s.underRouted, "query", "queries")) the cloud read differently; "
                           + "raise the confidence threshold or retrain on them")
            }
        } else if measured?.edge.accuracy == nil {
            // With review labels the accuracy is measured (its own section and alert).
            out.append("accuracy is unknown: label the review queue (`triage review export`, then `import`) or run a sample of traffic in shadow mode")
        }
        let rejected = small.breakerRejections + large.breakerRejections
        let failed = small.failedCalls + large.failedCalls
        if rejected + failed > 0 {
            out.append("\(plural(failed, "cloud call", "cloud calls")) failed and \(rejected) \(rejected == 1 ? "was" : "were") refused by an open circuit breaker: check the API key, network and rate limits")
        }
        if reviewCount > 0 {
            out.append("\(plural(reviewCount, "query", "queries")) \(reviewCount == 1 ? "was" : "were") flagged for review (answered at the edge with middling confidence): check their labels and add them to the training set")
        }
        if out.isEmpty { out.append("no action needed") }
        return out
    }
}

// MARK: - Output

extension Report {
    public var json: JSONValue {
        func num(_ x: Double?) -> JSONValue { x.map { .number($0) } ?? .null }
        func tier(_ s: TierStats) -> JSONValue {
            .object([
                ("calls", .int(s.calls)), ("successful_calls", .int(s.successfulCalls)), ("failed_calls", .int(s.failedCalls)),
                ("breaker_rejections", .int(s.breakerRejections)), ("attempts", .int(s.attempts)),
                ("input_tokens", .int(s.inputTokens)), ("output_tokens", .int(s.outputTokens)),
                ("cost_usd", .number(s.costUSD)), ("successful_cost_usd", .number(s.successfulCostUSD)),
                ("cost_per_inference_usd", num(s.costPerInferenceUSD)),
                ("mean_input_tokens", num(s.meanInputTokens)), ("mean_output_tokens", num(s.meanOutputTokens)),
            ])
        }
        func savings(_ s: Savings) -> JSONValue {
            .object([
                ("hypothetical_cost_usd", .number(s.hypotheticalCostUSD)), ("savings_usd", .number(s.savingsUSD)),
                ("savings_rate", num(s.savingsRate)), ("observed_queries", .int(s.observedQueries)),
                ("estimated_queries", .int(s.estimatedQueries)), ("estimate_input_tokens", .number(s.estimateInputTokens)),
                ("estimate_output_tokens", .number(s.estimateOutputTokens)), ("estimate_source", .string(s.estimateSource)),
            ])
        }
        let shadowJSON: JSONValue = shadow.map { s in
            .object([
                ("queries", .int(s.queries)), ("agreements", .int(s.agreements)), ("agreement_rate", .number(s.agreementRate)),
                ("over_routed", .int(s.overRouted)), ("over_routing_rate", .number(s.overRoutingRate)),
                ("under_routed", .int(s.underRouted)), ("under_routing_rate", .number(s.underRoutingRate)),
                ("edge_would_answer", .int(s.edgeWouldAnswer)),
            ])
        } ?? .null
        var o: [(String, JSONValue)] = []
        func put(_ key: String, _ value: JSONValue) { o.append((key, value)) }
        put("generated_at", .number(generatedAt))
        put("since", num(since))
        put("first_timestamp", num(firstTimestamp))
        put("last_timestamp", num(lastTimestamp))
        put("total_queries", .int(totalQueries))
        let routes: [(String, JSONValue)] = Route.allCases.map { r in (r.rawValue, JSONValue.int(routeCounts[r] ?? 0)) }
        put("route_counts", .object(routes))
        put("edge_share", num(edgeShare))
        let shares: [(String, JSONValue)] = [("small", num(smallShare)), ("large", num(largeShare)), ("none", num(noneShare))]
        put("tier_shares", .object(shares))
        put("escalations", .int(escalations))
        put("escalation_rate", num(escalationRate))
        put("escalation_definition", .string(Report.escalationDefinition))
        put("small_to_large_rate", num(smallToLargeRate))
        put("fallbacks", .int(fallbacks))
        put("unanswered", .int(unanswered))
        put("answered", .int(answered))
        put("availability", num(availability))
        put("availability_definition", .string("share of queries answered by the tier meant to answer them: (total - unanswered - fallbacks) / total"))
        put("dropped_unshipped", .int(droppedUnshipped))
        put("gaps", .array(gaps.map { g in
            .object([("node", .string(g.node)), ("uid", .string(g.uid)), ("dropped", .int(g.dropped)), ("cost_usd", .number(g.costUSD)),
                     ("first_timestamp", .number(g.firstTimestamp)), ("last_timestamp", .number(g.lastTimestamp)),
                     ("reason", .string(g.reason))])
        }))
        put("cloud_queries", .int(cloudQueries))
        put("cloud_rate", num(cloudRate))
        put("cache_hits", .int(cacheHits))
        put("cache_hit_rate", num(cacheHitRate))
        put("out_of_scope", .int(outOfScope))
        put("out_of_scope_rate", num(outOfScopeRate))
        put("unique_queries", .int(uniqueQueries))
        put("repeated_queries", .int(repeatedQueries))
        let reasons: [(String, JSONValue)] = reasonCounts.map { r in (r.reason, JSONValue.int(r.count)) }
        put("reasons", .object(reasons))
        put("total_cost_usd", .number(totalCostUSD))
        put("cost_per_query_usd", num(costPerQueryUSD))
        put("tiers", .object([("small", tier(small)), ("large", tier(large))]))
        put("savings", .object([("vs_large", savings(savingsVsLarge)), ("vs_small", savings(savingsVsSmall))]))
        put("savings_method", .string(Report.savingsMethod))
        var latency: [(String, JSONValue)] = []
        latency.append(("p50", num(latencyP50Ms)))
        latency.append(("p95", num(latencyP95Ms)))
        latency.append(("p99", num(latencyP99Ms)))
        latency.append(("mean", num(latencyMeanMs)))
        latency.append(("max", num(latencyMaxMs)))
        latency.append(("edge_p95", num(edgeLatencyP95Ms)))
        latency.append(("cloud_p95", num(cloudLatencyP95Ms)))
        latency.append(("method", .string("nearest rank over total latency")))
        put("latency_ms", .object(latency))
        let reviewed: [JSONValue] = reviewItems.map { r in
            var item: [(String, JSONValue)] = []
            item.append(("timestamp", .number(r.timestamp)))
            item.append(("time", .string(formatUTC(r.timestamp))))
            item.append(("label", .string(r.label)))
            item.append(("confidence", .number(r.confidence)))
            item.append(("query_hash", .string(r.queryHash)))
            item.append(("query_text", r.queryText.map { JSONValue.string($0) } ?? .null))
            return .object(item)
        }
        put("review", .object([("count", .int(reviewCount)), ("queries", .array(reviewed))]))
        put("shadow", shadowJSON)
        put("accuracy_estimate", num(accuracyEstimate))
        put("accuracy_source", .string(accuracySource))
        if let c = candidate {
            func side(_ s: CandidateComparison.Side) -> JSONValue {
                .object([("model_version", .string(s.modelVersion)), ("edge_share", .number(s.edgeShare)),
                         ("labelled", .int(s.labelled)), ("correct", .int(s.correct)), ("accuracy", num(s.accuracy)),
                         ("edge_ms_p50", num(s.edgeMsP50))])
            }
            put("candidate", .object([
                ("queries", .int(c.queries)), ("candidate_served", .int(c.candidateServed)), ("agreement", .number(c.agreement)),
                ("primary", side(c.primary)), ("candidate", side(c.candidate)),
                ("recommendation", .string(c.recommendation)), ("why", .string(c.why)),
            ]))
        }
        if let m = measured {
            let e = m.edge
            func budget(_ accuracy: Double?, _ budget: Double) -> JSONValue {
                guard let a = accuracy else { return .null }
                return .object([("budget", .number(budget)), ("error_rate", .number(1 - a)), ("spent", .number((1 - a) / budget))])
            }
            put("measured_accuracy", .object([
                ("edge", .object([
                    ("accuracy", num(e.accuracy)), ("ci95_low", num(e.low)), ("ci95_high", num(e.high)),
                    ("labelled", .int(e.labelled)), ("unrepresented_answers", .int(e.unrepresented)),
                    ("strata", .array(e.strata.map { st in
                        .object([("stratum", .string(st.name)), ("answers", .int(st.answers)), ("labelled", .int(st.labelled)),
                                 ("correct", .int(st.correct)), ("accuracy", num(st.accuracy))])
                    })),
                    ("per_intent", .array(m.perIntent.map { p in
                        .object([("label", .string(p.label)), ("labelled", .int(p.labelled)), ("correct", .int(p.correct))])
                    })),
                    ("error_budget", budget(e.accuracy, policy.edgeErrorBudget)),
                ])),
                ("small", .object([("labelled", .int(m.smallLabelled)), ("correct", .int(m.smallCorrect)),
                                   ("success_rate", num(m.smallSuccess)),
                                   ("error_budget", budget(m.smallSuccess, policy.smallErrorBudget))])),
            ]))
        }
        put("in_scope_queries", .int(inScopeQueries))
        put("edge_utilisation", num(edgeUtilisation))
        put("edge_utilisation_definition", .string(Report.edgeUtilisationDefinition))
        let misses: [(String, JSONValue)] = edgeMissReasons.map { r in (r.reason, JSONValue.int(r.count)) }
        put("edge_miss_reasons", .object(misses))
        let alertList: [JSONValue] = alerts.map { a in
            var item: [(String, JSONValue)] = []
            item.append(("name", .string(a.name)))
            item.append(("value", .number(a.value)))
            item.append(("threshold", .number(a.threshold)))
            item.append(("comparison", .string(a.comparison)))
            item.append(("message", .string(a.message)))
            return .object(item)
        }
        put("alerts", .array(alertList))
        put("health_score", healthScore.map { JSONValue.int($0) } ?? .null)
        put("status", .string(status.rawValue))
        var slaPairs: [(String, JSONValue)] = []
        for c in sla {
            let met: JSONValue = c.met.map { JSONValue.bool($0) } ?? .null
            slaPairs.append((c.name, .object([("value", num(c.value)), ("target", .number(c.target)), ("met", met)])))
        }
        slaPairs.append(("met", slaMet.map { JSONValue.bool($0) } ?? .null))
        put("sla", .object(slaPairs))
        if case let .object(pairs) = depth.json { o.append(contentsOf: pairs) }
        put("recommendations", .array(recommendations.map { JSONValue.string($0) }))
        return .object(o)
    }

    /// A readable multi-section report.
    public var text: String {
        var out = ""
        func line(_ s: String = "") { out += s + "\n" }
        func section(_ title: String) { line(); line(title); line(String(repeating: "-", count: title.count)) }
        func opt(_ x: Double?, _ d: Int) -> String { x.map { fmt($0, d) } ?? "n/a" }
        func share(_ x: Double?) -> String { x.map { pct($0) } ?? "n/a" }
        func usd(_ x: Double?, _ d: Int = 4) -> String { x.map { ($0 < 0 ? "-$" : "$") + fmt(abs($0), d) } ?? "n/a" }

        line("triage report")
        line("=============")
        let window = since.map { "since \(formatUTC($0))" } ?? "all time"
        line("window: \(window); generated \(formatUTC(generatedAt))")
        if let f = firstTimestamp, let l = lastTimestamp { line("decisions from \(formatUTC(f)) to \(formatUTC(l))") }
        line("health: \(healthScore.map { "\($0)/100" } ?? "n/a") (\(status.rawValue))")

        section("Traffic")
        line("queries:           \(totalQueries) (\(uniqueQueries) distinct, \(repeatedQueries) repeats)")
        line("edge:              \(routeCounts[.edge] ?? 0) (\(share(edgeShare)))")
        line("small tier:        \(routeCounts[.small] ?? 0) (\(share(smallShare)))")
        line("large tier:        \(routeCounts[.large] ?? 0) (\(share(largeShare)))")
        line("unanswered:        \(routeCounts[.none] ?? 0) (\(share(noneShare)))")
        line("cloud rate:        \(share(cloudRate)) (\(cloudQueries) queries called a cloud tier)")
        line("escalations:       \(escalations) small → large (\(share(escalationRate)) of queries, \(share(smallToLargeRate)) of small-tier queries)")
        line("fallbacks:         \(fallbacks) (answered by another tier than meant: a tier failed)")
        line("availability:      \(availability.map { fmt($0 * 100, 2) + " %" } ?? "n/a") (\(unanswered) unanswered, \(fallbacks) fallbacks; SLA ≥ \(fmt(policy.slaAvailability * 100, 1)) %)")
        if droppedUnshipped > 0 {
            line("dropped unshipped: \(droppedUnshipped) in \(plural(gaps.count, "gap", "gaps")) (record.max_pending)")
        }
        line("cache hits:        \(cacheHits) (\(share(cacheHitRate)))")
        line("out of scope:      \(outOfScope) (\(share(outOfScopeRate)))")
        line("edge utilisation:  \(opt(edgeUtilisation, 2)) of \(inScopeQueries) in-scope queries")
        if !reasonCounts.isEmpty {
            line("reasons:           " + reasonCounts.map { "\($0.reason) \($0.count)" }.joined(separator: ", "))
        }

        section("Cost")
        line("total:             \(usd(totalCostUSD))")
        line("per query:         \(usd(costPerQueryUSD, 6))")
        for s in [small, large] {
            line("\(s.tier) tier:".padded(19) + "\(s.calls) calls (\(s.successfulCalls) ok, \(s.failedCalls) failed, \(s.breakerRejections) breaker; \(s.attempts) HTTP attempts), "
                 + "\(s.inputTokens) in / \(s.outputTokens) out tokens, \(usd(s.costUSD)); per inference \(usd(s.costPerInferenceUSD, 6))")
        }
        for s in [savingsVsLarge, savingsVsSmall] {
            line("vs all-\(s.tier):".padded(19) + "would cost \(usd(s.hypotheticalCostUSD)), saved \(usd(s.savingsUSD)) (\(share(s.savingsRate))); "
                 + "\(s.estimatedQueries) queries estimated at \(fmt(s.estimateInputTokens, 0)) in / \(fmt(s.estimateOutputTokens, 0)) out tokens (\(s.estimateSource))")
        }

        section("Latency (total, nearest rank)")
        line("p50 \(opt(latencyP50Ms, 1)) ms, p95 \(opt(latencyP95Ms, 1)) ms, p99 \(opt(latencyP99Ms, 1)) ms, mean \(opt(latencyMeanMs, 1)) ms, max \(opt(latencyMaxMs, 1)) ms")
        line("edge p95 \(opt(edgeLatencyP95Ms, 1)) ms, cloud p95 \(opt(cloudLatencyP95Ms, 1)) ms")

        section("Measured accuracy (review labels)")
        if let m = measured {
            let e = m.edge
            if let acc = e.accuracy, let lo = e.low, let hi = e.high {
                line("edge: \(pct1(acc)) right (95 % CI \(pct1(lo))–\(pct1(hi))), \(e.labelled) labelled answers, weighted by stratum")
                let spent = (1 - acc) / policy.edgeErrorBudget
                line("edge error budget \(pct1(policy.edgeErrorBudget)): \(pct1(1 - acc)) wrong, \(fmt(spent * 100, 0)) % spent"
                     + (spent > 1 ? " — OVER BUDGET: run `triage tune --from-record`" : ""))
            }
            for st in e.strata where st.answers > 0 || st.labelled > 0 {
                line("  \(st.name.padded(18)) \(st.answers) answers, \(st.labelled) labelled" + (st.accuracy.map { ", \(pct1($0)) right" } ?? ""))
            }
            if e.unrepresented > 0 { line("  \(e.unrepresented) edge answers are in strata with no label yet and are left out") }
            let worst = m.perIntent.filter { $0.correct < $0.labelled }.prefix(5)
            if !worst.isEmpty {
                line("  intents with wrong answers: " + worst.map { "\($0.label) \($0.correct)/\($0.labelled)" }.joined(separator: ", "))
            }
            if let sr = m.smallSuccess {
                let spent = (1 - sr) / policy.smallErrorBudget
                line("small tier: \(pct1(sr)) of \(m.smallLabelled) sampled answers judged right; error budget \(pct1(policy.smallErrorBudget)), \(fmt(spent * 100, 0)) % spent")
            }
        } else {
            line("no labels yet: `triage review export`, label, `triage review import`")
        }

        if let c = candidate {
            section("Candidate model")
            func side(_ name: String, _ s: CandidateComparison.Side) {
                line("\(name.padded(10)) \(s.modelVersion): edge share \(pct1(s.edgeShare)), "
                     + (s.accuracy.map { "right on \(s.correct)/\(s.labelled) labelled (\(pct1($0)))" } ?? "no labelled queries")
                     + (s.edgeMsP50.map { ", edge p50 \(fmt($0, 2)) ms" } ?? ""))
            }
            line("\(c.queries) queries with both models (\(c.candidateServed) answered by the candidate); agreement \(pct1(c.agreement))")
            side("primary", c.primary)
            side("candidate", c.candidate)
            line("recommendation: \(c.recommendation.replacingUnderscores()) — \(c.why)")
        }

        section("Shadow mode")
        if let s = shadow {
            line("\(s.queries) shadow queries: agreement \(fmt(s.agreementRate, 2)), over-routing \(fmt(s.overRoutingRate, 2)) (\(s.overRouted)), "
                 + "under-routing \(fmt(s.underRoutingRate, 2)) (\(s.underRouted))")
            line("accuracy estimate: \(fmt(s.agreementRate, 2))")
        } else {
            line("no shadow-mode decisions: accuracy unknown")
        }

        section("SLA")
        for c in sla {
            let unit = c.name.hasSuffix("_ms") ? " ms" : ""
            let verdict = c.met.map { $0 ? "met" : "MISSED" } ?? "n/a"
            if c.name == "availability" {
                line("availability: \(c.value.map { fmt($0 * 100, 2) } ?? "n/a") % (target ≥ \(fmt(c.target * 100, 1)) %) \(verdict)")
                continue
            }
            line("\(slaLabel(c.name)): \(opt(c.value, c.name.hasSuffix("_ms") ? 1 : 2))\(unit) (target ≤ \(fmt(c.target, c.name.hasSuffix("_ms") ? 0 : 2))\(unit)) \(verdict)")
        }

        section("Alerts")
        if alerts.isEmpty { line("none") }
        for a in alerts { line("! " + a.message) }

        section("Review queue")
        line("\(reviewCount) flagged for review" + (reviewCount > reviewItems.count ? " (latest \(reviewItems.count) listed)" : ""))
        for r in reviewItems {
            let what = r.queryText.map { "\"\($0)\"" } ?? r.queryHash
            line("\(formatUTC(r.timestamp))  \(r.label)  \(fmt(r.confidence, 3))  \(what)")
        }

        out += depth.text

        section("Recommendations")
        for r in recommendations { line("- " + r) }
        return out
    }
}

// MARK: - Formatting without Foundation

/// `x` with exactly `decimals` digits after the point (round half away from zero).
func fmt(_ x: Double, _ decimals: Int) -> String {
    guard x.isFinite else { return x.isNaN ? "nan" : (x > 0 ? "inf" : "-inf") }
    var scale = 1.0
    for _ in 0..<max(0, decimals) { scale *= 10 }
    let scaled = (abs(x) * scale).rounded()
    guard scaled < 9e18 else { return x.description }
    let units = UInt64(scaled)
    let s = UInt64(scale)
    var text = String(units / s)
    if decimals > 0 {
        let frac = String(units % s)
        text += "." + String(repeating: "0", count: decimals - frac.count) + frac
    }
    return (x < 0 && units != 0 ? "-" : "") + text
}

func plural(_ n: Int, _ one: String, _ many: String) -> String { "\(n) \(n == 1 ? one : many)" }

/// A fraction as a percentage with one decimal, "97.3 %".
func pct1(_ fraction: Double) -> String { fmt(fraction * 100, 1) + " %" }

/// A fraction as a whole-number percentage, "38 %".
func pct(_ fraction: Double) -> String { fmt(fraction * 100, 0) + " %" }

/// Unix seconds as "YYYY-MM-DD HH:MM:SSZ" (UTC).
func formatUTC(_ t: Double) -> String {
    guard t.isFinite, abs(t) < 1e13 else { return "\(t)" }
    let (days, rem) = CivilDate.split(unixSeconds: Int(t.rounded(.down)))
    let (year, month, day) = CivilDate.date(days: days)
    func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
    return "\(year)-\(two(month))-\(two(day)) \(two(rem / 3600)):\(two(rem % 3600 / 60)):\(two(rem % 60))Z"
}

extension String {
    func padded(_ width: Int) -> String { count >= width ? self + " " : self + String(repeating: " ", count: width - count) }
    func replacingUnderscores() -> String { String(map { $0 == "_" ? " " : $0 }) }
}

/// "p95_latency_ms" → "p95 latency".
func slaLabel(_ name: String) -> String {
    (name.hasSuffix("_ms") ? String(name.dropLast(3)) : name).replacingUnderscores()
}

extension DecisionStore {
    /// The report over this record's decisions since `since` (all when nil).
    public func report(since: Double? = nil, now: Double = Clock.unixTime(), policy: ReportPolicy = ReportPolicy()) throws -> Report {
        let rows = try decisions(since: since)
        let (measured, candidate) = ReviewFigures.compute(decisions: rows, labels: try labels(since: since))
        return Report(decisions: rows, gaps: try gaps(since: since), since: since, now: now, policy: policy,
                      measured: measured, candidate: candidate)
    }
}

// MARK: - Per-node rows

/// One box's line in a fleet report: the same `Report` computed over that node's rows only,
/// so the fleet's totals are the sums of its boxes' by construction of one computation.
public struct NodeReport: Sendable {
    public let node: String
    public let report: Report

    /// One report per node present in `decisions` or `gaps`, sorted by node name.
    public static func perNode(decisions: [Decision], gaps: [RecordGap] = [], since: Double? = nil, now: Double = Clock.unixTime(),
                               policy: ReportPolicy = ReportPolicy()) -> [NodeReport] {
        var byNode: [String: [Decision]] = [:]
        var gapsByNode: [String: [RecordGap]] = [:]
        for d in decisions { byNode[d.node, default: []].append(d) }
        for g in gaps { gapsByNode[g.node, default: []].append(g) }
        let nodes = Set(byNode.keys).union(gapsByNode.keys).sorted()
        return nodes.map { n in
            NodeReport(node: n, report: Report(decisions: byNode[n] ?? [], gaps: gapsByNode[n] ?? [], since: since, now: now, policy: policy))
        }
    }

    public var json: JSONValue {
        let r = report
        func num(_ x: Double?) -> JSONValue { x.map { .number($0) } ?? .null }
        return .object([
            ("node", .string(node)), ("total_queries", .int(r.totalQueries)),
            ("route_counts", .object(Route.allCases.map { ($0.rawValue, JSONValue.int(r.routeCounts[$0] ?? 0)) })),
            ("edge_share", num(r.edgeShare)), ("escalations", .int(r.escalations)), ("fallbacks", .int(r.fallbacks)),
            ("unanswered", .int(r.unanswered)), ("availability", num(r.availability)),
            ("total_cost_usd", .number(r.totalCostUSD)), ("cost_per_query_usd", num(r.costPerQueryUSD)),
            ("p50_ms", num(r.latencyP50Ms)), ("p95_ms", num(r.latencyP95Ms)), ("dropped_unshipped", .int(r.droppedUnshipped)),
            ("health_score", r.healthScore.map { JSONValue.int($0) } ?? .null), ("status", .string(r.status.rawValue)),
        ])
    }

    public static func text(_ nodes: [NodeReport]) -> String {
        var out = "\nNodes\n-----\n"
        out += "node".padded(20) + "queries".padded(9) + "edge".padded(7) + "avail".padded(9) + "cost".padded(11)
            + "p95 ms".padded(9) + "dropped".padded(9) + "health\n"
        for n in nodes {
            let r = n.report
            out += n.node.padded(20) + "\(r.totalQueries)".padded(9) + (r.edgeShare.map { pct($0) } ?? "n/a").padded(7)
                + (r.availability.map { fmt($0 * 100, 2) + " %" } ?? "n/a").padded(9) + ("$" + fmt(r.totalCostUSD, 4)).padded(11)
                + (r.latencyP95Ms.map { fmt($0, 1) } ?? "n/a").padded(9) + "\(r.droppedUnshipped)".padded(9)
                + (r.healthScore.map { "\($0) \(r.status.rawValue)" } ?? r.status.rawValue) + "\n"
        }
        return out
    }
}
