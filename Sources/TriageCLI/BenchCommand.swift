import ArgumentParser
import TriageClassifier
import TriageJSON
import TriageKernelSelect
import TriageKernels
import TriageModel
import TriageSystem
import TriageTensors

#if canImport(Glibc)
import Glibc
#endif

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmark FP32 and INT8: kernels, latency per sequence length, throughput, size, memory, agreement.",
        discussion: """
            Kernels: GOP/s (2 operations per multiply-add) of OpenBLAS FP32 and of each INT8 kernel \
            this CPU runs, on the model's own layer shapes, one thread. Model: p50/p95 latency of \
            the forward pass at batch 1 for each sequence length, and throughput at batch 32 × 128, \
            for FP32 and for INT8 with each kernel, at --threads. Inputs are the tokens of a real \
            support query repeated to each length: [CLS] + tokens + [SEP] (tools/compare_engines.py \
            builds the same ids). Every point gets warm-up runs, then runs until --min-time seconds \
            and --min-runs runs have passed. With --data, FP32 and INT8 labels are compared on real \
            queries.
            """)

    static let seedText = "I was charged twice for the same card payment yesterday, can you refund one of them?"

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Threads for the model runs (default: the cores there are).") var threads: Int?
    @Flag(help: "Print JSON.") var json = false
    @Option(help: ArgumentHelp("Write an SVG chart of latency against sequence length.", valueName: "FILE")) var svg: String?
    @Option(help: "Comma-separated sequence lengths.") var lengths = "8,16,32,64,128,256"
    @Option(help: "Engines to run: fp32, int8, int8-attn (INT8 with attention's products in INT8 too). INT8 engines run once per available kernel; FP32 once per kernel with its own FP32 product, and once through OpenBLAS.")
    var engines = "fp32,int8"
    @Option(help: "Only these INT8 kernels (comma-separated; default: every one this CPU runs).") var kernels: String?
    @Option(help: "Parts to run: kernels, latency, throughput, accuracy, profile (per-stage times; not in the default set).")
    var parts = "kernels,latency,throughput,accuracy"
    @Option(help: ArgumentHelp("Labelled queries (JSONL) for FP32/INT8 agreement.", valueName: "FILE")) var data: String?
    @Option(help: "Minimum seconds per point.") var minTime = 1.0
    @Option(help: "Minimum runs per point.") var minRuns = 20

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        for p in parts.split(separator: ",") where !["kernels", "latency", "throughput", "accuracy", "profile"].contains(String(p)) {
            throw ValidationError("unknown part '\(p)'")
        }
        for e in engines.split(separator: ",") where !["fp32", "int8", "int8-attn"].contains(String(e)) {
            throw ValidationError("unknown engine '\(e)' (fp32, int8 or int8-attn)")
        }
    }

    func run() throws {
        try TriageCLI.run {
            let dir = try modelOptions.resolve()
            let lens = lengths.split(separator: ",").compactMap { Int($0.trimmingSpaces) }
            guard !lens.isEmpty, lens.allSatisfy({ $0 >= 2 }) else { throw ValidationError("--lengths needs integers ≥ 2") }
            let partSet = Set(parts.split(separator: ",").map(String.init))
            let engineSet = Set(engines.split(separator: ",").map(String.init))
            let threadCount = threads ?? Runtime.defaultThreads
            let cpu = CPUFeatures.current
            var int8Kernels = KernelSelection.available()
            if let kernels {
                let wanted = kernels.split(separator: ",").map(String.init)
                int8Kernels = try wanted.map { try KernelSelection.select($0) }
            }

            let loadStart = Clock.seconds()
            let fp32 = try Classifier.load(directory: dir, options: .init(threads: threadCount, int8: false))
            let fp32Load = Clock.seconds() - loadStart
            let rssFP32 = residentBytes()
            let int8Start = Clock.seconds()
            let int8Weights: DistilBertWeights
            var int8Path = Classifier.int8Directory(for: dir)
            if fp32.model.weights.isInt8 {
                int8Weights = fp32.model.weights
                int8Path = dir
            } else if FileSystem.isDirectory(int8Path) {
                int8Weights = try DistilBertWeights.load(directory: int8Path)
            } else {
                int8Weights = try Quantizer.quantizeInMemory(fp32.model.weights, embeddings: true)
                int8Path = "(quantized in memory)"
            }
            let int8Load = Clock.seconds() - int8Start
            let fp32Model = fp32.model
            // FP32 through each kernel set's own product, then through OpenBLAS.
            var fp32Models: [(String, DistilBertModel)] = int8Kernels.filter { $0.floatLinear != nil }.map {
                ($0.name, DistilBertModel(weights: fp32Model.weights, runtime: Runtime(threads: threadCount, kernels: $0)))
            }
            let blasModel = DistilBertModel(weights: fp32Model.weights,
                                            runtime: Runtime(threads: threadCount, kernels: fp32Model.runtime.kernels.fp32ThroughOpenBLAS))
            if (try? blasModel.requireProducts()) != nil || fp32Models.isEmpty { fp32Models.append(("openblas", blasModel)) }
            // "int8" runs the INT8 file as its metadata says; "int8-attn" the same weights with
            // attention's products in INT8 whatever the file says.
            let int8Models = int8Kernels.map { DistilBertModel(weights: int8Weights, runtime: Runtime(threads: threadCount, kernels: $0)) }
            let int8AttnModels = int8Kernels.map {
                DistilBertModel(weights: int8Weights, runtime: Runtime(threads: threadCount, kernels: $0), int8Attention: true)
            }
            func models() -> [(String, String?, DistilBertModel)] {
                var models: [(String, String?, DistilBertModel)] = []
                if engineSet.contains("fp32") { models += fp32Models.map { ("fp32", $0.0, $0.1) } }
                if engineSet.contains("int8") { models += zip(int8Kernels, int8Models).map { ("int8", $0.name, $1) } }
                if engineSet.contains("int8-attn") { models += zip(int8Kernels, int8AttnModels).map { ("int8-attn", $0.name, $1) } }
                return models
            }

            let c = fp32Model.config
            var report: [(String, JSONValue)] = [
                ("machine", .object([
                    ("cpu", .string(cpu.modelName)), ("isa", .string(cpu.isaSummary)), ("cores", .int(cpu.logicalCores)),
                    ("threads", .int(threadCount)), ("int8_kernels", .array(int8Kernels.map { .string($0.name) })),
                    ("fp32_products", .array(fp32Models.map { .string($0.0) })),
                    ("blas", .string(Runtime.blasConfiguration)),
                ])),
                ("model", .object([
                    ("path", .string(dir)), ("int8_path", .string(int8Path)),
                    ("dim", .int(c.dim)), ("layers", .int(c.nLayers)), ("heads", .int(c.nHeads)), ("hidden", .int(c.hiddenDim)),
                    ("file_bytes", .int(FileSystem.fileSize(FileSystem.join(dir, "model.safetensors")) ?? 0)),
                    ("int8_file_bytes", .int(FileSystem.fileSize(FileSystem.join(int8Path, "model.safetensors")) ?? 0)),
                    ("fp32_parameter_bytes", .int(parameterCount(c) * 4)),
                    ("fp32_load_s", .number(fp32Load)), ("int8_load_s", .number(int8Load)),
                ])),
            ]
            var text = "triage bench: \(cpu.modelName), \(cpu.isaSummary), \(threadCount) thread(s)\n"
            text += "model \(dir): dim \(c.dim), \(c.nLayers) layers; INT8 \(int8Path)\n\n"

            if partSet.contains("kernels") {
                let rows = kernelBenchmarks(c, int8Kernels: int8Kernels)
                report.append(("kernels", .array(rows.map { $0.json })))
                text += "KERNEL            SHAPE (M×K×N)        GOP/s\n"
                for r in rows { text += pad(r.kernel, 18) + pad("\(r.name) \(r.m)×\(r.k)×\(r.n)", 21) + fixed(r.gops, 1) + "\n" }
                text += "\n"
            }

            var series: [(String, [(Int, Double)])] = []
            if partSet.contains("latency") {
                var rows: [JSONValue] = []
                text += "ENGINE          TOKENS   p50 ms   p95 ms   runs\n"
                for (engine, kernel, model) in models() {
                    var points: [(Int, Double)] = []
                    for len in lens where len <= c.maxPositionEmbeddings {
                        let input = PackedSequences(tokens: benchTokens(fp32, length: len), lengths: [len])
                        let s = try measure(minTime: minTime, minRuns: minRuns) { ws in _ = try model.forward(input, workspace: &ws) }
                        points.append((len, s.p50 * 1e3))
                        rows.append(.object([("engine", .string(engine)), ("kernel", kernel.map { .string($0) } ?? .null),
                                             ("tokens", .int(len)), ("p50_ms", .number(s.p50 * 1e3)),
                                             ("p95_ms", .number(s.p95 * 1e3)), ("runs", .int(s.runs))]))
                        text += pad(engine + (kernel.map { "/" + $0 } ?? ""), 16) + pad(String(len), 7) + "  "
                            + pad(fixed(s.p50 * 1e3, 3), 7) + "  " + pad(fixed(s.p95 * 1e3, 3), 7) + "  " + String(s.runs) + "\n"
                    }
                    series.append((engine.uppercased() + (kernel.map { " " + ($0 == "openblas" ? "OpenBLAS" : $0) } ?? ""), points))
                }
                report.append(("latency", .array(rows)))
                text += "\n"
            }

            if partSet.contains("profile") {
                var rows: [JSONValue] = []
                for (name, kernel, model) in models() {
                    let engine = name + (kernel.map { "/" + $0 } ?? "")
                    for len in lens where len <= c.maxPositionEmbeddings {
                        let input = PackedSequences(tokens: benchTokens(fp32, length: len), lengths: [len])
                        let p = try profile(model, input)
                        rows.append(p.json(engine: engine, tokens: len))
                        text += p.table(engine: engine, tokens: len) + "\n"
                    }
                }
                report.append(("profile", .array(rows)))
            }

            if partSet.contains("throughput") && 128 <= c.maxPositionEmbeddings {
                var rows: [JSONValue] = []
                let batch = 32, len = 128
                let one = benchTokens(fp32, length: len)
                let input = PackedSequences(tokens: Array([[Int32]](repeating: one, count: batch).joined()),
                                            lengths: [Int](repeating: len, count: batch))
                text += "ENGINE          BATCH×TOKENS   sequences/s   p50 ms\n"
                for (engine, kernel, model) in models() {
                    let s = try measure(minTime: minTime, minRuns: max(3, minRuns / 4)) { ws in _ = try model.forward(input, workspace: &ws) }
                    let perSecond = Double(batch) / s.p50
                    rows.append(.object([("engine", .string(engine)), ("kernel", kernel.map { .string($0) } ?? .null),
                                         ("batch", .int(batch)), ("tokens", .int(len)),
                                         ("sequences_per_s", .number(perSecond)), ("p50_ms", .number(s.p50 * 1e3)),
                                         ("runs", .int(s.runs))]))
                    text += pad(engine + (kernel.map { "/" + $0 } ?? ""), 16) + pad("\(batch)×\(len)", 15)
                        + pad(fixed(perSecond, 1), 14) + fixed(s.p50 * 1e3, 2) + "\n"
                }
                report.append(("throughput", .array(rows)))
                text += "\n"
            }

            if partSet.contains("accuracy"), let data {
                let queries = try LabelledQuery.load(path: data)
                let oos = fp32.calibration.outOfScopeLabel ?? "oos"
                // FP32 against each INT8 variant asked for: the file's scheme ("int8"; also
                // when only fp32 is asked, as before) and INT8 attention ("int8-attn").
                var variants: [(key: String, name: String, model: DistilBertModel)] = []
                if engineSet.contains("int8") || !engineSet.contains("int8-attn") { variants.append(("accuracy", "INT8", int8Models[0])) }
                if engineSet.contains("int8-attn") {
                    variants.append(("accuracy_int8_attn", "INT8 with INT8 attention", int8AttnModels[0]))
                }
                for variant in variants {
                    let int8Classifier = Classifier(directory: int8Path, tokenizer: fp32.tokenizer, model: variant.model,
                                                    calibration: fp32.calibration)
                    var wsA = Workspace(), wsB = Workspace()
                    var agree = 0, maxDelta: Float = 0, rightA = 0, rightB = 0, inScope = 0
                    for start in stride(from: 0, to: queries.count, by: 32) {
                        let chunk = Array(queries[start..<min(start + 32, queries.count)])
                        let a = try fp32.classify(chunk.map(\.text), workspace: &wsA)
                        let b = try int8Classifier.classify(chunk.map(\.text), workspace: &wsB)
                        for (q, (x, y)) in zip(chunk, zip(a, b)) {
                            let lx = x.outOfScope ? oos : x.label, ly = y.outOfScope ? oos : y.label
                            if lx == ly { agree += 1 }
                            for (p, r) in zip(x.probabilities, y.probabilities) { maxDelta = max(maxDelta, abs(p - r)) }
                            if q.label != oos && fp32.labels.contains(q.label) {
                                inScope += 1
                                if lx == q.label { rightA += 1 }
                                if ly == q.label { rightB += 1 }
                            }
                        }
                    }
                    let n = Double(queries.count)
                    report.append((variant.key, .object([
                        ("data", .string(data)), ("queries", .int(queries.count)),
                        ("label_agreement", .number(Double(agree) / n)), ("max_abs_dprob", .number(Double(maxDelta))),
                        ("fp32_in_scope_accuracy", .number(Double(rightA) / Double(max(1, inScope)))),
                        ("int8_in_scope_accuracy", .number(Double(rightB) / Double(max(1, inScope)))),
                    ])))
                    text += "FP32 vs \(variant.name) on \(queries.count) queries of \(data):\n"
                    text += "  label agreement \(fixed(Double(agree) / n * 100, 2)) %, max |Δprob| \(fixed(Double(maxDelta), 4))\n"
                    text += "  in-scope accuracy FP32 \(fixed(Double(rightA) / Double(max(1, inScope)) * 100, 2)) %, \(variant.name) \(fixed(Double(rightB) / Double(max(1, inScope)) * 100, 2)) %\n\n"
                }
            }

            let memory: JSONValue = .object([("rss_after_fp32_load_bytes", .int(rssFP32)),
                                             ("peak_rss_bytes", .int(peakResidentBytes()))])
            report.append(("memory", memory))
            text += "model files: \(FileSystem.fileSize(FileSystem.join(dir, "model.safetensors")) ?? 0) bytes; INT8 \(FileSystem.fileSize(FileSystem.join(int8Path, "model.safetensors")) ?? 0) bytes; FP32 parameters \(parameterCount(c) * 4) bytes\n"
            text += "load: FP32 \(fixed(fp32Load * 1e3, 1)) ms, INT8 \(fixed(int8Load * 1e3, 1)) ms; resident after FP32 load \(rssFP32 / 1_048_576) MiB, peak \(peakResidentBytes() / 1_048_576) MiB\n"

            if let svg, !series.isEmpty {
                try FileSystem.writeAtomically(svg, text: latencyChart(series, title: "\(cpu.modelName), \(threadCount) thread(s)"))
            }
            StandardOutput.write(json ? JSONValue.object(report).serialized + "\n" : text)
        }
    }

    /// Forward passes with a profile attached: warm-up, then --min-runs passes and --min-time
    /// seconds at least; each stage's median over the passes.
    func profile(_ model: DistilBertModel, _ input: PackedSequences) throws -> StageProfile {
        let profile = ForwardProfile()
        var ws = Workspace()
        ws.profile = profile
        for _ in 0..<3 { _ = try model.forward(input, workspace: &ws) }
        profile.reset()
        var totals: [Double] = []
        let start = Clock.seconds()
        while totals.count < minRuns || Clock.seconds() - start < minTime {
            profile.beginPass()
            let t0 = Clock.nanoseconds()
            _ = try model.forward(input, workspace: &ws)
            totals.append(Double(Clock.nanoseconds() - t0) * 1e-9)
            profile.endPass()
            if totals.count >= 100_000 { break }
        }
        totals.sort()
        return StageProfile(seconds: profile.medianSeconds(), work: profile.work, passP50: totals[totals.count / 2],
                            runs: totals.count)
    }

    func benchTokens(_ classifier: Classifier, length: Int) -> [Int32] {
        let seed = classifier.tokenizer.wordPieceIds(Self.seedText)
        var ids: [Int32] = [classifier.tokenizer.clsId]
        while ids.count < length - 1 { ids.append(seed[(ids.count - 1) % seed.count]) }
        ids.append(classifier.tokenizer.sepId)
        return ids
    }

    func parameterCount(_ c: DistilBertConfig) -> Int {
        c.vocabSize * c.dim + c.maxPositionEmbeddings * c.dim + 2 * c.dim
            + c.nLayers * (4 * (c.dim * c.dim + c.dim) + 2 * c.hiddenDim * c.dim + c.hiddenDim + c.dim + 4 * c.dim)
            + (c.labels.isEmpty ? 0 : c.dim * c.dim + c.dim + c.labels.count * (c.dim + 1))
    }

    struct KernelRow {
        var kernel: String, name: String, m: Int, k: Int, n: Int, gops: Double
        var json: JSONValue {
            .object([("kernel", .string(kernel)), ("shape", .string(name)), ("m", .int(m)), ("k", .int(k)),
                     ("n", .int(n)), ("gops", .number(gops))])
        }
    }

    /// One thread, the model's layer shapes at 16 and 128 rows; FP32 through OpenBLAS, INT8
    /// through each kernel (activations quantized beforehand: the product alone).
    func kernelBenchmarks(_ c: DistilBertConfig, int8Kernels: [KernelSet]) -> [KernelRow] {
        let shapes = [("qkv", c.dim, 3 * c.dim), ("out_lin", c.dim, c.dim), ("lin1", c.dim, c.hiddenDim), ("lin2", c.hiddenDim, c.dim)]
        var rows: [KernelRow] = []
        var rng = UInt64(42)
        func next() -> Float { rng = rng &* 6364136223846793005 &+ 1442695040888963407; return Float(Int(rng >> 41) % 2001 - 1000) / 1000 }
        for m in [16, 128] {
            for (name, k, n) in shapes {
                let x = FloatBuffer((0..<(m * k)).map { _ in next() })
                let w = FloatBuffer((0..<(n * k)).map { _ in next() })
                let bias = FloatBuffer(count: n), y = FloatBuffer(count: m * n)
                let ops = 2.0 * Double(m) * Double(k) * Double(n)
                let blocked = BlockedWeights(w.pointer, outFeatures: n, inFeatures: k)
                let fp = try! measure(minTime: min(minTime, 0.3), minRuns: 10) { _ in
                    FloatKernels.linear(x.pointer, rows: m, weight: blocked, bias: bias.pointer, into: y.pointer)
                }
                rows.append(KernelRow(kernel: "fp32 openblas", name: name, m: m, k: k, n: n, gops: ops / fp.p50 / 1e9))
                for kernel in int8Kernels {
                    guard let native = kernel.floatLinear else { continue }
                    let args = FloatLinearArguments(x: x.pointer, ldx: k, rows: m, weight: blocked, bias: bias.pointer,
                                                    y: y.pointer, ldy: n, blocks: 0..<blocked.blockCount)
                    let s = try! measure(minTime: min(minTime, 0.3), minRuns: 10) { _ in native(args) }
                    rows.append(KernelRow(kernel: "fp32 " + kernel.name, name: name, m: m, k: k, n: n, gops: ops / s.p50 / 1e9))
                }
                let (q, scales) = Int8Quantization.quantizeWeights(w.pointer, rows: n, columns: k)
                let packed = q.withUnsafeBufferPointer { PackedInt8Matrix(weights: $0.baseAddress!, scales: scales, rows: n, columns: k) }
                let scratch = QuantizationScratch()
                let a = scratch.rows(m, columns: k)
                Int8Quantization.quantizeRows(x.pointer, rows: m, columns: k, into: a)
                for kernel in int8Kernels {
                    let args = Int8GemmArguments(a: a, w: packed, bias: bias.pointer, out: y.pointer, ldo: n,
                                                 rowRange: 0..<m, blockRange: 0..<packed.blocks)
                    let s = try! measure(minTime: min(minTime, 0.3), minRuns: kernel.name == "portable" ? 3 : 10) { _ in kernel.gemm(args) }
                    rows.append(KernelRow(kernel: "int8 " + kernel.name, name: name, m: m, k: k, n: n, gops: ops / s.p50 / 1e9))
                }
            }
        }
        return rows
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
    func q(_ p: Double) -> Double { samples[min(samples.count - 1, Int((Double(samples.count) * p).rounded(.up)) - 1)] }
    return LatencyStats(p50: q(0.5), p95: q(0.95), runs: samples.count)
}

