// Tests for the cloud tier: the real libcurl client against the real local HTTP server in
// TestServer.swift. Nothing here talks to the internet.

import TriageTestSupport
import Foundation
import Glibc
import Synchronization
import Testing
import TriageJSON
import TriageSystem
@testable import TriageCloud

let testKey = "sk-ant-test-SECRET-0123456789"

/// Records the waits the retry loop asks for instead of sleeping them, so a test of a
/// 30-second retry-after takes milliseconds.
final class WaitRecorder: Sendable {
    private let waits = Mutex<[Double]>([])
    var recorded: [Double] { waits.withLock { $0 } }
    func record(_ s: Double) { waits.withLock { $0.append(s) } }
}

/// A monotonic clock the test moves by hand.
final class FakeClock: Sendable {
    private let t = Mutex(1000.0)
    var now: Double { t.withLock { $0 } }
    func advance(_ s: Double) { t.withLock { $0 += s } }
}

func fastPolicy(maxAttempts: Int = 3, requestTimeout: Double = 10, threshold: Int = 5, cooldown: Double = 30) -> CloudPolicy {
    CloudPolicy(connectTimeout: 2, requestTimeout: requestTimeout, maxAttempts: maxAttempts, backoffBase: 0.5,
                backoffMax: 8, jitter: .none, retryAfterCap: 30, breakerFailureThreshold: threshold,
                breakerCooldown: cooldown)
}

func makeClient(_ server: TestServer, policy: CloudPolicy = fastPolicy(), config: CloudTierConfig = .small,
                recorder: WaitRecorder = WaitRecorder(), clock: FakeClock? = nil,
                wallClock: (@Sendable () -> Double)? = nil) -> CloudTierClient {
    var runtime = CloudRuntime(sleep: { recorder.record($0) }, random: CloudRuntime.seededRandom(42))
    if let clock { runtime.now = { clock.now } }
    if let wallClock { runtime.wallClock = wallClock }
    return CloudTierClient(config: config, endpoint: CloudEndpoint(baseURL: server.baseURL, apiKey: APIKey(testKey)),
                           policy: policy, runtime: runtime)
}

let conversation = [ChatMessage.user("Where is my order 1234?")]

@Suite struct RequestAndResponse {
    @Test func requestShapeParsedResponseAndCost() throws {
        let server = TestServer(script: [.ok(text: "It ships tomorrow.", inputTokens: 1200, outputTokens: 340)])
        let client = makeClient(server)
        let out = client.send(system: "You are a support agent.", messages: conversation)

        #expect(out.succeeded)
        #expect(out.failure == nil)
        #expect(out.response?.text == "It ships tomorrow.")
        #expect(out.response?.stopReason == "end_turn")
        #expect(out.response?.inputTokens == 1200)
        #expect(out.response?.outputTokens == 340)
        #expect(out.response?.model == "claude-test-model")
        #expect(abs(out.costUSD - (1200 * 0.25 + 340 * 1.25) / 1e6) < 1e-12)
        #expect(out.attempts.count == 1)
        #expect(out.attempts[0].status == 200 && out.attempts[0].waitBefore == 0)
        #expect(out.tier == "small" && out.model == "claude-3-5-haiku-latest")

        let req = try #require(server.requests.first)
        #expect(req.method == "POST")
        #expect(req.path == "/v1/messages")
        #expect(req.header("x-api-key") == testKey)
        #expect(req.header("anthropic-version") == "2023-06-01")
        #expect(req.header("content-type") == "application/json")
        #expect(req.header("expect") == nil)
        let body = try #require(req.json)
        #expect(body["model"] as? String == "claude-3-5-haiku-latest")
        #expect(body["max_tokens"] as? Int == 1024)
        #expect(body["system"] as? String == "You are a support agent.")
        #expect((body["temperature"] as? Double).map { abs($0 - 0.3) < 1e-9 } == true)
        let messages = try #require(body["messages"] as? [[String: Any]])
        #expect(messages.count == 1)
        #expect(messages[0]["role"] as? String == "user")
        #expect(messages[0]["content"] as? String == "Where is my order 1234?")
    }

    @Test func largeTierUsesItsOwnModelLimitsAndPrices() throws {
        let server = TestServer(script: [.ok(inputTokens: 1_000_000, outputTokens: 1_000_000)])
        let out = makeClient(server, config: .large).send(system: "", messages: conversation)
        let body = try #require(server.requests.first?.json)
        #expect(body["model"] as? String == "claude-sonnet-4-5")
        #expect(body["max_tokens"] as? Int == 2048)
        #expect(body["system"] == nil) // empty system prompt is omitted, not sent empty
        #expect(abs(out.costUSD - 18.0) < 1e-9)
    }

    @Test func textBlocksAreConcatenatedAndOtherBlocksIgnored() {
        let body = #"{"model":"m","content":[{"type":"text","text":"Hello, "},{"type":"tool_use","id":"t","name":"x","input":{}},{"type":"text","text":"world."}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":4}}"#
        let server = TestServer(script: [.raw(status: 200, body: body)])
        let out = makeClient(server).send(system: "s", messages: conversation)
        #expect(out.response?.text == "Hello, world.")
        #expect(out.response?.inputTokens == 3 && out.response?.outputTokens == 4)
    }

