// The report's depth (seeds 000–002): cost projections and the edge's break-even, cost and
// latency broken down by tier, task category, hour of day and stage, and trends of edge
// share, cost per query and p95 latency over the window.
//
// Definitions:
// - observed rate: queries per day over the window (from `since`, else the first decision,
//   to the last decision or now); projections use `--volume N/day` instead when given.
// - projection: cost per query × volume × days (day 1, week 7, month 30, year 365), beside
//   the same volume sent to the large tier alone (its hypothetical cost per answered query).
// - break-even: the daily volume at which the edge's savings per query against the
//   all-large deployment pay for one box: box cost per month / 30 / savings per query.
// - stages: tokenize, edge inference, cloud (every tier call), overhead = total − the three.
//   Queue time is not recorded per decision (the CLI has no queue).
// - trend: a least-squares line through the per-bucket values (equal time buckets, empty
//   ones skipped); slope per day; stable when the line's change over the window is within
//   `trendStableFraction` of the mean, else improving or declining by the metric's sense.

import TriageCascade
import TriageJSON
import TriageSystem

public struct ReportDepth: Sendable {
    public struct Projection: Sendable, Equatable {
        public var period: String
        public var days: Double
        public var queries: Double
        public var costUSD: Double
        public var allLargeCostUSD: Double
    }

    public struct Breakdown: Sendable, Equatable {
        public var key: String
        public var queries: Int
        public var share: Double
        public var costUSD: Double
        public var costPerQueryUSD: Double
        public var edgeShare: Double
        public var latencyP50Ms: Double?
        public var latencyP95Ms: Double?
    }

    public struct Stage: Sendable, Equatable {
        public var stage: String
        public var meanMs: Double
        public var p95Ms: Double?
        /// Share of the summed total latency.
        public var share: Double
    }

    public struct Trend: Sendable, Equatable {
        public var metric: String
        /// Per-bucket values (bucket start time, value), for charts.
        public var points: [(time: Double, value: Double)]
        public var slopePerDay: Double?
        /// improving, stable, declining, or insufficient_data.
        public var direction: String
        public static func == (a: Trend, b: Trend) -> Bool {
            a.metric == b.metric && a.slopePerDay == b.slopePerDay && a.direction == b.direction
                && a.points.map(\.time) == b.points.map(\.time) && a.points.map(\.value) == b.points.map(\.value)
        }
    }

    public var windowStart: Double?
    public var windowEnd: Double?
    public var windowDays: Double?
    public var observedPerDay: Double?
    /// "observed" or "--volume".
    public var volumeSource: String
    public var volumePerDay: Double?
    public var projections: [Projection]
    public var savingsPerQueryUSD: Double?
    public var boxCostPerMonthUSD: Double?
    public var breakEvenPerDay: Double?
    public var byTier: [Breakdown]
    public var byCategory: [Breakdown]
    public var byHour: [Breakdown]
    public var stages: [Stage]
    public var trends: [Trend]

    // Chart series (the HTML page draws these; JSON carries them too).
    public struct RouteBucket: Sendable, Equatable {
        public var start: Double
        public var end: Double
        /// Queries per route, in Route.allCases order.
        public var counts: [Int]
    }
    public struct DayCost: Sendable, Equatable {
        /// UTC day, "YYYY-MM-DD".
        public var day: String
        public var queries: Int
        public var costUSD: Double
        /// What the day's answered queries would have cost on the large tier alone.
        public var allLargeCostUSD: Double
    }
    public struct LatencyHistogram: Sendable, Equatable {
        public var route: String
        /// Counts per bin of `latencyBinEdgesMs` (the last bin is open-ended).
        public var counts: [Int]
    }
    public struct AccuracyBucket: Sendable, Equatable {
        public var start: Double
        public var queries: Int
        public var agreements: Int
    }
    public static let latencyBinEdgesMs: [Double] = [0, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000]
    public var routeBuckets: [RouteBucket] = []
    public var dailyCost: [DayCost] = []
    public var latencyHistograms: [LatencyHistogram] = []
    /// Shadow agreement of the edge with the cloud over time (only where shadow rows exist).
    public var accuracyBuckets: [AccuracyBucket] = []