/// Resident and peak resident memory from /proc/self/status (VmRSS, VmHWM).
func residentBytes(_ key: String = "VmRSS:") -> Int {
    guard let status = try? FileSystem.readText("/proc/self/status") else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix(key) {
        let digits = line.dropFirst(key.count).filter { $0.isNumber }
        return (Int(String(digits)) ?? 0) * 1024
    }
    return 0
}

func peakResidentBytes() -> Int { residentBytes("VmHWM:") }

/// A line chart of p50 latency (log scale) against sequence length (log2 scale).
func latencyChart(_ series: [(String, [(Int, Double)])], title: String) -> String {
    let width = 720.0, height = 440.0, left = 70.0, right = 200.0, top = 40.0, bottom = 60.0
    let xs = series.flatMap { $0.1.map { Double($0.0) } }, ys = series.flatMap { $0.1.map(\.1) }
    guard let xMin = xs.min(), let xMax = xs.max(), let yMinRaw = ys.min(), let yMaxRaw = ys.max() else { return "<svg xmlns=\"http://www.w3.org/2000/svg\"/>" }
    let yMin = pow10(floor(log10(max(yMinRaw, 1e-3)))), yMax = pow10(ceil(log10(max(yMaxRaw, yMin * 10))))
    func px(_ x: Double) -> Double { left + (log2(x) - log2(xMin)) / max(1e-9, log2(xMax) - log2(xMin)) * (width - left - right) }
    func py(_ y: Double) -> Double { top + (log10(yMax) - log10(max(y, yMin))) / (log10(yMax) - log10(yMin)) * (height - top - bottom) }
    let colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
    var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
    s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    s += "<text x=\"\(left)\" y=\"24\" font-size=\"14\">triage forward-pass latency (p50, batch 1) — \(markupEscape(title))</text>\n"
    var decade = yMin
    while decade <= yMax * 1.0001 {
        let y = py(decade)
        s += "<line x1=\"\(left)\" y1=\"\(y)\" x2=\"\(width - right)\" y2=\"\(y)\" stroke=\"#ddd\"/>"
        s += "<text x=\"\(left - 8)\" y=\"\(y + 4)\" text-anchor=\"end\">\(decade < 1 ? fixed(decade, 2) : String(Int(decade))) ms</text>\n"
        decade *= 10
    }
    for x in Set(xs).sorted() {
        s += "<line x1=\"\(px(x))\" y1=\"\(top)\" x2=\"\(px(x))\" y2=\"\(height - bottom)\" stroke=\"#eee\"/>"
        s += "<text x=\"\(px(x))\" y=\"\(height - bottom + 18)\" text-anchor=\"middle\">\(Int(x))</text>\n"
    }
    s += "<text x=\"\((left + width - right) / 2)\" y=\"\(height - 16)\" text-anchor=\"middle\">sequence length (tokens)</text>\n"
    for (i, (name, points)) in series.enumerated() {
        let color = colors[i % colors.count]
        let path = points.map { "\(px(Double($0.0))),\(py($0.1))" }.joined(separator: " ")
        s += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(path)\"/>\n"
        for p in points { s += "<circle cx=\"\(px(Double(p.0)))\" cy=\"\(py(p.1))\" r=\"3\" fill=\"\(color)\"/>" }
        s += "\n<rect x=\"\(width - right + 16)\" y=\"\(top + Double(i) * 22)\" width=\"14\" height=\"4\" fill=\"\(color)\"/>"
        s += "<text x=\"\(width - right + 36)\" y=\"\(top + Double(i) * 22 + 6)\">\(markupEscape(name))</text>\n"
    }
    return s + "</svg>\n"
}


