import ArgumentParser
import TriageAnswers
import TriageCascade
import TriageClassifier
import TriageCloud
import TriageJSON
import TriageModel
import TriageRecord
import TriageService
import TriageSystem

struct Ask: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ask",
        abstract: "Answer queries: at the edge when it is confident, else through the cloud tiers.",
        discussion: """
            Each query is classified at the edge. A confident, in-scope, not-too-complex query is \
            answered from the model's answer book (answers.json) with no network; the others go to \
            the small cloud tier (or straight to the large one for comparisons, recommendations, \
            discussion, translation), and a doubtful small-tier answer escalates once to the large \
            tier. When no tier can answer, the edge answer is returned with reason cloud_unavailable \
            (or, out of scope, a plain "cannot answer now"); the exit status is 0 either way.

            Every decision is written to the record (SQLite, default \
            $XDG_STATE_HOME/triage/decisions.sqlite) before its answer is printed.

            The cloud: ANTHROPIC_API_KEY (never printed or stored), ANTHROPIC_BASE_URL (default the \
            public API; http:// allowed for a local gateway), and the config file (--config, default \
            $XDG_CONFIG_HOME/triage/config.json) for models, limits, prices, timeouts and thresholds.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var runtimeOptions: RuntimeOptions
    @Flag(help: "Print one JSON object per query.") var json = false
    @Flag(help: "No network: answer confident in-scope queries at the edge, say plainly that the others need the cloud.")
    var offline = false
    @Flag(help: "Shadow mode: send every query to the cloud and record the edge's decision beside it.") var shadow = false
    @Option(help: ArgumentHelp("Config file (JSON).", valueName: "FILE")) var config: String?
    @OptionGroup var recordOptions: RecordOptions
    @Option(help: ArgumentHelp("Earlier turns of the conversation: a JSON array of {\"role\", \"content\"}; the last ones go to the cloud with each query and into the cache key.", valueName: "FILE"))
    var history: String?
    @Flag(help: "Standard input is JSON lines, one {\"query\", \"history\"?} per line (a conversation per line).")
    var inputJsonl = false
    @Argument(help: "Queries; without any, one per line on standard input.") var queries: [String] = []

    func validate() throws {
        if offline && shadow { throw ValidationError("--offline and --shadow exclude each other: shadow mode needs the cloud") }
        if inputJsonl && !queries.isEmpty { throw ValidationError("--input-jsonl reads standard input: give no queries as arguments") }
        if inputJsonl && history != nil { throw ValidationError("--input-jsonl carries each line's own history: drop --history") }
    }

    /// The --history file's turns.
    func historyTurns() throws -> [ChatMessage] {
        guard let history else { return [] }
        let text: String
        do { text = try FileSystem.readText(history) } catch { throw CLIError("cannot read --history \(history): \(error)") }
        do { return try WireJSON.history(try JSONValue.parse(text)) } catch { throw CLIError("--history \(history): \(error)") }
    }

    func run() throws {
        try TriageCLI.run {
            var settings = EngineSettings(modelDirectory: try modelOptions.resolve(),
                                          classifier: runtimeOptions.classifierOptions, configPath: config)
            settings.offline = offline
            settings.shadow = shadow
            recordOptions.apply(to: &settings)
            let cascade = try Engine.load(settings).cascade
            if shadow, let why = cascade.cloudUnavailableReason {
                throw CLIError("shadow mode needs the cloud tier: \(why)")
            }
            var workspace = Workspace()
            let sharedHistory = try historyTurns()
            func answer(_ query: String, history: [ChatMessage]) throws {
                let d = try cascade.ask(query, history: history, workspace: &workspace)
                StandardOutput.write(json ? WireJSON.decision(query: query, d).serialized + "\n" : renderDecision(query: query, d))
            }
            if !queries.isEmpty {
                for q in queries { try answer(q, history: sharedHistory) }
            } else {
                // Line by line as they arrive: each answer is printed (after it is recorded)
                // before the next line is read.
                var reader = LineReader()
                var any = false, lineNumber = 0
                while let line = reader.next() {
                    any = true
                    lineNumber += 1
                    guard inputJsonl else { try answer(line, history: sharedHistory); continue }
                    let item: JSONValue
                    do { item = try JSONValue.parse(line) } catch {
                        throw CLIError("standard input line \(lineNumber): not JSON: \(error)")
                    }
                    guard let query = item["query"]?.stringValue, !query.isEmpty else {
                        throw CLIError("standard input line \(lineNumber): needs a non-empty \"query\" string")
                    }
                    let turns: [ChatMessage]
                    do { turns = try WireJSON.history(item["history"]) } catch {
                        throw CLIError("standard input line \(lineNumber): \(error)")
                    }
                    try answer(query, history: turns)
                }
                if !any { throw ValidationError("no input: give queries as arguments or one per line on standard input") }
            }
        }
    }
}

func renderDecision(query: String, _ d: Decision) -> String {
    var tag = "[\(d.route.rawValue): \(d.reason)\(d.cached ? ", cached" : "")\(d.review ? ", review" : "")"
    tag += d.costUSD > 0 ? ", $" + fixed(d.costUSD, 5) : ""
    tag += "]"
    return "\(tag) \(d.answer)\n"
}
