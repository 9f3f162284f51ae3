import Testing
import TriageCascade
import TriageJSON
@testable import TriageRecord

/// Twenty recorded decisions with known routes, tokens, costs and latencies. Seed prices:
/// small $0.25 / $1.25, large $3 / $15 per million input / output tokens, so a call's cost is
/// in·price_in/1e6 + out·price_out/1e6.
///
///  #   route  reason             tiers (in/out tokens)            cost $      total ms  notes
///  1-10 edge  optimal_edge       –                                0           10,12,…,28 #3, #7 review (edge_review)
///  11  small  cache_hit          –                                0           2         cached, repeat of #13's hash
///  12  small  cache_hit          –                                0           3         cached, repeat of #13's hash
///  13  small  shadow             small 100/200 = .000275          0.000275    400       shadow: edge→edge, cloud agrees
///  14  small  shadow             small 200/400 = .00055           0.00055     500       shadow: edge→small (low_confidence), cloud agrees
///  15  small  shadow             small 300/100 = .0002            0.0002      600       shadow: edge→edge, cloud disagrees
///  16  small  out_of_scope       small 200/300 = .000425          0.000425    700       out of scope
///  17  large  low_confidence     small 100/100 = .00015,          0.00495     1500      escalation
///                                large 100/300 = .0048
///  18  large  high_complexity    small 200/200 = .0003,           0.0084      2000      escalation
///                                large 200/500 = .0081
///  19  large  shadow             large 400/600 = .0102 (2 tries)  0.0102      1200      shadow: edge→large (high_complexity), cloud label nil
///  20  none   cloud_unavailable  small failed ×3, large refused   0           5000      out of scope
func fixture() -> [Decision] {
    let t0 = 1_700_000_000.0
    var out: [Decision] = []
    func lat(_ ms: Double) -> StageLatency { StageLatency(tokenizeMs: 0.5, edgeMs: 5, cloudMs: max(0, ms - 6), totalMs: ms) }
    for i in 1...10 {
        let review = i == 3 || i == 7
        out.append(makeDecision(timestamp: t0 + Double(i) * 60, route: .edge, reason: review ? "edge_review" : "optimal_edge",
                                label: "order_status", confidence: review ? 0.85 : 0.97,
                                latency: lat(Double(8 + 2 * i)), review: review,
                                queryText: i == 7 ? "où est ma commande ?" : nil, queryHash: "h\(i)"))
    }
    for i in 11...12 {
        out.append(makeDecision(timestamp: t0 + Double(i) * 60, route: .small, reason: "cache_hit", label: "refund",
                                latency: lat(Double(i - 9)), cached: true, queryHash: "h13"))
    }
    out.append(makeDecision(timestamp: t0 + 13 * 60, route: .small, reason: "shadow", label: "order_status",
                            tiers: [call("small", input: 100, output: 200)], costUSD: 0.000275, latency: lat(400), queryHash: "h13",
                            shadow: ShadowComparison(edgeRoute: .edge, edgeReason: "optimal_edge", cloudLabel: "order_status")))
    out.append(makeDecision(timestamp: t0 + 14 * 60, route: .small, reason: "shadow", label: "refund", confidence: 0.6,
                            tiers: [call("small", input: 200, output: 400)], costUSD: 0.00055, latency: lat(500), queryHash: "h14",
                            shadow: ShadowComparison(edgeRoute: .small, edgeReason: "low_confidence", cloudLabel: "refund")))
    out.append(makeDecision(timestamp: t0 + 15 * 60, route: .small, reason: "shadow", label: "billing",
                            tiers: [call("small", input: 300, output: 100)], costUSD: 0.0002, latency: lat(600), queryHash: "h15",
                            shadow: ShadowComparison(edgeRoute: .edge, edgeReason: "optimal_edge", cloudLabel: "shipping")))
    out.append(makeDecision(timestamp: t0 + 16 * 60, route: .small, reason: "out_of_scope", label: "weather", outOfScope: true,
                            tiers: [call("small", input: 200, output: 300)], costUSD: 0.000425, latency: lat(700), queryHash: "h16"))
    out.append(makeDecision(timestamp: t0 + 17 * 60, route: .large, reason: "low_confidence", label: "refund", confidence: 0.5,
                            tiers: [call("small", input: 100, output: 100, answerConfidence: 0.7), call("large", input: 100, output: 300)],
                            costUSD: 0.00495, latency: lat(1500), queryHash: "h17"))
    out.append(makeDecision(timestamp: t0 + 18 * 60, route: .large, reason: "high_complexity", label: "complaint",
                            tiers: [call("small", input: 200, output: 200, answerConfidence: 0.65), call("large", input: 200, output: 500)],
                            costUSD: 0.0084, latency: lat(2000), queryHash: "h18"))
    out.append(makeDecision(timestamp: t0 + 19 * 60, route: .large, reason: "shadow", label: "product_info",
                            tiers: [call("large", input: 400, output: 600, statuses: [529, 200])], costUSD: 0.0102, latency: lat(1200),
                            queryHash: "h19",
                            shadow: ShadowComparison(edgeRoute: .large, edgeReason: "high_complexity", cloudLabel: nil)))
    out.append(makeDecision(timestamp: t0 + 20 * 60, route: .none, reason: "cloud_unavailable", label: "weather", outOfScope: true,
                            tiers: [TierCall(tier: "small", model: "claude-haiku", statuses: [503, 503, 503], inputTokens: 0,
                                             outputTokens: 0, costUSD: 0, latencyMs: 4000, succeeded: false, rejectedByBreaker: false,
                                             answerConfidence: nil, error: "HTTP 503"),
                                    TierCall(tier: "large", model: "claude-sonnet", statuses: [], inputTokens: 0, outputTokens: 0,
                                             costUSD: 0, latencyMs: 0, succeeded: false, rejectedByBreaker: true,
                                             answerConfidence: nil, error: "circuit open")],
                            costUSD: 0, latency: lat(5000), queryHash: "h20"))
    return out
}

