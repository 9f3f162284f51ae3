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

/// Routing thresholds fitted to a model by `triage tune` (triage.json's "routing" object). The
/// router starts from its seed defaults, applies these, then the keys the operator's config sets.
public struct TunedRouting: Sendable, Equatable {
    /// The edge answers at or above this calibrated confidence…
    public var minConfidence: Double
    /// …flags its answers below this one for review…
    public var answerBand: Double
    /// …and escalates whenever the summed out-of-scope probability is above this…
    public var maxOutOfScopeScore: Double
    /// …or the feature distance (`oos_distance`) is above this (nil: no such cut).
    public var maxOutOfScopeDistance: Double?
    /// What the fit measured (data, budgets, cross-validated figures): kept for people, not read.
    public var fit: JSONValue?

    public init(minConfidence: Double, answerBand: Double, maxOutOfScopeScore: Double, maxOutOfScopeDistance: Double? = nil,
                fit: JSONValue? = nil) {
        self.minConfidence = minConfidence; self.answerBand = answerBand; self.maxOutOfScopeScore = maxOutOfScopeScore
        self.maxOutOfScopeDistance = maxOutOfScopeDistance; self.fit = fit
    }

    public static func parse(_ json: JSONValue) throws -> TunedRouting {
        guard let pairs = json.objectPairs else { throw ClassifierError("routing must be an object") }
        var r = TunedRouting(minConfidence: 0.9, answerBand: 0.95, maxOutOfScopeScore: 1)
        var seen = Set<String>()
        for (key, value) in pairs {
            seen.insert(key)
            if key == "fit" { r.fit = value; continue }
            if key == "max_oos_distance" {
                guard let v = value.doubleValue, v.isFinite, v >= 0 else {
                    throw ClassifierError("routing.max_oos_distance must be a non-negative number")
                }
                r.maxOutOfScopeDistance = v
                continue
            }
            guard let v = value.doubleValue, (0...1).contains(v) else {
                throw ClassifierError("routing.\(key) must be a number within 0...1")
            }
            switch key {
            case "min_confidence": r.minConfidence = v
            case "answer_band": r.answerBand = v
            case "max_oos_score": r.maxOutOfScopeScore = v
            default: throw ClassifierError("unknown key routing.\(key) (expected min_confidence, answer_band, max_oos_score, max_oos_distance, fit)")
            }
        }
        for key in ["min_confidence", "answer_band", "max_oos_score"] where !seen.contains(key) {
            throw ClassifierError("routing.\(key) is missing")
        }
        return r
    }

    public var json: JSONValue {
        var pairs: [(String, JSONValue)] = [("min_confidence", .number(minConfidence)), ("answer_band", .number(answerBand)),
                                            ("max_oos_score", .number(maxOutOfScopeScore))]
        if let maxOutOfScopeDistance { pairs.append(("max_oos_distance", .number(maxOutOfScopeDistance))) }
        if let fit { pairs.append(("fit", fit)) }
        return .object(pairs)
    }
}

/// How raw logits become a decision, from the model directory's `triage.json`:
/// temperature scaling for calibrated probabilities, and the out-of-scope rule.
public struct Calibration: Sendable, Equatable {
    /// Probabilities are softmax(logits / temperature).
    public var temperature: Float = 1
    /// The coarse label a decision carries when it is out of scope.
    public var outOfScopeLabel: String? = nil
    /// The model's labels that are out of scope (`out_of_scope_labels`, e.g. held-out intents and
    /// `out_of_domain`; or just `out_of_scope_label`). The decision sums their probabilities.
    public var outOfScopeLabels: [String] = []
    /// Below this calibrated confidence a prediction is also treated as out of scope.
    public var minConfidence: Float = 0
    /// Thresholds `triage tune` fitted for the router, if any.
    public var routing: TunedRouting? = nil
    /// The feature-distance out-of-scope score (`oos_distance`), if the model has one: above its
    /// threshold a decision is out of scope too.
    public var distance: FeatureDistance? = nil

