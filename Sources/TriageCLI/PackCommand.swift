import ArgumentParser
import TriageModel
import TriageSystem

struct Pack: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pack",
        abstract: "Write an FP32 copy of a model laid out for the FP32 products.",
        discussion: """
            Every linear layer's weight is stored in FP32 as the FP32 products read it: \
            transposed into blocks of 32 output columns, each a contiguous [K × 32] panel \
            (`<name>.weight_panels`, layout id triage_fp32_layout in `__metadata__`). Such a model \
            loads as a memory map — nothing widened or transposed at load — and runs exactly as \
            the source model does. Biases, LayerNorms and embeddings are stored as in the source \
            (an F16 model's panels are its weights widened to FP32, twice their stored size; \
            the shipped model's file grows from 45 to 67 MB). The output is a model directory like the input (config, tokenizer and \
            calibration copied).
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: ArgumentHelp("Output directory (default: the model directory + \"-panels\").", valueName: "DIR"))
    var out: String?

    func run() throws {
        try TriageCLI.run {
            let input = try modelOptions.resolve()
            let output = out ?? FileSystem.sibling(of: input, suffix: "-panels")
            let start = Clock.seconds()
            try FloatPanels.packDirectory(from: input, to: output)
            let inSize = FileSystem.fileSize(FileSystem.join(input, "model.safetensors")) ?? 0
            let outSize = FileSystem.fileSize(FileSystem.join(output, "model.safetensors")) ?? 0
            StandardError.write("packed \(input) → \(output): \(outSize) bytes (input \(inSize) bytes) in \(fixed(Clock.seconds() - start, 2)) s\n")
        }
    }
}
