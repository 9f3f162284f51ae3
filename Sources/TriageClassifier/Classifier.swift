import TriageJSON
import TriageKernelSelect
import TriageKernels
import TriageModel
import TriageSystem
import TriageTokenizer

public struct ClassifierError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// How raw logits become a decision, from the model directory's `triage.json`:
/// temperature scaling for calibrated probabilities, and the out-of-scope rule.
public struct Calibration: Sendable, Equatable {
    /// Probabilities are softmax(logits / temperature).
    public var temperature: Float = 1
    /// The label that means "none of the intents this model knows".
    public var outOfScopeLabel: String? = nil
    /// Below this calibrated confidence a prediction is also treated as out of scope.
    public var minConfidence: Float = 0

    public init(temperature: Float = 1, outOfScopeLabel: String? = nil, minConfidence: Float = 0) {
        self.temperature = temperature; self.outOfScopeLabel = outOfScopeLabel; self.minConfidence = minConfidence
    }

    public static func load(directory: String) throws -> Calibration {
        let path = FileSystem.join(directory, "triage.json")
        guard FileSystem.exists(path) else { return Calibration() }
        let json: JSONValue
        do { json = try JSONValue.parse(FileSystem.readText(path)) } catch { throw ClassifierError("\(path): \(error)") }
        var c = Calibration()
        if let t = json["temperature"]?.doubleValue {
            guard t > 0, t.isFinite else { throw ClassifierError("\(path): temperature must be positive") }
            c.temperature = Float(t)
        }
        c.outOfScopeLabel = json["out_of_scope_label"]?.stringValue
        if let m = json["min_confidence"]?.doubleValue {
            guard m >= 0, m <= 1 else { throw ClassifierError("\(path): min_confidence must be within 0...1") }
            c.minConfidence = Float(m)
        }
        return c
    }
}

public struct Classification: Sendable {
    public var label: String
    public var labelId: Int
    /// The calibrated probability of `label`.
    public var confidence: Float
    /// Calibrated probabilities in label-id order.
    public var probabilities: [Float]
    /// Raw network logits in label-id order.
    public var logits: [Float]
    public var outOfScope: Bool
    public var tokenCount: Int
}

/// Text in, decision out: the tokenizer, the model and the calibration of one directory.
public final class Classifier: Sendable {
    public let directory: String
    public let tokenizer: WordPieceTokenizer
    public let model: DistilBertModel
    public let calibration: Calibration
    public var labels: [String] { model.config.labels }

    /// Names the model in records: the directory's name and a fingerprint of its config,
    /// calibration and tensor layout (cheap to compute, unlike hashing every weight).
    /// `name[-int8]@` + 12 hex digits over config.json, triage.json (calibration, routing),
    /// the tensor list and a fingerprint of every weight byte: it changes whenever any of
    /// them does. Computed on each call (a few milliseconds for the weights): keep it.
    public var modelVersion: String {
        var name = directory
        while name.count > 1 && name.hasSuffix("/") { name.removeLast() }
        if let slash = name.lastIndex(of: "/") { name = String(name[name.index(after: slash)...]) }
        var material = ""
        for file in ["config.json", "triage.json"] {
            material += (try? FileSystem.readText(FileSystem.join(directory, file))) ?? ""
        }
        let f = model.weights.file
        material += f.tensors.map { "\($0.name):\($0.dtype.rawValue):\($0.shape)" }.joined(separator: ";")
        // The weights' bytes themselves: a retrained model of the same shape is a new version.
        material += String(Fingerprint.of(f.dataSection), radix: 16)
        return name + (model.weights.isInt8 ? "-int8" : "") + "@" + String(SHA256.hex(material).prefix(12))
    }

    public init(directory: String, tokenizer: WordPieceTokenizer, model: DistilBertModel, calibration: Calibration) {
        self.directory = directory; self.tokenizer = tokenizer; self.model = model; self.calibration = calibration
    }

    public struct Options: Sendable {
        /// Threads for the forward pass (default: the cores there are).
        public var threads = Runtime.defaultThreads
        /// Use the INT8 model beside this one (`DIR-int8`), quantizing in memory if there is none.
        public var int8 = false
        /// The INT8 kernel by name (vnni, avx2, sse4, portable); nil: $TRIAGE_KERNEL, else the best.
        public var kernel: String? = nil
        public init(threads: Int = Runtime.defaultThreads, int8: Bool = false, kernel: String? = nil) {
            self.threads = threads; self.int8 = int8; self.kernel = kernel
        }
    }

