import ArgumentParser
import TriageClassifier
import TriageJSON
import TriageModel
import TriageService
import TriageSystem

struct Classify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "Classify texts with the edge model.",
        discussion: """
            With --json, prints one JSON object per input, in input order: text, label, confidence \
            (calibrated), out_of_scope, fine_label (the model's own label; for an out-of-scope \
            decision its likeliest out-of-scope label), oos_score (the summed probability of the \
            out-of-scope labels), oos_distance (for a model with triage.json's oos_distance: the \
            feature distance to the nearest in-scope class), probs (label → calibrated probability), logits (raw, in \
            label-id order) and tokens (the input length in tokens).
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var runtimeOptions: RuntimeOptions
    @Flag(help: "Print one JSON object per input.") var json = false
    @Option(help: "Inputs classified together in one packed batch.") var batchSize = 32
    @Argument(help: "Texts to classify; without any, one per line on standard input.") var texts: [String] = []

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
    }

    func run() throws {
        try ClassifyJob(texts: texts, model: modelOptions.model, int8: runtimeOptions.int8, threads: runtimeOptions.threads,
                        json: json, batchSize: batchSize).run()
    }
}

/// What `triage classify` does with its options, whichever way they were read.
struct ClassifyJob {
    var texts: [String] = []
    var model: String? = nil
    var int8 = false
    var threads: Int? = nil
    var json = false
    var batchSize = 32

    func run() throws {
        try TriageCLI.run {
            let inputs = try readInputs(texts)
            let classifier = try Classifier.load(directory: ModelOptions.resolve(model),
                                                 options: RuntimeOptions.classifierOptions(int8: int8, threads: threads))
            var workspace = Workspace()
            // Wide enough for every label the model has, so the columns line up while streaming.
            let labelWidth = max(5, classifier.labels.map(\.count).max() ?? 0)
            if !json {
                StandardOutput.write(pad("LABEL", labelWidth) + "  CONF   OOS  TEXT\n")
            }
            var start = 0
            while start < inputs.count {
                let chunk = Array(inputs[start..<min(start + batchSize, inputs.count)])
                let results = try classifier.classify(chunk, workspace: &workspace)
                var out = ""
                for (text, r) in zip(chunk, results) {
                    if json {
                        WireJSON.classification(text: text, r, labels: classifier.labels).write(to: &out)
                        out += "\n"
                    } else {
                        out += pad(r.label, labelWidth) + "  " + fixed(r.confidence, 3) + "  " + (r.outOfScope ? "yes" : "no ")
                            + "  " + text + "\n"
                    }
                }
                StandardOutput.write(out)
                start += batchSize
            }
        }
    }
}

extension ClassifyJob {
    /// The everyday forms of `classify`'s arguments, read without ArgumentParser — texts,
    /// `--model DIR`, `--int8`, `--threads N`, `--json`, `--batch-size N`, `--` — or nil for
    /// anything else (help, `--opt=value`, a repeated or unknown option, a value that
    /// ArgumentParser would reject or that `validate()` would), which then goes through
    /// ArgumentParser as before. ArgumentParser spends ~16 M instructions reflecting over
    /// `Classify`'s options before it reads one (callgrind), a fifth of a one-query process.
    init?(plainArguments arguments: [String]) {
        var seen = Set<String>()
        var i = 0, positional = false
        func value() -> String? {
            guard i + 1 < arguments.count, !arguments[i + 1].hasPrefix("-") else { return nil }
            i += 1
            return arguments[i]
        }
        while i < arguments.count {
            let a = arguments[i]
            if positional || !a.hasPrefix("-") {
                if a == "help" { return nil }
                texts.append(a)
            } else {
                guard a.count > 1, seen.insert(a).inserted else { return nil }
                switch a {
                case "--": positional = true
                case "--int8": int8 = true
                case "--json": json = true
                case "--model": guard let v = value() else { return nil }; model = v
                case "--threads":
                    guard let v = value(), let n = Int(v), (1...256).contains(n) else { return nil }
                    threads = n
                case "--batch-size":
                    guard let v = value(), let n = Int(v), n >= 1 else { return nil }
                    batchSize = n
                default: return nil
                }
            }
            i += 1
        }
    }
}

func pad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
}

/// A number with a fixed count of decimals, without Foundation's String(format:).
func fixed(_ x: Double, _ decimals: Int) -> String {
    guard x.isFinite else { return "\(x)" }
    var p = 1.0
    for _ in 0..<decimals { p *= 10 }
    let scaled = (abs(x) * p).rounded()
    let whole = Int(scaled / p)
    var frac = String(Int(scaled.truncatingRemainder(dividingBy: p)))
    while frac.count < decimals { frac = "0" + frac }
    return (x < 0 && scaled != 0 ? "-" : "") + String(whole) + (decimals > 0 ? "." + frac : "")
}

func fixed(_ x: Float, _ decimals: Int) -> String { fixed(Double(x), decimals) }