@Suite struct ReportFigureTests {
    let report = Report(decisions: fixture(), now: 1_700_002_000)

    @Test func traffic() {
        let r = report
        #expect(r.totalQueries == 20)
        #expect(r.routeCounts == [.edge: 10, .small: 6, .large: 3, .none: 1])
        #expect(r.edgeShare == 0.5)                 // 10/20
        #expect(r.smallShare == 0.3)                // 6/20 (#11–16)
        #expect(r.largeShare == 0.15)               // 3/20 (#17–19)
        #expect(r.noneShare == 0.05)                // 1/20
        #expect(r.escalations == 2)                 // #17, #18; #20's large call was refused by the breaker
        #expect(r.escalationRate == 0.1)            // 2/20
        #expect(r.smallToLargeRate == 2.0 / 7)      // 7 queries reached small: #13–18, #20
        #expect(r.cloudQueries == 8)                // #13–20
        #expect(r.cloudRate == 0.4)
        #expect(r.cacheHits == 2 && r.cacheHitRate == 0.1)
        #expect(r.outOfScope == 2 && r.outOfScopeRate == 0.1)   // #16, #20
        #expect(r.uniqueQueries == 18 && r.repeatedQueries == 2) // h13 three times
        #expect(r.reasonCounts.first! == (reason: "optimal_edge", count: 8))
    }

    @Test func money() {
        let r = report
        // .000275 + .00055 + .0002 + .000425 + .00495 + .0084 + .0102 = .025
        #expect(r.totalCostUSD.isClose(to: 0.025))
        #expect(r.costPerQueryUSD!.isClose(to: 0.00125))          // .025 / 20
        // Small tier: 7 calls (#13–18, #20), 6 ok, 1 failed; 1+1+1+1+1+1+3 = 9 attempts.
        #expect(r.small.calls == 7 && r.small.successfulCalls == 6 && r.small.failedCalls == 1 && r.small.breakerRejections == 0)
        #expect(r.small.attempts == 9)
        #expect(r.small.inputTokens == 1100)       // 100+200+300+200+100+200
        #expect(r.small.outputTokens == 1300)      // 200+400+100+300+100+200
        // .000275+.00055+.0002+.000425+.00015+.0003 = .0019; per inference .0019/6
        #expect(r.small.successfulCostUSD.isClose(to: 0.0019))
        #expect(r.small.costPerInferenceUSD!.isClose(to: 0.0019 / 6))
        #expect(r.small.meanInputTokens!.isClose(to: 1100.0 / 6) && r.small.meanOutputTokens!.isClose(to: 1300.0 / 6))
        // Large tier: 4 calls (#17, #18, #19, #20 refused), 3 ok; attempts 1+1+2+0 = 4.
        #expect(r.large.calls == 4 && r.large.successfulCalls == 3 && r.large.breakerRejections == 1 && r.large.failedCalls == 0)
        #expect(r.large.attempts == 4)
        #expect(r.large.inputTokens == 700 && r.large.outputTokens == 1400)
        // .0048 + .0081 + .0102 = .0231; per inference .0077
        #expect(r.large.successfulCostUSD.isClose(to: 0.0231))
        #expect(r.large.costPerInferenceUSD!.isClose(to: 0.0077))
        #expect((r.small.costUSD + r.large.costUSD).isClose(to: r.totalCostUSD))
    }

