// What a cloud tier is (model, limits, prices) and how hard to try it (timeouts, retries,
// breaker). Defaults are the seed values from SPEC §3; everything is overridable from a
// config file through `overriding(with:)` and from the environment through `CloudEndpoint`.

import TriageJSON
import TriageSystem

/// Which wire protocol a tier speaks. Self-hosted models usually expose the OpenAI one.
public enum CloudAPI: String, Sendable, Equatable, CaseIterable {
    case anthropicMessages = "anthropic"
    case openAIChat = "openai"
}

public struct CloudTierConfig: Sendable, Equatable {
    /// The tier's name in records and reports ("small", "large").
    public var name: String
    public var model: String
    public var maxTokens: Int
    public var temperature: Double
    public var inputUSDPerMTok: Double
    public var outputUSDPerMTok: Double
    public var api: CloudAPI

    public init(name: String, model: String, maxTokens: Int, temperature: Double,
                inputUSDPerMTok: Double, outputUSDPerMTok: Double, api: CloudAPI = .anthropicMessages) {
        self.name = name; self.model = model; self.maxTokens = maxTokens; self.temperature = temperature
        self.inputUSDPerMTok = inputUSDPerMTok; self.outputUSDPerMTok = outputUSDPerMTok; self.api = api
    }

    /// Seed small tier: Claude Haiku, $0.25 / $1.25 per million input / output tokens.
    public static let small = CloudTierConfig(
        name: "small", model: "claude-3-5-haiku-latest", maxTokens: 1024, temperature: 0.3,
        inputUSDPerMTok: 0.25, outputUSDPerMTok: 1.25)

    /// Seed large tier: Claude Sonnet, $3 / $15 per million input / output tokens.
    public static let large = CloudTierConfig(
        name: "large", model: "claude-sonnet-4-5", maxTokens: 2048, temperature: 0.5,
        inputUSDPerMTok: 3, outputUSDPerMTok: 15)

    /// The price of one call that used these tokens.
    public func cost(inputTokens: Int, outputTokens: Int) -> Double {
        Double(inputTokens) * inputUSDPerMTok / 1e6 + Double(outputTokens) * outputUSDPerMTok / 1e6
    }

    /// This config with the fields present in a JSON object replaced, so a config file only
    /// has to name what it changes. Keys: model, max_tokens, temperature,
    /// input_usd_per_mtok, output_usd_per_mtok, api ("anthropic" | "openai").
    public func overriding(with json: JSONValue) throws(CloudConfigError) -> CloudTierConfig {
        guard let pairs = json.objectPairs else { throw CloudConfigError("tier \(name): expected a JSON object") }
        var c = self
        for (key, value) in pairs {
            switch key {
            case "model":
                guard let s = value.stringValue, !s.isEmpty else { throw .init("tier \(name): model must be a non-empty string") }
                c.model = s
            case "max_tokens":
                guard let n = value.intValue, n > 0 else { throw .init("tier \(name): max_tokens must be a positive integer") }
                c.maxTokens = n
            case "temperature":
                guard let t = value.doubleValue, t >= 0, t <= 2 else { throw .init("tier \(name): temperature must be in [0, 2]") }
                c.temperature = t
            case "input_usd_per_mtok":
                guard let p = value.doubleValue, p >= 0 else { throw .init("tier \(name): input_usd_per_mtok must be >= 0") }
                c.inputUSDPerMTok = p
            case "output_usd_per_mtok":
                guard let p = value.doubleValue, p >= 0 else { throw .init("tier \(name): output_usd_per_mtok must be >= 0") }
                c.outputUSDPerMTok = p
            case "api":
                guard let s = value.stringValue, let a = CloudAPI(rawValue: s) else {
                    throw .init("tier \(name): api must be \"anthropic\" or \"openai\"")
                }
                c.api = a
            default:
                // Unknown keys are errors: a misspelt "max_token" silently ignored would
                // change cost and behaviour without anyone noticing.
                throw .init("tier \(name): unknown key \"\(key)\"")
            }
        }
        return c
    }
}

