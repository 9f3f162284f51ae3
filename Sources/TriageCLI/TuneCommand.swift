import ArgumentParser
import TriageCascade
import TriageClassifier
import TriageJSON
import TriageModel
import TriageSystem

struct Tune: ParsableCommand {
    static let configuration = CommandConfiguration(
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
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var runtimeOptions: RuntimeOptions
    @Option(help: ArgumentHelp("Labelled queries, one JSON object per line.", valueName: "FILE.jsonl")) var data: String
    @Option(help: "Largest share of the edge's answers that may be wrong.") var maxEdgeError = 0.02
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
        guard (0...1).contains(maxEdgeError) else { throw ValidationError("--max-edge-error must be within 0...1") }
        guard (0...1).contains(maxUnderRouting) else { throw ValidationError("--max-under-routing must be within 0...1") }
        guard folds >= 2 else { throw ValidationError("--folds must be at least 2") }
    }

    func run() throws {
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
            let curve = RoutingTuner.curve(points, maxOutOfScopeScore: fitted.cut.maxOutOfScopeScore)
            let fit: JSONValue = .object([
                ("data", .string(String(data.split(separator: "/").last ?? Substring(data)))), ("queries", .int(points.count)),
                ("int8", .bool(classifier.model.weights.isInt8)),
                ("max_edge_error", .number(maxEdgeError)), ("max_under_routing", .number(maxUnderRouting)),
                ("fitted", fitted.outcome.json),
                ("cross_validated", .object([("folds", .int(folds))] + (cv.heldOut.json.objectPairs ?? []))),
            ])
            let routing = TunedRouting(minConfidence: fitted.cut.minConfidence, answerBand: band,
                                       maxOutOfScopeScore: fitted.cut.maxOutOfScopeScore, fit: fit)

            var written: [String] = []
            if !dryRun {
                let targets = out.map { [$0] } ?? [FileSystem.join(dir, "triage.json")]
                    + [FileSystem.join(Classifier.int8Directory(for: dir), "triage.json")].filter { out == nil && FileSystem.exists($0) }
                for target in targets {
                    let source = out == nil ? target : FileSystem.join(dir, "triage.json")
                    var pairs = FileSystem.exists(source) ? (try JSONValue.parse(FileSystem.readText(source)).objectPairs ?? []) : []
                    pairs.removeAll { $0.0 == "routing" }
                    pairs.append(("routing", routing.json))
                    try FileSystem.writeAtomically(target, text: JSONValue.object(pairs).prettyPrinted)
                    written.append(target)
                }
            }
            if let svg {
                try FileSystem.writeAtomically(svg, text: RoutingTuner.svg(curve: curve, chosen: fitted.cut, maxEdgeError: maxEdgeError))
            }
            if json {
                let v: JSONValue = .object([
                    ("model", .string(dir)), ("routing", routing.json),
                    ("folds", .array(cv.cuts.map { c in
                        c.map { .object([("min_confidence", .number($0.minConfidence)), ("max_oos_score", .number($0.maxOutOfScopeScore))]) } ?? .null
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

    func render(routing: TunedRouting, fitted: EdgeOutcome, cv: RoutingTuner.CrossValidation,
                curve: [(minConfidence: Double, outcome: EdgeOutcome)], written: [String]) -> String {
        func pct(_ x: Double) -> String { fixed(x * 100, 2) + " %" }
        var s = "\(fitted.inScope) in-scope and \(fitted.outOfScope) out-of-scope queries; budgets: edge error ≤ \(pct(maxEdgeError)), "
            + "out-of-scope answered ≤ \(pct(maxUnderRouting))\n\n"
        s += "min_confidence  \(fixed(routing.minConfidence, 3))\n"
        s += "answer_band     \(fixed(routing.answerBand, 3))  (edge answers below it are flagged for review)\n"
        s += "max_oos_score   \(fixed(routing.maxOutOfScopeScore, 3))\n\n"
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
