// One cloud tier: a wire format, an HTTP client with its connection pool, a retry policy and
// a circuit breaker, behind a single call that never throws. The cascade only has to look
// at the outcome: an answer with its tokens and cost, or a failure with every attempt
// accounted for, so the edge answer can stand in and the record stays complete.

import Synchronization
import TriageSystem

/// The effects the retry loop and the breaker depend on, injectable so tests can record
/// waits instead of sleeping and step a fake clock through a cool-down.
public struct CloudRuntime: Sendable {
    /// Blocks for the given number of seconds (the back-off and retry-after waits).
    public var sleep: @Sendable (Double) -> Void
    /// A uniform random number in [0, 1) for jitter.
    public var random: @Sendable () -> Double
    /// Monotonic seconds, for the circuit breaker's cool-down.
    public var now: @Sendable () -> Double
    /// Unix time, for retry-after values given as an HTTP date.
    public var wallClock: @Sendable () -> Double

    public init(sleep: @escaping @Sendable (Double) -> Void = { Clock.sleep(seconds: $0) },
                random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
                now: @escaping @Sendable () -> Double = { Clock.seconds() },
                wallClock: @escaping @Sendable () -> Double = { Clock.unixTime() }) {
        self.sleep = sleep; self.random = random; self.now = now; self.wallClock = wallClock
    }

    public static let live = CloudRuntime()

    /// A reproducible jitter source.
    public static func seededRandom(_ seed: UInt64) -> @Sendable () -> Double {
        let rng = Mutex(SplitMix64(seed: seed))
        return { rng.withLock { Double.random(in: 0..<1, using: &$0) } }
    }
}

/// One HTTP exchange of a request.
public struct Attempt: Sendable, Equatable, CustomStringConvertible {
    public enum Result: Sendable, Equatable {
        case success(status: Int)
        /// A non-2xx status; `message` summarises the error body ("overloaded_error: Overloaded").
        case httpError(status: Int, message: String?)
        /// A 2xx whose body could not be used (malformed JSON, missing fields).
        case invalidBody(status: Int, reason: String)
        case transport(TransportError)
    }

    /// 1-based.
    public var number: Int
    /// Seconds slept before this attempt (0 for the first).
    public var waitBefore: Double
    /// Seconds the HTTP exchange took, including a timeout's full length.
    public var latency: Double
    public var result: Result
    /// The delay the server asked for in `retry-after`, before capping; nil if none.
    public var retryAfter: Double?

    public var status: Int? {
        switch result {
        case .success(let s), .httpError(let s, _), .invalidBody(let s, _): return s
        case .transport: return nil
        }
    }
    public var transportError: TransportError? {
        if case .transport(let e) = result { return e }
        return nil
    }
    public var succeeded: Bool { if case .success = result { return true }; return false }

    public var description: String {
        switch result {
        case .success(let s): return "HTTP \(s)"
        case .httpError(let s, let m?): return "HTTP \(s) \(m)"
        case .httpError(let s, nil): return "HTTP \(s)"
        case .invalidBody(let s, let r): return "HTTP \(s) with an invalid body: \(r)"
        case .transport(let e): return e.description
        }
    }
}

public struct TierOutcome: Sendable {
    /// The tier's configured name and model (the model requested; `response.model` is the
    /// one that answered).
    public var tier: String
    public var model: String
    public var response: CompletionResponse?
    public var attempts: [Attempt]
    /// Why there is no response; nil on success. Safe to print: never contains the key.
    public var failure: String?
    /// True when the breaker was open and no request was made.
    public var rejectedByBreaker: Bool
    /// Only a successful response costs money here: the Messages API does not bill requests
    /// that end in an error status, and a request that timed out or broke off produced no
    /// usage we could account for, so failed attempts are recorded at 0.
    public var costUSD: Double
    /// Wall time of the whole request: attempts plus the waits between them.
    public var latency: Double

    public var succeeded: Bool { response != nil }
    public var inputTokens: Int { response?.inputTokens ?? 0 }
    public var outputTokens: Int { response?.outputTokens ?? 0 }
}

public final class CloudTierClient: Sendable {
    public let config: CloudTierConfig
    public let policy: CloudPolicy
    public let endpoint: CloudEndpoint
    public let breaker: CircuitBreaker
    private let http: HTTPClient
    private let runtime: CloudRuntime

    public init(config: CloudTierConfig, endpoint: CloudEndpoint, policy: CloudPolicy = CloudPolicy(),
                runtime: CloudRuntime = .live) {
        self.config = config
        self.endpoint = endpoint
        self.policy = policy
        self.runtime = runtime
        self.http = HTTPClient(connectTimeout: policy.connectTimeout, requestTimeout: policy.requestTimeout,
                               caFile: endpoint.caFile)
        self.breaker = CircuitBreaker(failureThreshold: policy.breakerFailureThreshold,
                                      cooldown: policy.breakerCooldown, now: runtime.now)
    }

