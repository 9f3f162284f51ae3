import Foundation
import Testing
import TriageKernels
import TriageKernelSelect
import TriageModel
import TriageSystem
import TriageTensors

/// INT8 files in the kernels' packed layout: loaded in place from the mapping, giving the
/// same bits as the row-major files that are packed at load; unknown layouts refused.
@Suite struct PackedLayoutTests {
    static let input = PackedSequences(tokens: [101, 7, 8, 9, 102, 101, 11, 12, 13, 14, 15, 16, 17, 102], lengths: [5, 9])

    func logits(_ weights: DistilBertWeights) throws -> [UInt32] {
        let model = DistilBertModel(weights: weights, runtime: Runtime(threads: 2, kernels: try KernelSelection.select()))
        var ws = Workspace()
        return try model.forward(Self.input, workspace: &ws).logits.map(\.bitPattern)
    }

    func write(_ dir: String, to out: String, layout: Quantizer.Layout) throws -> DistilBertWeights {
        try Quantizer.quantizeDirectory(from: Paths.fixtures + "/parity/" + dir, to: out, embeddings: true, layout: layout)
        return try DistilBertWeights.load(directory: out)
    }

    /// tiny72 (q, k and v of 72 rows: not whole 16-row blocks) and the others: every layout
    /// gives the row-major file's bits; where the blocks line up the weights stay in the map.
    @Test(arguments: ["tiny72", "tiny52relu", "noprefix", "f16"]) func packedMatchesRowMajor(model: String) throws {
        let tmp = NSTemporaryDirectory() + "triage-packed-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let rowMajor = try write(model, to: tmp + "/row", layout: .rowMajor)
        let packed = try write(model, to: tmp + "/packed", layout: .packed)
        #expect(rowMajor.file.metadata(Quantizer.layoutKey) == nil)
        #expect(packed.file.metadata(Quantizer.layoutKey) == Quantizer.packedLayout)
        #expect(try logits(packed) == logits(rowMajor))
        for layer in packed.layers {
            // In place exactly when q and k fill whole 16-row blocks; single layers always.
            for (linear, stacked) in [(layer.qkv, true), (layer.outLin, false), (layer.lin1, false), (layer.lin2, false)] {
                guard case let .int8(w) = linear.weight else { Issue.record("not int8"); continue }
                #expect(w.isBorrowed == (!stacked || packed.config.dim % 16 == 0), "\(model): \(w.rows)×\(w.columns)")
            }
        }
    }

    @Test func unknownLayoutIsRefused() throws {
        let tmp = NSTemporaryDirectory() + "triage-packed-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let packed = try write("tiny72", to: tmp + "/packed", layout: .packed)
        var writer = SafeTensorsWriter()
        writer.metadata = packed.file.metadata.map { $0.0 == Quantizer.layoutKey ? ($0.0, "blocks32x8-v9") : $0 }
        for t in packed.file.tensors { writer.add(t.name, dtype: t.dtype, shape: t.shape, bytes: Array(packed.file.bytes(of: t))) }
        try writer.write(to: tmp + "/packed/model.safetensors")
        #expect {
            _ = try DistilBertWeights.load(directory: tmp + "/packed")
        } throws: { "\($0)".contains("blocks32x8-v9") && "\($0)".contains(Quantizer.packedLayout) }

        // A packed file missing a weight sum, or with a mis-shaped packed weight, is named by the strict loader.
        var broken = SafeTensorsWriter()
        broken.metadata = packed.file.metadata
        for t in packed.file.tensors where t.name != "distilbert.transformer.layer.1.ffn.lin2.weight_sum" {
            let shape = t.name == "distilbert.transformer.layer.0.ffn.lin1.weight_packed" ? [t.elementCount] : t.shape
            broken.add(t.name, dtype: t.dtype, shape: shape, bytes: Array(packed.file.bytes(of: t)))
        }
        try broken.write(to: tmp + "/packed/model.safetensors")
        #expect {
            _ = try DistilBertWeights.load(directory: tmp + "/packed")
        } throws: {
            "\($0)".contains("missing tensors: distilbert.transformer.layer.1.ffn.lin2.weight_sum")
                && "\($0)".contains("distilbert.transformer.layer.0.ffn.lin1.weight_packed is [")
        }
    }
}
