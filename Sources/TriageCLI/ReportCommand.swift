import ArgumentParser
import TriageCascade
import TriageFleet
import TriageRecord
import TriageSystem

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Summarise the decision record of one box or the fleet: traffic, cost and savings, latency, health.",
        discussion: """
            Totals, edge share, tier shares, escalations, fallbacks and availability, cache hits, cost, \
            cost per query and per inference per tier, savings against sending everything to the large \
            or the small tier (answered queries only), latency p50/p95/p99, the review queue, shadow-mode \
            agreement, alerts, a health score with its status, SLA checks; projections per day, week, \
            month and year, the break-even of an edge box, breakdowns by tier, category, hour and stage, \
            trends, and recommendations. Prices are the cloud config's (--config).

            --db takes a SQLite record (one box) or a postgres:// URL (the fleet, with one row per \
            node; password from TRIAGE_PG_PASSWORD or the URL, never printed).
            """)

    @Flag(help: "Print JSON.") var json = false
    @Option(help: ArgumentHelp("Only decisions newer than this (90s, 30m, 24h, 7d, 2w).", valueName: "DURATION"))
    var since: String?
    @Option(help: ArgumentHelp("Decision record: a SQLite file (default: $XDG_STATE_HOME/triage/decisions.sqlite) or the fleet's postgres:// URL.",
                               valueName: "FILE|URL"))
    var db: String?
    @Option(help: ArgumentHelp("Config file (JSON): tier prices and edge cost.", valueName: "FILE")) var config: String?
    @Option(help: ArgumentHelp("Project costs at this many queries a day (default: the observed rate).", valueName: "N"))
    var volume: Double?
    @Option(help: ArgumentHelp("Monthly cost of one edge box in dollars, for the break-even volume.", valueName: "USD"))
    var boxCost: Double?
    @Option(help: ArgumentHelp("Also write the report as one self-contained HTML page.", valueName: "FILE"))
    var html: String?

    func validate() throws {
        if let volume, !(volume > 0) || !volume.isFinite { throw ValidationError("--volume must be a positive number of queries a day") }
        if let boxCost, !(boxCost >= 0) || !boxCost.isFinite { throw ValidationError("--box-cost must be a non-negative number of dollars") }
    }

    func run() throws {
        try TriageCLI.run {
            var start: Double? = nil
            if let since {
                do { start = Clock.unixTime() - (try parseDuration(since)) } catch { throw ValidationError("--since: \(error)") }
            }
            let settings = try TriageConfig.load(path: config)
            var policy = ReportPolicy(config: settings)
            policy.volumePerDay = volume
            policy.boxCostPerMonthUSD = boxCost
            let now = Clock.unixTime()
            let source = db ?? settings.recordPath ?? DecisionStore.defaultPath()
            let decisions: [Decision], gaps: [RecordGap], labels: [DecisionKey: LabelVerdict]
            let fleet = FleetURL.isPostgresURL(source)
            if fleet {
                let url = try FleetURL(source)
                let from = start
                (decisions, gaps, labels) = try runBlocking {
                    let database = try await FleetDatabase.connect(url, migrate: false)
                    do {
                        let rows = try await database.load(since: from)
                        await database.close()
                        return rows
                    } catch {
                        await database.close()
                        throw error
                    }
                }
            } else {
                let store = try DecisionStore(path: source, readOnly: true)
                decisions = try store.decisions(since: start)
                gaps = try store.gaps(since: start)
                labels = try store.labels(since: start)
            }
            // One computation whichever database the rows came from.
            let (measured, candidate) = ReviewFigures.compute(decisions: decisions, labels: labels)
            let report = Report(decisions: decisions, gaps: gaps, since: start, now: now, policy: policy,
                                measured: measured, candidate: candidate)
            let nodes = NodeReport.perNode(decisions: decisions, gaps: gaps, since: start, now: now, policy: policy)
            if let html {
                try FileSystem.writeAtomically(html, text: HTMLReport.render(report, nodes: nodes, title: fleet ? "fleet" : source))
            }
            if json {
                var j = report.json
                if case var .object(pairs) = j {
                    pairs.append(("nodes", .array(nodes.map(\.json))))
                    j = .object(pairs)
                }
                StandardOutput.write(j.serialized + "\n")
            } else {
                StandardOutput.write(report.text + (fleet || nodes.count > 1 ? NodeReport.text(nodes) : ""))
            }
        }
    }
}