    init(decisions ds: [Decision], since: Double?, now: Double, policy: ReportPolicy, allLargeCostUSD: Double, totalCostUSD: Double,
         allLargeCostOf: (Decision) -> Double) {
        let n = ds.count
        let first = ds.map(\.timestamp).min()
        let last = ds.map(\.timestamp).max()
        windowStart = since ?? first
        windowEnd = since != nil ? now : last
        if let a = windowStart, let b = windowEnd, n > 0 {
            // At least one minute, so a burst of decisions in the same second has a finite rate.
            let days = max(b - a, 60) / 86_400
            windowDays = days
            observedPerDay = Double(n) / days
        }
        volumeSource = policy.volumePerDay != nil ? "--volume" : "observed"
        volumePerDay = policy.volumePerDay ?? observedPerDay
        let answeredCount = ds.filter { $0.route != .none }.count
        let costPerQuery = n > 0 ? totalCostUSD / Double(n) : nil
        let largePerQuery = answeredCount > 0 ? allLargeCostUSD / Double(answeredCount) : nil
        projections = []
        if let v = volumePerDay, let cpq = costPerQuery {
            for (name, days) in [("day", 1.0), ("week", 7.0), ("month", 30.0), ("year", 365.0)] {
                projections.append(Projection(period: name, days: days, queries: v * days, costUSD: cpq * v * days,
                                              allLargeCostUSD: (largePerQuery ?? 0) * v * days))
            }
        }
        if let cpq = costPerQuery, let lpq = largePerQuery {
            savingsPerQueryUSD = lpq - cpq
        }
        boxCostPerMonthUSD = policy.boxCostPerMonthUSD
        if let box = policy.boxCostPerMonthUSD, let s = savingsPerQueryUSD, s > 0 {
            breakEvenPerDay = box / 30 / s
        }

        func breakdown(_ key: (Decision) -> String) -> [Breakdown] {
            var groups: [String: [Decision]] = [:]
            for d in ds { groups[key(d), default: []].append(d) }
            return groups.map { k, g in
                let cost = g.reduce(0.0) { $0 + $1.costUSD }
                let lat = g.map(\.latency.totalMs).sorted()
                return Breakdown(key: k, queries: g.count, share: Double(g.count) / Double(max(n, 1)), costUSD: cost,
                                 costPerQueryUSD: cost / Double(g.count),
                                 edgeShare: Double(g.filter { $0.route == .edge }.count) / Double(g.count),
                                 latencyP50Ms: Report.percentile(sorted: lat, 50), latencyP95Ms: Report.percentile(sorted: lat, 95))
            }
        }
        byTier = breakdown { $0.route.rawValue }.sorted { Route.allCases.firstIndex(of: Route(rawValue: $0.key)!)! < Route.allCases.firstIndex(of: Route(rawValue: $1.key)!)! }
        byCategory = breakdown { $0.category.isEmpty ? "unknown" : $0.category }.sorted { $0.queries != $1.queries ? $0.queries > $1.queries : $0.key < $1.key }
        byHour = breakdown { d in
            let h = CivilDate.split(unixSeconds: Int(d.timestamp.rounded(.down))).seconds / 3600
            return h < 10 ? "0\(h)" : "\(h)"
        }.sorted { $0.key < $1.key }

        var stageList: [Stage] = []
        let totalSum = ds.reduce(0.0) { $0 + $1.latency.totalMs }
        let parts: [(String, (Decision) -> Double)] = [
            ("tokenize", { $0.latency.tokenizeMs }), ("inference", { $0.latency.edgeMs }), ("cloud", { $0.latency.cloudMs }),
            ("overhead", { max(0, $0.latency.totalMs - $0.latency.tokenizeMs - $0.latency.edgeMs - $0.latency.cloudMs) }),
        ]
        if n > 0 {
            for (name, f) in parts {
                let values = ds.map(f)
                let sum = values.reduce(0, +)
                stageList.append(Stage(stage: name, meanMs: sum / Double(n), p95Ms: Report.percentile(values, 95),
                                       share: totalSum > 0 ? sum / totalSum : 0))
            }
        }
        stages = stageList

        // Trends over equal time buckets.
        var trendList: [Trend] = []
        if let a = windowStart, let b = windowEnd, b > a, n > 0 {
            let k = max(2, policy.trendBuckets)
            let width = (b - a) / Double(k)
            var buckets = [[Decision]](repeating: [], count: k)
            for d in ds {
                let i = min(k - 1, max(0, Int((d.timestamp - a) / width)))
                buckets[i].append(d)
            }
            let metrics: [(String, Bool, ([Decision]) -> Double?)] = [
                ("edge_share", true, { g in Double(g.filter { $0.route == .edge }.count) / Double(g.count) }),
                ("cost_per_query_usd", false, { g in g.reduce(0.0) { $0 + $1.costUSD } / Double(g.count) }),
                ("p95_latency_ms", false, { g in Report.percentile(g.map(\.latency.totalMs), 95) }),
            ]
            for (name, higherIsBetter, f) in metrics {
                var points: [(time: Double, value: Double)] = []
                for (i, g) in buckets.enumerated() where !g.isEmpty {
                    if let v = f(g) { points.append((a + Double(i) * width, v)) }
                }
                trendList.append(ReportDepth.trend(name, points: points, higherIsBetter: higherIsBetter,
                                                   span: b - a, stableFraction: policy.trendStableFraction))
            }
        }
        trends = trendList

        // Chart series.
        if let a = windowStart, let b = windowEnd, n > 0 {
            let k = max(2, policy.trendBuckets)
            let width = max(b - a, 1) / Double(k)
            var buckets = (0..<k).map { RouteBucket(start: a + Double($0) * width, end: a + Double($0 + 1) * width,
                                                    counts: [Int](repeating: 0, count: Route.allCases.count)) }
            var accuracy = (0..<k).map { AccuracyBucket(start: a + Double($0) * width, queries: 0, agreements: 0) }
            for d in ds {
                let i = min(k - 1, max(0, Int((d.timestamp - a) / width)))
                buckets[i].counts[Route.allCases.firstIndex(of: d.route)!] += 1
                if let s = d.shadow {
                    accuracy[i].queries += 1
                    if (d.outOfScope ? nil : d.label) == s.cloudLabel { accuracy[i].agreements += 1 }
                }
            }
            routeBuckets = buckets
            accuracyBuckets = accuracy.contains { $0.queries > 0 } ? accuracy : []
        }
        var days: [String: DayCost] = [:]
        for d in ds {
            let key = formatUTC(d.timestamp).prefix(10)
            var day = days[String(key)] ?? DayCost(day: String(key), queries: 0, costUSD: 0, allLargeCostUSD: 0)
            day.queries += 1
            day.costUSD += d.costUSD
            day.allLargeCostUSD += allLargeCostOf(d)
            days[String(key)] = day
        }
        dailyCost = days.values.sorted { $0.day < $1.day }
        let edges = ReportDepth.latencyBinEdgesMs
        latencyHistograms = Route.allCases.compactMap { route in
            let values = ds.filter { $0.route == route }.map(\.latency.totalMs)
            if values.isEmpty { return nil }
            var counts = [Int](repeating: 0, count: edges.count)
            for v in values { counts[(edges.lastIndex { v >= $0 }) ?? 0] += 1 }
            return LatencyHistogram(route: route.rawValue, counts: counts)
        }
    }