    @Test func hedgingAnswerAndMaxTokensStopArePassedThrough() {
        let server = TestServer(script: [
            .ok(text: "I'm not sure, maybe it ships tomorrow."),
            .ok(text: "The answer is long and", stopReason: "max_tokens"),
        ])
        let client = makeClient(server)
        let hedge = client.send(system: "s", messages: conversation)
        #expect(hedge.response?.text.lowercased().contains("i'm not sure") == true)
        #expect(hedge.response?.text.contains("maybe") == true)
        #expect(hedge.response?.stoppedAtMaxTokens == false)
        let cut = client.send(system: "s", messages: conversation)
        #expect(cut.response?.stopReason == "max_tokens")
        #expect(cut.response?.stoppedAtMaxTokens == true)
    }

    @Test func historyIsSentInOrder() throws {
        let server = TestServer()
        _ = makeClient(server).send(system: "s", messages: [.user("hi"), .assistant("hello"), .user("order?")])
        let messages = try #require(server.requests.first?.json?["messages"] as? [[String: Any]])
        #expect(messages.map { $0["role"] as? String } == ["user", "assistant", "user"])
        #expect(messages.map { $0["content"] as? String } == ["hi", "hello", "order?"])
    }
}

@Suite struct Retries {
    @Test(arguments: [408, 409, 429, 500, 502, 503, 529])
    func retryableStatusIsRetriedWithExponentialBackoff(status: Int) {
        let server = TestServer(script: [.error(status: status), .error(status: status), .ok()])
        let recorder = WaitRecorder()
        let out = makeClient(server, recorder: recorder).send(system: "s", messages: conversation)
        #expect(out.succeeded)
        #expect(out.attempts.map(\.status) == [status, status, 200])
        #expect(recorder.recorded == [0.5, 1.0]) // jitter .none: base, 2 × base
        #expect(out.attempts.map(\.waitBefore) == [0, 0.5, 1.0])
        #expect(server.requests.count == 3)
        #expect(out.costUSD > 0)
    }

    @Test func attemptsStopAtMaxAttemptsAndFailureCostsNothing() {
        let server = TestServer(fallback: .error(status: 529, type: "overloaded_error", message: "Overloaded"))
        let recorder = WaitRecorder()
        let client = makeClient(server, recorder: recorder)
        let out = client.send(system: "s", messages: conversation)
        #expect(!out.succeeded)
        #expect(out.attempts.count == 3)
        #expect(server.requests.count == 3)
        #expect(out.costUSD == 0)
        #expect(out.failure?.contains("529") == true)
        #expect(out.failure?.contains("overloaded_error: Overloaded") == true)
        #expect(out.failure?.contains("after 3 attempts") == true)
        #expect(recorder.recorded.count == 2)
        #expect(client.breaker.consecutiveFailures == 1) // one request, not three attempts
    }

    @Test(arguments: [400, 401, 403, 404, 413, 422])
    func clientErrorIsNotRetried(status: Int) {
        let server = TestServer(fallback: .error(status: status, type: "invalid_request_error", message: "nope"))
        let recorder = WaitRecorder()
        let client = makeClient(server, recorder: recorder)
        let out = client.send(system: "s", messages: conversation)
        #expect(!out.succeeded)
        #expect(out.attempts.count == 1)
        #expect(out.attempts[0].status == status)
        #expect(server.requests.count == 1)
        #expect(recorder.recorded.isEmpty)
        #expect(out.failure?.contains("HTTP \(status) invalid_request_error: nope") == true)
        // The tier answered promptly; a bad request says nothing about its health.
        #expect(client.breaker.consecutiveFailures == 0)
    }

    @Test func retryAfterSecondsIsHonoured() {
        let server = TestServer(script: [.error(status: 429, type: "rate_limit_error", retryAfter: "2"), .ok()])
        let recorder = WaitRecorder()
        let out = makeClient(server, recorder: recorder).send(system: "s", messages: conversation)
        #expect(out.succeeded)
        #expect(recorder.recorded == [2])
        #expect(out.attempts[0].retryAfter == 2)
        #expect(out.attempts[1].waitBefore == 2)
    }

    @Test func retryAfterIsCapped() {
        let server = TestServer(script: [.error(status: 503, retryAfter: "120"), .ok()])
        let recorder = WaitRecorder()
        let out = makeClient(server, recorder: recorder).send(system: "s", messages: conversation)
        #expect(out.succeeded)
        #expect(out.attempts[0].retryAfter == 120)
        #expect(recorder.recorded == [30])
    }

