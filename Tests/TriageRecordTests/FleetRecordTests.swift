import Testing
import TriageCascade
import TriageJSON
@testable import TriageRecord

/// Schema 3: ids and nodes, the shipping watermark and the backlog bound — SQLite only.
@Suite struct ShippingRecordTests {
    @Test func version2MigratesInPlaceToVersion3() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let path = dir.file("old.sqlite")
        do {
            let conn = try Connection(path: path, readOnly: false, busyTimeoutMs: 1000)
            try DecisionStore.migrate(conn, to: 2)
            for i in 0..<3 {
                try conn.execute("""
                    INSERT INTO decisions (timestamp, model_version, route, reason, label, confidence, out_of_scope, complexity,
                        complexity_length, complexity_syntax, complexity_uncertainty, complexity_emotion, cost_usd, tokenize_ms,
                        edge_ms, cloud_ms, total_ms, cached, query_hash, answer, category)
                    VALUES (\(1_700_000_000 + i), 'm', 'edge', 'optimal_edge', 'card', 0.97, 0, 0.1, 0, 0, 0, 0, 0, 1, 2, 0, 3, 0, 'h\(i)', 'a', 'faq')
                    """, for: "insert a version-2 row")
            }
            #expect(try conn.scalarInt("PRAGMA user_version", for: "version") == 2)
        }
        let store = try DecisionStore(path: path, node: "box-x")
        #expect(try store.currentSchemaVersion() == DecisionStore.schemaVersion)
        let rows = try store.decisions()
        #expect(rows.count == 3)
        #expect(Set(rows.map(\.uid)).count == 3)
        #expect(rows.allSatisfy { $0.uid.count == 32 && $0.uid.allSatisfy(\.isHexDigit) && $0.node.isEmpty })
        // The old rows were recorded here: they ship under this box's node.
        let batch = try store.pendingBatch(limit: 10)
        #expect(batch.decisions.map(\.node) == ["box-x", "box-x", "box-x"])
        // New rows get their node and a fresh id.
        try store.insert(makeDecision(timestamp: 1_800_000_000))
        let new = try store.decisions().last!
        #expect(new.node == "box-x" && new.uid.count == 32 && !rows.map(\.uid).contains(new.uid))
    }

    @Test func watermarkMovesOnlyWhenMarked() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let store = try DecisionStore(path: dir.file("d.sqlite"), node: "n")
        for i in 0..<7 { try store.insert(makeDecision(timestamp: Double(i), queryHash: "h\(i)")) }
        let first = try store.pendingBatch(limit: 3)
        #expect(first.decisions.map(\.timestamp) == [0, 1, 2])
        // Not marked (the remote COMMIT was not acknowledged): the same rows come again.
        #expect(try store.pendingBatch(limit: 3).decisions.map(\.uid) == first.decisions.map(\.uid))
        try store.markShipped(first)
        #expect(try store.pendingCounts().decisions == 4)
        let second = try store.pendingBatch(limit: 10)
        #expect(second.decisions.map(\.timestamp) == [3, 4, 5, 6])
        // Marking an older batch again never moves the watermark back.
        try store.markShipped(second)
        try store.markShipped(first)
        #expect(try store.pendingCounts().decisions == 0 && (try store.pendingBatch(limit: 10)).isEmpty)
    }

    @Test func backlogBoundDropsIntoOneGapAndSparesTheBatchInFlight() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let store = try DecisionStore(path: dir.file("d.sqlite"), node: "n", maxPending: 5)
        for i in 0..<5 { try store.insert(makeDecision(timestamp: Double(i), costUSD: 0.5, queryHash: "h\(i)")) }
        #expect(try store.gaps().isEmpty)
        // A shipper reads the first 3 and is still sending them.
        let inFlight = try store.pendingBatch(limit: 3)
        for i in 5..<9 { try store.insert(makeDecision(timestamp: Double(i), costUSD: 0.5, queryHash: "h\(i)")) }
        // 9 pending, bound 5: 4 must go, but #0–2 are in flight, so #3–6 are dropped.
        let kept = try store.decisions().map(\.timestamp)
        #expect(kept == [0, 1, 2, 7, 8])
        var gaps = try store.gaps()
        #expect(gaps.count == 1 && gaps[0].dropped == 4 && gaps[0].firstTimestamp == 3 && gaps[0].lastTimestamp == 6)
        #expect(gaps[0].costUSD == 2.0 && gaps[0].reason == "backlog_bound" && gaps[0].node == "n")
        try store.markShipped(inFlight)
        // More drops extend the same unshipped gap instead of adding rows.
        // Pending now #7, #8; four more make six, one over the bound: #7 goes.
        for i in 9..<13 { try store.insert(makeDecision(timestamp: Double(i), costUSD: 0.5, queryHash: "h\(i)")) }
        gaps = try store.gaps()
        #expect(gaps.count == 1 && gaps[0].dropped == 5 && gaps[0].lastTimestamp == 7)
        #expect(try store.pendingCounts().decisions == 5)
        // The report says so.
        let r = try store.report(now: 20)
        #expect(r.droppedUnshipped == 5 && r.alerts.map(\.name).contains("dropped_unshipped"))
        #expect(r.text.contains("dropped unshipped: 5 in 1 gap"))
    }
}

