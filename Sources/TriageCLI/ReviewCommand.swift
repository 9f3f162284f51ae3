import ArgumentParser
import TriageJSON
import TriageRecord
import TriageSystem

/// `triage review`: the human side of the loop. Decisions that need a look (answered in the
/// review band, fallbacks, doubtful small-tier answers, and a random sample of the plain
/// edge and small-tier answers) are listed and exported for labelling; the labels come back
/// with `import` and `triage report` measures the edge's real accuracy from them.
struct ReviewCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "review",
        abstract: "List, export and import labels for the decisions queued for human review.",
        subcommands: [List.self, Export.self, Import.self])

    struct Selection: ParsableArguments {
        @Option(help: ArgumentHelp("Decision record (default: $XDG_STATE_HOME/triage/decisions.sqlite).", valueName: "FILE"))
        var db: String?
        @Option(help: ArgumentHelp("Only decisions newer than this (90s, 30m, 24h, 7d, 2w).", valueName: "DURATION"))
        var since: String?
        @Flag(help: "Include decisions that already have a label.") var all = false

        func items() throws -> [QueuedDecision] {
            var start: Double? = nil
            if let since {
                do { start = Clock.unixTime() - (try parseDuration(since)) } catch { throw ValidationError("--since: \(error)") }
            }
            let store = try DecisionStore(path: db ?? DecisionStore.defaultPath())
            return try store.reviewItems(since: start, unlabelledOnly: !all)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "Show the queue as a table (unlabelled decisions unless --all).")
        @OptionGroup var selection: Selection
        func run() throws {
            try TriageCLI.run {
                let items = try selection.items()
                var t = "ID      TIME                  WHY              ROUTE  EDGE LABEL                      CONF   QUERY\n"
                for i in items {
                    let query = i.query.map { $0.count > 60 ? String($0.prefix(57)) + "..." : $0 } ?? "(text not kept)"
                    t += pad(String(i.id), 8) + pad(formatTime(i.timestamp), 22) + pad(i.reviewReason.rawValue, 17)
                        + pad(i.route.rawValue, 7) + pad(i.label, 32) + pad(fixed(i.confidence, 3), 7) + query + "\n"
                }
                t += "\(items.count) decision(s)\n"
                StandardOutput.write(t)
            }
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export",
            abstract: "Write the queue as JSON lines for labelling.",
            discussion: """
                One object per decision: id, time, review_reason, query (null when its text was not \
                kept), edge_label, confidence, out_of_scope, route, reason, answer. Label it by adding \
                "label" (the right intent, or the out-of-scope label) or "correct" (true or false, for \
                a cloud answer) and import the lines back; other keys are ignored.
                """)
        @OptionGroup var selection: Selection
        @Option(help: ArgumentHelp("Write to FILE instead of standard output.", valueName: "FILE")) var out: String?
        func run() throws {
            try TriageCLI.run {
                let text = try selection.items().map { $0.json.serialized + "\n" }.joined()
                if let out { try FileSystem.writeAtomically(out, text: text) } else { StandardOutput.write(text) }
            }
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import",
            abstract: "Store labels from JSON lines of {\"id\", \"label\"} or {\"id\", \"correct\"}.",
            discussion: "All or nothing: a malformed line or an id that is not in the queue stops the import with nothing stored.")
        @Option(help: ArgumentHelp("Decision record (default: $XDG_STATE_HOME/triage/decisions.sqlite).", valueName: "FILE"))
        var db: String?
        @Argument(help: "JSON lines file (- for standard input).") var file: String
        func run() throws {
            try TriageCLI.run {
                let text: String
                if file == "-" {
                    var reader = LineReader()
                    var lines: [String] = []
                    while let l = reader.next() { lines.append(l) }
                    text = lines.joined(separator: "\n")
                } else {
                    do { text = try FileSystem.readText(file) } catch { throw CLIError("cannot read \(file): \(error)") }
                }
                var labels: [ReviewLabel] = []
                for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                    let trimmed = String(line.filter { $0 != "\r" })
                    if trimmed.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
                    do { labels.append(try ReviewLabel.parse(trimmed)) } catch {
                        throw CLIError("\(file) line \(n + 1): \(error); nothing was imported")
                    }
                }
                guard !labels.isEmpty else { throw ValidationError("\(file) holds no labels") }
                let store = try DecisionStore(path: db ?? DecisionStore.defaultPath())
                let stored = try store.importLabels(labels)
                StandardError.write("imported \(stored) label(s) into \(store.path)\n")
            }
        }
    }
}

/// Unix seconds as "YYYY-MM-DD HH:MM" (UTC), for tables.
func formatTime(_ t: Double) -> String { String(QueuedDecision.utc(t).prefix(16)) }
