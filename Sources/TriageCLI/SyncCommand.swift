import ArgumentParser
import TriageCascade
import TriageFleet
import TriageJSON
import TriageRecord
import TriageSystem

struct Sync: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Ship the decisions recorded here to the fleet's PostgreSQL database.",
        discussion: """
            Sends every decision (and backlog gap) not yet confirmed by the database named by \
            record.postgres in the config (or --to), in batches of one transaction each, and notes \
            locally what the database confirmed. Safe to run again, from cron or beside `serve`: \
            a row already there is not inserted twice. The password comes from TRIAGE_PG_PASSWORD \
            or the URL and is never printed.

            Exit status: 0 when nothing is left pending, 1 when the database could not be reached \
            or refused a batch (what was confirmed before stays confirmed).
            """)

    @Option(help: ArgumentHelp("Config file (JSON).", valueName: "FILE")) var config: String?
    @Option(help: ArgumentHelp("Decision record (SQLite) to ship from.", valueName: "FILE")) var db: String?
    @Option(help: ArgumentHelp("Fleet database (postgres:// URL); overrides record.postgres.", valueName: "URL")) var to: String?
    @Flag(help: "Keep shipping new decisions until interrupted, backing off while the database is unreachable.")
    var follow = false
    @Flag(help: "Print the outcome as JSON.") var json = false
    @Option(help: ArgumentHelp("Decisions per transaction (default 500).", valueName: "N")) var batchSize: Int?
    @Option(help: ArgumentHelp("Seconds one database operation may take (default 30).", valueName: "SECONDS"))
    var timeout: Double?

    func validate() throws {
        if let batchSize, batchSize < 1 || batchSize > 2000 { throw ValidationError("--batch-size must be between 1 and 2000") }
        if let timeout, !(timeout > 0) { throw ValidationError("--timeout must be a positive number of seconds") }
    }

    func run() throws {
        try TriageCLI.run {
            let settings = try TriageConfig.load(path: config)
            guard let target = to ?? settings.postgresURL else {
                throw CLIError("no fleet database: set record.postgres in the config or pass --to postgres://…")
            }
            let url = try FleetURL(target)
            let store = try DecisionStore(path: db ?? settings.recordPath ?? DecisionStore.defaultPath(),
                                          node: settings.node, maxPending: settings.maxPending)
            var options = Replicator.Options()
            if let batchSize { options.batchSize = batchSize }
            if let timeout { options.operationTimeout = timeout }
            let replicator = Replicator(store: store, url: url, options: options)
            let asJSON = json
            if follow {
                try runBlocking {
                    await replicator.run { outcome in
                        switch outcome {
                        case .success(let s) where s.newDecisions + s.alreadyThere + s.gaps + s.labels + s.reviewEntries > 0:
                            StandardOutput.write(Sync.render(s, status: replicator.status, json: asJSON))
                        case .failure(let e):
                            StandardError.write("triage: sync: \(e.description) (retrying)\n")
                        default: break
                        }
                    }
                }
                return
            }
            do {
                let shipment = try runBlocking { try await replicator.shipPending() }
                StandardOutput.write(Sync.render(shipment, status: replicator.status, json: asJSON))
                try? runBlocking { await replicator.close() }
            } catch {
                let status = replicator.status
                if asJSON {
                    StandardOutput.write(JSONValue.object([
                        ("ok", .bool(false)), ("node", .string(status.node)), ("error", .string(status.lastError ?? "\(error)")),
                        ("pending", .int(status.pendingDecisions)), ("pending_gaps", .int(status.pendingGaps)),
                    ]).serialized + "\n")
                }
                throw CLIError("sync: \(error) (\(status.pendingDecisions) decisions still pending)")
            }
        }
    }

    static func render(_ s: Replicator.Shipment, status: Replicator.Status, json: Bool) -> String {
        if json {
            return JSONValue.object([
                ("ok", .bool(true)), ("node", .string(status.node)), ("batches", .int(s.batches)),
                ("new", .int(s.newDecisions)), ("already_there", .int(s.alreadyThere)), ("gaps", .int(s.gaps)),
                ("review_entries", .int(s.reviewEntries)), ("candidate_results", .int(s.candidateResults)),
                ("labels", .int(s.labels)),
                ("pending", .int(status.pendingDecisions)), ("pending_gaps", .int(status.pendingGaps)),
                ("pending_labels", .int(status.pendingLabels)),
            ]).serialized + "\n"
        }
        return "shipped \(s.newDecisions) new, \(s.alreadyThere) already there, \(s.gaps) gaps in \(s.batches) batches from \(status.node)"
            + " (\(s.reviewEntries) review entries, \(s.candidateResults) candidate results, \(s.labels) labels); "
            + "\(status.pendingDecisions) pending\n"
    }
}