    @Test func retriesStopAtTheTierBudget() {
        // Waits of 30 s (the capped retry-after), a 10 s request timeout and a 45 s budget:
        // the second attempt fits (0 + 30 + 10 ≤ 45), a third could not (30 + 30 + 10 > 45).
        let server = TestServer(script: [.error(status: 503, retryAfter: "30"), .error(status: 503, retryAfter: "30"), .ok()])
        let recorder = WaitRecorder()
        var policy = fastPolicy()
        policy.tierBudget = 45
        let out = makeClient(server, policy: policy, recorder: recorder).send(system: "s", messages: conversation)
        #expect(!out.succeeded)
        #expect(out.attempts.count == 2)
        #expect(recorder.recorded == [30])
        #expect(out.failure?.hasSuffix("(after 2 attempts); no further attempt: it could end after the 45 s tier budget") == true, "\(out.failure ?? "")")
        // With a 75 s budget the same script gets its third attempt (30 + 30 + 10 ≤ 75).
        let again = TestServer(script: [.error(status: 503, retryAfter: "30"), .error(status: 503, retryAfter: "30"), .ok()])
        let recorder2 = WaitRecorder()
        policy.tierBudget = 75
        let out2 = makeClient(again, policy: policy, recorder: recorder2).send(system: "s", messages: conversation)
        #expect(out2.succeeded)
        #expect(out2.attempts.count == 3)
        #expect(recorder2.recorded == [30, 30])
    }

    @Test func retryAfterHTTPDateIsHonoured() {
        let wall = 1_700_000_000.0
        let server = TestServer(script: [
            .error(status: 429, retryAfter: HTTPDate.format(wall + 7)),
            .error(status: 429, retryAfter: HTTPDate.format(wall - 60)), // in the past: retry now
            .ok(),
        ])
        let recorder = WaitRecorder()
        let out = makeClient(server, recorder: recorder, wallClock: { wall }).send(system: "s", messages: conversation)
        #expect(out.succeeded)
        #expect(recorder.recorded == [7]) // a zero wait is not slept at all
        #expect(out.attempts.map(\.waitBefore) == [0, 7, 0])
    }

    @Test func retryAfterReallySleeps() {
        let server = TestServer(script: [.error(status: 429, retryAfter: "1"), .ok()])
        let client = CloudTierClient(config: .small, endpoint: CloudEndpoint(baseURL: server.baseURL, apiKey: APIKey(testKey)),
                                     policy: fastPolicy())
        let t0 = Clock.seconds()
        let out = client.send(system: "s", messages: conversation)
        let elapsed = Clock.seconds() - t0
        #expect(out.succeeded)
        #expect(out.attempts.count == 2)
        #expect(elapsed >= 1.0 && elapsed < 4.0, "elapsed \(elapsed)")
        #expect(out.latency >= 1.0)
    }

    @Test(arguments: [
        "{not json",
        "",
        "<html>502 Bad Gateway</html>",
        "[1, 2]",
        #"{"type":"message","content":[{"type":"text","text":"no usage"}],"stop_reason":"end_turn"}"#,
        #"{"type":"message","stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}}"#,
        #"{"content":[{"type":"text","text":1}],"usage":{"input_tokens":1,"output_tokens":1}}"#,
        #"{"content":[],"usage":{"input_tokens":-1,"output_tokens":1}}"#,
        #"{"type":"error","error":{"type":"api_error","message":"hidden in a 200"}}"#,
    ])
    func malformedBodyIsAnAttemptErrorAndRetried(body: String) {
        let server = TestServer(script: [.raw(status: 200, body: body), .ok()])
        let out = makeClient(server).send(system: "s", messages: conversation)
        #expect(out.succeeded)
        #expect(out.attempts.count == 2)
        guard case .invalidBody(200, _)? = out.attempts.first?.result else {
            Issue.record("expected an invalid-body attempt, got \(String(describing: out.attempts.first))"); return
        }
    }

    @Test func malformedBodiesExhaustAttempts() {
        let server = TestServer(fallback: .raw(status: 200, body: "{\"content\": [tru"))
        let out = makeClient(server).send(system: "s", messages: conversation)
        #expect(!out.succeeded)
        #expect(out.attempts.count == 3)
        #expect(out.failure?.contains("invalid body") == true)
        #expect(out.costUSD == 0)
    }

    @Test func truncatedBodyIsATransportErrorAndRetried() {
        let server = TestServer(script: [.truncated, .ok()])
        let out = makeClient(server).send(system: "s", messages: conversation)
        #expect(out.succeeded)
        #expect(out.attempts.first?.transportError == .partialBody)
        #expect(out.attempts.count == 2)
    }

    @Test func droppedConnectionIsATransportErrorAndRetried() {
        let server = TestServer(script: [.drop, .drop, .ok()])
        let out = makeClient(server).send(system: "s", messages: conversation)
        #expect(out.succeeded)
        #expect(out.attempts.prefix(2).map(\.transportError) == [.emptyReply, .emptyReply])
        #expect(server.requests.count == 3)
    }

    @Test func resetConnectionIsATransportErrorAndRetried() {
        let server = TestServer(script: [.reset, .ok()])
        let out = makeClient(server).send(system: "s", messages: conversation)
        #expect(out.succeeded)
        #expect(out.attempts.count == 2)
        guard case .connectionDropped? = out.attempts.first?.transportError else {
            Issue.record("got \(String(describing: out.attempts.first))"); return
        }
    }

