import ArgumentParser
import TriageAnswers
import TriageCascade
import TriageClassifier
import TriageCloud
import TriageJSON
import TriageModel
import TriageRecord
import TriageSystem

struct Ask: ParsableCommand {
    static let configuration = CommandConfiguration(
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
    @Option(help: ArgumentHelp("Decision record (SQLite) to write.", valueName: "FILE")) var db: String?
    @Flag(help: "Keep the query text in the record (default: a salted hash only).") var recordText = false
    @Flag(help: "Do not record decisions.") var recordOff = false
    @Argument(help: "Queries; without any, one per line on standard input.") var queries: [String] = []

    func validate() throws {
        if offline && shadow { throw ValidationError("--offline and --shadow exclude each other: shadow mode needs the cloud") }
        if recordOff && (db != nil || recordText) { throw ValidationError("--record-off cannot be combined with --db or --record-text") }
    }

    func run() throws {
        try TriageCLI.run {
            let settings = try TriageConfig.load(path: config)
            let dir = try modelOptions.resolve()
            let classifier = try Classifier.load(directory: dir, options: runtimeOptions.classifierOptions)
            let answers = try EdgeAnswerBook.load(directory: dir, classifier: classifier)
            var store: DecisionStore? = nil
            if !recordOff {
                store = try DecisionStore(path: db ?? settings.recordPath ?? DecisionStore.defaultPath())
            }
            var options = CascadeOptions()
            options.offline = offline
            options.shadow = shadow
            options.recordText = recordText
            options.edgeCostUSD = settings.edgeCostUSD
            if let prompt = settings.systemPrompt { options.systemPrompt = prompt }
            if let store { options.hashQuery = { store.queryHash($0) } }
            let small = offline ? nil : CloudTierClient(config: settings.small, endpoint: settings.endpoint(for: settings.small),
                                                        policy: settings.policy)
            let large = offline ? nil : CloudTierClient(config: settings.large, endpoint: settings.endpoint(for: settings.large),
                                                        policy: settings.policy)
            let cascade = Cascade(
                classifier: classifier, answers: answers, router: Router(policy: try settings.routerPolicy(tuned: classifier.calibration.routing)), small: small, large: large,
                cache: ResponseCache(ttl: settings.cacheTTL, capacity: settings.cacheCapacity, historyTurns: settings.cacheHistoryTurns),
                sink: store, options: options, modelVersion: classifier.modelVersion)
            if shadow, let why = cascade.cloudUnavailableReason {
                throw CLIError("shadow mode needs the cloud tier: \(why)")
            }
            var workspace = Workspace()
            func answer(_ query: String) throws {
                let d = try cascade.ask(query, workspace: &workspace)
                StandardOutput.write(json ? decisionJSON(query: query, d).serialized + "\n" : renderDecision(query: query, d))
            }
            if !queries.isEmpty {
                for q in queries { try answer(q) }
            } else {
                // Line by line as they arrive: each answer is printed (after it is recorded)
                // before the next line is read.
                var reader = LineReader()
                var any = false
                while let line = reader.next() {
                    any = true
                    try answer(line)
                }
                if !any { throw ValidationError("no input: give queries as arguments or one per line on standard input") }
            }
        }
    }
}

/// The answer book of a model directory, as the cascade sees it.
struct EdgeAnswerBook: EdgeAnswers {
    let book: AnswerBook?

    /// The book must answer every in-scope intent of the model (its out-of-scope labels excepted).
    static func load(directory: String, classifier: Classifier) throws -> EdgeAnswerBook {
        let path = FileSystem.join(directory, "answers.json")
        guard FileSystem.exists(path) else {
            StandardError.write("triage: warning: \(path) not found; the edge has no answers and every query goes to the cloud\n")
            return EdgeAnswerBook(book: nil)
        }
        let book = try AnswerBook.load(path: path)
        let inScope = classifier.labels.filter { !classifier.calibration.isOutOfScope($0) }
        let problems = book.validate(against: inScope)
        if !problems.isEmpty { throw CLIError("\(path) does not fit the model: " + problems.joined(separator: "; ")) }
        return EdgeAnswerBook(book: book)
    }

    func answer(label: String, query: String) -> String? { book?.answer(for: label, query: query)?.text }

    var cannotAnswerMessage: String {
        book?.outOfScopeMessage ?? "Sorry, I can't answer that right now. Please try again later or contact support."
    }
}

func decisionJSON(query: String, _ d: Decision) -> JSONValue {
    var pairs: [(String, JSONValue)] = [
        ("query", .string(query)),
        ("route", .string(d.route.rawValue)), ("reason", .string(d.reason)), ("answer", .string(d.answer)),
        ("label", .string(d.label)), ("confidence", .number(d.confidence)), ("out_of_scope", .bool(d.outOfScope)),
        ("complexity", .object([("total", .number(d.complexity.total)), ("length", .number(d.complexity.length)),
                                ("syntax", .number(d.complexity.syntax)), ("uncertainty", .number(d.complexity.uncertainty)),
                                ("emotion", .number(d.complexity.emotion))])),
        ("category", .string(d.category)),
        ("tiers_tried", .array(d.tiers.map { t in
            .object([("tier", .string(t.tier)), ("model", .string(t.model)), ("attempts", .int(t.attempts)),
                     ("statuses", .array(t.statuses.map { .int($0) })), ("succeeded", .bool(t.succeeded)),
                     ("rejected_by_breaker", .bool(t.rejectedByBreaker)),
                     ("input_tokens", .int(t.inputTokens)), ("output_tokens", .int(t.outputTokens)),
                     ("cost_usd", .number(t.costUSD)), ("latency_ms", .number(t.latencyMs)),
                     ("answer_confidence", t.answerConfidence.map { .number($0) } ?? .null),
                     ("error", t.error.map { .string($0) } ?? .null)])
        })),
        ("cost_usd", .number(d.costUSD)),
        ("latency_ms", .number(d.latency.totalMs)),
        ("latency", .object([("tokenize_ms", .number(d.latency.tokenizeMs)), ("edge_ms", .number(d.latency.edgeMs)),
                             ("cloud_ms", .number(d.latency.cloudMs)), ("total_ms", .number(d.latency.totalMs))])),
        ("cached", .bool(d.cached)), ("review", .bool(d.review)),
    ]
    if let s = d.shadow {
        pairs.append(("shadow", .object([("edge_route", .string(s.edgeRoute.rawValue)), ("edge_reason", .string(s.edgeReason)),
                                         ("cloud_label", s.cloudLabel.map { .string($0) } ?? .null)])))
    }
    return .object(pairs)
}

func renderDecision(query: String, _ d: Decision) -> String {
    var tag = "[\(d.route.rawValue): \(d.reason)\(d.cached ? ", cached" : "")\(d.review ? ", review" : "")"
    tag += d.costUSD > 0 ? ", $" + fixed(d.costUSD, 5) : ""
    tag += "]"
    return "\(tag) \(d.answer)\n"
}