    @Test func savings() {
        let r = report
        // Observed (answering call) tokens, 7 queries: #13 100/200, #14 200/400, #15 300/100, #16 200/300,
        // #17 large 100/300, #18 large 200/500, #19 large 400/600 → in 1500, out 2400.
        // Estimated, 12 queries (#1–12 edge/cache). #20 was not answered: savings count only
        // what was answered, so it is priced on no tier.
        //
        // vs large: estimate = mean of large calls = 700/3 in, 1400/3 out.
        //   (1500 + 12·700/3)·3e-6 + (2400 + 12·1400/3)·15e-6 = .0045 + .0084 + .036 + .084 = .1329
        //   savings = .1329 − .025 = .1079
        let l = r.savingsVsLarge
        #expect(l.observedQueries == 7 && l.estimatedQueries == 12 && l.estimateSource == "observed_mean")
        #expect(l.estimateInputTokens.isClose(to: 700.0 / 3) && l.estimateOutputTokens.isClose(to: 1400.0 / 3))
        #expect(l.hypotheticalCostUSD.isClose(to: 0.1329, tolerance: 1e-9))
        #expect(l.savingsUSD.isClose(to: 0.1079, tolerance: 1e-9))
        #expect(l.savingsRate!.isClose(to: 0.1079 / 0.1329, tolerance: 1e-9))
        // vs small: estimate = mean of small calls = 1100/6 in, 1300/6 out.
        //   (1500 + 12·1100/6)·.25e-6 + (2400 + 12·1300/6)·1.25e-6 = 3700·.25e-6 + 5000·1.25e-6
        //   = .000925 + .00625 = .007175; savings = .007175 − .025 = −.017825 (escalations to
        //   large cost more than all-small)
        let s = r.savingsVsSmall
        #expect(s.hypotheticalCostUSD.isClose(to: 0.007175, tolerance: 1e-9))
        #expect(s.savingsUSD.isClose(to: 0.007175 - 0.025, tolerance: 1e-9))
        #expect(s.savingsUSD < 0)
    }

    @Test func savingsFallBackToTheDefaultEstimate() {
        // Edge-only traffic: no real calls, so 150 in / 200 out per query (seed default).
        let ds = (0..<4).map { makeDecision(timestamp: Double($0), queryHash: "e\($0)") }
        let r = Report(decisions: ds, now: 10)
        // large: 4 · (150·3 + 200·15)/1e6 = 4 · .00345 = .0138; small: 4 · (150·.25 + 200·1.25)/1e6 = 4 · .0002875 = .00115
        #expect(r.savingsVsLarge.estimateSource == "default")
        #expect(r.savingsVsLarge.hypotheticalCostUSD.isClose(to: 0.0138))
        #expect(r.savingsVsLarge.savingsUSD.isClose(to: 0.0138))
        #expect(r.savingsVsSmall.hypotheticalCostUSD.isClose(to: 0.00115))
        #expect(r.savingsVsLarge.savingsRate == 1)
    }

    @Test func latency() {
        let r = report
        // Sorted: 2 3 10 12 14 16 18 20 22 24 26 28 400 500 600 700 1200 1500 2000 5000
        #expect(r.latencyP50Ms == 24)       // rank ⌈10⌉ = 10
        #expect(r.latencyP95Ms == 2000)     // rank ⌈19⌉ = 19
        #expect(r.latencyP99Ms == 5000)     // rank ⌈19.8⌉ = 20
        // 5 + 190 + 2200 + 4700 + 5000 = 12095; / 20
        #expect(r.latencyMeanMs == 604.75)
        #expect(r.latencyMaxMs == 5000)
        #expect(r.edgeLatencyP95Ms == 28)   // 10…28, rank 10 of 10
        #expect(r.cloudLatencyP95Ms == 5000) // 400 500 600 700 1200 1500 2000 5000, rank ⌈7.6⌉ = 8
    }