    public init(temperature: Float = 1, outOfScopeLabel: String? = nil, outOfScopeLabels: [String]? = nil,
                minConfidence: Float = 0, routing: TunedRouting? = nil, distance: FeatureDistance? = nil) {
        self.temperature = temperature; self.minConfidence = minConfidence; self.routing = routing; self.distance = distance
        self.outOfScopeLabels = outOfScopeLabels ?? (outOfScopeLabel.map { [$0] } ?? [])
        self.outOfScopeLabel = outOfScopeLabel ?? (self.outOfScopeLabels.isEmpty ? nil : "oos")
    }

    /// Whether a label (fine or coarse) means out of scope.
    public func isOutOfScope(_ label: String) -> Bool { label == outOfScopeLabel || outOfScopeLabels.contains(label) }

    public static func load(directory: String) throws -> Calibration {
        let path = FileSystem.join(directory, "triage.json")
        guard FileSystem.exists(path) else { return Calibration() }
        let json: JSONValue
        do { json = try JSONValue.parse(FileSystem.readText(path)) } catch { throw ClassifierError("\(path): \(error)") }
        var temperature: Float = 1, minConfidence: Float = 0
        if let t = json["temperature"]?.doubleValue {
            guard t > 0, t.isFinite else { throw ClassifierError("\(path): temperature must be positive") }
            temperature = Float(t)
        }
        if let m = json["min_confidence"]?.doubleValue {
            guard m >= 0, m <= 1 else { throw ClassifierError("\(path): min_confidence must be within 0...1") }
            minConfidence = Float(m)
        }
        var labels: [String]? = nil
        if let v = json["out_of_scope_labels"] {
            let names = v.arrayValue?.compactMap(\.stringValue) ?? []
            guard !names.isEmpty, names.count == v.arrayValue?.count else {
                throw ClassifierError("\(path): out_of_scope_labels must be a non-empty array of label names")
            }
            labels = names
        }
        var routing: TunedRouting? = nil
        if let r = json["routing"] {
            do { routing = try TunedRouting.parse(r) } catch { throw ClassifierError("\(path): \(error)") }
        }
        var distance: FeatureDistance? = nil
        if let d = json["oos_distance"] {
            do { distance = try FeatureDistance.load(d, directory: directory) } catch { throw ClassifierError("\(path): \(error)") }
        }
        return Calibration(temperature: temperature, outOfScopeLabel: json["out_of_scope_label"]?.stringValue,
                           outOfScopeLabels: labels, minConfidence: minConfidence, routing: routing, distance: distance)
    }
}