    @Test func stallIsBoundedByTheRequestTimeout() {
        let server = TestServer(fallback: .stall(seconds: 4))
        let client = makeClient(server, policy: fastPolicy(requestTimeout: 1))
        let t0 = Clock.seconds()
        let out = client.send(system: "s", messages: conversation)
        let elapsed = Clock.seconds() - t0
        #expect(!out.succeeded)
        #expect(out.attempts.count == 3)
        #expect(out.attempts.allSatisfy { $0.transportError == .requestTimeout(seconds: 1) })
        #expect(out.attempts.allSatisfy { $0.latency >= 0.9 && $0.latency < 2.5 })
        #expect(elapsed >= 2.9 && elapsed < 6, "elapsed \(elapsed)")
        #expect(out.failure?.contains("request timed out after 1 s") == true)
    }

    @Test func stallOnAReusedConnectionIsARequestTimeout() {
        let server = TestServer(script: [.ok(), .stall(seconds: 3), .ok()])
        let client = makeClient(server, policy: fastPolicy(requestTimeout: 0.5))
        #expect(client.send(system: "s", messages: conversation).succeeded)
        let out = client.send(system: "s", messages: conversation)
        #expect(out.succeeded)
        #expect(out.attempts.first?.transportError == .requestTimeout(seconds: 0.5))
    }

    @Test func refusedConnectFailsFastAsATransportError() {
        let refusing = RefusingPort()
        let port = refusing.port
        let client = CloudTierClient(config: .small, endpoint: CloudEndpoint(baseURL: "http://127.0.0.1:\(port)", apiKey: APIKey(testKey)),
                                     policy: fastPolicy(maxAttempts: 2),
                                     runtime: CloudRuntime(sleep: { _ in }))
        let t0 = Clock.seconds()
        let out = client.send(system: "s", messages: conversation)
        let elapsed = Clock.seconds() - t0
        #expect(!out.succeeded)
        #expect(out.attempts.count == 2)
        for a in out.attempts {
            guard case .connectFailed? = a.transportError else { Issue.record("got \(a)"); continue }
        }
        #expect(elapsed < 1, "elapsed \(elapsed)")
        withExtendedLifetime(refusing) {}
    }

    @Test func connectTimeoutIsDistinguishedFromRequestTimeout() throws {
        let blackHole = BlackHoleListener()
        let server = TestServer()
        let http = HTTPClient(connectTimeout: 0.5, requestTimeout: 5)
        // A completed request first, so the handle's per-transfer info is known to reset.
        #expect(try http.post(url: server.baseURL + "/", headers: [], body: [1]).status == 200)
        let t0 = Clock.seconds()
        #expect(throws: TransportError.connectTimeout(seconds: 0.5)) {
            _ = try http.post(url: "http://127.0.0.1:\(blackHole.port)/", headers: [], body: [1])
        }
        let elapsed = Clock.seconds() - t0
        #expect(elapsed >= 0.45 && elapsed < 2, "elapsed \(elapsed)")
    }

    @Test func backoffGrowsIsCappedAndJittered() {
        var p = CloudPolicy(backoffBase: 0.5, backoffMax: 8, jitter: .none)
        #expect((1...7).map { p.backoff(afterAttempt: $0, unit: 0.5) } == [0.5, 1, 2, 4, 8, 8, 8])
        p.jitter = .full
        #expect(p.backoff(afterAttempt: 3, unit: 0) == 0)
        #expect(p.backoff(afterAttempt: 3, unit: 0.25) == 0.5)
        p.jitter = .equal
        #expect(p.backoff(afterAttempt: 3, unit: 0) == 1)
        #expect(p.backoff(afterAttempt: 3, unit: 0.5) == 1.5)
        // The seeded source is reproducible and in [0, 1).
        let a = CloudRuntime.seededRandom(7), b = CloudRuntime.seededRandom(7)
        let xs = (0..<100).map { _ in a() }
        #expect(xs == (0..<100).map { _ in b() })
        #expect(xs.allSatisfy { $0 >= 0 && $0 < 1 })
        #expect(Set(xs).count == 100)
    }

    @Test func jitteredWaitsStayWithinTheirBounds() {
        let server = TestServer(fallback: .error(status: 500))
        let recorder = WaitRecorder()
        var policy = fastPolicy(maxAttempts: 4)
        policy.jitter = .full
        let out = makeClient(server, policy: policy, recorder: recorder).send(system: "s", messages: conversation)
        let waits = recorder.recorded
        #expect(waits.count == 3, "\(out)")
        for (i, w) in waits.enumerated() { #expect(w >= 0 && w <= 0.5 * pow(2, Double(i))) }
    }
}

