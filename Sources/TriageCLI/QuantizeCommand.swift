import ArgumentParser
import TriageClassifier
import TriageModel
import TriageSystem

struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize",
        abstract: "Write an INT8 copy of a model.",
        discussion: """
            Linear weights become int8, symmetric, with one scale per output channel; with \
            --embeddings int8 the word embeddings too, with one scale per row. Activations are \
            quantized at run time, per row. The output is a model directory like the input \
            (config, tokenizer and calibration copied); the engine recognises it by its int8 \
            tensors. By default it is written beside the input as DIR-int8, which is where \
            --int8 looks for it. Linear weights are stored in the INT8 kernels' packed layout \
            (`<name>.weight_packed`, layout id in `__metadata__`), so loading is a memory map; \
            --row-major stores them as plain [out × in] int8 matrices under their usual names, \
            for other safetensors readers (triage packs those at load). --attention int8 \
            makes attention's Q·Kᵀ and P·V INT8 products too (Q and the probabilities uint8 per \
            row, K int8 per key, V int8 per feature, quantized at run time), recorded in \
            `__metadata__` as triage_attention; without it attention stays FP32.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: ArgumentHelp("Output directory (default: the model directory + \"-int8\").", valueName: "DIR"))
    var out: String?
    @Option(help: ArgumentHelp("Word embeddings: int8, or float to keep them as stored.", valueName: "int8|float"))
    var embeddings = "int8"
    @Flag(help: "Store linear weights row-major under their usual names instead of the packed layout.")
    var rowMajor = false
    @Option(help: ArgumentHelp("Attention's two products: float, or int8.", valueName: "float|int8"))
    var attention = "float"

    func validate() throws {
        guard ["int8", "float"].contains(embeddings) else { throw ValidationError("--embeddings must be int8 or float") }
        guard ["int8", "float"].contains(attention) else { throw ValidationError("--attention must be float or int8") }
    }

    func run() throws {
        try TriageCLI.run {
            let input = try modelOptions.resolve()
            let output = out ?? Classifier.int8Directory(for: input)
            let start = Clock.seconds()
            try Quantizer.quantizeDirectory(from: input, to: output, embeddings: embeddings == "int8",
                                             layout: rowMajor ? .rowMajor : .packed, int8Attention: attention == "int8")
            let inSize = FileSystem.fileSize(FileSystem.join(input, "model.safetensors")) ?? 0
            let outSize = FileSystem.fileSize(FileSystem.join(output, "model.safetensors")) ?? 0
            StandardError.write("quantized \(input) → \(output): \(outSize) bytes (input \(inSize) bytes) in \(fixed(Clock.seconds() - start, 2)) s\n")
        }
    }
}
