// The report as one self-contained HTML page: inline CSS and SVG, no script, no fonts, no
// network, laid out for a phone first. Every chart element carries the figure it draws in a
// data- attribute (data-route/data-count, data-cost, …), so a test in a real browser can
// check that what is drawn adds up to the report's numbers.

import TriageCascade
import TriageSystem

public enum HTMLReport {
    static let routeColours: [Route: String] = [.edge: "#2e7d32", .small: "#1565c0", .large: "#6a1b9a", .none: "#c62828"]

    public static func render(_ r: Report, nodes: [NodeReport], title: String) -> String {
        var h = ""
        func add(_ s: String) { h += s + "\n" }
        let d = r.depth
        add("<!doctype html>")
        add("<html lang=\"en\"><head><meta charset=\"utf-8\">")
        add("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
        add("<title>triage report — \(escape(title))</title>")
        add("<style>\(css)</style></head><body>")
        add("<header><h1>triage report</h1>")
        let window = r.since.map { "since \(formatUTC($0))" } ?? "all time"
        add("<p class=\"muted\">\(escape(title)) · \(window) · generated \(formatUTC(r.generatedAt))</p>")
        let score = r.healthScore.map { "\($0)/100" } ?? "n/a"
        add("<p id=\"health\" class=\"health s-\(r.status.rawValue)\" data-score=\"\(r.healthScore.map(String.init) ?? "")\">health \(score) · \(r.status.rawValue.replacingUnderscores())</p>")
        add("</header><main>")

        // Key figures.
        add("<section class=\"cards\">")
        func card(_ id: String, _ label: String, _ value: String) {
            add("<div class=\"card\" id=\"\(id)\"><div class=\"v\">\(escape(value))</div><div class=\"l\">\(escape(label))</div></div>")
        }
        card("k-queries", "queries", "\(r.totalQueries)")
        card("k-edge", "at the edge", r.edgeShare.map { pct($0) } ?? "n/a")
        card("k-availability", "availability (SLA \(fmt(r.policy.slaAvailability * 100, 1)) %)", r.availability.map { fmt($0 * 100, 2) + " %" } ?? "n/a")
        card("k-cost", "cost", "$" + fmt(r.totalCostUSD, 4))
        card("k-saved", "saved vs all-large", r.savingsVsLarge.savingsRate.map { pct($0) } ?? "n/a")
        card("k-p95", "p95 latency", r.latencyP95Ms.map { fmt($0, 0) + " ms" } ?? "n/a")
        add("</section>")

        if !r.alerts.isEmpty {
            add("<section><h2>Alerts</h2><ul class=\"alerts\">")
            for a in r.alerts { add("<li>\(escape(a.message))</li>") }
            add("</ul></section>")
        }

        add("<section><h2>Routes over time</h2>")
        add(routesChart(d))
        add(legend())
        add("</section>")

        add("<section><h2>Cost per day vs all-large</h2>")
        add(costChart(d))
        add("<p class=\"legend\"><span class=\"sw\" style=\"background:#1565c0\"></span>recorded cost <span class=\"sw line\"></span>all-large baseline (answered queries)</p>")
        add("</section>")

        add("<section><h2>Latency by tier</h2>")
        add(latencyCharts(d))
        add("</section>")

        add("<section><h2>Edge accuracy over time</h2>")
        add(accuracyChart(d))
        add("</section>")

        // Tables.
        add("<section><h2>Projection</h2>")
        if let v = d.volumePerDay {
            add("<p>\(fmt(v, 0)) queries/day (\(d.volumeSource == "observed" ? "observed" : "--volume"))</p>")
            add("<table id=\"projection\"><tr><th>period</th><th>queries</th><th>cost</th><th>all-large</th></tr>")
            for p in d.projections {
                add("<tr><td>\(p.period)</td><td>\(fmt(p.queries, 0))</td><td>$\(fmt(p.costUSD, 2))</td><td>$\(fmt(p.allLargeCostUSD, 2))</td></tr>")
            }
            add("</table>")
        }
        if let box = d.boxCostPerMonthUSD {
            add("<p id=\"break-even\">break-even for a $\(fmt(box, 2))/month box: " + (d.breakEvenPerDay.map { "\(fmt($0, 0)) queries/day" } ?? "never") + "</p>")
        }
        add("</section>")

        func table(_ id: String, _ title: String, _ rows: [ReportDepth.Breakdown]) {
            add("<section><h2>\(title)</h2><div class=\"scroll\"><table id=\"\(id)\"><tr><th>key</th><th>queries</th><th>share</th><th>cost</th><th>per query</th><th>edge</th><th>p95 ms</th></tr>")
            for b in rows {
                add("<tr><td>\(escape(b.key))</td><td>\(b.queries)</td><td>\(pct(b.share))</td><td>$\(fmt(b.costUSD, 4))</td><td>$\(fmt(b.costPerQueryUSD, 6))</td><td>\(pct(b.edgeShare))</td><td>\(b.latencyP95Ms.map { fmt($0, 1) } ?? "n/a")</td></tr>")
            }
            add("</table></div></section>")
        }
        table("by-tier", "By tier", d.byTier)
        table("by-category", "By category", d.byCategory)
        table("by-hour", "By hour of day (UTC)", d.byHour)

        add("<section><h2>By stage</h2><table id=\"stages\"><tr><th>stage</th><th>mean ms</th><th>p95 ms</th><th>share</th></tr>")
        for s in d.stages {
            add("<tr><td>\(s.stage)</td><td>\(fmt(s.meanMs, 2))</td><td>\(s.p95Ms.map { fmt($0, 1) } ?? "n/a")</td><td>\(pct(s.share))</td></tr>")
        }
        add("</table><p class=\"muted\">queue time is not recorded per decision</p></section>")

        add("<section><h2>Trends</h2><ul id=\"trends\">")
        for t in d.trends {
            let slope = t.slopePerDay.map { " (\(fmt($0, t.metric == "cost_per_query_usd" ? 6 : 3))/day)" } ?? ""
            add("<li class=\"t-\(t.direction)\">\(ReportDepth.trendLabel(t.metric)): <b>\(t.direction.replacingUnderscores())</b>\(slope)</li>")
        }
        add("</ul></section>")

        add("<section><h2>SLA</h2><table id=\"sla\"><tr><th>check</th><th>value</th><th>target</th><th></th></tr>")
        for c in r.sla {
            let isMs = c.name.hasSuffix("_ms")
            let value = c.value.map { c.name == "availability" ? fmt($0 * 100, 2) + " %" : fmt($0, isMs ? 1 : 2) } ?? "n/a"
            let target = c.name == "availability" ? "≥ " + fmt(c.target * 100, 1) + " %" : "≤ " + fmt(c.target, isMs ? 0 : 2)
            add("<tr><td>\(slaLabel(c.name))</td><td>\(value)</td><td>\(target)</td><td>\(c.met.map { $0 ? "met" : "<b class=\"bad\">missed</b>" } ?? "n/a")</td></tr>")
        }
        add("</table></section>")

        if nodes.count > 1 || (nodes.count == 1 && title == "fleet") {
            add("<section><h2>Nodes</h2><div class=\"scroll\"><table id=\"nodes\"><tr><th>node</th><th>queries</th><th>edge</th><th>availability</th><th>cost</th><th>p95 ms</th><th>health</th></tr>")
            for n in nodes {
                let x = n.report
                add("<tr><td>\(escape(n.node))</td><td>\(x.totalQueries)</td><td>\(x.edgeShare.map { pct($0) } ?? "n/a")</td><td>\(x.availability.map { fmt($0 * 100, 2) + " %" } ?? "n/a")</td><td>$\(fmt(x.totalCostUSD, 4))</td><td>\(x.latencyP95Ms.map { fmt($0, 1) } ?? "n/a")</td><td>\(x.healthScore.map(String.init) ?? "n/a") \(x.status.rawValue)</td></tr>")
            }
            add("</table></div></section>")
        }

        add("<section><h2>Recommendations</h2><ul>")
        for rec in r.recommendations { add("<li>\(escape(rec))</li>") }
        add("</ul></section>")
        add("</main></body></html>")
        return h
    }

