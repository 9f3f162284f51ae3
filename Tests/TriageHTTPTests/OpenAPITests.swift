import Testing
import TriageCloud
import TriageHTTP
import TriageJSON

/// A small JSON Schema checker for what the document uses: type (also as a list, for
/// null), required, properties, additionalProperties, items, minItems, maxItems,
/// maxLength, enum, oneOf and local $ref. Returns the first mismatch, or nil.
struct SchemaChecker {
    let document: JSONValue

    func resolve(_ schema: JSONValue) -> JSONValue {
        guard let ref = schema["$ref"]?.stringValue, ref.hasPrefix("#/") else { return schema }
        var node = document
        for part in ref.dropFirst(2).split(separator: "/") { node = node[String(part)] ?? .null }
        return resolve(node)
    }

    func mismatch(_ value: JSONValue, _ schema: JSONValue, at path: String = "$") -> String? {
        let schema = resolve(schema)
        if let options = schema["oneOf"]?.arrayValue {
            let matching = options.filter { mismatch(value, $0, at: path) == nil }.count
            return matching == 1 ? nil : "\(path): matches \(matching) of the oneOf schemas"
        }
        if let types = schema["type"] {
            let allowed = types.arrayValue?.compactMap(\.stringValue) ?? [types.stringValue ?? ""]
            guard allowed.contains(where: { hasType(value, $0) }) else { return "\(path): \(value.serialized.prefix(80)) is not \(allowed)" }
        }
        if let options = schema["enum"]?.arrayValue, !options.contains(value) {
            return "\(path): \(value.serialized) not in \(JSONValue.array(options).serialized)"
        }
        if let max = schema["maxLength"]?.intValue, let s = value.stringValue, s.count > max { return "\(path): longer than \(max)" }
        if let pairs = value.objectPairs {
            for key in schema["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where value[key] == nil {
                return "\(path): missing \(key)"
            }
            let properties = schema["properties"]
            for (key, v) in pairs {
                if let p = properties?[key] {
                    if let m = mismatch(v, p, at: path + "." + key) { return m }
                } else if let extra = schema["additionalProperties"], extra.objectPairs != nil {
                    if let m = mismatch(v, extra, at: path + "." + key) { return m }
                } else if properties != nil {
                    return "\(path): \(key) is not in the schema"
                }
            }
        }
        if let items = value.arrayValue {
            if let min = schema["minItems"]?.intValue, items.count < min { return "\(path): fewer than \(min) items" }
            if let max = schema["maxItems"]?.intValue, items.count > max { return "\(path): more than \(max) items" }
            if let itemSchema = schema["items"] {
                for (i, item) in items.enumerated() { if let m = mismatch(item, itemSchema, at: "\(path)[\(i)]") { return m } }
            }
        }
        return nil
    }

    func hasType(_ v: JSONValue, _ type: String) -> Bool {
        switch type {
        case "object": return v.objectPairs != nil
        case "array": return v.arrayValue != nil
        case "string": return v.stringValue != nil
        case "number": return v.doubleValue != nil
        case "integer": return v.intValue != nil
        case "boolean": return v.boolValue != nil
        case "null": return v.isNull
        default: return false
        }
    }

    /// The schema of a response of `path`/`method` with `status`.
    func responseSchema(_ path: String, _ method: String, _ status: Int, contentType: String = "application/json") -> JSONValue? {
        document["paths"]?[path]?[method]?["responses"]?[String(status)]?["content"]?[contentType]?["schema"]
    }
}

extension HTTPTests {
@Suite(.serialized) struct OpenAPITests {
    @Test func everyOperationMatchesARealResponse() async throws {
        let s = try await RunningServer(int8: true)
        defer { Task { try? await s.stop() } }
        let docReply = try get(s.port, "/openapi.json")
        #expect(docReply.status == 200)
        let doc = try #require(docReply.json)
        #expect(doc["openapi"]?.stringValue == "3.1.0")
        let checker = SchemaChecker(document: doc)

        // Every route the server has is documented, with its method.
        let paths = try #require(doc["paths"]?.objectPairs)
        #expect(Set(paths.map(\.0)) == Set(["/predict", "/", "/invocations", "/tokenize", "/v1/classify", "/v1/ask", "/info",
                                             "/metrics", "/openapi.json", "/health", "/livez", "/readyz"]))

        let requests: [(String, String, String?)] = [
            ("/predict", "post", #"{"inputs": "my card has not arrived"}"#),
            ("/predict", "post", #"{"inputs": [["my card has not arrived"], ["top up", "with apple pay"]], "raw_scores": true}"#),
            ("/", "post", #"{"inputs": "refund please"}"#),
            ("/invocations", "post", #"{"inputs": ["a", "b"]}"#),
            ("/tokenize", "post", #"{"inputs": ["hello there", "bye"]}"#),
            ("/v1/classify", "post", #"{"inputs": ["my card has not arrived", "weather in paris"]}"#),
            ("/v1/ask", "post", #"{"query": "How do I top up with Apple Pay?", "offline": true}"#),
            ("/v1/ask", "post", #"{"query": "what is the capital of peru", "offline": true}"#),
            ("/info", "get", nil), ("/openapi.json", "get", nil), ("/livez", "get", nil), ("/readyz", "get", nil),
        ]
        for (path, method, body) in requests {
            let r = method == "post" ? try post(s.port, path, body!) : try get(s.port, path)
            #expect(r.status == 200, "\(path): \(r.body)")
            let schema = try #require(checker.responseSchema(path, method, 200), "\(path) has no 200 schema")
            let value = try #require(r.json, "\(path) did not answer JSON")
            #expect(checker.mismatch(value, schema) == nil, "\(path): \(checker.mismatch(value, schema) ?? "")")
            // The request body itself fits the documented request schema.
            if let body, let requestSchema = doc["paths"]?[path]?[method]?["requestBody"]?["content"]?["application/json"]?["schema"] {
                let parsed = try JSONValue.parse(body)
                #expect(checker.mismatch(parsed, requestSchema) == nil, "\(path) request: \(checker.mismatch(parsed, requestSchema) ?? "")")
            }
        }
        // Error responses match the documented error schema and status.
        let errors: [(String, String, Int)] = [("/predict", #"{"inputs": []}"#, 400), ("/predict", #"{"inputs": 1}"#, 422),
                                               ("/v1/ask", #"{"nothing": 1}"#, 422)]
        for (path, body, status) in errors {
            let r = try post(s.port, path, body)
            #expect(r.status == status)
            let schema = try #require(checker.responseSchema(path, "post", status))
            #expect(checker.mismatch(try #require(r.json), schema) == nil)
        }
        // The checker itself rejects what does not fit.
        let predictSchema = try #require(checker.responseSchema("/predict", "post", 200))
        #expect(checker.mismatch(try JSONValue.parse(#"[{"score": "high", "label": "x"}]"#), predictSchema) != nil)
        #expect(checker.mismatch(try JSONValue.parse(#"{"label": "x"}"#), predictSchema) != nil)
        let health = try get(s.port, "/health")
        #expect(checker.mismatch(.string(health.body), try #require(checker.responseSchema("/health", "get", 200, contentType: "text/plain"))) == nil)
    }
}
}