/// Health that tells the truth, one set of prices, and the report's depth.
@Suite struct ReportTruthTests {
    @Test func aWindowWithNothingAnsweredIsCriticalWithNoSavings() {
        let failed = TierCall(tier: "small", model: "haiku", statuses: [0, 0, 0], inputTokens: 0, outputTokens: 0, costUSD: 0,
                              latencyMs: 15000, succeeded: false, rejectedByBreaker: false, answerConfidence: nil, error: "timeout")
        let ds = (0..<10).map {
            makeDecision(timestamp: Double($0), route: .none, reason: "cloud_unavailable", outOfScope: true, tiers: [failed],
                         queryHash: "q\($0)")
        }
        let r = Report(decisions: ds, now: 100)
        // Before: 95/100 "excellent" and 100 % saved.
        #expect(r.availability == 0 && r.unanswered == 10 && r.answered == 0)
        #expect(r.healthScore == 0 && r.status == .critical)
        #expect(r.savingsVsLarge.hypotheticalCostUSD == 0 && r.savingsVsLarge.savingsRate == nil)
        #expect(r.savingsVsSmall.savingsRate == nil)
        #expect(r.sla.first { $0.name == "availability" }?.met == false)
        // One recommendation for it, in percent, not a latency line in milliseconds.
        #expect(r.recommendations.filter { $0.contains("availability") }.count == 1)
        #expect(r.recommendations.contains { $0.hasPrefix("availability 0.00 % < 99.9 %: 10 queries were not answered") })
        #expect(!r.recommendations.contains { $0.contains("availability") && $0.contains(" ms") })
    }

    @Test func aSmallTierFailureAnsweredByTheLargeTierIsAFallbackNotAnEscalation() {
        let smallFailed = TierCall(tier: "small", model: "haiku", statuses: [529, 529, 529], inputTokens: 0, outputTokens: 0,
                                   costUSD: 0, latencyMs: 3000, succeeded: false, rejectedByBreaker: false,
                                   answerConfidence: nil, error: "HTTP 529")
        let fellThrough = makeDecision(timestamp: 1, route: .large, reason: "low_confidence",
                                       tiers: [smallFailed, call("large", input: 100, output: 100)], costUSD: 0.0018)
        let escalated = makeDecision(timestamp: 2, route: .large, reason: "low_answer_confidence",
                                     tiers: [call("small", input: 100, output: 100, answerConfidence: 0.7), call("large", input: 100, output: 100)],
                                     costUSD: 0.00015 + 0.0018)
        let edgeFallback = makeDecision(timestamp: 3, route: .edge, reason: "cloud_unavailable", tiers: [smallFailed], review: true)
        let ok = (4..<8).map { makeDecision(timestamp: Double($0), queryHash: "o\($0)") }
        let r = Report(decisions: [fellThrough, escalated, edgeFallback] + ok, now: 10)
        #expect(r.escalations == 1)                   // only the answered-but-doubtful one
        #expect(r.fallbacks == 2 && r.unanswered == 0)
        #expect(r.availability == 5.0 / 7)           // 7 − 2 fallbacks
        #expect(r.alerts.map(\.name).contains("availability"))
        // Seed alerts aside (utilisation: 5 of 7 in scope at the edge = .714 → −10 −20, one
        // edge_utilisation alert and one availability alert → −10), availability < .999 and
        // < .99 → −30: 100 − 30 − 30 − 10 = 30, × 5/7 = 21.4 → 21.
        #expect(r.healthScore == 21)
    }