@Suite struct Breaker {
    @Test func closedOpenHalfOpenClosedAndOpenAgain() {
        let clock = FakeClock()
        let server = TestServer(script: [.error(status: 500), .error(status: 500)])
        let client = makeClient(server, policy: fastPolicy(maxAttempts: 1, threshold: 2, cooldown: 10), clock: clock)
        let breaker = client.breaker
        #expect(breaker.state == .closed)

        #expect(!client.send(system: "s", messages: conversation).succeeded)
        #expect(breaker.state == .closed && breaker.consecutiveFailures == 1)
        #expect(!client.send(system: "s", messages: conversation).succeeded)
        #expect(breaker.state == .open)

        // Open: rejected without touching the network.
        let rejected = client.send(system: "s", messages: conversation)
        #expect(rejected.rejectedByBreaker && rejected.attempts.isEmpty && rejected.costUSD == 0)
        #expect(rejected.failure?.contains("circuit breaker open") == true)
        #expect(server.requests.count == 2)

        clock.advance(9.9)
        #expect(client.send(system: "s", messages: conversation).rejectedByBreaker)
        clock.advance(0.1)
        #expect(breaker.state == .halfOpen)

        // The trial succeeds: closed again.
        let trial = client.send(system: "s", messages: conversation)
        #expect(trial.succeeded && !trial.rejectedByBreaker)
        #expect(breaker.state == .closed && breaker.consecutiveFailures == 0)

        // Open again, and a failed trial re-opens for a whole cool-down.
        server.enqueue(.error(status: 503), .error(status: 503), .error(status: 503))
        _ = client.send(system: "s", messages: conversation)
        _ = client.send(system: "s", messages: conversation)
        #expect(breaker.state == .open)
        clock.advance(10)
        #expect(breaker.state == .halfOpen)
        let failedTrial = client.send(system: "s", messages: conversation)
        #expect(!failedTrial.succeeded && !failedTrial.rejectedByBreaker && failedTrial.attempts.count == 1)
        #expect(breaker.state == .open)
        #expect(client.send(system: "s", messages: conversation).rejectedByBreaker)
        clock.advance(10)
        #expect(client.send(system: "s", messages: conversation).succeeded)
        #expect(breaker.state == .closed)
        #expect(server.requests.count == 7)
    }

    @Test func halfOpenAdmitsOneTrialAtATime() {
        let clock = FakeClock()
        let b = CircuitBreaker(failureThreshold: 1, cooldown: 5, now: { clock.now })
        #expect(b.tryAcquire())
        b.recordFailure()
        #expect(b.state == .open)
        #expect(!b.tryAcquire())
        #expect(abs(b.remainingCooldown - 5) < 1e-9)
        clock.advance(5)
        #expect(b.tryAcquire())   // the trial
        #expect(!b.tryAcquire())  // everyone else waits for its verdict
        b.recordSuccess()
        #expect(b.state == .closed)
        #expect(b.tryAcquire() && b.tryAcquire())
    }

    @Test func successResetsTheFailureCount() {
        let b = CircuitBreaker(failureThreshold: 3, cooldown: 5, now: { 0 })
        b.recordFailure(); b.recordFailure()
        b.recordSuccess()
        b.recordFailure(); b.recordFailure()
        #expect(b.state == .closed)
        b.recordFailure()
        #expect(b.state == .open)
    }

    @Test func breakerIsSafeUnderConcurrentUse() async {
        let b = CircuitBreaker(failureThreshold: 1_000_000, cooldown: 5)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask { for _ in 0..<1000 { if b.tryAcquire() { b.recordFailure() } } }
            }
        }
        #expect(b.consecutiveFailures == 8000)
    }
}

@Suite struct Connections {
    @Test func sequentialRequestsReuseOneConnection() {
        let server = TestServer()
        let client = makeClient(server)
        #expect(client.send(system: "s", messages: conversation).succeeded)
        #expect(client.send(system: "s", messages: conversation).succeeded)
        #expect(server.requests.count == 2)
        #expect(server.connections == 1)
    }

    @Test func httpClientReportsReuseAndFindsHeadersCaseInsensitively() throws {
        let server = TestServer(script: [.raw(status: 201, body: "{}", headers: [("X-Request-Id", "abc"), ("retry-after", "3")])])
        let http = HTTPClient(connectTimeout: 2, requestTimeout: 5)
        let first = try http.post(url: server.baseURL + "/anything", headers: [HTTPHeader("a", "b")], body: Array("{}".utf8))
        #expect(first.status == 201)
        #expect(first.header("x-request-id") == "abc")
        #expect(first.header("RETRY-AFTER") == "3")
        #expect(first.header("missing") == nil)
        #expect(first.bodyText == "{}")
        #expect(first.newConnections == 1)
        let second = try http.post(url: server.baseURL + "/anything", headers: [], body: [])
        #expect(second.newConnections == 0)
        #expect(server.connections == 1)
        #expect(server.requests[1].body.isEmpty)
    }