    @Test func reviewShadowAndUtilisation() {
        let r = report
        #expect(r.reviewCount == 2)
        #expect(r.reviewItems.map(\.queryHash) == ["h7", "h3"])       // most recent first
        #expect(r.reviewItems[0].queryText == "où est ma commande ?" && r.reviewItems[1].queryText == nil)
        #expect(r.reviewItems[0].confidence == 0.85 && r.reviewItems[0].label == "order_status")
        // Shadow rows #13, #14, #15, #19: agree #13, #14 → 2/4; over-routed #14 (would escalate,
        // cloud agreed) → 1/4; under-routed #15 (would answer, cloud disagreed) → 1/4.
        let s = r.shadow!
        #expect(s.queries == 4 && s.agreements == 2 && s.overRouted == 1 && s.underRouted == 1 && s.edgeWouldAnswer == 2)
        #expect(s.agreementRate == 0.5 && s.overRoutingRate == 0.25 && s.underRoutingRate == 0.25)
        #expect(r.accuracyEstimate == 0.5)
        // In scope: 20 − #16 − #20 = 18. At the edge: #1–10, and #13, #15 would have been → 12/18.
        // Missed: #11, #12 cache_hit; #14 low_confidence (shadow), #17 low_confidence; #18, #19 high_complexity.
        #expect(r.inScopeQueries == 18)
        #expect(r.edgeUtilisation!.isClose(to: 12.0 / 18))
        #expect(r.edgeMissReasons.map(\.reason) == ["cache_hit", "high_complexity", "low_confidence"])
        #expect(r.edgeMissReasons.map(\.count) == [2, 2, 2])
    }

    @Test func alertsHealthSLA() {
        let r = report
        // edge utilisation .667 < .80, accuracy .5 < .85, availability 19/20 = .95 < .999 (#20
        // unanswered, no fallback), p95 2000 > 150; cost/query .00125 ≤ .01.
        #expect(r.alerts.map(\.name) == ["edge_utilisation", "accuracy", "availability", "p95_latency"])
        #expect(r.unanswered == 1 && r.fallbacks == 0 && r.availability == 0.95)
        // 100 − 10 − 20 (availability < .999, < .99) − 10 − 20 (utilisation < .9, < .8)
        //     − 15 − 30 (accuracy < .9, < .8) − 4·5 = −25 → 0, × .95 = 0
        #expect(r.healthScore == 0)
        #expect(r.status == .critical)
        // p50 24 ≤ 1000, p95 2000 ≤ 2500, p99 5000 > 3000, escalation .1 ≤ .15, availability .95 < .999
        #expect(r.sla.map(\.met) == [true, true, false, true, false])
        #expect(r.slaMet == false)
        let recs = r.recommendations.joined(separator: "\n")
        #expect(recs.contains("edge utilisation 0.67 < 0.80"))
        #expect(recs.contains("33 % were cache_hit"))            // 2 of the 6 misses
        #expect(recs.contains("estimated accuracy 0.50 < 0.85"))
        #expect(recs.contains("p95 latency 2000.0 ms > 150.0 ms"))
        #expect(recs.contains("availability 95.00 % < 99.9 %: 1 query was not answered"))
        #expect(recs.contains("SLA: p99 latency 5000.0 ms exceeds the 3000 ms target"))
        #expect(recs.contains("over-routing 0.25"))
        #expect(recs.contains("under-routing 0.25"))
        #expect(recs.contains("1 cloud call failed and 1 was refused"))
        #expect(recs.contains("2 queries were flagged for review"))
    }

