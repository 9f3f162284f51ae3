import TriageJSON
import TriageKernels
import TriageSystem
import TriageTensors

/// The quantization pass: every linear layer's weight becomes int8 with one scale per output
/// channel (symmetric, ±127); optionally the word embeddings become int8 with one scale per
/// row. Biases, LayerNorms and position embeddings stay as they were. Tensor names do not
/// change; each int8 weight gets a `<name>_scale` tensor (F32) beside it, and the scheme is
/// written to `__metadata__`, so the file is still readable by any safetensors reader.
public enum Quantizer {
    public static let metadataKey = "triage_quantization"
    /// Names the on-disk order of packed INT8 weights; a file with another id is refused,
    /// one without the key is row-major (packed at load).
    public static let layoutKey = "triage_int8_layout"
    public static let packedLayout = "blocks16x4-v1"
    /// Present (= `Int8Attention.scheme`) when attention's two products run in INT8 too.
    public static let attentionKey = "triage_attention"

    /// How int8 linear weights are stored: row-major [out × in] under the usual names, which
    /// any safetensors reader understands, or already in the kernels' packed layout
    /// (`<name>.weight_packed` [blocks, k/4, 16, 4] with its `.weight_sum`), which loads as a
    /// memory map with nothing to convert.
    public enum Layout: Sendable { case rowMajor, packed }

    public static func quantize(_ stored: SafeTensorsFile, config: DistilBertConfig,
                                embeddings: Bool, layout: Layout = .packed, int8Attention: Bool = false) throws -> SafeTensorsWriter {
        // A model written by `triage pack` holds its FP32 weights as panels: back to matrices first.
        let source = try FloatPanels.rowMajorCopy(of: stored)
        let prefix = source.info("distilbert.embeddings.word_embeddings.weight") != nil ? "distilbert." : ""
        let hasHead = source.info("classifier.weight") != nil
        let linears = DistilBertWeights.linearLayers(config, prefix: prefix, head: hasHead).map { $0.0 + ".weight" }
        var targets = Set(linears)
        if embeddings { targets.insert("\(prefix)embeddings.word_embeddings.weight") }
        var w = SafeTensorsWriter()
        w.metadata = [("format", "pt"), (metadataKey, "int8"),
                      ("weights", "int8 symmetric, one scale per output channel"),
                      ("activations", "uint8 asymmetric, dynamic, one scale and zero point per row"),
                      ("word_embeddings", embeddings ? "int8 symmetric, one scale per row" : "unchanged")]
        if int8Attention {
            w.metadata += [(attentionKey, Int8Attention.scheme),
                           ("attention", "Q·Kᵀ and P·V as INT8 products: Q and P uint8 per row, K int8 per key, V int8 per feature")]
        }
        func quantized(_ t: TensorInfo) throws -> (values: [Int8], scales: [Float]) {
            guard t.shape.count == 2, [.F32, .F16, .BF16].contains(t.dtype) else {
                throw ModelError("\(t.name) is \(t.dtype.rawValue) \(t.shape); the quantizer needs a float matrix (is the model already int8?)")
            }
            let floats = try source.floats(t.name)
            return floats.withUnsafeBufferPointer {
                Int8Quantization.quantizeWeights($0.baseAddress!, rows: t.shape[0], columns: t.shape[1])
            }
        }
        var packedNames = Set<String>()
        if layout == .packed {
            // Packed weights first, in layer order: each is a whole number of 64-byte groups,
            // so with the data section 64-byte aligned every one starts aligned, and q, k and
            // v lie back to back, the stacked q/k/v product the model runs.
            w.metadata.append((layoutKey, packedLayout))
            w.alignment = 64
            var perChannel: [(String, [Float], [Int32])] = []
            for name in linears {
                guard let t = source.info(name) else { continue }
                let (q, scales) = try quantized(t)
                let n = t.shape[0], k = t.shape[1]
                let packed = q.withUnsafeBufferPointer { PackedInt8Matrix(weights: $0.baseAddress!, scales: scales, rows: n, columns: k) }
                let base = String(name.dropLast(".weight".count))
                w.add(base + ".weight_packed", dtype: .I8, shape: [packed.blocks, packed.paddedColumns / 4, 16, 4],
                      bytes: Array(UnsafeRawBufferPointer(start: packed.data, count: packed.storedBytes)))
                perChannel.append((base, scales, packed.weightSums))
                packedNames.insert(name)
            }
            for (base, scales, sums) in perChannel {
                w.add(base + ".weight_scale", shape: [scales.count], floats: scales)
                w.add(base + ".weight_sum", shape: [sums.count], int32s: sums)
            }
        }
        for t in source.tensors where !packedNames.contains(t.name) {
            if targets.contains(t.name) {
                let (q, scales) = try quantized(t)
                w.add(t.name, shape: t.shape, int8s: q)
                w.add(t.name + "_scale", shape: [t.shape[0]], floats: scales)
            } else {
                w.add(t.name, dtype: t.dtype, shape: t.shape, bytes: Array(source.bytes(of: t)))
            }
        }
        return w
    }