    // MARK: Charts

    static let chartWidth = 360.0
    static let chartHeight = 180.0

    static func routesChart(_ d: ReportDepth) -> String {
        guard !d.routeBuckets.isEmpty else { return "<p class=\"muted\">no decisions</p>" }
        let w = chartWidth, h = chartHeight, pad = 24.0
        let maxTotal = Double(d.routeBuckets.map { $0.counts.reduce(0, +) }.max() ?? 1)
        let barW = (w - pad) / Double(d.routeBuckets.count)
        var s = svgOpen("routes", "queries per route over time")
        s += axis(maxLabel: "\(Int(maxTotal))", pad: pad)
        for (i, b) in d.routeBuckets.enumerated() {
            var y = h - pad
            for (j, route) in Route.allCases.enumerated() where b.counts[j] > 0 {
                let bh = (h - 2 * pad) * Double(b.counts[j]) / max(maxTotal, 1)
                y -= bh
                s += "<rect class=\"bar\" data-route=\"\(route.rawValue)\" data-count=\"\(b.counts[j])\" x=\"\(f(pad + Double(i) * barW + 1))\" y=\"\(f(y))\" width=\"\(f(max(barW - 2, 1)))\" height=\"\(f(bh))\" fill=\"\(routeColours[route]!)\"><title>\(formatUTC(b.start)): \(b.counts[j]) \(route.rawValue)</title></rect>"
            }
        }
        s += timeLabels(first: d.routeBuckets.first!.start, last: d.routeBuckets.last!.end, pad: pad)
        return s + "</svg>"
    }