    @Test func since() throws {
        // Only #11–20 (timestamps ≥ t0 + 660).
        let r = Report(decisions: fixture(), since: 1_700_000_660, now: 1_700_002_000)
        #expect(r.totalQueries == 10)
        #expect(r.routeCounts[.edge] == 0)
        #expect(r.totalCostUSD.isClose(to: 0.025))
        #expect(r.since == 1_700_000_660)
        // Through the store, with --since parsing: "15m" before t0 + 1260 is t0 + 360 → #6–20.
        let dir = try TempDir(); defer { dir.cleanup() }
        let store = try DecisionStore(path: dir.file("d.sqlite"))
        for d in fixture() { try store.record(d) }
        let now = 1_700_000_000.0 + 1260
        let fromStore = try store.report(since: now - parseDuration("15m"), now: now)
        #expect(fromStore.totalQueries == 15)
        #expect(try store.report().totalQueries == 20)
    }

    @Test func jsonAndText() throws {
        let json = report.json
        let keys = json.objectPairs!.map(\.0)
        for key in ["total_queries", "route_counts", "edge_share", "tier_shares", "escalation_rate", "cloud_rate", "cache_hit_rate",
                    "total_cost_usd", "cost_per_query_usd", "tiers", "savings", "savings_method", "latency_ms", "review",
                    "shadow", "accuracy_estimate", "edge_utilisation", "edge_utilisation_definition", "alerts",
                    "health_score", "status", "sla", "recommendations"] {
            #expect(keys.contains(key), "missing \(key)")
        }
        #expect(keys.allSatisfy { k in k.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "_" } })
        #expect(json["total_queries"] == 20)
        #expect(json["status"] == "critical")
        #expect(json["health_score"] == 0)
        #expect(json["availability"] == 0.95)
        #expect(json["latency_ms"]?["p95"] == 2000)
        #expect(json["tiers"]?["large"]?["cost_per_inference_usd"]?.doubleValue?.isClose(to: 0.0077) == true)
        #expect(json["savings"]?["vs_large"]?["estimate_source"] == "observed_mean")
        #expect(json["shadow"]?["over_routing_rate"] == 0.25)
        #expect(json["sla"]?["met"] == false)
        #expect(json["review"]?["queries"]?.arrayValue?.count == 2)
        // The serialized form parses back to the same value.
        #expect(try JSONValue.parse(json.serialized) == json)

        let text = report.text
        for heading in ["Traffic", "Cost", "Latency", "Shadow mode", "SLA", "Alerts", "Review queue", "Recommendations"] {
            #expect(text.contains("\n\(heading)"), "missing section \(heading)")
        }
        #expect(text.contains("health: 0/100 (critical)"))
        #expect(text.contains("où est ma commande ?"))
    }

    @Test func emptyWindow() throws {
        let r = Report(decisions: [], now: 0)
        #expect(r.totalQueries == 0 && r.status == .noData && r.healthScore == nil)
        #expect(r.latencyP50Ms == nil && r.edgeUtilisation == nil && r.accuracyEstimate == nil && r.alerts.isEmpty)
        #expect(r.slaMet == nil)
        #expect(r.json["total_queries"] == 0 && r.json["health_score"] == .null && r.json["status"] == "no_data")
        #expect(try JSONValue.parse(r.json.serialized) == r.json)
        #expect(r.text.contains("no decisions recorded"))
    }
}

/// Crafted scenarios on each side of every threshold.
@Suite struct ThresholdTests {
    /// `n` in-scope queries, `edge` of them answered at the edge, at 10 ms and no cost.
    func utilisation(_ edge: Int, of n: Int) -> Report {
        let ds = (0..<n).map { i in
            makeDecision(timestamp: Double(i), route: i < edge ? .edge : .small, reason: i < edge ? "optimal_edge" : "low_confidence",
                         queryHash: "u\(i)")
        }
        return Report(decisions: ds, now: 100)
    }

    @Test func edgeUtilisationAlertAndHealth() {
        let at90 = utilisation(18, of: 20)      // 0.90: no penalty
        #expect(at90.alerts.isEmpty && at90.healthScore == 100 && at90.status == .excellent)
        let at85 = utilisation(17, of: 20)      // 0.85 < 0.90: −10
        #expect(at85.alerts.isEmpty && at85.healthScore == 90 && at85.status == .excellent)
        let at80 = utilisation(16, of: 20)      // 0.80: not < 0.80 → no alert, only −10
        #expect(at80.alerts.isEmpty && at80.healthScore == 90)
        let at75 = utilisation(15, of: 20)      // 0.75: alert; −10 −20 −5 = 65
        #expect(at75.alerts.map(\.name) == ["edge_utilisation"])
        #expect(at75.healthScore == 65 && at75.status == .fair)
        #expect(at75.recommendations.first!.hasPrefix("edge utilisation 0.75 < 0.80: lower the confidence threshold or retrain"))
        #expect(at75.recommendations.first!.contains("100 % were low_confidence"))
    }

