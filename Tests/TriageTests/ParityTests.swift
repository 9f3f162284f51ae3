import Testing
import TriageJSON
import TriageKernelSelect
import TriageKernels
import TriageModel

/// Random-weight DistilBERT checkpoints written by PyTorch `transformers`
/// (tools/gen_parity_fixtures.py) with the logits it computed; triage must agree within 1e-4.
@Suite struct ParityTests {
    static let tolerance: Float = 1e-4

    /// The FP32 products held against PyTorch: OpenBLAS (the portable kernels have no FP32
    /// product of their own) and every kernel set on this CPU that has one.
    static let products = ["openblas"] + KernelSelection.available().filter { $0.floatLinear != nil }.map(\.name)

    @Test(arguments: ["tiny72", "tiny52relu", "noprefix", "f16"], products)
    func logitsMatchPyTorch(name: String, product: String) throws {
        let dir = Paths.fixtures + "/parity/" + name
        let kernels = try #require(product == "openblas" ? KernelSet.portable : KernelSelection.available().first { $0.name == product })
        let model = DistilBertModel(weights: try DistilBertWeights.load(directory: dir), runtime: Runtime(threads: 1, kernels: kernels))
        let expected = try readJSON(dir + "/expected.json")
        var ws = Workspace()
        var worst: Float = 0
        let cases = expected["cases"]!.arrayValue!
        #expect(cases.count >= 7)
        for c in cases {
            let rows = c["input_ids"]!.arrayValue!
            let length = rows[0].arrayValue!.count
            let ids = rows.flatMap { $0.int32s }
            let mask = c["attention_mask"]!.arrayValue!.flatMap { $0.int32s }
            let input = try PackedSequences(paddedIds: ids, attentionMask: mask, batchSize: rows.count, length: length)
            let out = try model.forward(input, workspace: &ws)
            let logits = c["logits"]!.arrayValue!.flatMap { $0.floats }
            let cls = c["last_hidden_state_cls"]!.arrayValue!.flatMap { $0.floats }
            #expect(out.logits.count == logits.count)
            for (a, b) in zip(out.logits, logits) { worst = max(worst, abs(a - b)) }
            for (a, b) in zip(out.cls, cls) { #expect(abs(a - b) <= Self.tolerance, "CLS state of \(c["name"]!.stringValue!)") }
        }
        #expect(worst <= Self.tolerance, "max |Δlogit| \(worst) on \(name) (\(product))")
        print("parity \(name) (\(product)): max |Δlogit| = \(worst)")
    }

    @Test func paddedBatchEqualsSingles() throws {
        let dir = Paths.fixtures + "/parity/tiny72"
        let model = DistilBertModel(weights: try DistilBertWeights.load(directory: dir))
        var ws = Workspace()
        let seqs: [[Int32]] = [[101, 5, 6, 7, 102], [101, 9, 102], Array(1...40).map { Int32($0) }]
        let batch = try model.forward(PackedSequences(tokens: seqs.flatMap { $0 }, lengths: seqs.map(\.count)), workspace: &ws)
        for (i, s) in seqs.enumerated() {
            let single = try model.forward(PackedSequences(tokens: s, lengths: [s.count]), workspace: &ws)
            for (a, b) in zip(single.logits, batch.logits(i)) { #expect(abs(a - b) <= 1e-5) }
        }
    }

    @Test func rejectsBadInputs() throws {
        let model = DistilBertModel(weights: try DistilBertWeights.load(directory: Paths.fixtures + "/parity/tiny72"))
        var ws = Workspace()
        #expect(throws: ModelError.self) { try model.forward(PackedSequences(tokens: [1, 5000], lengths: [2]), workspace: &ws) }
        #expect(throws: ModelError.self) { try model.forward(PackedSequences(tokens: [Int32](repeating: 1, count: 65), lengths: [65]), workspace: &ws) }
        #expect(throws: ModelError.self) { try model.forward(PackedSequences(tokens: [1, 2], lengths: [3]), workspace: &ws) }
        #expect(throws: ModelError.self) { try PackedSequences(paddedIds: [1, 2, 3], attentionMask: [0, 1, 1], batchSize: 1, length: 3) }
    }
}
