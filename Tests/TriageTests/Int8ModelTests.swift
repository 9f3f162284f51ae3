import Foundation
import Testing
import TriageKernels
import TriageKernelSelect
import TriageModel
import TriageSystem
import TriageTensors

/// The INT8 forward pass on a PyTorch-made checkpoint: integer products make it exactly
/// reproducible across kernels and thread counts, and it must stay close to FP32.
@Suite struct Int8ModelTests {
    static let dir = Paths.fixtures + "/parity/tiny72"

    func inputs() throws -> [PackedSequences] {
        let expected = try readJSON(Self.dir + "/expected.json")
        return try expected["cases"]!.arrayValue!.map { c in
            let rows = c["input_ids"]!.arrayValue!
            return try PackedSequences(paddedIds: rows.flatMap { $0.int32s },
                                       attentionMask: c["attention_mask"]!.arrayValue!.flatMap { $0.int32s },
                                       batchSize: rows.count, length: rows[0].arrayValue!.count)
        }
    }

    /// Bit for bit among kernels whose attention rounds alike (fused multiply-adds or not).
    /// Between the two kinds a last-bit difference can move an activation across an INT8
    /// rounding boundary, so the logits differ more than float rounding alone (0.0055 seen).
    @Test func identicalLogitsOnEveryKernelAndThreadCount() throws {
        let fp32 = try DistilBertWeights.load(directory: Self.dir)
        let int8 = try Quantizer.quantizeInMemory(fp32, embeddings: true)
        #expect(int8.isInt8)
        var reference: [Bool: [[Float]]] = [:]
        for kernel in KernelSelection.available() {
            for threads in [1, 2, 3] {
                let model = DistilBertModel(weights: int8, runtime: Runtime(threads: threads, kernels: kernel))
                var ws = Workspace()
                let logits = try inputs().map { try model.forward($0, workspace: &ws).logits }
                let kind = kernel.glue.fusedMultiplyAdd
                if let same = reference[kind] {
                    let identical = zip(logits.joined(), same.joined()).allSatisfy { $0.bitPattern == $1.bitPattern }
                    #expect(identical, "\(kernel.name) with \(threads) threads differs")
                } else {
                    reference[kind] = logits
                }
                if let other = reference[!kind] {
                    let worst = zip(logits.joined(), other.joined()).map { abs($0 - $1) }.max() ?? .nan
                    #expect(worst <= 0.02, "\(kernel.name) against the other rounding: \(worst)")
                }
            }
        }
        #expect(reference.count == 2, "both kinds of attention ran")
    }

    @Test func staysCloseToFP32() throws {
        let fp32 = try DistilBertWeights.load(directory: Self.dir)
        let int8 = try Quantizer.quantizeInMemory(fp32, embeddings: true)
        let a = DistilBertModel(weights: fp32), b = DistilBertModel(weights: int8)
        var ws = Workspace()
        var worst: Float = 0
        for input in try inputs() {
            let x = try a.forward(input, workspace: &ws).logits, y = try b.forward(input, workspace: &ws).logits
            for (p, q) in zip(x, y) { worst = max(worst, abs(p - q)) }
        }
        print("tiny72 INT8 vs FP32: max |Δlogit| = \(worst)")
        #expect(worst < 0.15, "max |Δlogit| \(worst)")
    }

    @Test func quantizedDirectoryRoundTrips() throws {
        let out = NSTemporaryDirectory() + "triage-int8-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: out) }
        // Row-major: the layout other safetensors readers understand (PackedLayoutTests has the packed one).
        try Quantizer.quantizeDirectory(from: Self.dir, to: out, embeddings: true, layout: .rowMajor)
        let file = try SafeTensorsFile(path: out + "/model.safetensors")
        #expect(file.metadata(Quantizer.metadataKey) == "int8")
        #expect(file.info("distilbert.transformer.layer.0.ffn.lin1.weight")?.dtype == .I8)
        #expect(file.info("distilbert.transformer.layer.0.ffn.lin1.weight_scale")?.shape == [200])
        #expect(file.info("distilbert.embeddings.word_embeddings.weight")?.dtype == .I8)
        #expect(file.info("distilbert.embeddings.position_embeddings.weight")?.dtype == .F32)
        let loaded = try DistilBertWeights.load(directory: out)
        let inMemory = try Quantizer.quantizeInMemory(try DistilBertWeights.load(directory: Self.dir), embeddings: true)
        var ws = Workspace()
        for input in try inputs() {
            let x = try DistilBertModel(weights: loaded).forward(input, workspace: &ws).logits
            let y = try DistilBertModel(weights: inMemory).forward(input, workspace: &ws).logits
            #expect(x == y)
        }
        #expect(throws: Error.self) { try Quantizer.quantizeDirectory(from: out, to: out + "-again", embeddings: true) }

        // The model card gets an INT8 note after its front matter; the rest stays as it was.
        let card = "---\nlicense: mit\n---\n\n# A model\n\nStored as float16.\n"
        let int8Card = Quantizer.int8Card(card, source: "weights/m", embeddings: false)
        #expect(int8Card.hasPrefix("---\nlicense: mit\n---\n\n> **INT8 copy.** This directory is `m` quantized"))
        #expect(int8Card.contains("word embeddings unchanged"))
        #expect(int8Card.hasSuffix("\n# A model\n\nStored as float16.\n"))
        #expect(Quantizer.int8Card("# Plain\n", source: "m", embeddings: true).hasPrefix("> **INT8 copy.**"))

        // A missing scale is named by the strict loader.
        var w = SafeTensorsWriter()
        for t in file.tensors where t.name != "distilbert.transformer.layer.2.attention.k_lin.weight_scale" {
            w.add(t.name, dtype: t.dtype, shape: t.shape, bytes: Array(file.bytes(of: t)))
        }
        try w.write(to: out + "/model.safetensors")
        do {
            _ = try DistilBertWeights.load(directory: out)
            Issue.record("expected a load error")
        } catch {
            #expect("\(error)".contains("missing tensors: distilbert.transformer.layer.2.attention.k_lin.weight_scale"))
        }
    }
}