    @Test func headerValuesCannotInjectHeaders() throws {
        let server = TestServer()
        let http = HTTPClient()
        _ = try http.post(url: server.baseURL + "/x", headers: [HTTPHeader("x-api-key", "abc\r\nX-Injected: 1\n")], body: [1])
        let req = try #require(server.requests.first)
        #expect(req.header("x-injected") == nil)
        #expect(req.header("x-api-key") == "abcX-Injected: 1")
    }

    @Test func concurrentSendsOnOneClientAllSucceed() async {
        let server = TestServer()
        let client = makeClient(server)
        let results = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<6 { group.addTask { client.send(system: "s", messages: conversation).succeeded } }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results == Array(repeating: true, count: 6))
        #expect(server.requests.count == 6)
    }

    @Test func nonHTTPSchemesAreRefused() {
        let client = CloudTierClient(config: .small, endpoint: CloudEndpoint(baseURL: "file:///etc", apiKey: nil),
                                     policy: fastPolicy(), runtime: CloudRuntime(sleep: { _ in }))
        let out = client.send(system: "s", messages: conversation)
        #expect(!out.succeeded)
        #expect(out.attempts.count == 1) // not retryable
        guard case .invalidURL? = out.attempts.first?.transportError else {
            Issue.record("got \(String(describing: out.attempts.first))"); return
        }
    }
}

/// HTTPS against the test server with real certificates: verification is on, a private
/// authority can be trusted through `caFile`, and nothing else gets through.
@Suite struct TLS {
    func client(_ server: TestServer, caFile: String?) -> CloudTierClient {
        CloudTierClient(config: .small, endpoint: CloudEndpoint(baseURL: server.baseURL, apiKey: APIKey(testKey), caFile: caFile),
                        policy: fastPolicy(), runtime: CloudRuntime(sleep: { _ in }))
    }

    /// The server counts a refused handshake when its SSL_accept returns, which can be just
    /// after the client has given up.
    func waitForHandshakeFailures(_ server: TestServer, _ n: Int) -> Int {
        let deadline = Clock.seconds() + 5
        while server.handshakesFailed < n && Clock.seconds() < deadline { usleep(10_000) }
        return server.handshakesFailed
    }

    @Test func aTrustedPrivateAuthorityWorksOverOneReusedConnection() throws {
        let server = TestServer(fallback: .ok(text: "Over TLS."), tls: try TLSFixtures.server())
        defer { server.stop() }
        #expect(server.baseURL.hasPrefix("https://127.0.0.1:"))
        let c = client(server, caFile: TLSFixtures.caFile)
        for _ in 0..<3 {
            let out = c.send(system: "s", messages: conversation)
            #expect(out.succeeded, "\(out.attempts)")
            #expect(out.response?.text == "Over TLS.")
        }
        // Keep-alive holds over TLS too: one handshake for three requests.
        #expect(server.connections == 1)
        #expect(server.requests.count == 3)
        #expect(server.requests.first?.header("x-api-key") == testKey)
    }

    @Test func anAuthorityThatDidNotSignTheCertificateRefusesItAndTheKeyNeverLeaves() throws {
        let server = TestServer(tls: try TLSFixtures.server())
        defer { server.stop() }
        let out = client(server, caFile: TLSFixtures.otherCAFile).send(system: "s", messages: conversation)
        #expect(!out.succeeded)
        #expect(out.attempts.count == 1) // a certificate fails the same way every time: no retry
        guard case .tls(let message)? = out.attempts.first?.transportError else {
            Issue.record("got \(out.attempts)"); return
        }
        #expect(message.lowercased().contains("certificate"), "\(message)")
        #expect(waitForHandshakeFailures(server, 1) == 1)
        #expect(server.requests.isEmpty)
    }

    /// The default: the system's store, which knows nothing of the test authority (or, on a
    /// machine without a CA bundle, cannot be loaded — a TLS error just the same).
    @Test func theSystemStoreDoesNotTrustTheTestAuthority() throws {
        let server = TestServer(tls: try TLSFixtures.server())
        defer { server.stop() }
        let out = client(server, caFile: nil).send(system: "s", messages: conversation)
        #expect(!out.succeeded && out.attempts.count == 1)
        guard case .tls? = out.attempts.first?.transportError else { Issue.record("got \(out.attempts)"); return }
        #expect(server.requests.isEmpty)
    }

    @Test func aCertificateForAnotherNameIsRefusedEvenFromTheTrustedAuthority() throws {
        let server = TestServer(tls: try TLSFixtures.wrongName())
        defer { server.stop() }
        let out = client(server, caFile: TLSFixtures.caFile).send(system: "s", messages: conversation)
        #expect(!out.succeeded && out.attempts.count == 1)
        guard case .tls(let message)? = out.attempts.first?.transportError else {
            Issue.record("got \(out.attempts)"); return
        }
        #expect(message.contains("127.0.0.1"), "\(message)")
        // libcurl checks the name once the handshake is done, before it sends a request byte.
        #expect(server.requests.isEmpty)
    }

