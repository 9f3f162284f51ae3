// The two wire formats a tier can speak: the Anthropic Messages API and the
// OpenAI-compatible chat-completions API (for self-hosted models behind vLLM, llama.cpp,
// Ollama and similar gateways).
//
// Responses are untrusted input. Anything unexpected — not JSON, cut short, a field missing
// or of the wrong type — becomes a `ResponseFormatError` for that attempt, never a crash,
// because a gateway or proxy returning HTML or half a body is an everyday fault.

import TriageJSON

public struct ChatMessage: Sendable, Equatable {
    /// "user" or "assistant".
    public var role: String
    public var content: String
    public init(role: String, content: String) { self.role = role; self.content = content }
    public static func user(_ text: String) -> ChatMessage { ChatMessage(role: "user", content: text) }
    public static func assistant(_ text: String) -> ChatMessage { ChatMessage(role: "assistant", content: text) }
}

public struct CompletionResponse: Sendable, Equatable {
    /// All text blocks of the reply, concatenated.
    public var text: String
    /// As the API sent it: "end_turn", "max_tokens", "stop_sequence" (Anthropic) or
    /// "stop", "length" (OpenAI); nil if the API sent null.
    public var stopReason: String?
    public var inputTokens: Int
    public var outputTokens: Int
    /// The model that answered, which may be more specific than the one asked for.
    public var model: String

    public init(text: String, stopReason: String?, inputTokens: Int, outputTokens: Int, model: String) {
        self.text = text; self.stopReason = stopReason
        self.inputTokens = inputTokens; self.outputTokens = outputTokens; self.model = model
    }

    /// Whether the answer was cut off by the token limit, whichever API produced it; the
    /// cascade's answer check penalises this.
    public var stoppedAtMaxTokens: Bool { stopReason == "max_tokens" || stopReason == "length" }
}

public struct ResponseFormatError: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { "invalid response body: \(reason)" }
}

struct WireRequest {
    let url: String
    let headers: [HTTPHeader]
    let body: [UInt8]
}

enum WireFormat {
    static let anthropicVersion = "2023-06-01"

    static func request(api: CloudAPI, config: CloudTierConfig, endpoint: CloudEndpoint,
                        system: String, messages: [ChatMessage]) -> WireRequest {
        var headers = [HTTPHeader("content-type", "application/json"), HTTPHeader("accept", "application/json"),
                       HTTPHeader("user-agent", "triage")]
        var body: [(String, JSONValue)] = [("model", .string(config.model)), ("max_tokens", .int(config.maxTokens))]
        let turns = messages.map { JSONValue.object([("role", .string($0.role)), ("content", .string($0.content))]) }
        let path: String
        switch api {
        case .anthropicMessages:
            path = "/v1/messages"
            if let key = endpoint.apiKey { headers.append(HTTPHeader("x-api-key", key.value)) }
            headers.append(HTTPHeader("anthropic-version", anthropicVersion))
            // The API rejects an empty system prompt, and "no system prompt" is what empty means.
            if !system.isEmpty { body.append(("system", .string(system))) }
            body.append(("messages", .array(turns)))
        case .openAIChat:
            path = "/v1/chat/completions"
            if let key = endpoint.apiKey { headers.append(HTTPHeader("authorization", "Bearer \(key.value)")) }
            let sys = system.isEmpty ? [] : [JSONValue.object([("role", "system"), ("content", .string(system))])]
            body.append(("messages", .array(sys + turns)))
        }
        body.append(("temperature", .number(config.temperature)))
        return WireRequest(url: endpoint.baseURL + path, headers: headers, body: Array(JSONValue.object(body).serialized.utf8))
    }