    /// Where the INT8 twin of a model directory lives.
    public static func int8Directory(for directory: String) -> String {
        var d = directory
        while d.count > 1 && d.hasSuffix("/") { d.removeLast() }
        return d + "-int8"
    }

    public static func load(directory: String, options: Options = Options()) throws -> Classifier {
        guard FileSystem.isDirectory(directory) else { throw ClassifierError("model directory \(directory) does not exist") }
        var weights: DistilBertWeights
        let kernel = try KernelSelection.select(options.kernel)
        do {
            if options.int8 && FileSystem.isDirectory(int8Directory(for: directory)) {
                weights = try DistilBertWeights.load(directory: int8Directory(for: directory))
            } else {
                weights = try DistilBertWeights.load(directory: directory)
                if options.int8 && !weights.isInt8 { weights = try Quantizer.quantizeInMemory(weights, embeddings: true) }
            }
        } catch { throw ClassifierError("\(error)") }
        guard weights.head != nil else {
            throw ClassifierError("\(directory) holds an encoder without a classification head (no pre_classifier/classifier tensors)")
        }
        let tokenizer: WordPieceTokenizer
        do { tokenizer = try WordPieceTokenizer.load(directory: directory) } catch { throw ClassifierError("\(directory): \(error)") }
        guard tokenizer.vocabulary.count == weights.config.vocabSize else {
            throw ClassifierError("\(directory): vocab.txt has \(tokenizer.vocabulary.count) tokens but the model expects \(weights.config.vocabSize)")
        }
        let calibration = try Calibration.load(directory: directory)
        if let oos = calibration.outOfScopeLabel, calibration.minConfidence == 0, !weights.config.labels.contains(oos) {
            throw ClassifierError("\(directory)/triage.json names out-of-scope label '\(oos)', which the model does not have")
        }
        let runtime = Runtime(threads: options.threads, kernels: kernel)
        return Classifier(directory: directory, tokenizer: tokenizer, model: DistilBertModel(weights: weights, runtime: runtime),
                          calibration: calibration)
    }

    /// The longest input the model takes, in tokens including [CLS] and [SEP].
    public var maxTokens: Int { min(tokenizer.options.maxLength, model.config.maxPositionEmbeddings) }

    public func encode(_ texts: [String]) -> PackedSequences {
        var tokens: [Int32] = [], lengths: [Int] = []
        for t in texts {
            let e = tokenizer.encode(t, maxLength: maxTokens)
            tokens += e.ids
            lengths.append(e.count)
        }
        return PackedSequences(tokens: tokens, lengths: lengths)
    }

    /// Classifies texts together (one packed batch); results are in input order.
    public func classify(_ texts: [String], workspace: inout Workspace) throws -> [Classification] {
        if texts.isEmpty { return [] }
        let input = encode(texts)
        let output: ModelOutput
        do { output = try model.forward(input, workspace: &workspace) } catch { throw ClassifierError("\(error)") }
        return (0..<texts.count).map { decide(logits: Array(output.logits($0)), tokenCount: input.lengths[$0]) }
    }

    public func classify(_ text: String) throws -> Classification {
        var ws = Workspace()
        return try classify([text], workspace: &ws)[0]
    }

    /// Calibrated probabilities and the out-of-scope rule applied to raw logits.
    public func decide(logits: [Float], tokenCount: Int = 0) -> Classification {
        let probs = Self.softmax(logits, temperature: calibration.temperature)
        var best = 0
        for i in probs.indices where probs[i] > probs[best] { best = i }
        let label = labels[best]
        let oos = label == calibration.outOfScopeLabel || probs[best] < calibration.minConfidence
        return Classification(label: label, labelId: best, confidence: probs[best], probabilities: probs,
                              logits: logits, outOfScope: oos, tokenCount: tokenCount)
    }

    public static func softmax(_ logits: [Float], temperature: Float = 1) -> [Float] {
        guard let m = logits.max() else { return [] }
        var e = logits.map { FastMath.exp(($0 - m) / temperature) }
        let s = e.reduce(0, +)
        for i in e.indices { e[i] /= s }
        return e
    }
}
