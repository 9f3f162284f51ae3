import TriageKernels
import TriageSystem
import TriageTensors

/// A linear layer's weight: FP32 in column blocks for the FP32 products (the AVX2 kernel or OpenBLAS,
/// see `FloatKernels.linear`), or int8 with a scale per output channel, packed for the INT8 kernels.
public enum LinearWeight: Sendable {
    case float(BlockedWeights)
    case int8(PackedInt8Matrix)
}

/// A linear layer: y = x · Wᵀ + bias.
public struct Linear: Sendable {
    public let weight: LinearWeight
    public let bias: FloatBuffer
    public let inFeatures: Int
    public let outFeatures: Int
    public var isInt8: Bool { if case .int8 = weight { return true }; return false }
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
    public let dtype: DType
    /// Per-row scales of an int8 table.
    private let rowScales: [Float]

    init(file: SafeTensorsFile, tensor: TensorInfo, rowScales: [Float] = []) {
        self.file = file
        rows = tensor.shape[0]
        dim = tensor.shape[1]
        data = file.bytes(of: tensor)
        dtype = tensor.dtype
        self.rowScales = rowScales
    }

    /// Writes row `id`, widened to FP32, to `out`.
    @inline(__always)
    public func copyRow(_ id: Int, to out: UnsafeMutablePointer<Float>) {
        let size = dtype.byteSize
        let row = UnsafeRawBufferPointer(rebasing: data[(id * dim * size)..<((id + 1) * dim * size)])
        switch dtype {
        case .F32:
            for i in 0..<dim { out[i] = row.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) }
        case .F16:
            for i in 0..<dim { out[i] = FloatConversion.halfToFloat(row.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        case .I8:
            let scale = rowScales[id]
            for i in 0..<dim { out[i] = Float(Int8(bitPattern: row[i])) * scale }
        default:  // BF16, checked at load
            for i in 0..<dim { out[i] = Float(bitPattern: UInt32(row.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16) }
        }
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
        case .I8:
            let scale = rowScales[id]
            for i in 0..<dim { out[i] += Float(Int8(bitPattern: row[i])) * scale }
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
    /// Read row by row from the file like the word embeddings: a query uses as many rows as
    /// it has tokens, and widening the whole table (512 × dim floats) cost every process
    /// ~1.5 MB of fresh pages and ~380 page faults.
    public let positionEmbeddings: EmbeddingTable
    public let embeddingLayerNorm: LayerNormWeights
    public let layers: [TransformerLayerWeights]
    public let head: ClassifierHead?
    public let file: SafeTensorsFile
    /// Attention's Q·Kᵀ and P·V as INT8 products (`triage_attention` = `Int8Attention.scheme`
    /// in `__metadata__`, written by `triage quantize --attention int8`); FP32 otherwise.
    public let int8Attention: Bool

    /// The linear layers of a config, as (name without ".weight", out, in).
    public static func linearLayers(_ c: DistilBertConfig, prefix: String, head: Bool) -> [(String, Int, Int)] {
        var out: [(String, Int, Int)] = []
        for l in 0..<c.nLayers {
            let p = "\(prefix)transformer.layer.\(l)."
            for lin in ["q_lin", "k_lin", "v_lin", "out_lin"] { out.append(("\(p)attention.\(lin)", c.dim, c.dim)) }
            out.append(("\(p)ffn.lin1", c.hiddenDim, c.dim))
            out.append(("\(p)ffn.lin2", c.dim, c.hiddenDim))
        }
        if head {
            out.append(("pre_classifier", c.dim, c.dim))
            out.append(("classifier", c.labels.count, c.dim))
        }
        return out
    }

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
        let hasHead = ["classifier.weight", "pre_classifier.weight", "classifier.weight_packed", "classifier.weight_panels"]
            .contains { file.info($0) != nil }
        if hasHead, config.labels.isEmpty,
           let rows = (file.info("classifier.weight") ?? file.info("classifier.weight_scale") ?? file.info("classifier.bias"))?.shape.first {
            config.labels = (0..<rows).map { "LABEL_\($0)" }
        }
        self.config = config

        // Check everything first so one error lists every problem. An int8 weight (a linear
        // layer's or the word embeddings') brings a float scale per row beside it.
        var expected = Self.expectedTensors(config, prefix: prefix, head: hasHead)
        let layout = file.metadata(Quantizer.layoutKey)
        if let layout, layout != Quantizer.packedLayout {
            throw ModelError("\(file.path) stores its INT8 weights in layout '\(layout)', which this triage cannot read (it reads '\(Quantizer.packedLayout)'); quantize the FP32 model again with this version")
        }
        let panelLayout = file.metadata(FloatPanels.layoutKey)
        if let panelLayout, panelLayout != FloatPanels.layout {
            throw ModelError("\(file.path) stores its FP32 weights in layout '\(panelLayout)', which this triage cannot read (it reads '\(FloatPanels.layout)'); write it again with this version's `triage pack`")
        }
        if layout != nil && panelLayout != nil {
            throw ModelError("\(file.path) declares both INT8 layout '\(layout!)' and FP32 layout '\(panelLayout!)'")
        }
        switch file.metadata(Quantizer.attentionKey) {
        case nil: int8Attention = false
        case Int8Attention.scheme?: int8Attention = true
        case let other?:
            throw ModelError("\(file.path) asks for attention scheme '\(other)', which this triage cannot run (it runs '\(Int8Attention.scheme)' or, without the key, FP32); quantize the FP32 model again with this version")
        }
        var inFeatures: [String: Int] = [:]
        for (name, _, k) in Self.linearLayers(config, prefix: prefix, head: hasHead) { inFeatures[name + ".weight"] = k }
        let packedLinears = layout == nil ? Set<String>() : Set(inFeatures.keys)
        let panelLinears = panelLayout == nil ? Set<String>() : Set(inFeatures.keys)
        expected = expected.flatMap { (name, shape) -> [(String, [Int])] in
            let base = String(name.dropLast(".weight".count)), n = shape.first ?? 0, k = shape.last ?? 0
            if panelLinears.contains(name) { return [(base + ".weight_panels", [n * k])] }
            guard packedLinears.contains(name) else { return [(name, shape)] }
            return [(base + ".weight_packed", [(n + 15) / 16, (k + 3) / 4, 16, 4]),
                    (base + ".weight_scale", [n]), (base + ".weight_sum", [n])]
        }
        for (name, shape) in expected where name.hasSuffix(".weight") && shape.count == 2 {
            if file.info(name)?.dtype == .I8 {
                expected.append((name.dropLast(".weight".count) + ".weight_scale", [shape[0]]))
            }
        }
        var missing: [String] = [], misShaped: [String] = [], badType: [String] = []
        let int8Allowed = Set(Self.linearLayers(config, prefix: prefix, head: hasHead).map { $0.0 + ".weight" }
                              + ["\(prefix)embeddings.word_embeddings.weight"])
        for (name, shape) in expected {
            guard let t = file.info(name) else { missing.append(name); continue }
            if t.shape != shape { misShaped.append("\(name) is \(t.shape), expected \(shape)") }
            let allowed: [DType] = name.hasSuffix(".weight_scale") || name.hasSuffix(".weight_panels") ? [.F32]
                : name.hasSuffix(".weight_packed") ? [.I8] : name.hasSuffix(".weight_sum") ? [.I32]
                : int8Allowed.contains(name) ? [.F32, .F16, .BF16, .I8] : [.F32, .F16, .BF16]
            if !allowed.contains(t.dtype) { badType.append("\(name) is \(t.dtype.rawValue)") }
        }
        let expectedNames = Set(expected.map(\.0))
        let unexpected = file.tensors.map(\.name).filter { !expectedNames.contains($0) && !Self.ignorable.contains($0) }
        if !(missing.isEmpty && misShaped.isEmpty && badType.isEmpty && unexpected.isEmpty) {
            var lines = ["\(file.path) does not match the model config (dim \(config.dim), \(config.nLayers) layers, \(config.labels.count) labels):"]
            if !missing.isEmpty { lines.append("  missing tensors: " + missing.joined(separator: ", ")) }
            if !misShaped.isEmpty { lines.append("  wrong shapes: " + misShaped.joined(separator: "; ")) }
            if !badType.isEmpty { lines.append("  unsupported dtypes: " + badType.joined(separator: ", ")) }
            if !unexpected.isEmpty { lines.append("  unexpected tensors: " + unexpected.joined(separator: ", ")) }
            throw ModelError(lines.joined(separator: "\n"))
        }

        func floats(_ name: String) -> FloatBuffer { FloatBuffer(try! file.floats(name)) }
        func layerNorm(_ name: String) -> LayerNormWeights {
            LayerNormWeights(gamma: floats(name + ".weight"), beta: floats(name + ".bias"))
        }
        /// True when each tensor's bytes end where the next one's begin (a stack that can be
        /// read in place as one matrix).
        func backToBack(_ regions: [UnsafeRawBufferPointer]) -> Bool {
            zip(regions, regions.dropFirst()).allSatisfy { $0.baseAddress! + $0.count == $1.baseAddress! }
        }
        /// Packed INT8 weights of one or more stacked layers: read in place from the mapping
        /// when they lie back to back, aligned and in whole blocks (as `triage quantize`
        /// writes them); otherwise unpacked and packed again as one matrix.
        func packedStack(_ names: [String]) -> PackedInt8Matrix {
            let infos = names.map { file.info($0 + ".weight_packed")! }
            let rows = names.map { file.info($0 + ".weight_scale")!.shape[0] }
            let n = rows.reduce(0, +), columns = inFeatures[names[0] + ".weight"]!
            var scales: [Float] = [], sums: [Int32] = []
            for name in names {
                scales += try! file.floats(name + ".weight_scale")
                sums += try! file.int32s(name + ".weight_sum")
            }
            let regions = infos.map { file.bytes(of: $0) }
            let start = regions[0].baseAddress!
            if backToBack(regions) && rows.dropLast().allSatisfy({ $0 % 16 == 0 }) && Int(bitPattern: start) % 64 == 0 {
                return PackedInt8Matrix(packed: start.assumingMemoryBound(to: Int8.self), owner: file,
                                        scales: scales, sums: sums, rows: n, columns: columns)
            }
            var values: [Int8] = []
            values.reserveCapacity(n * columns)
            for (region, count) in zip(regions, rows) {
                let groups = (columns + 3) / 4
                for r in 0..<count {
                    for c in 0..<columns {
                        values.append(Int8(bitPattern: region[(((r / 16) * groups + c / 4) * 16 + r % 16) * 4 + c % 4]))
                    }
                }
            }
            return values.withUnsafeBufferPointer { PackedInt8Matrix(weights: $0.baseAddress!, scales: scales, rows: n, columns: columns) }
        }
        /// FP32 panels of one or more stacked layers: read in place from the mapping when they
        /// lie back to back, aligned for floats and in whole blocks (as `triage pack` writes
        /// them); otherwise put back in row-major order and laid out again as one matrix.
        func panelStack(_ names: [String]) -> BlockedWeights {
            let infos = names.map { file.info($0 + ".weight_panels")! }
            let rows = names.map { file.info($0 + ".bias")!.shape[0] }
            let n = rows.reduce(0, +), k = inFeatures[names[0] + ".weight"]!
            let regions = infos.map { file.bytes(of: $0) }
            let start = regions[0].baseAddress!
            if backToBack(regions) && rows.dropLast().allSatisfy({ $0 % BlockedWeights.blockWidth == 0 })
                && Int(bitPattern: start) % MemoryLayout<Float>.alignment == 0 {
                return BlockedWeights(panels: start.assumingMemoryBound(to: Float.self), owner: file, outFeatures: n, inFeatures: k)
            }
            var w: [Float] = []
            w.reserveCapacity(n * k)
            for (name, count) in zip(names, rows) {
                let panels = try! file.floats(name + ".weight_panels")
                w += panels.withUnsafeBufferPointer {
                    BlockedWeights(panels: $0.baseAddress!, owner: file, outFeatures: count, inFeatures: k).rowMajor()
                }
            }
            return w.withUnsafeBufferPointer { BlockedWeights($0.baseAddress!, outFeatures: n, inFeatures: k) }
        }
        /// Several linear layers with the same input, stacked into one product (q, k, v).
        func linear(_ names: [String]) -> Linear {
            if !panelLinears.isEmpty {
                var bias: [Float] = []
                for name in names { bias += try! file.floats(name + ".bias") }
                let w = panelStack(names)
                return Linear(weight: .float(w), bias: FloatBuffer(bias), inFeatures: w.inFeatures, outFeatures: w.outFeatures)
            }
            if !packedLinears.isEmpty {
                var bias: [Float] = []
                for name in names { bias += try! file.floats(name + ".bias") }
                let w = packedStack(names)
                return Linear(weight: .int8(w), bias: FloatBuffer(bias), inFeatures: w.columns, outFeatures: w.rows)
            }
            let infos = names.map { file.info($0 + ".weight")! }
            let k = infos[0].shape[1], n = infos.reduce(0) { $0 + $1.shape[0] }
            var bias: [Float] = []
            for name in names { bias += try! file.floats(name + ".bias") }
            if infos[0].dtype == .I8 && infos.allSatisfy({ $0.dtype == .I8 }) {
                var values: [Int8] = [], scales: [Float] = []
                for name in names {
                    values += try! file.int8s(name + ".weight")
                    scales += try! file.floats(name + ".weight_scale")
                }
                let packed = values.withUnsafeBufferPointer { PackedInt8Matrix(weights: $0.baseAddress!, scales: scales, rows: n, columns: k) }
                return Linear(weight: .int8(packed), bias: FloatBuffer(bias), inFeatures: k, outFeatures: n)
            }
            var w: [Float] = []
            w.reserveCapacity(n * k)
            for (name, info) in zip(names, infos) {
                if info.dtype == .I8 {  // a mixed stack: widen the int8 part
                    let q = try! file.int8s(name + ".weight"), sc = try! file.floats(name + ".weight_scale")
                    for (i, v) in q.enumerated() { w.append(Float(v) * sc[i / k]) }
                } else {
                    w += try! file.floats(name + ".weight")
                }
            }
            let blocked = w.withUnsafeBufferPointer { BlockedWeights($0.baseAddress!, outFeatures: n, inFeatures: k) }
            return Linear(weight: .float(blocked), bias: FloatBuffer(bias), inFeatures: k, outFeatures: n)
        }
        let wordName = "\(prefix)embeddings.word_embeddings.weight"
        let wordInfo = file.info(wordName)!
        // A query reads one row per token out of 30,522: on a cold start, readahead around each
        // row would read far more of the file than the query uses.
        file.adviseRandomAccess(wordInfo)
        wordEmbeddings = EmbeddingTable(file: file, tensor: wordInfo,
                                        rowScales: wordInfo.dtype == .I8 ? try! file.floats(wordName + "_scale") : [])
        positionEmbeddings = EmbeddingTable(file: file, tensor: file.info("\(prefix)embeddings.position_embeddings.weight")!)
        embeddingLayerNorm = layerNorm("\(prefix)embeddings.LayerNorm")
        var layers: [TransformerLayerWeights] = []
        for l in 0..<config.nLayers {
            let p = "\(prefix)transformer.layer.\(l)."
            layers.append(TransformerLayerWeights(
                qkv: linear([p + "attention.q_lin", p + "attention.k_lin", p + "attention.v_lin"]),
                outLin: linear([p + "attention.out_lin"]), saLayerNorm: layerNorm(p + "sa_layer_norm"),
                lin1: linear([p + "ffn.lin1"]), lin2: linear([p + "ffn.lin2"]),
                outputLayerNorm: layerNorm(p + "output_layer_norm")))
        }
        self.layers = layers
        head = hasHead ? ClassifierHead(preClassifier: linear(["pre_classifier"]), classifier: linear(["classifier"])) : nil
        let linears = layers.flatMap { [$0.qkv, $0.outLin, $0.lin1, $0.lin2] } + (head.map { [$0.preClassifier, $0.classifier] } ?? [])
        hasFloatLinears = linears.contains(where: { !$0.isInt8 })
    }

    /// True when any linear layer is FP32 (so its product needs the kernel set's own FP32
    /// kernel or OpenBLAS).
    public let hasFloatLinears: Bool

    /// True when the encoder's linear layers are int8.
    public var isInt8: Bool { layers.first?.qkv.isInt8 ?? false }

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