    @Test func anUnreadableAuthorityFileIsATLSErrorNotAnInsecureFallback() throws {
        let server = TestServer(tls: try TLSFixtures.server())
        defer { server.stop() }
        let http = HTTPClient(connectTimeout: 2, requestTimeout: 5, caFile: "/nonexistent/ca.pem")
        #expect {
            _ = try http.post(url: server.baseURL + "/", headers: [], body: [1])
        } throws: { error in
            guard let e = error as? TransportError, case .tls = e, !e.isRetryable else { return false }
            return true
        }
        #expect(server.requests.isEmpty)
    }
}

@Suite struct Secrets {
    @Test func apiKeyNeverAppearsInDescriptionsOrErrors() {
        let server = TestServer(fallback: .unauthorizedEchoingKey)
        let client = makeClient(server)
        let out = client.send(system: "s", messages: conversation)
        #expect(server.requests.first?.header("x-api-key") == testKey) // it was sent…
        #expect(out.attempts.count == 1)
        var texts = [out.failure ?? "", String(describing: out), String(reflecting: out), "\(out.attempts)",
                     String(describing: client.endpoint), String(reflecting: client.endpoint)]
        var dumped = ""
        dump(client.endpoint, to: &dumped)
        texts.append(dumped)
        let key = APIKey(testKey)!
        texts += [key.description, key.debugDescription, "\(key)", String(reflecting: key)]
        for text in texts { #expect(!text.contains("SECRET"), "leaked in: \(text)") }
        #expect(out.failure?.contains("authentication_error: invalid x-api-key [redacted]") == true)

        // Transport errors carry libcurl's messages; they must not carry the key either.
        let refusing = RefusingPort(); let port = refusing.port
        let down = CloudTierClient(config: .small, endpoint: CloudEndpoint(baseURL: "http://127.0.0.1:\(port)", apiKey: key),
                                   policy: fastPolicy(maxAttempts: 1)).send(system: "s", messages: conversation)
        #expect(down.failure.map { !$0.contains("SECRET") } == true)
        #expect(!String(describing: down).contains("SECRET"))
        withExtendedLifetime(refusing) {}
    }
}

@Suite struct Configuration {
    @Test func endpointFromEnvironment() {
        let env1: [String: String] = [:]
        let e1 = CloudEndpoint.fromEnvironment(get: { env1[$0] })
        #expect(e1.baseURL == "https://api.anthropic.com" && e1.apiKey == nil)

        let env2 = ["ANTHROPIC_BASE_URL": "http://gateway.local:8080/", "ANTHROPIC_API_KEY": "  k-123\n"]
        let e2 = CloudEndpoint.fromEnvironment(get: { env2[$0] })
        #expect(e2.baseURL == "http://gateway.local:8080")
        #expect(e2.apiKey?.value == "k-123")
        #expect(e2.description == "http://gateway.local:8080 (key set)")

        let env3 = ["ANTHROPIC_API_KEY": "   ", "OPENAI_BASE_URL": "http://llm:8000", "OPENAI_API_KEY": "o-1"]
        #expect(CloudEndpoint.fromEnvironment(get: { env3[$0] }).apiKey == nil)
        let e3 = CloudEndpoint.fromEnvironment(api: .openAIChat, get: { env3[$0] })
        #expect(e3.baseURL == "http://llm:8000" && e3.apiKey?.value == "o-1")
    }

    @Test func seedDefaults() {
        #expect(CloudTierConfig.small.model == "claude-3-5-haiku-latest")
        #expect(CloudTierConfig.small.maxTokens == 1024 && CloudTierConfig.small.temperature == 0.3)
        #expect(CloudTierConfig.large.model == "claude-sonnet-4-5")
        #expect(CloudTierConfig.large.maxTokens == 2048 && CloudTierConfig.large.temperature == 0.5)
        #expect(abs(CloudTierConfig.small.cost(inputTokens: 1_000_000, outputTokens: 1_000_000) - 1.5) < 1e-12)
        #expect(abs(CloudTierConfig.large.cost(inputTokens: 1_000_000, outputTokens: 1_000_000) - 18) < 1e-12)
        let p = CloudPolicy()
        #expect(p.connectTimeout == 5 && p.requestTimeout == 10 && p.maxAttempts == 3)
        #expect(p.backoffBase == 0.5 && p.backoffMax == 8 && p.retryAfterCap == 30)
        #expect(p.breakerFailureThreshold == 5 && p.breakerCooldown == 30 && p.jitter == .full)
    }