func pow10(_ x: Double) -> Double { Glibc.pow(10, x) }

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return s
    }
}

/// Each stage's median time over profiled passes, with its share and achieved rate.
struct StageProfile {
    var seconds: [Double], work: [Double], passP50: Double, runs: Int
    var sum: Double { seconds.reduce(0, +) }
    var totalOperations: Double { ForwardStage.allCases.filter(\.countsOperations).reduce(0) { $0 + work[$1.rawValue] } }

    func rate(_ stage: ForwardStage) -> Double {
        let s = seconds[stage.rawValue]
        return s > 0 ? work[stage.rawValue] / s / 1e9 : 0
    }

    func json(engine: String, tokens: Int) -> JSONValue {
        .object([
            ("engine", .string(engine)), ("tokens", .int(tokens)), ("runs", .int(runs)),
            ("pass_p50_ms", .number(passP50 * 1e3)), ("stage_sum_ms", .number(sum * 1e3)),
            ("operations", .number(totalOperations)), ("effective_gops", .number(totalOperations / sum / 1e9)),
            ("stages", .array(ForwardStage.allCases.map { stage in
                .object([("stage", .string(stage.key)), ("ms", .number(seconds[stage.rawValue] * 1e3)),
                         ("share", .number(sum > 0 ? seconds[stage.rawValue] / sum : 0)),
                         (stage.countsOperations ? "gops" : "gbps", .number(rate(stage)))])
            })),
        ])
    }

    func table(engine: String, tokens: Int) -> String {
        var t = "PROFILE \(engine), \(tokens) tokens: median per stage over \(runs) passes; sum \(fixed(sum * 1e3, 3)) ms "
        t += "(pass p50 \(fixed(passP50 * 1e3, 3)) ms), \(fixed(totalOperations / sum / 1e9, 1)) GOP/s effective\n"
        t += "STAGE                          ms       share   rate\n"
        for stage in ForwardStage.allCases where work[stage.rawValue] > 0 || seconds[stage.rawValue] > 0 {
            let unit = stage.countsOperations ? " GOP/s" : " GB/s"
            t += pad(stage.name, 29) + pad(fixed(seconds[stage.rawValue] * 1e3, 3), 9) + "  "
                + pad(fixed(sum > 0 ? seconds[stage.rawValue] / sum * 100 : 0, 1) + " %", 8) + fixed(rate(stage), 1) + unit + "\n"
        }
        return t
    }
}