public struct Classification: Sendable {
    /// The decision's label: an in-scope intent, or the coarse out-of-scope label.
    public var label: String
    /// The model's own label behind it (for an out-of-scope decision, the likeliest out-of-scope
    /// label, e.g. a held-out intent or `out_of_domain`).
    public var fineLabel: String
    /// The id of `fineLabel`.
    public var labelId: Int
    /// The calibrated probability of `label` (for the coarse out-of-scope label: `outOfScopeScore`).
    public var confidence: Float
    /// The summed calibrated probability of the out-of-scope labels (0 when the model has none).
    public var outOfScopeScore: Float
    /// The feature distance to the nearest in-scope class (`oos_distance`; nil when the model has none).
    public var outOfScopeDistance: Float? = nil
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
        if let d = calibration.distance { material += d.fingerprint }
        let f = model.weights.file
        material += f.tensors.map { "\($0.name):\($0.dtype.rawValue):\($0.shape)" }.joined(separator: ";")
        // The weights' bytes themselves: a retrained model of the same shape is a new version.
        material += String(Fingerprint.of(f.dataSection), radix: 16)
        // "-int8" once: a directory of INT8 weights is usually named that way already.
        return name + (model.weights.isInt8 && !name.hasSuffix("-int8") ? "-int8" : "") + "@" + String(SHA256.hex(material).prefix(12))
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
        FileSystem.sibling(of: directory, suffix: "-int8")
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
        for oos in calibration.outOfScopeLabels where !weights.config.labels.contains(oos) {
            // A single label with a confidence threshold may name a label the model lacks
            // (threshold-only models); a list must name the model's own labels.
            if calibration.outOfScopeLabels.count == 1 && calibration.minConfidence > 0 { continue }
            throw ClassifierError("\(directory)/triage.json names out-of-scope label '\(oos)', which the model does not have")
        }
        if calibration.outOfScopeLabels.count > 1 && Set(weights.config.labels).isSubset(of: calibration.outOfScopeLabels) {
            throw ClassifierError("\(directory)/triage.json declares every label out of scope")
        }
        if let d = calibration.distance, d.dim != weights.config.dim {
            throw ClassifierError("\(directory)/\(d.file): statistics of dimension \(d.dim), but the model's hidden size is \(weights.config.dim)")
        }
        let model = DistilBertModel(weights: weights, runtime: Runtime(threads: options.threads, kernels: kernel))
        do { try model.requireProducts() } catch { throw ClassifierError("\(error)") }
        return Classifier(directory: directory, tokenizer: tokenizer, model: model, calibration: calibration)
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
        return (0..<texts.count).map { b in
            decide(logits: Array(output.logits(b)), tokenCount: input.lengths[b], distance: distance(output, b))
        }
    }

    public func classify(_ text: String) throws -> Classification {
        var ws = Workspace()
        return try classify([text], workspace: &ws)[0]
    }

    /// The `oos_distance` score of row `b` of a forward pass (nil when the model has none).
    public func distance(_ output: ModelOutput, _ b: Int) -> Float? {
        guard let d = calibration.distance else { return nil }
        switch d.feature {
        case .preClassifier: return d.distance(output.headInput(b))
        case .cls: return d.distance(output.cls(b))
        }
    }

    /// Calibrated probabilities and the out-of-scope rule applied to raw logits.
    public func decide(logits: [Float], tokenCount: Int = 0, distance: Float? = nil) -> Classification {
        Self.decide(logits: logits, labels: labels, calibration: calibration, tokenCount: tokenCount, distance: distance)
    }

    /// The decision over the coarse classes: each in-scope intent, and out of scope with the
    /// summed probability of the out-of-scope labels. The likeliest coarse class wins (an intent
    /// on a tie); below `minConfidence`, or beyond the `oos_distance` threshold, the decision is
    /// out of scope too.
    public static func decide(logits: [Float], labels: [String], calibration: Calibration, tokenCount: Int = 0,
                              temperature: Float? = nil, distance: Float? = nil) -> Classification {
        let probs = softmax(logits, temperature: temperature ?? calibration.temperature)
        var bestIntent = -1, bestOOS = -1
        var oosScore: Float = 0
        for i in probs.indices {
            if calibration.outOfScopeLabels.contains(labels[i]) {
                oosScore += probs[i]
                if bestOOS < 0 || probs[i] > probs[bestOOS] { bestOOS = i }
            } else if bestIntent < 0 || probs[i] > probs[bestIntent] {
                bestIntent = i
            }
        }
        let coarseOOS = bestOOS >= 0 && (bestIntent < 0 || oosScore > probs[bestIntent])
        let fine = coarseOOS ? bestOOS : bestIntent
        let confidence = coarseOOS ? oosScore : probs[fine]
        // With one out-of-scope label the decision keeps that label's own name, as before.
        let label = coarseOOS ? (calibration.outOfScopeLabel ?? labels[fine]) : labels[fine]
        let far = distance.map { d in calibration.distance.map { Double(d) > $0.threshold } ?? false } ?? false
        return Classification(label: label, fineLabel: labels[fine], labelId: fine, confidence: confidence,
                              outOfScopeScore: oosScore, outOfScopeDistance: distance, probabilities: probs, logits: logits,
                              outOfScope: coarseOOS || confidence < calibration.minConfidence || far, tokenCount: tokenCount)
    }

    public static func softmax(_ logits: [Float], temperature: Float = 1) -> [Float] {
        guard let m = logits.max() else { return [] }
        var e = logits.map { FastMath.exp(($0 - m) / temperature) }
        let s = e.reduce(0, +)
        for i in e.indices { e[i] /= s }
        return e
    }
}