public struct CloudConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// How the wait before a retry is randomised. Jitter spreads the retries of many clients
/// that failed together, so they do not hit a recovering API in synchronized waves.
public enum Jitter: String, Sendable, Equatable {
    /// The exact exponential value; only for tests and debugging.
    case none
    /// Uniform in [0, d]: the best spread, occasionally a very short wait.
    case full
    /// d/2 plus uniform in [0, d/2]: never shorter than half the exponential value.
    case equal
}

public struct CloudPolicy: Sendable, Equatable {
    public var connectTimeout: Double = 5
    public var requestTimeout: Double = 10
    /// Attempts per request per tier, the first included.
    public var maxAttempts: Int = 3
    public var backoffBase: Double = 0.5
    public var backoffMax: Double = 8
    public var jitter: Jitter = .full
    /// A server asking for a longer pause than this gets only this much: an interactive
    /// query should fail over to the edge answer rather than hang for minutes.
    public var retryAfterCap: Double = 30
    /// Seconds one tier may take for one request, attempts and waits included: no attempt
    /// starts that could end after it. Without it a stalling tier could hold a query for
    /// maxAttempts × requestTimeout plus two capped waits (90 s with the defaults).
    public var tierBudget: Double = 60
    /// Consecutive failed requests that open a tier's breaker.
    public var breakerFailureThreshold: Int = 5
    public var breakerCooldown: Double = 30

    public init() {}

    public init(connectTimeout: Double = 5, requestTimeout: Double = 10, maxAttempts: Int = 3,
                backoffBase: Double = 0.5, backoffMax: Double = 8, jitter: Jitter = .full,
                retryAfterCap: Double = 30, tierBudget: Double = 60, breakerFailureThreshold: Int = 5,
                breakerCooldown: Double = 30) {
        self.connectTimeout = connectTimeout; self.requestTimeout = requestTimeout
        self.maxAttempts = maxAttempts; self.backoffBase = backoffBase; self.backoffMax = backoffMax
        self.jitter = jitter; self.retryAfterCap = retryAfterCap; self.tierBudget = tierBudget
        self.breakerFailureThreshold = breakerFailureThreshold; self.breakerCooldown = breakerCooldown
    }

    /// The wait after failed attempt `attempt` (1-based) when the server gave no
    /// retry-after: base × 2^(attempt−1), capped at backoffMax, then jittered with `unit`,
    /// a uniform random number in [0, 1).
    public func backoff(afterAttempt attempt: Int, unit: Double) -> Double {
        let exponent = Double(max(0, min(attempt - 1, 62)))
        let d = min(backoffMax, backoffBase * pow2(exponent))
        switch jitter {
        case .none: return d
        case .full: return d * unit
        case .equal: return d / 2 + d / 2 * unit
        }
    }

    private func pow2(_ e: Double) -> Double {
        var r = 1.0
        for _ in 0..<Int(e) { r *= 2 }
        return r
    }

    /// Keys: connect_timeout, request_timeout, max_attempts, backoff_base, backoff_max,
    /// jitter ("none" | "full" | "equal"), retry_after_cap, tier_budget,
    /// breaker_failure_threshold, breaker_cooldown. Times in seconds.
    public func overriding(with json: JSONValue) throws(CloudConfigError) -> CloudPolicy {
        guard let pairs = json.objectPairs else { throw CloudConfigError("cloud policy: expected a JSON object") }
        var p = self
        func seconds(_ v: JSONValue, _ key: String, allowZero: Bool = true) throws(CloudConfigError) -> Double {
            guard let d = v.doubleValue, d.isFinite, allowZero ? d >= 0 : d > 0 else {
                throw CloudConfigError("cloud policy: \(key) must be a \(allowZero ? "non-negative" : "positive") number of seconds")
            }
            return d
        }
        for (key, value) in pairs {
            switch key {
            case "connect_timeout": p.connectTimeout = try seconds(value, key, allowZero: false)
            case "request_timeout": p.requestTimeout = try seconds(value, key, allowZero: false)
            case "backoff_base": p.backoffBase = try seconds(value, key)
            case "backoff_max": p.backoffMax = try seconds(value, key)
            case "retry_after_cap": p.retryAfterCap = try seconds(value, key)
            case "tier_budget": p.tierBudget = try seconds(value, key, allowZero: false)
            case "breaker_cooldown": p.breakerCooldown = try seconds(value, key)
            case "max_attempts":
                guard let n = value.intValue, n >= 1 else { throw CloudConfigError("cloud policy: max_attempts must be >= 1") }
                p.maxAttempts = n
            case "breaker_failure_threshold":
                guard let n = value.intValue, n >= 1 else { throw CloudConfigError("cloud policy: breaker_failure_threshold must be >= 1") }
                p.breakerFailureThreshold = n
            case "jitter":
                guard let s = value.stringValue, let j = Jitter(rawValue: s) else {
                    throw CloudConfigError("cloud policy: jitter must be \"none\", \"full\" or \"equal\"")
                }
                p.jitter = j
            default: throw CloudConfigError("cloud policy: unknown key \"\(key)\"")
            }
        }
        return p
    }
}