    /// A client whose endpoint comes from the environment variables of the tier's API
    /// (ANTHROPIC_BASE_URL / ANTHROPIC_API_KEY, or OPENAI_BASE_URL / OPENAI_API_KEY).
    public convenience init(config: CloudTierConfig, policy: CloudPolicy = CloudPolicy(),
                            environment get: (String) -> String? = { Environment.get($0) },
                            runtime: CloudRuntime = .live) {
        self.init(config: config, endpoint: CloudEndpoint.fromEnvironment(api: config.api, get: get),
                  policy: policy, runtime: runtime)
    }

    /// Sends one conversation to the tier, retrying per the policy. Never throws: every
    /// fault ends up in the outcome. Blocks the calling thread for at most the policy's
    /// tier budget (about: a retry is only started when it can end within it).
    public func send(system: String, messages: [ChatMessage]) -> TierOutcome {
        let started = Clock.seconds()
        var outcome = TierOutcome(tier: config.name, model: config.model, response: nil, attempts: [],
                                  failure: nil, rejectedByBreaker: false, costUSD: 0, latency: 0)
        guard breaker.tryAcquire() else {
            outcome.rejectedByBreaker = true
            outcome.failure = "tier \(config.name): circuit breaker open, next trial in \(formatSeconds(breaker.remainingCooldown))"
            return outcome
        }
        let request = WireFormat.request(api: config.api, config: config, endpoint: endpoint,
                                         system: system, messages: messages)
        var wait = 0.0
        // Whether the last failure says the tier is unhealthy (counts towards the breaker)
        // rather than that this request was refused (a 4xx the tier answered promptly).
        var tierFault = true
        // Time used so far, counted from the attempts' latencies and the waits asked for
        // (so that a test runtime that does not really sleep counts the same).
        var spent = 0.0
        var outOfBudget = false
        for number in 1...max(1, policy.maxAttempts) {
            if number > 1 && spent + wait + policy.requestTimeout > policy.tierBudget {
                outOfBudget = true
                break
            }
            if wait > 0 { runtime.sleep(wait) }
            spent += wait
            let t0 = Clock.seconds()
            let result: Swift.Result<HTTPResponse, TransportError>
            do { result = .success(try http.post(url: request.url, headers: request.headers, body: request.body)) }
            catch { result = .failure(error) }
            var attempt = Attempt(number: number, waitBefore: wait, latency: Clock.seconds() - t0,
                                  result: .success(status: 0), retryAfter: nil)
            let retryable: Bool
            switch result {
            case .failure(let error):
                attempt.result = .transport(error)
                retryable = error.isRetryable
                tierFault = true
            case .success(let response) where (200..<300).contains(response.status):
                do {
                    let parsed = try WireFormat.parse(api: config.api, body: response.body, requestedModel: config.model)
                    attempt.result = .success(status: response.status)
                    outcome.attempts.append(attempt)
                    outcome.response = parsed
                    outcome.costUSD = config.cost(inputTokens: parsed.inputTokens, outputTokens: parsed.outputTokens)
                    outcome.latency = Clock.seconds() - started
                    breaker.recordSuccess()
                    return outcome
                } catch {
                    // A cut-off or garbled body from a proxy is usually transient.
                    attempt.result = .invalidBody(status: response.status, reason: redact(error.reason))
                    retryable = true
                    tierFault = true
                }
            case .success(let response):
                let message = WireFormat.errorSummary(body: response.body).map(redact)
                attempt.result = .httpError(status: response.status, message: message)
                retryable = Self.isRetryable(status: response.status)
                tierFault = retryable
                if let value = response.header("retry-after") {
                    attempt.retryAfter = parseRetryAfter(value, now: runtime.wallClock())
                }
            }
            outcome.attempts.append(attempt)
            spent += attempt.latency
            if !retryable || number == policy.maxAttempts { break }
            if let asked = attempt.retryAfter {
                // The server knows its own recovery better than our exponential guess.
                wait = min(asked, policy.retryAfterCap)
            } else {
                wait = policy.backoff(afterAttempt: number, unit: runtime.random())
            }
        }
        let last = outcome.attempts.last.map { redact($0.description) } ?? "no attempt"
        let n = outcome.attempts.count
        outcome.failure = "tier \(config.name): \(last)" + (n > 1 ? " (after \(n) attempts)" : "")
            + (outOfBudget ? "; no further attempt: it could end after the \(formatSeconds(policy.tierBudget)) tier budget" : "")
        outcome.latency = Clock.seconds() - started
        if tierFault { breaker.recordFailure() } else { breaker.recordSuccess() }
        return outcome
    }

    /// Statuses worth another attempt: request timeout (408), conflict (409, e.g. a
    /// concurrent-request lock), rate limit (429) and all server errors including
    /// Anthropic's 529 "overloaded". Other 4xx — bad request, bad key, forbidden, not found,
    /// too large — would fail identically however often they were sent.
    public static func isRetryable(status: Int) -> Bool {
        status == 408 || status == 409 || status == 429 || (500...599).contains(status)
    }

    private func redact(_ s: String) -> String { endpoint.apiKey?.redact(s) ?? s }
}
