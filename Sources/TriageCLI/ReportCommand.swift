import ArgumentParser
import TriageRecord
import TriageSystem

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Summarise the decision record: traffic, cost and savings, latency, alerts and health.",
        discussion: """
            Totals, edge share, tier shares, escalation and cache-hit rates, cost, cost per query and \
            per inference per tier, savings against sending everything to the large or the small tier, \
            latency p50/p95/p99, the queries flagged for review, shadow-mode agreement and over- and \
            under-routing, alerts, a health score with its status, SLA checks and recommendations.
            """)

    @Flag(help: "Print JSON.") var json = false
    @Option(help: ArgumentHelp("Only decisions newer than this (90s, 30m, 24h, 7d, 2w).", valueName: "DURATION"))
    var since: String?
    @Option(help: ArgumentHelp("Decision record (default: $XDG_STATE_HOME/triage/decisions.sqlite).", valueName: "FILE"))
    var db: String?

    func run() throws {
        try TriageCLI.run {
            var start: Double? = nil
            if let since {
                do { start = Clock.unixTime() - (try parseDuration(since)) } catch { throw ValidationError("--since: \(error)") }
            }
            let store = try DecisionStore(path: db ?? DecisionStore.defaultPath(), readOnly: true)
            let report = try store.report(since: start)
            StandardOutput.write(json ? report.json.serialized + "\n" : report.text)
        }
    }
}
