import TriageKernels
import TriageSystem
import TriageTensors

/// A linear layer in PyTorch layout: weight [outFeatures × inFeatures], bias [outFeatures].
public struct Linear: Sendable {
    public let weight: FloatBuffer
    public let bias: FloatBuffer
    public let inFeatures: Int
    public let outFeatures: Int
}

public struct LayerNormWeights: Sendable {
    public let gamma: FloatBuffer
    public let beta: FloatBuffer
}

/// Word embeddings stay in the dtype they were stored in: a query reads a few rows, so
/// widening the whole F16 table to FP32 at start-up would cost time and 35 MB for nothing.
public final class EmbeddingTable: @unchecked Sendable {
    public let rows: Int
    public let dim: Int
    private let file: SafeTensorsFile
    private let data: UnsafeRawBufferPointer
    private let dtype: DType

    init(file: SafeTensorsFile, tensor: TensorInfo) {
        self.file = file
        rows = tensor.shape[0]
        dim = tensor.shape[1]
        data = file.bytes(of: tensor)
        dtype = tensor.dtype
    }

    /// Adds row `id` (widened to FP32) to `out`.
    @inline(__always)
    public func addRow(_ id: Int, to out: UnsafeMutablePointer<Float>) {
        let size = dtype.byteSize
        let row = UnsafeRawBufferPointer(rebasing: data[(id * dim * size)..<((id + 1) * dim * size)])
        switch dtype {
        case .F32:
            for i in 0..<dim { out[i] += row.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) }
        case .F16:
            for i in 0..<dim { out[i] += FloatConversion.halfToFloat(row.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        default:  // BF16, checked at load
            for i in 0..<dim { out[i] += Float(bitPattern: UInt32(row.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16) }
        }
    }

    public var storedBytes: Int { data.count }
}

public struct TransformerLayerWeights: Sendable {
    /// q_lin, k_lin and v_lin stacked into one [3·dim × dim] product.
    public let qkv: Linear
    public let outLin: Linear
    public let saLayerNorm: LayerNormWeights
    public let lin1: Linear
    public let lin2: Linear
    public let outputLayerNorm: LayerNormWeights
}

public struct ClassifierHead: Sendable {
    public let preClassifier: Linear
    public let classifier: Linear
}

/// Every tensor of a DistilBERT checkpoint, loaded strictly: the names mirror Hugging Face's
/// (with or without the `distilbert.` prefix) so there is no renaming table, every expected
/// tensor must be present with its exact shape, and nothing unexpected may be left over.
public final class DistilBertWeights: @unchecked Sendable {
    public let config: DistilBertConfig
    public let wordEmbeddings: EmbeddingTable
    public let positionEmbeddings: FloatBuffer
    public let embeddingLayerNorm: LayerNormWeights
    public let layers: [TransformerLayerWeights]
    public let head: ClassifierHead?
    public let file: SafeTensorsFile

    /// The tensor names and shapes a config implies; the head is optional as a unit.
    public static func expectedTensors(_ c: DistilBertConfig, prefix: String, head: Bool) -> [(String, [Int])] {
        var out: [(String, [Int])] = [
            ("\(prefix)embeddings.word_embeddings.weight", [c.vocabSize, c.dim]),
            ("\(prefix)embeddings.position_embeddings.weight", [c.maxPositionEmbeddings, c.dim]),
            ("\(prefix)embeddings.LayerNorm.weight", [c.dim]),
            ("\(prefix)embeddings.LayerNorm.bias", [c.dim]),
        ]
        for l in 0..<c.nLayers {
            let p = "\(prefix)transformer.layer.\(l)."
            for lin in ["q_lin", "k_lin", "v_lin", "out_lin"] {
                out.append(("\(p)attention.\(lin).weight", [c.dim, c.dim]))
                out.append(("\(p)attention.\(lin).bias", [c.dim]))
            }
            out.append(("\(p)sa_layer_norm.weight", [c.dim]))
            out.append(("\(p)sa_layer_norm.bias", [c.dim]))
            out.append(("\(p)ffn.lin1.weight", [c.hiddenDim, c.dim]))
            out.append(("\(p)ffn.lin1.bias", [c.hiddenDim]))
            out.append(("\(p)ffn.lin2.weight", [c.dim, c.hiddenDim]))
            out.append(("\(p)ffn.lin2.bias", [c.dim]))
            out.append(("\(p)output_layer_norm.weight", [c.dim]))
            out.append(("\(p)output_layer_norm.bias", [c.dim]))
        }
        if head {
            out.append(("pre_classifier.weight", [c.dim, c.dim]))
            out.append(("pre_classifier.bias", [c.dim]))
            out.append(("classifier.weight", [c.labels.count, c.dim]))
            out.append(("classifier.bias", [c.labels.count]))
        }
        return out
    }

    /// Buffers some exporters save that carry no weights.
    static let ignorable: Set<String> = ["embeddings.position_ids", "distilbert.embeddings.position_ids"]

    public init(config inConfig: DistilBertConfig, file: SafeTensorsFile) throws {
        var config = inConfig
        self.file = file
        let prefix = file.info("distilbert.embeddings.word_embeddings.weight") != nil ? "distilbert." : ""
        let hasHead = file.info("classifier.weight") != nil || file.info("pre_classifier.weight") != nil
        if hasHead, config.labels.isEmpty, let rows = file.info("classifier.weight")?.shape.first {
            config.labels = (0..<rows).map { "LABEL_\($0)" }
        }
        self.config = config

        // Check everything first so one error lists every problem.
        let expected = Self.expectedTensors(config, prefix: prefix, head: hasHead)
        var missing: [String] = [], misShaped: [String] = [], badType: [String] = []
        for (name, shape) in expected {
            guard let t = file.info(name) else { missing.append(name); continue }
            if t.shape != shape { misShaped.append("\(name) is \(t.shape), expected \(shape)") }
            if ![.F32, .F16, .BF16].contains(t.dtype) { badType.append("\(name) is \(t.dtype.rawValue)") }
        }
        let expectedNames = Set(expected.map(\.0))
        let unexpected = file.tensors.map(\.name).filter { !expectedNames.contains($0) && !Self.ignorable.contains($0) }
        if !(missing.isEmpty && misShaped.isEmpty && badType.isEmpty && unexpected.isEmpty) {
            var lines = ["\(file.path) does not match the model config (dim \(config.dim), \(config.nLayers) layers, \(config.labels.count) labels):"]
            if !missing.isEmpty { lines.append("  missing tensors: " + missing.joined(separator: ", ")) }
            if !misShaped.isEmpty { lines.append("  wrong shapes: " + misShaped.joined(separator: "; ")) }
            if !badType.isEmpty { lines.append("  unsupported dtypes (F32, F16 or BF16 expected): " + badType.joined(separator: ", ")) }
            if !unexpected.isEmpty { lines.append("  unexpected tensors: " + unexpected.joined(separator: ", ")) }
            throw ModelError(lines.joined(separator: "\n"))
        }

        func floats(_ name: String) -> FloatBuffer { FloatBuffer(try! file.floats(name)) }
        func linear(_ name: String) -> Linear {
            let w = file.info(name + ".weight")!
            return Linear(weight: floats(name + ".weight"), bias: floats(name + ".bias"),
                          inFeatures: w.shape[1], outFeatures: w.shape[0])
        }
        func layerNorm(_ name: String) -> LayerNormWeights {
            LayerNormWeights(gamma: floats(name + ".weight"), beta: floats(name + ".bias"))
        }
        wordEmbeddings = EmbeddingTable(file: file, tensor: file.info("\(prefix)embeddings.word_embeddings.weight")!)
        positionEmbeddings = floats("\(prefix)embeddings.position_embeddings.weight")
        embeddingLayerNorm = layerNorm("\(prefix)embeddings.LayerNorm")
        var layers: [TransformerLayerWeights] = []
        for l in 0..<config.nLayers {
            let p = "\(prefix)transformer.layer.\(l)."
            let q = linear(p + "attention.q_lin"), k = linear(p + "attention.k_lin"), v = linear(p + "attention.v_lin")
            let d = config.dim
            let w = FloatBuffer(count: 3 * d * d), b = FloatBuffer(count: 3 * d)
            for (i, part) in [q, k, v].enumerated() {
                (w.pointer + i * d * d).update(from: part.weight.pointer, count: d * d)
                (b.pointer + i * d).update(from: part.bias.pointer, count: d)
            }
            layers.append(TransformerLayerWeights(
                qkv: Linear(weight: w, bias: b, inFeatures: d, outFeatures: 3 * d),
                outLin: linear(p + "attention.out_lin"), saLayerNorm: layerNorm(p + "sa_layer_norm"),
                lin1: linear(p + "ffn.lin1"), lin2: linear(p + "ffn.lin2"),
                outputLayerNorm: layerNorm(p + "output_layer_norm")))
        }
        self.layers = layers
        head = hasHead ? ClassifierHead(preClassifier: linear("pre_classifier"), classifier: linear("classifier")) : nil
    }

    /// Loads `config.json` and `model.safetensors` from a Hugging Face model directory.
    public static func load(directory: String) throws -> DistilBertWeights {
        guard FileSystem.isDirectory(directory) else { throw ModelError("model directory \(directory) does not exist") }
        let config = try DistilBertConfig.load(path: FileSystem.join(directory, "config.json"))
        let path = FileSystem.join(directory, "model.safetensors")
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(path: path) } catch { throw ModelError("\(path): \(error)") }
        return try DistilBertWeights(config: config, file: file)
    }
}