    static func costChart(_ d: ReportDepth) -> String {
        guard !d.dailyCost.isEmpty else { return "<p class=\"muted\">no decisions</p>" }
        let w = chartWidth, h = chartHeight, pad = 24.0
        let top = max(d.dailyCost.map { max($0.costUSD, $0.allLargeCostUSD) }.max() ?? 0, 1e-12)
        let barW = (w - pad) / Double(d.dailyCost.count)
        var s = svgOpen("cost", "cost per day against the all-large baseline")
        s += axis(maxLabel: "$" + fmt(top, top < 1 ? 4 : 2), pad: pad)
        var points: [String] = []
        for (i, day) in d.dailyCost.enumerated() {
            let bh = (h - 2 * pad) * day.costUSD / top
            let x = pad + Double(i) * barW
            s += "<rect class=\"cost\" data-day=\"\(day.day)\" data-cost=\"\(day.costUSD)\" x=\"\(f(x + barW * 0.2))\" y=\"\(f(h - pad - bh))\" width=\"\(f(max(barW * 0.6, 1)))\" height=\"\(f(bh))\" fill=\"#1565c0\"><title>\(day.day): $\(fmt(day.costUSD, 4)) (\(day.queries) queries)</title></rect>"
            let by = h - pad - (h - 2 * pad) * day.allLargeCostUSD / top
            points.append("\(f(x + barW / 2)),\(f(by))")
            s += "<circle class=\"baseline\" data-day=\"\(day.day)\" data-cost=\"\(day.allLargeCostUSD)\" cx=\"\(f(x + barW / 2))\" cy=\"\(f(by))\" r=\"3\" fill=\"#e65100\"><title>\(day.day): all-large $\(fmt(day.allLargeCostUSD, 4))</title></circle>"
        }
        if points.count > 1 { s += "<polyline points=\"\(points.joined(separator: " "))\" fill=\"none\" stroke=\"#e65100\" stroke-width=\"1.5\"/>" }
        if d.dailyCost.count <= 8 {
            for (i, day) in d.dailyCost.enumerated() {
                s += "<text x=\"\(f(pad + (Double(i) + 0.5) * barW))\" y=\"\(f(h - 8))\" text-anchor=\"middle\">\(day.day.suffix(5))</text>"
            }
        }
        return s + "</svg>"
    }

    static func latencyCharts(_ d: ReportDepth) -> String {
        guard !d.latencyHistograms.isEmpty else { return "<p class=\"muted\">no decisions</p>" }
        let edges = ReportDepth.latencyBinEdgesMs
        var out = ""
        for hist in d.latencyHistograms {
            let route = Route(rawValue: hist.route) ?? Route.none
            let w = chartWidth, h = 120.0, pad = 20.0
            let top = Double(hist.counts.max() ?? 1)
            let barW = (w - pad) / Double(hist.counts.count)
            var s = "<svg id=\"latency-\(hist.route)\" class=\"chart\" viewBox=\"0 0 \(f(w)) \(f(h))\" role=\"img\" aria-label=\"latency distribution, \(hist.route)\">"
            s += "<text x=\"\(f(pad))\" y=\"12\" class=\"ct\">\(hist.route) (\(hist.counts.reduce(0, +)))</text>"
            for (i, c) in hist.counts.enumerated() {
                let bh = (h - 2 * pad) * Double(c) / max(top, 1)
                let label = i + 1 < edges.count ? "\(fmt(edges[i], 0))–\(fmt(edges[i + 1], 0)) ms" : "≥ \(fmt(edges[i], 0)) ms"
                s += "<rect class=\"lat\" data-route=\"\(hist.route)\" data-count=\"\(c)\" x=\"\(f(pad + Double(i) * barW + 1))\" y=\"\(f(h - pad - bh))\" width=\"\(f(max(barW - 2, 1)))\" height=\"\(f(bh))\" fill=\"\(routeColours[route]!)\"><title>\(label): \(c)</title></rect>"
            }
            for (i, e) in edges.enumerated() where i % 2 == 0 {
                s += "<text x=\"\(f(pad + Double(i) * barW))\" y=\"\(f(h - 6))\">\(e >= 1000 ? fmt(e / 1000, 0) + "s" : fmt(e, 0))</text>"
            }
            out += s + "</svg>\n"
        }
        return out
    }

