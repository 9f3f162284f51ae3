import ArgumentParser
import TriageJSON
import TriageSystem
import TriageTokenizer

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Tokenize lines of standard input with the model's WordPiece vocabulary.",
        discussion: "Prints the ids of each line (with [CLS] and [SEP]); --json prints {\"ids\", \"tokens\"} per line.")

    @OptionGroup var modelOptions: ModelOptions
    @Flag(help: "Print one JSON object per line.") var json = false
    @Option(help: "Truncate to this many tokens (default: the model's maximum length).") var maxLength: Int?
    @Argument(help: "Texts to tokenize; without any, one per line on standard input.") var texts: [String] = []

    func run() throws {
        try TriageCLI.run {
            let tokenizer = try WordPieceTokenizer.load(directory: modelOptions.resolve())
            let inputs = try readInputs(texts)
            for text in inputs {
                let e = tokenizer.encode(text, maxLength: maxLength)
                if json {
                    let v: JSONValue = .object([
                        ("ids", .array(e.ids.map { .int(Int($0)) })),
                        ("tokens", .array(e.ids.map { .string(tokenizer.vocabulary[Int($0)]) })),
                    ])
                    StandardOutput.write(v.serialized + "\n")
                } else {
                    StandardOutput.write(e.ids.map { String($0) }.joined(separator: " ") + "\n")
                }
            }
        }
    }
}
