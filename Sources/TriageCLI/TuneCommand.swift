import ArgumentParser
import TriageCascade
import TriageClassifier
import TriageJSON
import TriageModel
import TriageRecord
import TriageSystem

struct Tune: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tune",
        abstract: "Fit the edge's routing thresholds to an error budget on labelled queries.",
        discussion: """
            Runs the edge on every query of --data ({"text", "label"} per line) and, on a grid, \
            chooses the edge confidence cut and the out-of-scope score cut that keep the most \
            in-scope queries at the edge while at most --max-edge-error of the edge's answers are \
            wrong and at most --max-under-routing of the out-of-scope queries are answered there \
            (the router's complexity rule, from the config, applies as in `ask`). The top of the \
            review band is the lowest confidence above which the edge's answers are wrong at most \
            half the budget. Prints the trade-off curve and a k-fold cross-validated figure (each \
            fold judged by the cut fitted on the others), then writes the thresholds into the \
            model's triage.json ("routing"; also its -int8 twin's when there is one), or into \
            --out. `ask` then uses them unless the config's "router" object sets those keys.

            With --from-record instead of --data, the labelled decisions of the record (the \
            review queue after `triage review import`) re-fit the edge confidence threshold \
            within ±0.05 of the current one, to the budget error_budget.edge of the config \
            (or --max-edge-error), and the expected change in edge share and cloud cost over \
            the window's decisions is printed.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var runtimeOptions: RuntimeOptions
    @Option(help: ArgumentHelp("Labelled queries, one JSON object per line.", valueName: "FILE.jsonl")) var data: String?
    @Flag(help: "Fit the confidence threshold on the record's labelled decisions (the review queue) instead of --data.")
    var fromRecord = false
    @Option(help: ArgumentHelp("Decision record for --from-record (default: the config's, else $XDG_STATE_HOME/triage/decisions.sqlite).", valueName: "FILE"))
    var db: String?
    @Option(help: ArgumentHelp("With --from-record: only decisions newer than this (24h, 7d, …).", valueName: "DURATION"))
    var since: String?
    @Option(help: "Largest share of the edge's answers that may be wrong (default 0.02; with --from-record, error_budget.edge).")
    var maxEdgeError: Double?
    @Option(help: "Largest share of out-of-scope queries the edge may answer.") var maxUnderRouting = 0.02
    @Option(help: "Cross-validation folds (2 or more).") var folds = 5
    @Option(help: ArgumentHelp("Config file (JSON), for the router's complexity rule.", valueName: "FILE")) var config: String?
    @Option(help: ArgumentHelp("Write the tuned triage.json here instead of into the model directory.", valueName: "FILE"))
    var out: String?
    @Option(help: ArgumentHelp("Write the trade-off curve (edge share against edge error) as SVG.", valueName: "FILE"))
    var svg: String?
    @Flag(help: "Print the result as one JSON object.") var json = false
    @Flag(help: "Fit and print, but write no triage.json.") var dryRun = false

    func validate() throws {
        if let maxEdgeError, !(0...1).contains(maxEdgeError) { throw ValidationError("--max-edge-error must be within 0...1") }
        if fromRecord == (data != nil) { throw ValidationError("give either --data FILE or --from-record") }
        guard (0...1).contains(maxUnderRouting) else { throw ValidationError("--max-under-routing must be within 0...1") }
        guard folds >= 2 else { throw ValidationError("--folds must be at least 2") }
    }

    func run() throws {
        if fromRecord { return try runFromRecord() }
        let data = self.data!
        let maxEdgeError = self.maxEdgeError ?? 0.02
        try TriageCLI.run {
            let queries = try LabelledQuery.load(path: data)
            let settings = try TriageConfig.load(path: config)
            let dir = try modelOptions.resolve()
            let classifier = try Classifier.load(directory: dir, options: runtimeOptions.classifierOptions)
            let router = Router(policy: try settings.routerPolicy(tuned: nil))
            var workspace = Workspace()
            var points: [TunePoint] = []
            for start in stride(from: 0, to: queries.count, by: 32) {
                let chunk = Array(queries[start..<min(start + 32, queries.count)])
                for (q, c) in zip(chunk, try classifier.classify(chunk.map(\.text), workspace: &workspace)) {
                    let goldOOS = classifier.calibration.isOutOfScope(q.label) || !classifier.labels.contains(q.label)
                    let complexity = router.complexity(of: q.text, confidence: Double(c.confidence))
                    points.append(TunePoint(confidence: Double(c.confidence), outOfScopeScore: Double(c.outOfScopeScore),
                                            outOfScopeDistance: Double(c.outOfScopeDistance ?? 0),
                                            decidedOutOfScope: c.outOfScope,
                                            eligible: complexity.total <= router.policy.maxComplexity,
                                            goldOutOfScope: goldOOS, correct: !c.outOfScope && c.label == q.label,
                                            stratum: goldOOS ? "oos" : q.label))
                }
            }
            guard let fitted = RoutingTuner.fit(points, maxEdgeError: maxEdgeError, maxUnderRouting: maxUnderRouting) else {
                throw CLIError("no thresholds on the grid keep the edge within --max-edge-error \(maxEdgeError) and --max-under-routing \(maxUnderRouting)")
            }
            let band = RoutingTuner.answerBand(points, cut: fitted.cut, maxEdgeError: maxEdgeError)
            let cv = RoutingTuner.crossValidate(points, k: folds, maxEdgeError: maxEdgeError, maxUnderRouting: maxUnderRouting)
            let curve = RoutingTuner.curve(points, maxOutOfScopeScore: fitted.cut.maxOutOfScopeScore,
                                           maxOutOfScopeDistance: fitted.cut.maxOutOfScopeDistance)
            // a distance cut only for a model with the score (infinity: the grid's "no cut")
            let distanceCut: Double? = classifier.calibration.distance == nil || !fitted.cut.maxOutOfScopeDistance.isFinite
                ? nil : fitted.cut.maxOutOfScopeDistance
            let fit: JSONValue = .object([
                ("data", .string(String(data.split(separator: "/").last ?? Substring(data)))), ("queries", .int(points.count)),
                ("int8", .bool(classifier.model.weights.isInt8)),
                ("max_edge_error", .number(maxEdgeError)), ("max_under_routing", .number(maxUnderRouting)),
                ("fitted", fitted.outcome.json),
                ("cross_validated", .object([("folds", .int(folds))] + (cv.heldOut.json.objectPairs ?? []))),
            ])
            let routing = TunedRouting(minConfidence: fitted.cut.minConfidence, answerBand: band,
                                       maxOutOfScopeScore: fitted.cut.maxOutOfScopeScore, maxOutOfScopeDistance: distanceCut, fit: fit)

            var written: [String] = []
            if !dryRun {
                written = try write(routing, modelDirectory: dir)
            }
            if let svg {
                try FileSystem.writeAtomically(svg, text: RoutingTuner.svg(curve: curve, chosen: fitted.cut, maxEdgeError: maxEdgeError))
            }
            if json {
                let v: JSONValue = .object([
                    ("model", .string(dir)), ("routing", routing.json),
                    ("folds", .array(cv.cuts.map { c in
                        c.map { .object([("min_confidence", .number($0.minConfidence)), ("max_oos_score", .number($0.maxOutOfScopeScore))]
                                        + ($0.maxOutOfScopeDistance.isFinite ? [("max_oos_distance", .number($0.maxOutOfScopeDistance))] : [])) } ?? .null
                    })),
                    ("curve", .array(curve.map { .object([("min_confidence", .number($0.minConfidence))] + ($0.outcome.json.objectPairs ?? [])) })),
                    ("written", .array(written.map { .string($0) })),
                ])
                StandardOutput.write(v.serialized + "\n")
            } else {
                StandardOutput.write(render(routing: routing, fitted: fitted.outcome, cv: cv, curve: curve, written: written))
            }
        }
    }

    func runFromRecord() throws {
        try TriageCLI.run {
            var start: Double? = nil
            if let since {
                do { start = Clock.unixTime() - (try parseDuration(since)) } catch { throw ValidationError("--since: \(error)") }
            }
            let settings = try TriageConfig.load(path: config)
            let dir = try modelOptions.resolve()
            let classifier = try Classifier.load(directory: dir, options: runtimeOptions.classifierOptions)
            let policy = try settings.routerPolicy(tuned: classifier.calibration.routing)
            let budget = maxEdgeError ?? settings.edgeErrorBudget
            let store = try DecisionStore(path: db ?? settings.recordPath ?? DecisionStore.defaultPath(), readOnly: true)
            let version = classifier.modelVersion
            let labelled = try store.reviewItems(since: start).filter { $0.goldLabel != nil && $0.modelVersion == version }
            guard !labelled.isEmpty else {
                throw CLIError("no labelled decisions of \(version) in \(store.path): label the review queue first (`triage review export`, then `import`)")
            }
            let isOOS = { (l: String) in classifier.calibration.isOutOfScope(l) || !classifier.labels.contains(l) }
            let points = labelled.map { RecordTuning.point($0, gold: $0.goldLabel!, maxComplexity: policy.maxComplexity, isOutOfScope: isOOS) }
            let all = try store.decisions(since: start).filter { $0.modelVersion == version }
            let (weights, strata) = RecordTuning.stratumWeights(items: labelled, all: all)
            let t = RecordTuning(points: points, weights: weights, all: all, current: policy.minConfidence,
                                 maxComplexity: policy.maxComplexity, maxEdgeError: budget)
            var written: [String] = []
            if !dryRun && t.proposed != t.current {
                let routing = TunedRouting(minConfidence: t.proposed, answerBand: max(policy.answerBand, t.proposed),
                                           maxOutOfScopeScore: policy.maxOutOfScopeScore,
                                           maxOutOfScopeDistance: policy.maxOutOfScopeDistance.isFinite ? policy.maxOutOfScopeDistance : nil,
                                           fit: .object([("from_record", .string(store.path)), ("labelled", .int(t.labelled)),
                                                         ("max_edge_error", .number(budget)), ("previous_min_confidence", .number(t.current))]))
                written = try write(routing, modelDirectory: dir)
            }
            func opt(_ x: Double?) -> JSONValue { x.map { .number($0) } ?? .null }
            if json {
                StandardOutput.write(JSONValue.object([
                    ("model_version", .string(version)), ("labelled", .int(t.labelled)), ("decisions", .int(t.decisions)),
                    ("max_edge_error", .number(budget)), ("current_min_confidence", .number(t.current)),
                    ("proposed_min_confidence", .number(t.proposed)), ("within_budget", .bool(t.withinBudget)),
                    ("edge_error_before", opt(t.errorBefore)), ("edge_error_after", opt(t.errorAfter)),
                    ("edge_share_before", .number(t.edgeShareBefore)), ("edge_share_after", .number(t.edgeShareAfter)),
                    ("cost_change_usd", .number(t.costChangeUSD)),
                    ("strata", .array(strata.map { .object([("reason", .string($0.reason.rawValue)), ("decisions", .int($0.decisions)),
                                                              ("labelled", .int($0.labelled)), ("weight", .number($0.weight))]) })),
                    ("written", .array(written.map { .string($0) })),
                ]).serialized + "\n")
            } else {
                func pct(_ x: Double?) -> String { x.map { fixed($0 * 100, 2) + " %" } ?? "n/a" }
                var text = "\(t.labelled) labelled decisions of \(version); edge error budget \(pct(budget))\n"
                text += "min_confidence  \(fixed(t.current, 3)) → \(fixed(t.proposed, 3))"
                    + (t.withinBudget ? "" : "  (still over budget: the most one run may move it is ±0.05; run again after more labels)") + "\n"
                text += "edge error on the labels, weighted by review stratum  \(pct(t.errorBefore)) → \(pct(t.errorAfter))\n"
                text += "  " + strata.map { "\(String($0.reason.rawValue.map { $0 == "_" ? " " : $0 })): \($0.labelled) of \($0.decisions) labelled, weight \(fixed($0.weight, 1))" }
                    .joined(separator: "; ") + "\n"
                text += "edge share of \(t.decisions) decisions  \(pct(t.edgeShareBefore)) → \(pct(t.edgeShareAfter))\n"
                text += "cloud cost over the window  \(t.costChangeUSD >= 0 ? "+" : "−")$\(fixed(abs(t.costChangeUSD), 4))\n"
                text += written.isEmpty ? (dryRun || t.proposed == t.current ? "nothing written\n" : "") : "wrote " + written.joined(separator: ", ") + "\n"
                StandardOutput.write(text)
            }
        }
    }

    /// Puts `routing` into the model's triage.json (and its INT8 twin's), or into --out;
    /// returns the files written.
    func write(_ routing: TunedRouting, modelDirectory dir: String) throws -> [String] {
        let targets = out.map { [$0] } ?? [FileSystem.join(dir, "triage.json")]
            + [FileSystem.join(Classifier.int8Directory(for: dir), "triage.json")].filter { out == nil && FileSystem.exists($0) }
        for target in targets {
            let source = out == nil ? target : FileSystem.join(dir, "triage.json")
            var pairs = FileSystem.exists(source) ? (try JSONValue.parse(FileSystem.readText(source)).objectPairs ?? []) : []
            pairs.removeAll { $0.0 == "routing" }
            pairs.append(("routing", routing.json))
            try FileSystem.writeAtomically(target, text: JSONValue.object(pairs).prettyPrinted)
        }
        return targets
    }

    func render(routing: TunedRouting, fitted: EdgeOutcome, cv: RoutingTuner.CrossValidation,
                curve: [(minConfidence: Double, outcome: EdgeOutcome)], written: [String]) -> String {
        func pct(_ x: Double) -> String { fixed(x * 100, 2) + " %" }
        var s = "\(fitted.inScope) in-scope and \(fitted.outOfScope) out-of-scope queries; budgets: edge error ≤ \(pct(maxEdgeError ?? 0.02)), "
            + "out-of-scope answered ≤ \(pct(maxUnderRouting))\n\n"
        s += "min_confidence  \(fixed(routing.minConfidence, 3))\n"
        s += "answer_band     \(fixed(routing.answerBand, 3))  (edge answers below it are flagged for review)\n"
        s += "max_oos_score   \(fixed(routing.maxOutOfScopeScore, 3))\n"
        if let d = routing.maxOutOfScopeDistance { s += "max_oos_distance \(fixed(d, 4))  (feature distance, oos_distance)\n" }
        s += "\n"
        s += "                 edge keeps   edge right   oos answered\n"
        s += "fitted           " + pad(pct(fitted.keptShare), 13) + pad(pct(1 - fitted.edgeError), 13) + pct(fitted.underRouting) + "\n"
        s += "\(cv.folds)-fold CV        " + pad(pct(cv.heldOut.keptShare), 13) + pad(pct(1 - cv.heldOut.edgeError), 13)
            + pct(cv.heldOut.underRouting) + "\n\n"
        s += "trade-off at max_oos_score \(fixed(routing.maxOutOfScopeScore, 3)):\n"
        s += "MIN_CONF  EDGE KEEPS  EDGE ERROR  OOS ANSWERED\n"
        for (t, o) in curve where Int((t * 200).rounded()) % 10 == 0 || t == routing.minConfidence {
            guard t >= 0.5 else { continue }
            s += pad(fixed(t, 3), 10) + pad(pct(o.keptShare), 12) + pad(pct(o.edgeError), 12) + pct(o.underRouting)
                + (t == routing.minConfidence ? "  ← chosen" : "") + "\n"
        }
        s += written.isEmpty ? "\nnothing written (--dry-run)\n" : "\nwrote " + written.joined(separator: ", ") + "\n"
        return s
    }
}