    /// Writes the INT8 model directory: the quantized weights; the config, tokenizer,
    /// calibration, answer book and licence files copied unchanged; and the model card with a
    /// note saying what was quantized and that its figures are the FP32 model's.
    public static func quantizeDirectory(from input: String, to output: String, embeddings: Bool,
                                         layout: Layout = .packed, int8Attention: Bool = false) throws {
        let weights = try DistilBertWeights.load(directory: input)
        guard !weights.isInt8 else { throw ModelError("\(input) is already an INT8 model") }
        let writer = try quantize(weights.file, config: weights.config, embeddings: embeddings, layout: layout,
                                  int8Attention: int8Attention)
        try copyCompanionFiles(from: input, to: output)
        let card = FileSystem.join(input, "README.md")
        if FileSystem.exists(card) {
            try FileSystem.writeAtomically(FileSystem.join(output, "README.md"),
                                           text: int8Card(try FileSystem.readText(card), source: input, embeddings: embeddings,
                                                         layout: layout, int8Attention: int8Attention))
        }
        try writer.write(to: FileSystem.join(output, "model.safetensors"))
    }

    /// Creates `output` and copies into it what a model directory holds besides its weights
    /// and card: config, tokenizer, calibration, answer book, licences, and the feature-distance
    /// statistics triage.json names (`oos_distance.file`), so that the copy of triage.json loads
    /// there too.
    static func copyCompanionFiles(from input: String, to output: String) throws {
        try FileSystem.createDirectory(output)
        for name in ["config.json", "vocab.txt", "tokenizer_config.json", "tokenizer.json", "special_tokens_map.json",
                     "triage.json", "answers.json", "DATA_LICENSE.txt", "LICENSE"] where FileSystem.exists(FileSystem.join(input, name)) {
            try FileSystem.copyFile(from: FileSystem.join(input, name), to: FileSystem.join(output, name))
        }
        let triage = FileSystem.join(input, "triage.json")
        if FileSystem.exists(triage), let file = try JSONValue.parse(FileSystem.readText(triage))["oos_distance"]?["file"]?.stringValue,
           !file.contains("/"), FileSystem.exists(FileSystem.join(input, file)) {
            try FileSystem.copyFile(from: FileSystem.join(input, file), to: FileSystem.join(output, file))
        }
    }

    /// `card` with `note` after its YAML front matter (when it has one).
    static func insertNote(_ note: String, into card: String) -> String {
        if card.hasPrefix("---\n"), let end = card.dropFirst(3).firstRange(of: "\n---\n") {
            return String(card[..<end.upperBound]) + "\n" + note + String(card[end.upperBound...])
        }
        return note + "\n" + card
    }

    /// The source model card with an INT8 note after its YAML front matter (when it has one).
    public static func int8Card(_ card: String, source: String, embeddings: Bool, layout: Layout = .rowMajor,
                                int8Attention: Bool = false) -> String {
        let name = source.split(separator: "/").last.map(String.init) ?? source
        let note = """
            > **INT8 copy.** This directory is `\(name)` quantized by `triage quantize`: every linear \
            layer's weight int8, symmetric, one scale per output channel (\(layout == .packed
                ? "stored in the INT8 kernels' packed layout as `<name>.weight_packed`, with `<name>.weight_scale` and `<name>.weight_sum`; layout `\(packedLayout)` in `__metadata__`"
                : "a `<name>_scale` tensor beside it")), word embeddings \(embeddings ? "int8 with one scale per row" : "unchanged"); \
            activations are quantized at run time, uint8 with one scale and zero point per row\(int8Attention
                ? "; attention's Q·Kᵀ and P·V are INT8 products too (Q and the probabilities uint8 per row, K int8 per key, V int8 per feature; `\(attentionKey)` = `\(Int8Attention.scheme)` in `__metadata__`)"
                : ""). \
            The rest of this card is the source model's, unchanged: its figures and file \
            descriptions are those of the FP32 weights (`triage eval --int8` measures this one).

            """
        return insertNote(note, into: card)
    }

    /// An INT8 copy of a model, built in memory (for `--int8` when none was written).
    public static func quantizeInMemory(_ weights: DistilBertWeights, embeddings: Bool,
                                        int8Attention: Bool = false) throws -> DistilBertWeights {
        let writer = try quantize(weights.file, config: weights.config, embeddings: embeddings, int8Attention: int8Attention)
        let file = try SafeTensorsFile(bytes: writer.serialize(), name: weights.file.path + " (quantized in memory)")
        return try DistilBertWeights(config: weights.config, file: file)
    }
}