    static func trendLabel(_ metric: String) -> String {
        switch metric {
        case "edge_share": return "edge share"
        case "cost_per_query_usd": return "cost per query ($)"
        case "p95_latency_ms": return "p95 latency (ms)"
        default: return metric.replacingUnderscores()
        }
    }

    /// Least-squares slope through the points (per day) and its verdict.
    static func trend(_ metric: String, points: [(time: Double, value: Double)], higherIsBetter: Bool, span: Double,
                      stableFraction: Double) -> Trend {
        guard points.count >= 3 else {
            return Trend(metric: metric, points: points, slopePerDay: nil, direction: "insufficient_data")
        }
        let m = Double(points.count)
        let mx = points.reduce(0.0) { $0 + $1.time } / m
        let my = points.reduce(0.0) { $0 + $1.value } / m
        var sxy = 0.0, sxx = 0.0
        for p in points { sxy += (p.time - mx) * (p.value - my); sxx += (p.time - mx) * (p.time - mx) }
        guard sxx > 0 else { return Trend(metric: metric, points: points, slopePerDay: nil, direction: "insufficient_data") }
        let slopePerSecond = sxy / sxx
        let change = slopePerSecond * span
        let direction: String
        if abs(change) <= stableFraction * max(abs(my), 1e-12) {
            direction = "stable"
        } else {
            direction = (change > 0) == higherIsBetter ? "improving" : "declining"
        }
        return Trend(metric: metric, points: points, slopePerDay: slopePerSecond * 86_400, direction: direction)
    }