/// An API key. Its description, debug description and mirror are redacted so that a key can
/// travel through structs that get printed, dumped or logged without leaking.
public struct APIKey: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    let value: String

    /// Surrounding whitespace (a newline from `echo key > file`) is dropped; an empty key is nil.
    public init?(_ raw: String) {
        let trimmed = raw[...].trimmingSpaces()
        guard !trimmed.isEmpty else { return nil }
        value = trimmed
    }

    public var description: String { "[redacted]" }
    public var debugDescription: String { "APIKey([redacted])" }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }

    /// `text` with every occurrence of the key replaced — for messages that quote a server,
    /// since a gateway may echo the credential it rejected.
    public func redact(_ text: String) -> String {
        guard value.count >= 4 else { return text }
        return text.replacing(value, with: "[redacted]")
    }
}

/// Where a tier's requests go and with what credential.
public struct CloudEndpoint: Sendable, Equatable, CustomStringConvertible {
    /// Scheme, host, optional port and path prefix, without a trailing slash;
    /// "/v1/messages" or "/v1/chat/completions" is appended.
    public var baseURL: String
    /// nil when none is configured: local gateways may not need one, and the cascade can
    /// treat a missing key as "cloud unavailable" without making a request.
    public var apiKey: APIKey?
    /// PEM file of the certificate authorities to trust for this endpoint instead of the
    /// system's store: a gateway behind a private CA. Verification stays on either way.
    public var caFile: String?

    public init(baseURL: String, apiKey: APIKey?, caFile: String? = nil) {
        var b = baseURL[...].trimmingSpaces()
        while b.hasSuffix("/") { b.removeLast() }
        self.baseURL = b
        self.apiKey = apiKey
        self.caFile = caFile
    }

    public static let anthropicDefaultBaseURL = "https://api.anthropic.com"
    public static let openAIDefaultBaseURL = "https://api.openai.com"

    /// Reads ANTHROPIC_BASE_URL / ANTHROPIC_API_KEY (or OPENAI_BASE_URL / OPENAI_API_KEY
    /// for `.openAIChat`). `get` is injectable so tests need not touch the real environment.
    public static func fromEnvironment(api: CloudAPI = .anthropicMessages,
                                       get: (String) -> String? = { Environment.get($0) }) -> CloudEndpoint {
        switch api {
        case .anthropicMessages:
            let base = get("ANTHROPIC_BASE_URL").flatMap { $0.isEmpty ? nil : $0 } ?? anthropicDefaultBaseURL
            return CloudEndpoint(baseURL: base, apiKey: get("ANTHROPIC_API_KEY").flatMap(APIKey.init))
        case .openAIChat:
            let base = get("OPENAI_BASE_URL").flatMap { $0.isEmpty ? nil : $0 } ?? openAIDefaultBaseURL
            return CloudEndpoint(baseURL: base, apiKey: get("OPENAI_API_KEY").flatMap(APIKey.init))
        }
    }

    public var description: String { "\(baseURL) (key \(apiKey == nil ? "missing" : "set"))" }
}

/// SplitMix64: a tiny, fast, seedable generator, so tests (and reproducible benchmarks) can
/// fix the jitter sequence.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
