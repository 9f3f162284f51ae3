import Foundation
import Testing
import TriageKernelSelect
import TriageKernels
import TriageModel
import TriageSystem
import TriageTensors

/// `triage pack`: FP32 weights stored as the FP32 products' panels load as a memory map and
/// run exactly as the source model.
@Suite struct FloatPanelsTests {
    func temporaryDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "triage-panels-\(UUID().uuidString)"
        try FileSystem.createDirectory(dir)
        return dir
    }

    /// Each parity fixture (dims 72 and 52: stacked q/k/v not in whole blocks, so laid out
    /// again at load; F16; no prefix) gives bit-identical logits from its panels, through
    /// OpenBLAS and through each native FP32 product.
    @Test(arguments: ["tiny72", "tiny52relu", "noprefix", "f16"])
    func panelsGiveTheSourceModelsLogits(name: String) throws {
        let source = Paths.fixtures + "/parity/" + name
        let out = try temporaryDirectory() + "/" + name
        defer { try? FileManager.default.removeItem(atPath: (out as NSString).deletingLastPathComponent) }
        try FloatPanels.packDirectory(from: source, to: out)
        let packed = try DistilBertWeights.load(directory: out)
        #expect(packed.file.metadata(FloatPanels.layoutKey) == FloatPanels.layout)
        #expect(packed.file.tensors.contains { $0.name.hasSuffix(".weight_panels") })
        #expect(!packed.file.tensors.contains { $0.name.hasSuffix("_lin.weight") || $0.name == "classifier.weight" })
        let original = try DistilBertWeights.load(directory: source)
        let tokens: [Int32] = [101] + (0..<30).map { Int32($0 * 29 % 600 + 50) } + [102]
        let input = PackedSequences(tokens: tokens + [101, 7, 102], lengths: [tokens.count, 3])
        var ws = Workspace()
        for kernels in [KernelSet.portable] + KernelSelection.available().filter({ $0.floatLinear != nil }) {
            let runtime = Runtime(threads: 2, kernels: kernels)
            let a = try DistilBertModel(weights: original, runtime: runtime).forward(input, workspace: &ws)
            let b = try DistilBertModel(weights: packed, runtime: runtime).forward(input, workspace: &ws)
            #expect(a.logits.map(\.bitPattern) == b.logits.map(\.bitPattern), "\(name) on \(kernels.name)")
        }
        // Quantized from the panels, the INT8 model is the one quantized from the source.
        let int8A = try Quantizer.quantizeInMemory(original, embeddings: true)
        let int8B = try Quantizer.quantizeInMemory(packed, embeddings: true)
        let best = Runtime(threads: 1, kernels: KernelSelection.available()[0])
        let qa = try DistilBertModel(weights: int8A, runtime: best).forward(input, workspace: &ws)
        let qb = try DistilBertModel(weights: int8B, runtime: best).forward(input, workspace: &ws)
        #expect(qa.logits.map(\.bitPattern) == qb.logits.map(\.bitPattern), "\(name): INT8 from panels")
        // Packing again, or packing an INT8 model, is refused.
        #expect(throws: ModelError.self) { try FloatPanels.packDirectory(from: out, to: out + "-again") }
        #expect(!FileSystem.exists(out + "-again"))
    }

    @Test func strictLoadingOfPanels() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let source = Paths.fixtures + "/parity/tiny72"
        try FloatPanels.packDirectory(from: source, to: dir + "/ok")
        let file = try SafeTensorsFile(path: dir + "/ok/model.safetensors")
        func rewrite(_ target: String, metadata: [(String, String)]? = nil, dropping: String? = nil,
                     reshaping: String? = nil) throws -> String {
            let out = dir + "/" + target
            try FileSystem.createDirectory(out)
            try FileSystem.copyFile(from: source + "/config.json", to: out + "/config.json")
            var w = SafeTensorsWriter()
            w.metadata = metadata ?? file.metadata
            for t in file.tensors where t.name != dropping {
                var bytes = Array(file.bytes(of: t)), shape = t.shape
                if t.name == reshaping { bytes.removeLast(4); shape = [shape[0] - 1] }
                w.add(t.name, dtype: t.dtype, shape: shape, bytes: bytes)
            }
            try w.write(to: out + "/model.safetensors")
            return out
        }
        let unknown = try rewrite("unknown", metadata: [("format", "pt"), (FloatPanels.layoutKey, "panels64-v9")])
        #expect { try DistilBertWeights.load(directory: unknown) } throws: { "\($0)".contains("layout 'panels64-v9'") }
        let both = try rewrite("both", metadata: [(FloatPanels.layoutKey, FloatPanels.layout), (Quantizer.layoutKey, Quantizer.packedLayout)])
        #expect { try DistilBertWeights.load(directory: both) } throws: { "\($0)".contains("both") }
        let missing = try rewrite("missing", dropping: "distilbert.transformer.layer.1.ffn.lin2.weight_panels")
        #expect { try DistilBertWeights.load(directory: missing) } throws: {
            "\($0)".contains("missing tensors: distilbert.transformer.layer.1.ffn.lin2.weight_panels")
        }
        let short = try rewrite("short", reshaping: "distilbert.transformer.layer.0.attention.q_lin.weight_panels")
        #expect { try DistilBertWeights.load(directory: short) } throws: {
            "\($0)".contains("distilbert.transformer.layer.0.attention.q_lin.weight_panels is [5183], expected [5184]")
        }
    }
}