    @Test func outOfScopeQueriesDoNotCountAgainstUtilisation() {
        var ds = (0..<8).map { makeDecision(timestamp: Double($0), route: .edge, queryHash: "e\($0)") }
        ds += (0..<12).map { makeDecision(timestamp: Double(10 + $0), route: .small, reason: "out_of_scope", outOfScope: true,
                                          queryHash: "o\($0)") }
        let r = Report(decisions: ds, now: 100)
        #expect(r.edgeShare == 0.4)         // 8/20
        #expect(r.edgeUtilisation == 1)     // 8/8 in scope
        #expect(r.alerts.isEmpty)
    }

    /// 20 shadow rows the edge would all have answered; `agree` of them the cloud agreed with.
    func accuracy(_ agree: Int) -> Report {
        let ds = (0..<20).map { i in
            makeDecision(timestamp: Double(i), route: .small, reason: "shadow", label: "refund", queryHash: "s\(i)",
                         shadow: ShadowComparison(edgeRoute: .edge, edgeReason: "optimal_edge", cloudLabel: i < agree ? "refund" : "billing"))
        }
        return Report(decisions: ds, now: 100)
    }

    @Test func accuracyAlertAndHealth() {
        let a90 = accuracy(18)                  // 0.90: no penalty
        #expect(a90.accuracyEstimate == 0.9 && a90.alerts.isEmpty && a90.healthScore == 100)
        #expect(a90.edgeUtilisation == 1)      // shadow rows use the edge's would-be route
        let a85 = accuracy(17)                  // 0.85: −15, no alert
        #expect(a85.alerts.isEmpty && a85.healthScore == 85 && a85.status == .good)
        let a80 = accuracy(16)                  // 0.80: alert, −15 −5, not < 0.80
        #expect(a80.alerts.map(\.name) == ["accuracy"] && a80.healthScore == 80 && a80.status == .good)
        let a75 = accuracy(15)                  // 0.75: −15 −30 −5 = 50
        #expect(a75.healthScore == 50 && a75.status == .poor)
        #expect(a75.shadow!.underRoutingRate == 0.25)
    }

    @Test func accuracyUnknownWithoutShadowRows() {
        let r = utilisation(20, of: 20)
        #expect(r.accuracyEstimate == nil && r.shadow == nil)
        #expect(r.json["accuracy_estimate"] == .null)
        #expect(r.recommendations.contains { $0.hasPrefix("accuracy is unknown") })
    }

    @Test func outOfScopeAgreesWithNilCloudLabel() {
        let ds = [
            // Edge says out of scope, cloud names no known intent: agreement, and not over-routing.
            makeDecision(timestamp: 0, route: .small, reason: "shadow", label: "refund", outOfScope: true, queryHash: "a",
                         shadow: ShadowComparison(edgeRoute: .small, edgeReason: "out_of_scope", cloudLabel: nil)),
            // Edge says out of scope, cloud names an intent: disagreement; edge escalated, so not under-routing.
            makeDecision(timestamp: 1, route: .small, reason: "shadow", label: "refund", outOfScope: true, queryHash: "b",
                         shadow: ShadowComparison(edgeRoute: .small, edgeReason: "out_of_scope", cloudLabel: "refund")),
        ]
        let s = Report(decisions: ds, now: 10).shadow!
        #expect(s.agreements == 1 && s.overRouted == 0 && s.underRouted == 0)
    }

    @Test func costAlertAlone() {
        // Out-of-scope so edge utilisation is unknown and only the cost alert counts.
        let ds = [makeDecision(route: .large, reason: "out_of_scope", outOfScope: true, costUSD: 0.0101, queryHash: "c")]
        let r = Report(decisions: ds, now: 10)
        #expect(r.edgeUtilisation == nil)
        #expect(r.alerts.map(\.name) == ["cost_per_query"] && r.healthScore == 95 && r.status == .excellent)
        #expect(r.recommendations.first!.hasPrefix("cost per query $0.0101 > $0.0100"))
        let ok = Report(decisions: [makeDecision(route: .large, reason: "out_of_scope", outOfScope: true, costUSD: 0.01, queryHash: "c")], now: 10)
        #expect(ok.alerts.isEmpty && ok.healthScore == 100)
    }

