import TriageJSON
import TriageSystem

public struct ModelError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

public enum Activation: String, Sendable {
    case gelu, relu
}

/// The fields of a Hugging Face DistilBERT `config.json` the forward pass depends on.
public struct DistilBertConfig: Sendable, Equatable {
    public var vocabSize: Int
    public var dim: Int
    public var nLayers: Int
    public var nHeads: Int
    public var hiddenDim: Int
    public var maxPositionEmbeddings: Int
    public var activation: Activation
    /// Labels in id order (from id2label); empty for an encoder without a head.
    public var labels: [String]
    /// DistilBERT's LayerNorms are built with eps 1e-12 regardless of the config.
    public var layerNormEps: Float = 1e-12

    public var headDim: Int { dim / nHeads }

    public init(vocabSize: Int, dim: Int, nLayers: Int, nHeads: Int, hiddenDim: Int,
                maxPositionEmbeddings: Int, activation: Activation, labels: [String]) {
        self.vocabSize = vocabSize; self.dim = dim; self.nLayers = nLayers; self.nHeads = nHeads
        self.hiddenDim = hiddenDim; self.maxPositionEmbeddings = maxPositionEmbeddings
        self.activation = activation; self.labels = labels
    }

    public static func load(path: String) throws -> DistilBertConfig {
        let json: JSONValue
        do { json = try JSONValue.parse(FileSystem.readText(path)) } catch { throw ModelError("\(path): \(error)") }
        return try parse(json, source: path)
    }

    public static func parse(_ json: JSONValue, source: String = "config.json") throws -> DistilBertConfig {
        if let type = json["model_type"]?.stringValue, type != "distilbert" {
            throw ModelError("\(source): model_type is '\(type)'; triage runs DistilBERT models")
        }
        func int(_ key: String) throws -> Int {
            guard let v = json[key]?.intValue, v > 0 else {
                throw ModelError("\(source): '\(key)' is missing or not a positive integer")
            }
            return v
        }
        let actName = json["activation"]?.stringValue ?? "gelu"
        guard let activation = Activation(rawValue: actName) else {
            throw ModelError("\(source): unsupported activation '\(actName)' (gelu or relu)")
        }
        var config = DistilBertConfig(
            vocabSize: try int("vocab_size"), dim: try int("dim"), nLayers: try int("n_layers"),
            nHeads: try int("n_heads"), hiddenDim: try int("hidden_dim"),
            maxPositionEmbeddings: try int("max_position_embeddings"), activation: activation, labels: [])
        guard config.dim % config.nHeads == 0 else {
            throw ModelError("\(source): dim \(config.dim) is not a multiple of n_heads \(config.nHeads)")
        }
        if let pairs = json["id2label"]?.objectPairs {
            var labels = [String?](repeating: nil, count: pairs.count)
            for (k, v) in pairs {
                guard let i = Int(k), i >= 0, i < pairs.count, let name = v.stringValue, labels[i] == nil else {
                    throw ModelError("\(source): id2label must map the ids 0..<\(pairs.count) to names")
                }
                labels[i] = name
            }
            config.labels = labels.map { $0! }
        }
        return config
    }
}