    var json: JSONValue {
        func num(_ x: Double?) -> JSONValue { x.map { .number($0) } ?? .null }
        func rows(_ list: [Breakdown]) -> JSONValue {
            .array(list.map { b in
                .object([("key", .string(b.key)), ("queries", .int(b.queries)), ("share", .number(b.share)),
                         ("cost_usd", .number(b.costUSD)), ("cost_per_query_usd", .number(b.costPerQueryUSD)),
                         ("edge_share", .number(b.edgeShare)), ("p50_ms", num(b.latencyP50Ms)), ("p95_ms", num(b.latencyP95Ms))])
            })
        }
        return .object([
            ("window_days", num(windowDays)), ("observed_per_day", num(observedPerDay)),
            ("volume_per_day", num(volumePerDay)), ("volume_source", .string(volumeSource)),
            ("projections", .array(projections.map { p in
                .object([("period", .string(p.period)), ("days", .number(p.days)), ("queries", .number(p.queries)),
                         ("cost_usd", .number(p.costUSD)), ("all_large_cost_usd", .number(p.allLargeCostUSD))])
            })),
            ("savings_per_query_usd", num(savingsPerQueryUSD)), ("box_cost_per_month_usd", num(boxCostPerMonthUSD)),
            ("break_even_per_day", num(breakEvenPerDay)),
            ("by_tier", rows(byTier)), ("by_category", rows(byCategory)), ("by_hour_utc", rows(byHour)),
            ("stages", .array(stages.map { s in
                .object([("stage", .string(s.stage)), ("mean_ms", .number(s.meanMs)), ("p95_ms", num(s.p95Ms)),
                         ("share", .number(s.share))])
            })),
            ("stages_note", .string("queue time is not recorded per decision")),
            ("routes_over_time", .array(routeBuckets.map { b in
                .object([("start", .number(b.start)), ("end", .number(b.end)),
                         ("counts", .object(zip(Route.allCases, b.counts).map { ($0.rawValue, JSONValue.int($1)) }))])
            })),
            ("cost_per_day", .array(dailyCost.map { d in
                .object([("day", .string(d.day)), ("queries", .int(d.queries)), ("cost_usd", .number(d.costUSD)),
                         ("all_large_cost_usd", .number(d.allLargeCostUSD))])
            })),
            ("latency_histograms", .object([
                ("bin_edges_ms", .array(ReportDepth.latencyBinEdgesMs.map { .number($0) })),
                ("routes", .object(latencyHistograms.map { ($0.route, JSONValue.array($0.counts.map { .int($0) })) })),
            ])),
            ("accuracy_over_time", .array(accuracyBuckets.map { b in
                .object([("start", .number(b.start)), ("queries", .int(b.queries)), ("agreements", .int(b.agreements))])
            })),
            ("trends", .array(trends.map { t in
                .object([("metric", .string(t.metric)), ("direction", .string(t.direction)), ("slope_per_day", num(t.slopePerDay)),
                         ("points", .array(t.points.map { .array([.number($0.time), .number($0.value)]) }))])
            })),
        ])
    }

    var text: String {
        var out = ""
        func line(_ s: String = "") { out += s + "\n" }
        func section(_ title: String) { line(); line(title); line(String(repeating: "-", count: title.count)) }
        func usd(_ x: Double, _ d: Int = 2) -> String { (x < 0 ? "-$" : "$") + fmt(abs(x), d) }
        func ms(_ x: Double?) -> String { x.map { fmt($0, 1) } ?? "n/a" }

        section("Projection")
        if let v = volumePerDay {
            line("volume: \(fmt(v, 0)) queries/day (\(volumeSource == "observed" ? "observed over \(fmt(windowDays ?? 0, 3)) days" : "--volume"))")
            for p in projections {
                line("per \(p.period):".padded(12) + "\(usd(p.costUSD)) vs \(usd(p.allLargeCostUSD)) all-large (\(fmt(p.queries, 0)) queries)")
            }
        } else {
            line("no traffic to project")
        }
        if let s = savingsPerQueryUSD { line("saved per query vs all-large: \(usd(s, 6))") }
        if let box = boxCostPerMonthUSD {
            line("break-even for a \(usd(box))/month box: " + (breakEvenPerDay.map { "\(fmt($0, 0)) queries/day" } ?? "never (no savings per query)"))
        }

        func table(_ title: String, _ rows: [Breakdown]) {
            section(title)
            line("key".padded(16) + "queries".padded(9) + "share".padded(7) + "cost".padded(11) + "per query".padded(11) + "edge".padded(7) + "p50 ms".padded(9) + "p95 ms")
            for b in rows {
                line(b.key.padded(16) + "\(b.queries)".padded(9) + pct(b.share).padded(7) + usd(b.costUSD, 4).padded(11)
                     + usd(b.costPerQueryUSD, 6).padded(11) + pct(b.edgeShare).padded(7) + ms(b.latencyP50Ms).padded(9) + ms(b.latencyP95Ms))
            }
        }
        table("By tier", byTier)
        table("By category", byCategory)
        table("By hour of day (UTC)", byHour)

        section("By stage (queue time not recorded)")
        for s in stages {
            line(s.stage.padded(11) + "mean \(fmt(s.meanMs, 2)) ms, p95 \(ms(s.p95Ms)) ms, \(pct(s.share)) of the time")
        }

        section("Trends")
        // Over a short window a slope per day reads as nonsense: say it per hour there.
        let perHour = (windowDays ?? 0) < 2
        for t in trends {
            let digits = t.metric == "cost_per_query_usd" ? 6 : 3
            let slope = t.slopePerDay.map { " (slope \(fmt(perHour ? $0 / 24 : $0, digits)) per \(perHour ? "hour" : "day"))" } ?? ""
            line("\(ReportDepth.trendLabel(t.metric)): \(t.direction.replacingUnderscores())\(slope)")
        }
        if trends.isEmpty { line("not enough data") }
        return out
    }
}