    @Test func theReportPricesComeFromTheCloudConfig() throws {
        let ds = [
            makeDecision(timestamp: 1, route: .small, reason: "low_confidence", tiers: [call("small", input: 1000, output: 1000)],
                         costUSD: 0.0015, queryHash: "a"),
            makeDecision(timestamp: 2, queryHash: "b"),
        ]
        let seed = Report(decisions: ds, now: 10, policy: ReportPolicy(config: try TriageConfig.parse(.object([]))))
        // Seed: small 0.25/1.25, large 3/15 per million. The small answer's own tokens
        // (1000/1000) on each tier; the edge query at the small tier's mean (1000/1000), and
        // at the default estimate (150/200) on the large tier, which had no calls.
        #expect(seed.savingsVsLarge.hypotheticalCostUSD.isClose(to: 0.018 + 0.00345))
        #expect(seed.savingsVsSmall.hypotheticalCostUSD.isClose(to: 2 * 0.0015))
        let changed = try TriageConfig.parse(JSONValue.parse("""
            {"small": {"input_usd_per_mtok": 1, "output_usd_per_mtok": 2}, "large": {"input_usd_per_mtok": 10, "output_usd_per_mtok": 20},
             "record": {"edge_cost_usd": 0.0001}}
            """))
        var policy = ReportPolicy(config: changed)
        policy.volumePerDay = 1000
        let r = Report(decisions: ds, now: 10, policy: policy)
        // small: 2 · (1000·1 + 1000·2)/1e6 = .006;
        // large: (1000·10 + 1000·20)/1e6 + (150·10 + 200·20)/1e6 = .03 + .0055 = .0355
        #expect(r.savingsVsSmall.hypotheticalCostUSD.isClose(to: 0.006))
        #expect(r.savingsVsLarge.hypotheticalCostUSD.isClose(to: 0.0355))
        #expect(r.savingsVsLarge.savingsUSD.isClose(to: 0.0355 - 0.0015))
        // Projections at the changed all-large price: .0355 / 2 answered × 1000/day = $17.75/day.
        #expect(r.depth.projections.first { $0.period == "day" }!.allLargeCostUSD.isClose(to: 17.75))
    }

