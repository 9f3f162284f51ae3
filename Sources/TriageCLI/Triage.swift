import ArgumentParser
import TriageClassifier
import TriageKernels
import TriageSystem
import TriageRecord

@main
struct Triage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "triage",
        abstract: "A DistilBERT classifier for the edge that answers routine queries offline and escalates the rest.",
        discussion: """
            Every command takes --model DIR (a Hugging Face DistilBERT directory); the default is the \
            model shipped in weights/banking77 (or $TRIAGE_MODEL). Texts come as arguments or, \
            without arguments, one per line on standard input.

            Exit status: 0 on success, 1 when the work could not be done (missing model, bad file), \
            64 for a usage error.
            """,
        subcommands: [Classify.self, Ask.self] + serveCommands + [ReportCommand.self, ReviewCommand.self, Sync.self, Eval.self, Tune.self, Tokenize.self, Quantize.self, Pack.self, Bench.self])

    /// The commands a box runs once per query, parsed on their own. Parsing from the root,
    /// ArgumentParser reflects over every subcommand's arguments first (checking for a
    /// completion-script request, building each argument set through `Mirror`): ~20 M of the
    /// ~82 M instructions of a one-query `triage classify --int8` (callgrind). Whatever does
    /// not parse and run cleanly this way — `--help`, a usage error, a validation error —
    /// is handed to the normal path, which parses again from the root, so messages, usage
    /// lines and exit codes are the same as before.
    static let directCommands: [String: any ParsableCommand.Type] = ["classify": Classify.self, "ask": Ask.self]

    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        // The one-query edge invocation: not even `Classify`'s own reflection (see ClassifyJob).
        if arguments.first == "classify", let job = ClassifyJob(plainArguments: Array(arguments.dropFirst())) {
            // Ran, or stopped with a validation error the normal path reports: not parsed again here.
            if finished({ try job.run() }) { return }
        } else if let name = arguments.first, let type = directCommands[name],
                  var command = try? type.parse(Array(arguments.dropFirst())), finished({ try command.run() }) {
            return
        }
        await main(nil)
    }

    /// Runs a command parsed the short way: true when it ran, exits with its code when it
    /// stopped with one, false when it threw anything else (a validation error found while
    /// running, such as no input), which the normal path then reports with its usage line.
    static func finished(_ run: () throws -> Void) -> Bool {
        do {
            try run()
            return true
        } catch let exit as ExitCode {
            Self.exit(withError: exit)
        } catch {
            return false
        }
    }
}

#if TRIAGE_SERVE
let serveCommands: [any ParsableCommand.Type] = [Serve.self]
#else
// A CLI-only build (TRIAGE_CLI_ONLY=1) carries no HTTP server.
let serveCommands: [any ParsableCommand.Type] = []
#endif

/// The model directory option shared by every command.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Model directory (config.json, model.safetensors, vocab.txt).", valueName: "DIR"))
    var model: String?

    /// --model, else $TRIAGE_MODEL, else the shipped model next to the working directory or
    /// the executable (an installed binary or one under .build/).
    func resolve() throws -> String { try Self.resolve(model) }

    static func resolve(_ model: String?) throws -> String {
        if let model { return model }
        if let env = Environment.get("TRIAGE_MODEL"), !env.isEmpty { return env }
        var candidates = ["weights/banking77"]
        if let exe = FileSystem.executableDirectory() {
            candidates += ["\(exe)/../share/triage/banking77", "\(exe)/../../weights/banking77",
                           "\(exe)/../../../weights/banking77"]
        }
        for c in candidates where FileSystem.isDirectory(c) { return c }
        throw CLIError("no model found: pass --model DIR or set TRIAGE_MODEL (looked in \(candidates.joined(separator: ", ")))")
    }
}

/// How the forward pass runs, shared by the commands that classify.
struct RuntimeOptions: ParsableArguments {
    @Flag(help: "Use the INT8 model beside --model (DIR-int8), quantizing in memory if there is none.")
    var int8 = false
    @Option(help: "Threads for the forward pass (default: the cores there are).")
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 || threads > 256 { throw ValidationError("--threads must be between 1 and 256") }
    }

    var classifierOptions: Classifier.Options { Self.classifierOptions(int8: int8, threads: threads) }

    static func classifierOptions(int8: Bool, threads: Int?) -> Classifier.Options {
        Classifier.Options(threads: threads ?? Runtime.defaultThreads, int8: int8)
    }
}

struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The texts to work on: the arguments, else every line of standard input.
func readInputs(_ arguments: [String]) throws -> [String] {
    if !arguments.isEmpty { return arguments }
    var reader = LineReader()
    var lines: [String] = []
    while let line = reader.next() { lines.append(line) }
    guard !lines.isEmpty else { throw ValidationError("no input: give texts as arguments or one per line on standard input") }
    return lines
}

/// Runs a command body, turning engine errors into one clear line on stderr and exit 1.
func run(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as ValidationError {
        throw e
    } catch let e as ExitCode {
        throw e
    } catch {
        StandardError.write("triage: error: \(error)\n")
        throw ExitCode.failure
    }
}
