// The HTML report in a real headless Chromium (Debian's `chromium`, installed by
// scripts/install-deps.sh --test): it renders with no console message, and what the charts
// draw adds up to the report's own figures.

import Foundation
import Testing
import TriageCascade
import TriageJSON
@testable import TriageRecord

enum Chromium {
    static let path: String? = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }
    static let flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
}

/// A varied record over three days: every route, categories, shadow rows (edge accuracy),
/// a fallback and an unanswered query.
func htmlFixture() -> [Decision] {
    var out: [Decision] = []
    let t0 = 1_764_547_200.0   // 2025-12-01 00:00:00Z
    for i in 0..<180 {
        var d = sampleDecision(i, node: i % 2 == 0 ? "box-a" : "box-b", t0: t0)
        d.timestamp = t0 + Double(i) * 1440   // three days
        if i % 9 == 0 {
            d.shadow = ShadowComparison(edgeRoute: .edge, edgeReason: "optimal_edge", cloudLabel: i % 27 == 0 ? "other" : d.label)
        }
        if i == 50 { d.reason = "cloud_unavailable"; d.route = .edge }
        out.append(d)
    }
    return out
}

@Suite(.serialized) struct HTMLReportTests {
    @Test func rendersInHeadlessChromiumAndTheChartsCarryTheFigures() async throws {
        guard let chromium = Chromium.path else {
            if TestPostgres.required { Issue.record("chromium not found; make test installs it (scripts/install-deps.sh --test)") }
            return
        }
        let scratch = try Scratch()
        defer { scratch.cleanup() }
        let ds = htmlFixture()
        var policy = ReportPolicy()
        policy.boxCostPerMonthUSD = 40
        let report = Report(decisions: ds, now: ds.last!.timestamp + 60, policy: policy)
        let nodes = NodeReport.perNode(decisions: ds, now: ds.last!.timestamp + 60, policy: policy)
        let html = HTMLReport.render(report, nodes: nodes, title: "fleet")
        let page = scratch.file("report.html")
        try html.write(toFile: page, atomically: true, encoding: .utf8)
        // Self-contained: nothing fetched, nothing run.
        #expect(!html.contains("<script") && !html.contains("http://") && !html.contains("https://") && !html.contains("@import"))
        #expect(!html.contains("src=") && !html.contains("<link"))

        let dump = try Child(chromium, Chromium.flags + ["--enable-logging=stderr", "--v=0", "--dump-dom", "file://" + page],
                             environment: ["HOME": scratch.path])
        #expect(await dump.waitAsync() == 0, "\(dump.stderr)")
        let console = dump.stderr.split(separator: "\n").filter { $0.contains("CONSOLE") }
        #expect(console.isEmpty, "console messages: \(console)")
        let dom = dump.stdout
        #expect(dom.contains("id=\"routes\"") && dom.contains("id=\"cost\"") && dom.contains("id=\"accuracy\""))

        // Routes over time: the stacked bars add up to the route counts.
        for route in Route.allCases {
            let drawn = attributes(in: dom, element: "rect", where: "class=\"bar\" data-route=\"\(route.rawValue)\"", "data-count")
                .compactMap { Int($0) }.reduce(0, +)
            #expect(drawn == report.routeCounts[route], "route \(route)")
        }
        // Cost per day: bars add up to the total cost, baseline points to the all-large cost.
        let cost = attributes(in: dom, element: "rect", where: "class=\"cost\"", "data-cost").compactMap { Double($0) }
        #expect(cost.count == 3)
        #expect(abs(cost.reduce(0, +) - report.totalCostUSD) < 1e-9)
        let baseline = attributes(in: dom, element: "circle", where: "class=\"baseline\"", "data-cost").compactMap { Double($0) }
        #expect(abs(baseline.reduce(0, +) - report.savingsVsLarge.hypotheticalCostUSD) < 1e-9)
        // Latency histograms: one per route, each adding up to that route's queries.
        for route in Route.allCases where (report.routeCounts[route] ?? 0) > 0 {
            let drawn = attributes(in: dom, element: "rect", where: "class=\"lat\" data-route=\"\(route.rawValue)\"", "data-count")
                .compactMap { Int($0) }.reduce(0, +)
            #expect(drawn == report.routeCounts[route], "latency \(route)")
        }
        // Edge accuracy: the points add up to the shadow rows and their agreements.
        let q = attributes(in: dom, element: "circle", where: "class=\"acc\"", "data-queries").compactMap { Int($0) }.reduce(0, +)
        let a = attributes(in: dom, element: "circle", where: "class=\"acc\"", "data-agreements").compactMap { Int($0) }.reduce(0, +)
        #expect(q == report.shadow?.queries && a == report.shadow?.agreements)
        // The headline figures.
        #expect(dom.contains("data-score=\"\(report.healthScore!)\""))
        #expect(dom.contains("box-a") && dom.contains("box-b") && dom.contains("id=\"break-even\""))

        // Phone width: a screenshot renders (PNG) at 412 px.
        let shot = scratch.file("phone.png")
        let s = try Child(chromium, Chromium.flags + ["--hide-scrollbars", "--window-size=412,2600", "--screenshot=" + shot, "file://" + page],
                          environment: ["HOME": scratch.path])
        #expect(await s.waitAsync() == 0, "\(s.stderr)")
        let png = try Data(contentsOf: URL(fileURLWithPath: shot))
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]) && png.count > 10_000)
        // The page is laid out for that width: nothing forces a wider layout.
        #expect(!html.contains("width=\"") || html.contains("viewBox"))
    }
}

/// Values of `attribute` on every `<element …>` tag whose text contains `marker`.
func attributes(in dom: String, element: String, where marker: String, _ attribute: String) -> [String] {
    var out: [String] = []
    var rest = Substring(dom)
    while let open = rest.range(of: "<\(element) ") {
        let tagEnd = rest[open.upperBound...].firstIndex(of: ">") ?? rest.endIndex
        let tag = rest[open.lowerBound..<tagEnd]
        if tag.contains(marker), let a = tag.range(of: "\(attribute)=\"") {
            let valueEnd = tag[a.upperBound...].firstIndex(of: "\"") ?? tag.endIndex
            out.append(String(tag[a.upperBound..<valueEnd]))
        }
        rest = rest[tagEnd...]
    }
    return out
}
