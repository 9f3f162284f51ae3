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

    public static func quantize(_ source: SafeTensorsFile, config: DistilBertConfig,
                                embeddings: Bool) throws -> SafeTensorsWriter {
        let prefix = source.info("distilbert.embeddings.word_embeddings.weight") != nil ? "distilbert." : ""
        let hasHead = source.info("classifier.weight") != nil
        var targets = Set(DistilBertWeights.linearLayers(config, prefix: prefix, head: hasHead).map { $0.0 + ".weight" })
        if embeddings { targets.insert("\(prefix)embeddings.word_embeddings.weight") }
        var w = SafeTensorsWriter()
        w.metadata = [("format", "pt"), (metadataKey, "int8"),
                      ("weights", "int8 symmetric, one scale per output channel"),
                      ("activations", "uint8 asymmetric, dynamic, one scale and zero point per row"),
                      ("word_embeddings", embeddings ? "int8 symmetric, one scale per row" : "unchanged")]
        for t in source.tensors {
            if targets.contains(t.name) {
                guard t.shape.count == 2, [.F32, .F16, .BF16].contains(t.dtype) else {
                    throw ModelError("\(t.name) is \(t.dtype.rawValue) \(t.shape); the quantizer needs a float matrix (is the model already int8?)")
                }
                let floats = try source.floats(t.name)
                let (q, scales) = floats.withUnsafeBufferPointer {
                    Int8Quantization.quantizeWeights($0.baseAddress!, rows: t.shape[0], columns: t.shape[1])
                }
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
    public static func quantizeDirectory(from input: String, to output: String, embeddings: Bool) throws {
        let weights = try DistilBertWeights.load(directory: input)
        guard !weights.isInt8 else { throw ModelError("\(input) is already an INT8 model") }
        let writer = try quantize(weights.file, config: weights.config, embeddings: embeddings)
        try FileSystem.createDirectory(output)
        for name in ["config.json", "vocab.txt", "tokenizer_config.json", "tokenizer.json", "special_tokens_map.json",
                     "triage.json", "answers.json", "DATA_LICENSE.txt", "LICENSE"] where FileSystem.exists(FileSystem.join(input, name)) {
            try FileSystem.copyFile(from: FileSystem.join(input, name), to: FileSystem.join(output, name))
        }
        let card = FileSystem.join(input, "README.md")
        if FileSystem.exists(card) {
            try FileSystem.writeAtomically(FileSystem.join(output, "README.md"),
                                           text: int8Card(try FileSystem.readText(card), source: input, embeddings: embeddings))
        }
        try writer.write(to: FileSystem.join(output, "model.safetensors"))
    }

    /// The source model card with an INT8 note after its YAML front matter (when it has one).
    public static func int8Card(_ card: String, source: String, embeddings: Bool) -> String {
        let name = source.split(separator: "/").last.map(String.init) ?? source
        let note = """
            > **INT8 copy.** This directory is `\(name)` quantized by `triage quantize`: every linear \
            layer's weight int8, symmetric, one scale per output channel (a `<name>_scale` tensor \
            beside it), word embeddings \(embeddings ? "int8 with one scale per row" : "unchanged"); \
            activations are quantized at run time, uint8 with one scale and zero point per row. \
            The rest of this card is the source model's, unchanged: its figures and file \
            descriptions are those of the FP32 weights (`triage eval --int8` measures this one).

            """
        if card.hasPrefix("---\n"), let end = card.dropFirst(3).firstRange(of: "\n---\n") {
            return String(card[..<end.upperBound]) + "\n" + note + String(card[end.upperBound...])
        }
        return note + "\n" + card
    }

    /// An INT8 copy of a model, built in memory (for `--int8` when none was written).
    public static func quantizeInMemory(_ weights: DistilBertWeights, embeddings: Bool) throws -> DistilBertWeights {
        let writer = try quantize(weights.file, config: weights.config, embeddings: embeddings)
        let file = try SafeTensorsFile(bytes: writer.serialize(), name: weights.file.path + " (quantized in memory)")
        return try DistilBertWeights(config: weights.config, file: file)
    }
}