    @Test func overridesFromJSON() throws {
        let tier = try CloudTierConfig.small.overriding(with: JSONValue.parse(#"{"model":"my-model","max_tokens":64,"api":"openai","output_usd_per_mtok":2}"#))
        #expect(tier.model == "my-model" && tier.maxTokens == 64 && tier.api == .openAIChat)
        #expect(tier.outputUSDPerMTok == 2 && tier.inputUSDPerMTok == 0.25 && tier.temperature == 0.3)
        #expect(throws: CloudConfigError.self) { try CloudTierConfig.small.overriding(with: JSONValue.parse(#"{"max_token":5}"#)) }
        #expect(throws: CloudConfigError.self) { try CloudTierConfig.small.overriding(with: JSONValue.parse(#"{"max_tokens":0}"#)) }
        let policy = try CloudPolicy().overriding(with: JSONValue.parse(#"{"max_attempts":5,"jitter":"equal","request_timeout":2.5}"#))
        #expect(policy.maxAttempts == 5 && policy.jitter == .equal && policy.requestTimeout == 2.5)
        #expect(throws: CloudConfigError.self) { try CloudPolicy().overriding(with: JSONValue.parse(#"{"jitter":"some"}"#)) }
        #expect(try CloudPolicy().overriding(with: JSONValue.parse(#"{"tier_budget":20}"#)).tierBudget == 20)
        #expect(throws: CloudConfigError.self) { try CloudPolicy().overriding(with: JSONValue.parse(#"{"tier_budget":0}"#)) }
    }

    @Test func retryAfterValues() {
        let now = 784_111_777.0 // Sun, 06 Nov 1994 08:49:37 GMT
        #expect(parseRetryAfter("120", now: now) == 120)
        #expect(parseRetryAfter(" 1.5 ", now: now) == 1.5)
        #expect(parseRetryAfter("0", now: now) == 0)
        #expect(parseRetryAfter("-3", now: now) == nil)
        #expect(parseRetryAfter("soon", now: now) == nil)
        #expect(parseRetryAfter("", now: now) == nil)
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT") == now)
        #expect(HTTPDate.parse("Sunday, 06-Nov-94 08:49:37 GMT") == now)
        #expect(HTTPDate.parse("Sun Nov  6 08:49:37 1994") == now)
        #expect(parseRetryAfter("Sun, 06 Nov 1994 08:50:07 GMT", now: now) == 30)
        #expect(parseRetryAfter("Sun, 06 Nov 1994 08:00:00 GMT", now: now) == 0)
        #expect(HTTPDate.parse("Thu, 29 Feb 2024 23:59:59 GMT") == 1_709_251_199)
        #expect(HTTPDate.parse("Thu, 30 Feb 2024 00:00:00 GMT") == nil)
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 25:49:37 GMT") == nil)
        #expect(HTTPDate.parse("Sun, 06 Foo 1994 08:49:37 GMT") == nil)
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 PST") == nil)
        #expect(HTTPDate.format(now) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDate.format(0) == "Thu, 01 Jan 1970 00:00:00 GMT")
        // Round trip across a range of dates, including leap days and the year 2000.
        for t in stride(from: 0.0, to: 4_102_444_800, by: 86_400 * 37 + 3_607) {
            #expect(HTTPDate.parse(HTTPDate.format(t)) == t)
        }
    }
}

@Suite struct OpenAICompatible {
    @Test func chatCompletionsRequestAndResponse() throws {
        let body = #"{"id":"c1","object":"chat.completion","model":"llama-3-8b","choices":[{"index":0,"message":{"role":"assistant","content":"It ships tomorrow."},"finish_reason":"length"}],"usage":{"prompt_tokens":20,"completion_tokens":7,"total_tokens":27}}"#
        let server = TestServer(script: [.raw(status: 200, body: body)])
        var config = CloudTierConfig.small
        config.api = .openAIChat
        config.model = "llama-3-8b"
        let out = makeClient(server, config: config).send(system: "Be brief.", messages: conversation)
        #expect(out.response == CompletionResponse(text: "It ships tomorrow.", stopReason: "length", inputTokens: 20, outputTokens: 7, model: "llama-3-8b"))
        #expect(out.response?.stoppedAtMaxTokens == true)
        #expect(abs(out.costUSD - (20 * 0.25 + 7 * 1.25) / 1e6) < 1e-15)

        let req = try #require(server.requests.first)
        #expect(req.path == "/v1/chat/completions")
        #expect(req.header("authorization") == "Bearer \(testKey)")
        #expect(req.header("x-api-key") == nil)
        let json = try #require(req.json)
        #expect(json["model"] as? String == "llama-3-8b")
        #expect(json["max_tokens"] as? Int == 1024)
        let messages = try #require(json["messages"] as? [[String: Any]])
        #expect(messages.map { $0["role"] as? String } == ["system", "user"])
        #expect(messages.first?["content"] as? String == "Be brief.")
    }

    @Test func openAIErrorBodyIsSurfacedAndMissingChoicesIsInvalid() {
        let server = TestServer(script: [
            .raw(status: 200, body: #"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}"#),
            .raw(status: 400, body: #"{"error":{"message":"context too long","type":"invalid_request_error","code":null}}"#),
        ])
        var config = CloudTierConfig.small
        config.api = .openAIChat
        let out = makeClient(server, config: config).send(system: "", messages: conversation)
        #expect(out.attempts.count == 2)
        guard case .invalidBody? = out.attempts.first?.result else { Issue.record("got \(out.attempts)"); return }
        #expect(out.failure?.contains("HTTP 400 invalid_request_error: context too long") == true)
        #expect(server.requests.first?.json?["messages"].map { ($0 as? [[String: Any]])?.count } == 1)
    }
}
