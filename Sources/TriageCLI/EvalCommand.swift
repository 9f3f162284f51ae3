import ArgumentParser
import TriageClassifier
import TriageJSON
import TriageModel
import TriageSystem

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Measure the classifier on a labelled JSONL file ({\"text\", \"label\"} per line).",
        discussion: """
            Reports accuracy, in-scope accuracy, per-class precision/recall/F1, the most frequent \
            confusions, out-of-scope precision/recall/F1, expected calibration error (15 bins, \
            calibrated and raw) and the share of in-scope queries the edge keeps at the confidence \
            threshold with their accuracy. Gold labels the model does not know count as out of scope.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var runtimeOptions: RuntimeOptions
    @Option(help: ArgumentHelp("Labelled queries, one JSON object per line.", valueName: "FILE.jsonl")) var data: String
    @Flag(help: "Print the report as one JSON object.") var json = false
    @Option(help: "Edge confidence threshold for the kept share.") var edgeThreshold = 0.9

    func run() throws {
        try TriageCLI.run {
            let queries = try LabelledQuery.load(path: data)
            let classifier = try Classifier.load(directory: modelOptions.resolve(), options: runtimeOptions.classifierOptions)
            var workspace = Workspace()
            var results: [Classification] = []
            results.reserveCapacity(queries.count)
            let start = Clock.seconds()
            var lastReport = start
            for chunkStart in stride(from: 0, to: queries.count, by: 32) {
                let chunk = queries[chunkStart..<min(chunkStart + 32, queries.count)].map(\.text)
                results += try classifier.classify(chunk, workspace: &workspace)
                if Clock.seconds() - lastReport > 1 {
                    lastReport = Clock.seconds()
                    StandardError.write("eval: \(results.count)/\(queries.count) queries\n")
                }
            }
            let elapsed = Clock.seconds() - start
            let report = Evaluation.report(queries: queries, results: results, labels: classifier.labels,
                                           calibration: classifier.calibration, edgeThreshold: edgeThreshold)
            if json {
                var v = report.json
                if case var .object(pairs) = v {
                    pairs.insert(("model", .string(classifier.directory)), at: 0)
                    pairs.insert(("int8", .bool(classifier.model.weights.isInt8)), at: 1)
                    pairs.append(("seconds", .number(elapsed)))
                    v = .object(pairs)
                }
                StandardOutput.write(v.serialized + "\n")
            } else {
                StandardOutput.write(render(report, model: classifier.directory, int8: classifier.model.weights.isInt8, seconds: elapsed))
            }
        }
    }

    func render(_ r: EvaluationReport, model: String, int8: Bool, seconds: Double) -> String {
        func pct(_ x: Double) -> String { fixed(x * 100, 2) + " %" }
        var s = "model \(model)\(int8 ? " (INT8)" : ""), \(r.count) queries (\(r.inScopeCount) in scope, \(r.outOfScopeCount) out of scope) in \(fixed(seconds, 2)) s\n\n"
        s += "accuracy                 \(pct(r.accuracy))\n"
        s += "in-scope accuracy        \(pct(r.inScopeAccuracy))\n"
        s += "out-of-scope precision   \(pct(r.outOfScopePrecision))\n"
        s += "out-of-scope recall      \(pct(r.outOfScopeRecall))\n"
        s += "out-of-scope F1          \(pct(r.outOfScopeF1))\n"
        s += "ECE (calibrated)         \(fixed(r.ece, 4))\n"
        s += "ECE (raw logits)         \(fixed(r.eceUncalibrated, 4))\n"
        s += "edge keeps (conf ≥ \(fixed(r.edgeThreshold, 2)))  \(pct(r.edgeKeptShare)) of in-scope queries, \(pct(r.edgeKeptAccuracy)) of them right\n"
        s += "out-of-scope kept        \(pct(r.outOfScopeKeptShare)) of out-of-scope queries\n"
        if !r.unknownLabels.isEmpty { s += "gold labels unknown to the model, counted as out of scope: \(r.unknownLabels.count)\n" }
        let width = max(34, (r.perClass.map(\.label.count).max() ?? 0) + 2)
        s += "\n" + pad("CLASS", width) + "PREC    REC     F1      SUPPORT\n"
        for c in r.perClass {
            s += pad(c.label, width) + pad(fixed(c.precision, 3), 8) + pad(fixed(c.recall, 3), 8) + pad(fixed(c.f1, 3), 8) + String(c.support) + "\n"
        }
        s += "\nmost frequent confusions (gold → decided):\n"
        for c in r.confusions.prefix(10) { s += "  \(c.count)× \(c.gold) → \(c.predicted)\n" }
        return s
    }
}