    /// 20 edge queries, the slowest one at `slow` ms; p95 is rank 19, so two slow queries.
    func latency(_ slow: Double) -> Report {
        let ds = (0..<20).map { i in
            makeDecision(timestamp: Double(i), latency: StageLatency(totalMs: i >= 18 ? slow : 10), queryHash: "l\(i)")
        }
        return Report(decisions: ds, now: 100)
    }

    @Test func p95Alert() {
        let at = latency(150)
        #expect(at.latencyP95Ms == 150 && at.alerts.isEmpty && at.healthScore == 100)
        let over = latency(150.5)
        #expect(over.alerts.map(\.name) == ["p95_latency"] && over.healthScore == 95)
    }

    @Test func healthScoreRules() {
        #expect(Report.healthScore(edgeUtilisation: nil, accuracy: nil, alertCount: 0) == 100)
        #expect(Report.healthScore(edgeUtilisation: 0.95, accuracy: 0.95, alertCount: 0) == 100)
        #expect(Report.healthScore(edgeUtilisation: 0.899, accuracy: nil, alertCount: 0) == 90)
        #expect(Report.healthScore(edgeUtilisation: 0.799, accuracy: nil, alertCount: 0) == 70)
        #expect(Report.healthScore(edgeUtilisation: nil, accuracy: 0.899, alertCount: 0) == 85)
        #expect(Report.healthScore(edgeUtilisation: nil, accuracy: 0.799, alertCount: 0) == 55)
        #expect(Report.healthScore(edgeUtilisation: nil, accuracy: nil, alertCount: 4) == 80)
        #expect(Report.healthScore(edgeUtilisation: nil, accuracy: nil, alertCount: 6) == 70)    // cap −30
        #expect(Report.healthScore(edgeUtilisation: nil, accuracy: nil, alertCount: 9) == 70)    // cap −30
        // 100 − 30 − 45 − 30 = −5 → floor 0
        #expect(Report.healthScore(edgeUtilisation: 0.5, accuracy: 0.5, alertCount: 7) == 0)
    }

    @Test func statusBands() {
        let expected: [(Int, Report.Status)] = [(100, .excellent), (90, .excellent), (89, .good), (75, .good), (74, .fair),
                                                (60, .fair), (59, .poor), (40, .poor), (39, .critical), (0, .critical)]
        for (score, status) in expected { #expect(Report.status(score: score) == status, "score \(score)") }
    }

    @Test func slaEscalationTarget() {
        // 20 queries, 3 escalated small → large: 0.15 ≤ 0.15 met; 4 → 0.20 missed.
        func escalated(_ k: Int) -> Report {
            let ds = (0..<20).map { i in
                i < k ? makeDecision(timestamp: Double(i), route: .large, reason: "low_answer_confidence",
                                     tiers: [call("small", input: 10, output: 10), call("large", input: 10, output: 10)], queryHash: "q\(i)")
                      : makeDecision(timestamp: Double(i), queryHash: "q\(i)")
            }
            return Report(decisions: ds, now: 100)
        }
        func escalationCheck(_ r: Report) -> Report.SLACheck { r.sla.first { $0.name == "escalation_rate" }! }
        #expect(escalated(3).escalationRate == 0.15 && escalationCheck(escalated(3)).met == true)
        let four = escalated(4)
        #expect(escalationCheck(four).met == false && four.slaMet == false)
        #expect(four.recommendations.contains { $0.hasPrefix("SLA: escalation rate 0.20 exceeds the 0.15 target") })
    }

    @Test func policyIsConfigurable() {
        var p = ReportPolicy()
        p.maxP95LatencyMs = 5
        p.largeTierPrice = TierPrice(inputPerMillion: 1, outputPerMillion: 1)
        p.defaultInputTokens = 1000; p.defaultOutputTokens = 0
        let r = Report(decisions: [makeDecision(queryHash: "x")], now: 10, policy: p)
        #expect(r.alerts.map(\.name) == ["p95_latency"])
        #expect(r.savingsVsLarge.hypotheticalCostUSD.isClose(to: 0.001))
    }
}
