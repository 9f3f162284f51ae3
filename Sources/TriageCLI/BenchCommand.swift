import ArgumentParser
import TriageClassifier
import TriageJSON
import TriageModel
import TriageSystem

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure latency of the forward pass per sequence length.",
        discussion: """
            Inputs are a real support query's tokens repeated to each length. Each point gets a \
            warm-up, then runs until --min-time seconds and --min-runs repetitions have passed; \
            p50 and p95 are over those runs.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Flag(help: "Print JSON.") var json = false
    @Option(help: "Comma-separated sequence lengths.") var lengths = "8,16,32,64,128,256"
    @Option(help: "Minimum seconds per point.") var minTime = 1.0
    @Option(help: "Minimum runs per point.") var minRuns = 20

    func run() throws {
        try TriageCLI.run {
            let lens = lengths.split(separator: ",").compactMap { Int($0.trimmingSpaces) }
            guard !lens.isEmpty, lens.allSatisfy({ $0 >= 2 }) else { throw ValidationError("--lengths needs integers ≥ 2") }
            let classifier = try Classifier.load(directory: modelOptions.resolve())
            let seed = classifier.tokenizer.wordPieceIds("I was charged twice for the same card payment yesterday, can you refund one of them?")
            var rows: [JSONValue] = []
            if !json { StandardOutput.write("tokens   p50 ms   p95 ms   runs\n") }
            for len in lens where len <= classifier.model.config.maxPositionEmbeddings {
                var ids: [Int32] = [classifier.tokenizer.clsId]
                while ids.count < len - 1 { ids.append(seed[(ids.count - 1) % seed.count]) }
                ids.append(classifier.tokenizer.sepId)
                let input = PackedSequences(tokens: ids, lengths: [len])
                let stats = try measure(minTime: minTime, minRuns: minRuns) { ws in
                    _ = try classifier.model.forward(input, workspace: &ws)
                }
                rows.append(.object([("tokens", .int(len)), ("p50_ms", .number(stats.p50 * 1e3)),
                                     ("p95_ms", .number(stats.p95 * 1e3)), ("runs", .int(stats.runs))]))
                if !json {
                    StandardOutput.write(pad(String(len), 6) + "  " + pad(fixed(stats.p50 * 1e3, 3), 7) + "  "
                        + pad(fixed(stats.p95 * 1e3, 3), 7) + "  " + String(stats.runs) + "\n")
                }
            }
            if json { StandardOutput.write(JSONValue.object([("latency", .array(rows))]).serialized + "\n") }
        }
    }
}

struct LatencyStats {
    var p50: Double, p95: Double, runs: Int
}

/// Warm-up runs, then repetitions until both the time and the run budget are spent.
func measure(minTime: Double, minRuns: Int, _ body: (inout Workspace) throws -> Void) throws -> LatencyStats {
    var ws = Workspace()
    for _ in 0..<3 { try body(&ws) }
    var samples: [Double] = []
    let start = Clock.seconds()
    while samples.count < minRuns || Clock.seconds() - start < minTime {
        let t0 = Clock.nanoseconds()
        try body(&ws)
        samples.append(Double(Clock.nanoseconds() - t0) * 1e-9)
        if samples.count >= 100_000 { break }
    }
    samples.sort()
    func q(_ p: Double) -> Double { samples[min(samples.count - 1, Int((Double(samples.count - 1) * p).rounded()))] }
    return LatencyStats(p50: q(0.5), p95: q(0.95), runs: samples.count)
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return s
    }
}