    @Test func projectionsBreakEvenAndBreakdowns() {
        // 4 queries over 2 days (t = 0 … 172800): 2 edge (free), 1 small $.002, 1 large $.01.
        let ds = [
            makeDecision(timestamp: 0, category: "faq", latency: StageLatency(tokenizeMs: 1, edgeMs: 4, cloudMs: 0, totalMs: 6), queryHash: "1"),
            makeDecision(timestamp: 3600 * 5, category: "faq", latency: StageLatency(tokenizeMs: 1, edgeMs: 4, cloudMs: 0, totalMs: 8), queryHash: "2"),
            makeDecision(timestamp: 86_400, route: .small, reason: "low_confidence", category: "order_status",
                         tiers: [call("small", input: 2400, output: 1120)], costUSD: 0.002,
                         latency: StageLatency(tokenizeMs: 1, edgeMs: 4, cloudMs: 300, totalMs: 310), queryHash: "3"),
            makeDecision(timestamp: 172_800, route: .large, reason: "high_complexity", category: "comparison",
                         tiers: [call("large", input: 1000, output: 466)], costUSD: 0.01,
                         latency: StageLatency(tokenizeMs: 1, edgeMs: 4, cloudMs: 900, totalMs: 915), queryHash: "4"),
        ]
        var policy = ReportPolicy()
        policy.boxCostPerMonthUSD = 40
        let r = Report(decisions: ds, now: 200_000, policy: policy)
        let d = r.depth
        // Observed: 4 queries over 2 days = 2/day; cost per query .012/4 = .003.
        #expect(d.observedPerDay == 2 && d.volumeSource == "observed")
        #expect(d.projections.map(\.period) == ["day", "week", "month", "year"])
        #expect(d.projections[0].costUSD.isClose(to: 0.006) && d.projections[3].costUSD.isClose(to: 0.003 * 2 * 365))
        // Break-even: savings per query = all-large per answered query − .003;
        // $40/month ÷ 30 ÷ that.
        let largePerQuery = r.savingsVsLarge.hypotheticalCostUSD / 4
        #expect(d.savingsPerQueryUSD!.isClose(to: largePerQuery - 0.003))
        #expect(d.breakEvenPerDay!.isClose(to: 40.0 / 30 / (largePerQuery - 0.003)))
        // By tier and category.
        #expect(d.byTier.map(\.key) == ["edge", "small", "large"])
        #expect(d.byTier.map(\.queries) == [2, 1, 1])
        #expect(d.byCategory.first!.key == "faq" && d.byCategory.first!.queries == 2 && d.byCategory.first!.edgeShare == 1)
        // By hour (UTC): 00 three times (t = 0, 86400, 172800), 05 once.
        #expect(d.byHour.map(\.key) == ["00", "05"] && d.byHour.map(\.queries) == [3, 1])
        // By stage: tokenize 1, inference 4, cloud (0+0+300+900)/4 = 300,
        // overhead (1 + 3 + 5 + 10)/4 = 4.75.
        #expect(d.stages.map(\.stage) == ["tokenize", "inference", "cloud", "overhead"])
        #expect(d.stages.map(\.meanMs) == [1, 4, 300, 4.75])
        // With --volume the projection follows it.
        policy.volumePerDay = 1_000_000
        let big = Report(decisions: ds, now: 200_000, policy: policy)
        #expect(big.depth.volumeSource == "--volume" && big.depth.projections[2].costUSD.isClose(to: 0.003 * 1_000_000 * 30))
    }

    @Test func trendsSayWhichWayTheyGo() {
        // Edge share rising linearly over 8 buckets: improving; cost per query flat: stable.
        var ds: [Decision] = []
        for bucket in 0..<8 {
            for q in 0..<8 {
                let atEdge = q < bucket + 1
                ds.append(makeDecision(timestamp: Double(bucket * 3600 + q * 10), route: atEdge ? .edge : .small,
                                       reason: atEdge ? "optimal_edge" : "low_confidence", costUSD: 0, queryHash: "\(bucket)-\(q)"))
            }
        }
        let r = Report(decisions: ds, since: 0, now: 8 * 3600)
        let edge = r.depth.trends.first { $0.metric == "edge_share" }!
        #expect(edge.direction == "improving")
        // Slope: +1/8 per bucket of an hour = 3 per day.
        #expect(edge.slopePerDay!.isClose(to: 3, tolerance: 1e-9))
        #expect(r.depth.trends.first { $0.metric == "cost_per_query_usd" }!.direction == "stable")
        // Falling edge share: declining.
        let falling = ds.map { d -> Decision in var d = d; d.timestamp = 8 * 3600 - d.timestamp - 1; return d }
        #expect(Report(decisions: falling, since: 0, now: 8 * 3600).depth.trends.first { $0.metric == "edge_share" }!.direction == "declining")
    }
}