    static func accuracyChart(_ d: ReportDepth) -> String {
        let used = d.accuracyBuckets.filter { $0.queries > 0 }
        guard !used.isEmpty, let first = d.routeBuckets.first, let last = d.routeBuckets.last else {
            return "<p class=\"muted\" id=\"accuracy-none\">no reviewed (shadow-mode) decisions in this window</p>"
        }
        let w = chartWidth, h = chartHeight, pad = 24.0
        let span = max(last.end - first.start, 1)
        var s = svgOpen("accuracy", "edge agreement with the cloud over time")
        s += axis(maxLabel: "100 %", pad: pad)
        var pts: [String] = []
        for b in used {
            let rate = Double(b.agreements) / Double(b.queries)
            let x = pad + (w - pad) * ((b.start - first.start) / span + 0.5 / Double(max(d.accuracyBuckets.count, 1)))
            let y = h - pad - (h - 2 * pad) * rate
            pts.append("\(f(x)),\(f(y))")
            s += "<circle class=\"acc\" data-queries=\"\(b.queries)\" data-agreements=\"\(b.agreements)\" cx=\"\(f(x))\" cy=\"\(f(y))\" r=\"3.5\" fill=\"#2e7d32\"><title>\(formatUTC(b.start)): \(b.agreements)/\(b.queries) agree</title></circle>"
        }
        if pts.count > 1 { s += "<polyline points=\"\(pts.joined(separator: " "))\" fill=\"none\" stroke=\"#2e7d32\" stroke-width=\"1.5\"/>" }
        s += timeLabels(first: first.start, last: last.end, pad: pad)
        return s + "</svg>"
    }

    static func svgOpen(_ id: String, _ label: String) -> String {
        "<svg id=\"\(id)\" class=\"chart\" viewBox=\"0 0 \(f(chartWidth)) \(f(chartHeight))\" role=\"img\" aria-label=\"\(label)\">"
    }

    static func axis(maxLabel: String, pad: Double) -> String {
        let h = chartHeight
        return "<line x1=\"\(f(pad))\" y1=\"\(f(h - pad))\" x2=\"\(f(chartWidth))\" y2=\"\(f(h - pad))\" stroke=\"#999\"/>"
            + "<line x1=\"\(f(pad))\" y1=\"\(f(pad))\" x2=\"\(f(pad))\" y2=\"\(f(h - pad))\" stroke=\"#999\"/>"
            + "<text x=\"2\" y=\"\(f(pad - 6))\">\(escape(maxLabel))</text>"
    }

    static func timeLabels(first: Double, last: Double, pad: Double) -> String {
        let h = chartHeight
        return "<text x=\"\(f(pad))\" y=\"\(f(h - 8))\">\(formatUTC(first).prefix(16))</text>"
            + "<text x=\"\(f(chartWidth - 3))\" y=\"\(f(h - 8))\" text-anchor=\"end\">\(formatUTC(last).prefix(16))</text>"
    }

    static func legend() -> String {
        "<p class=\"legend\">" + Route.allCases.map { r in
            "<span class=\"sw\" style=\"background:\(routeColours[r]!)\"></span>\(r == .none ? "unanswered" : r.rawValue)"
        }.joined(separator: " ") + "</p>"
    }

    static func f(_ x: Double) -> String { fmt(x, 1) }

    static let css = """
        body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;padding:12px;\
        max-width:760px;margin:auto;background:#fafafa;color:#212121}h1{font-size:1.4em;margin:.2em 0}h2{font-size:1.1em;margin:1.2em 0 .4em}\
        .muted{color:#666;font-size:.9em}.health{font-weight:600;padding:.4em .7em;border-radius:6px;display:inline-block;color:#fff}\
        .s-excellent{background:#2e7d32}.s-good{background:#558b2f}.s-fair{background:#f9a825;color:#000}.s-poor{background:#ef6c00}\
        .s-critical{background:#c62828}.s-no_data{background:#757575}.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(105px,1fr));gap:8px}\
        .card{background:#fff;border:1px solid #ddd;border-radius:8px;padding:8px}.card .v{font-size:1.25em;font-weight:600}.card .l{font-size:.8em;color:#555}\
        svg.chart{width:100%;height:auto;background:#fff;border:1px solid #ddd;border-radius:8px;margin:4px 0}svg text{font-size:9px;fill:#555}\
        svg .ct{font-size:11px;fill:#212121}.legend{font-size:.85em}.sw{display:inline-block;width:10px;height:10px;margin:0 4px 0 8px;border-radius:2px}\
        .sw.line{height:2px;background:#e65100;vertical-align:middle}table{border-collapse:collapse;width:100%;font-size:.85em;background:#fff}\
        th,td{border-bottom:1px solid #e0e0e0;padding:4px 6px;text-align:right}th:first-child,td:first-child{text-align:left}\
        .scroll{overflow-x:auto}.alerts li{color:#b71c1c}.bad{color:#b71c1c}.t-improving b{color:#2e7d32}.t-declining b{color:#c62828}
        """

    static func escape(_ s: String) -> String { markupEscape(s) }
}
