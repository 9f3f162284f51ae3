import Logging
import TriageCascade
import TriageClassifier
import TriageCloud
import TriageJSON
import TriageService
import TriageSystem

/// What a handler answers, before it becomes an HTTP response.
struct Reply: Sendable {
    var status: Int
    var body: String
    var contentType = "application/json"
    var headers: [(String, String)] = []

    static func json(_ value: JSONValue, status: Int = 200, headers: [(String, String)] = []) -> Reply {
        Reply(status: status, body: value.serialized, headers: headers)
    }

    /// TEI's error body and status for an error kind.
    static func error(_ e: ServiceError) -> Reply {
        let (status, type) = ErrorMapping.status(of: e.kind)
        return .json(WireJSON.error(e.message, type: type), status: status)
    }
}

/// Error kinds to HTTP: TEI's codes and `error_type`s where TEI has the case.
public enum ErrorMapping {
    public static func status(of kind: ServiceError.Kind) -> (status: Int, errorType: String) {
        switch kind {
        case .invalidInput, .inputTooLong, .tooManyInputs: return (422, "validation")
        case .payloadTooLarge: return (413, "validation")
        case .empty: return (400, "empty")
        case .overloaded: return (429, "overloaded")
        case .unavailable: return (503, "unhealthy")
        // TEI has no deadline; a timed-out request is the server's fault, not the client's.
        case .timedOut: return (503, "timeout")
        case .badModel, .internal: return (424, "backend")
        }
    }
}

/// TEI's timing headers, in whole milliseconds as TEI sends them.
func timingHeaders(start: Double, tokenize: Double, timing: BatchTiming, tokens: Int, characters: Int) -> [(String, String)] {
    func ms(_ s: Double) -> String { String(Int((s * 1e3).rounded(.down))) }
    let total = ms(Clock.seconds() - start)
    return [("x-compute-type", "cpu"), ("x-compute-time", total), ("x-compute-characters", String(characters)),
            ("x-compute-tokens", String(tokens)), ("x-total-time", total), ("x-tokenization-time", ms(tokenize)),
            ("x-queue-time", ms(timing.queueSeconds)), ("x-inference-time", ms(timing.inferenceSeconds))]
}

/// The request bodies, parsed by hand against TEI's shapes so the error says which field is wrong.
enum RequestParsing {
    static func object(_ body: [UInt8]) throws(ServiceError) -> JSONValue {
        let json: JSONValue
        do { json = try JSONValue.parse(bytes: body) } catch { throw ServiceError(.invalidInput, "Failed to parse the request body as JSON: \(error)") }
        guard json.objectPairs != nil else { throw ServiceError(.invalidInput, "the request body must be a JSON object") }
        return json
    }

    static func bool(_ json: JSONValue, _ key: String) throws(ServiceError) -> Bool? {
        guard let v = json[key], !v.isNull else { return nil }
        guard let b = v.boolValue else { throw ServiceError(.invalidInput, "`\(key)` must be true or false") }
        return b
    }

    static let inputsShape = "`inputs` must be a string, a pair of strings [string, string] or a batch [[string], [string, string], ...]"

    /// TEI's PredictInput: "text" | ["a"] | ["a", "b"] (a pair) | [["t1"], ["a", "b"], …] (a batch).
    static func predictInputs(_ json: JSONValue) throws(ServiceError) -> (inputs: [PredictInput], batch: Bool) {
        guard let v = json["inputs"] else { throw ServiceError(.invalidInput, "missing field `inputs`") }
        if let s = v.stringValue { return ([.single(s)], false) }
        guard let items = v.arrayValue else { throw ServiceError(.invalidInput, inputsShape) }
        if items.isEmpty { throw ServiceError(.empty, "`inputs` cannot be empty") }
        if items[0].stringValue != nil {
            return ([try sequence(items)], false)
        }
        var out: [PredictInput] = []
        for item in items {
            guard let parts = item.arrayValue else { throw ServiceError(.invalidInput, inputsShape) }
            out.append(try sequence(parts))
        }
        return (out, true)
    }

    private static func sequence(_ parts: [JSONValue]) throws(ServiceError) -> PredictInput {
        let strings = parts.compactMap(\.stringValue)
        guard strings.count == parts.count else { throw ServiceError(.invalidInput, inputsShape) }
        switch strings.count {
        case 1: return .single(strings[0])
        case 2: return .pair(strings[0], strings[1])
        default: throw ServiceError(.invalidInput, inputsShape)
        }
    }

    /// A string or a list of strings.
    static func texts(_ json: JSONValue, key: String = "inputs") throws(ServiceError) -> [String] {
        guard let v = json[key] else { throw ServiceError(.invalidInput, "missing field `\(key)`") }
        if let s = v.stringValue { return [s] }
        guard let items = v.arrayValue else { throw ServiceError(.invalidInput, "`\(key)` must be a string or a list of strings") }
        let strings = items.compactMap(\.stringValue)
        guard strings.count == items.count else { throw ServiceError(.invalidInput, "`\(key)` must be a string or a list of strings") }
        if strings.isEmpty { throw ServiceError(.empty, "`\(key)` cannot be empty") }
        return strings
    }

    static func history(_ json: JSONValue) throws(ServiceError) -> [ChatMessage] {
        try WireJSON.history(json["history"])
    }
}
