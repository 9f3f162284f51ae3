import TriageKernels
import TriageSystem
import TriageTensors

/// FP32 weights stored as the FP32 products read them: each linear layer's [N × K] weight
/// transposed into blocks of 32 output columns, each block a contiguous [K × width] panel
/// (`BlockedWeights`), under `<name>.weight_panels` (F32, N·K values), with the layout id in
/// `__metadata__`. Such a file loads as a memory map: the products read the panels in place,
/// with no widening and no transposing at load. Everything else (biases, LayerNorms,
/// embeddings) is stored as in the source.
public enum FloatPanels {
    public static let layoutKey = "triage_fp32_layout"
    public static let layout = "panels32-v1"

    public static func pack(_ source: SafeTensorsFile, config: DistilBertConfig) throws -> SafeTensorsWriter {
        let prefix = source.info("distilbert.embeddings.word_embeddings.weight") != nil ? "distilbert." : ""
        let hasHead = source.info("classifier.weight") != nil
        let linears = DistilBertWeights.linearLayers(config, prefix: prefix, head: hasHead).map { $0.0 + ".weight" }
        var w = SafeTensorsWriter()
        w.metadata = [("format", "pt"), (layoutKey, layout),
                      ("fp32_layout", "linear weights as <name>.weight_panels: [N × K] transposed into blocks of 32 output columns, each a contiguous [K × 32] panel (fewer columns in a last partial block)")]
        // Panels first, in layer order, 64-byte aligned: q, k and v lie back to back, the
        // stacked product the model runs, and each starts on a cache line when N·K·4 is a
        // multiple of 64 (any dim divisible by 4).
        w.alignment = 64
        for name in linears {
            guard let t = source.info(name) else { continue }
            guard t.shape.count == 2, [.F32, .F16, .BF16].contains(t.dtype) else {
                throw ModelError("\(name) is \(t.dtype.rawValue) \(t.shape); FP32 panels need a float matrix (is the model INT8?)")
            }
            let n = t.shape[0], k = t.shape[1]
            let blocked = try source.floats(name).withUnsafeBufferPointer { BlockedWeights($0.baseAddress!, outFeatures: n, inFeatures: k) }
            w.add(String(name.dropLast(".weight".count)) + ".weight_panels", shape: [n * k],
                  floats: Array(UnsafeBufferPointer(start: blocked.panels, count: n * k)))
        }
        let packed = Set(linears)
        for t in source.tensors where !packed.contains(t.name) {
            w.add(t.name, dtype: t.dtype, shape: t.shape, bytes: Array(source.bytes(of: t)))
        }
        return w
    }

    /// `file` with its panels back as row-major `<name>.weight` matrices (F32), as any
    /// safetensors reader and the quantizer expect; a file without panels is returned as is.
    public static func rowMajorCopy(of file: SafeTensorsFile) throws -> SafeTensorsFile {
        guard file.metadata(layoutKey) != nil else { return file }
        var w = SafeTensorsWriter()
        w.metadata = file.metadata.filter { $0.0 != layoutKey && $0.0 != "fp32_layout" }
        for t in file.tensors {
            guard t.name.hasSuffix(".weight_panels") else {
                w.add(t.name, dtype: t.dtype, shape: t.shape, bytes: Array(file.bytes(of: t)))
                continue
            }
            let base = String(t.name.dropLast(".weight_panels".count))
            guard let n = file.info(base + ".bias")?.shape.first, n > 0, t.shape.count == 1, t.shape[0] % n == 0 else {
                throw ModelError("\(file.path): \(t.name) has no bias of a width that divides its \(t.shape) values")
            }
            let k = t.shape[0] / n
            let rowMajor = try file.floats(t.name).withUnsafeBufferPointer {
                BlockedWeights(panels: $0.baseAddress!, owner: file, outFeatures: n, inFeatures: k).rowMajor()
            }
            w.add(base + ".weight", shape: [n, k], floats: rowMajor)
        }
        return try SafeTensorsFile(bytes: w.serialize(), name: file.path + " (row-major)")
    }

    /// Writes a model directory like the input with its linear weights as FP32 panels, and the
    /// model card with a note saying so.
    public static func packDirectory(from input: String, to output: String) throws {
        let weights = try DistilBertWeights.load(directory: input)
        guard !weights.isInt8 else { throw ModelError("\(input) is an INT8 model; FP32 panels are made from an FP32 one") }
        guard weights.file.metadata(layoutKey) == nil else { throw ModelError("\(input) already stores FP32 panels") }
        let writer = try pack(weights.file, config: weights.config)
        try Quantizer.copyCompanionFiles(from: input, to: output)
        let card = FileSystem.join(input, "README.md")
        if FileSystem.exists(card) {
            let name = input.split(separator: "/").last.map(String.init) ?? input
            let note = """
                > **FP32 panels copy.** This directory is `\(name)` written by `triage pack`: the same \
                weights, with every linear layer's stored in FP32 as the FP32 products read it \
                (`<name>.weight_panels`; layout `\(layout)` in `__metadata__`), so that it loads as a \
                memory map. The rest of this card is the source model's, unchanged.

                """
            try FileSystem.writeAtomically(FileSystem.join(output, "README.md"),
                                           text: Quantizer.insertNote(note, into: try FileSystem.readText(card)))
        }
        try writer.write(to: FileSystem.join(output, "model.safetensors"))
    }
}