    static func parse(api: CloudAPI, body: [UInt8], requestedModel: String) throws(ResponseFormatError) -> CompletionResponse {
        let json: JSONValue
        do { json = try JSONValue.parse(bytes: body) } catch {
            throw ResponseFormatError(body.isEmpty ? "empty body" : "\(error)")
        }
        guard json.objectPairs != nil else { throw ResponseFormatError("not a JSON object") }
        if let err = errorSummary(json) { throw ResponseFormatError("API error in a success response: \(err)") }
        switch api {
        case .anthropicMessages: return try parseAnthropic(json, requestedModel: requestedModel)
        case .openAIChat: return try parseOpenAI(json, requestedModel: requestedModel)
        }
    }

    private static func tokens(_ v: JSONValue?, _ name: String) throws(ResponseFormatError) -> Int {
        guard let n = v?.intValue, n >= 0 else { throw ResponseFormatError("missing or invalid \(name)") }
        return n
    }

    private static func optionalString(_ v: JSONValue?, _ name: String) throws(ResponseFormatError) -> String? {
        guard let v, !v.isNull else { return nil }
        guard let s = v.stringValue else { throw ResponseFormatError("\(name) is not a string") }
        return s
    }

    private static func parseAnthropic(_ json: JSONValue, requestedModel: String) throws(ResponseFormatError) -> CompletionResponse {
        guard let blocks = json["content"]?.arrayValue else { throw ResponseFormatError("missing content array") }
        var text = ""
        for block in blocks where block["type"]?.stringValue == "text" {
            // Non-text blocks (tool_use, thinking) carry nothing the cascade can show.
            guard let t = block["text"]?.stringValue else { throw ResponseFormatError("text block without text") }
            text += t
        }
        let usage = json["usage"]
        return CompletionResponse(
            text: text,
            stopReason: try optionalString(json["stop_reason"], "stop_reason"),
            inputTokens: try tokens(usage?["input_tokens"], "usage.input_tokens"),
            outputTokens: try tokens(usage?["output_tokens"], "usage.output_tokens"),
            model: try optionalString(json["model"], "model") ?? requestedModel)
    }

    private static func parseOpenAI(_ json: JSONValue, requestedModel: String) throws(ResponseFormatError) -> CompletionResponse {
        guard let choice = json["choices"]?.arrayValue?.first else { throw ResponseFormatError("missing choices[0]") }
        guard let message = choice["message"], message.objectPairs != nil else {
            throw ResponseFormatError("missing choices[0].message")
        }
        let usage = json["usage"]
        return CompletionResponse(
            text: try optionalString(message["content"], "choices[0].message.content") ?? "",
            stopReason: try optionalString(choice["finish_reason"], "finish_reason"),
            inputTokens: try tokens(usage?["prompt_tokens"], "usage.prompt_tokens"),
            outputTokens: try tokens(usage?["completion_tokens"], "usage.completion_tokens"),
            model: try optionalString(json["model"], "model") ?? requestedModel)
    }

    /// "type: message" from either API's error body, or nil if the body is not one.
    ///   Anthropic: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}
    ///   OpenAI:    {"error":{"message":"...","type":"invalid_request_error","code":...}}
    static func errorSummary(_ json: JSONValue) -> String? {
        guard let err = json["error"], err.objectPairs != nil else {
            if let s = json["error"]?.stringValue { return s } // some gateways: {"error":"..."}
            return nil
        }
        let type = err["type"]?.stringValue
        let message = err["message"]?.stringValue
        switch (type, message) {
        case let (t?, m?): return "\(t): \(m)"
        case let (t?, nil): return t
        case let (nil, m?): return m
        default: return nil
        }
    }

    /// A one-line summary of an error response's body for the failure description: the API's
    /// error type and message when the body has them, otherwise the start of the body text.
    static func errorSummary(body: [UInt8]) -> String? {
        if let json = try? JSONValue.parse(bytes: body), let s = errorSummary(json) { return clip(s) }
        let text = String(decoding: body.prefix(300), as: UTF8.self)
        let oneLine = String(text.map { $0.isNewline ? " " : $0 })[...].trimmingSpaces()
        return oneLine.isEmpty ? nil : clip(oneLine)
    }

    static func clip(_ s: String, to n: Int = 300) -> String { s.count <= n ? s : String(s.prefix(n)) + "…" }
}
