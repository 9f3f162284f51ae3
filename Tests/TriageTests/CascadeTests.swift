import Foundation
import Synchronization
import Testing
import TriageAnswers
import TriageCascade
import TriageClassifier
import TriageCloud
import TriageJSON
import TriageModel
import TriageRecord
import TriageSystem
import TriageTensors
import TriageTestSupport

/// The cascade end to end: a real classifier (the tiny72 PyTorch checkpoint with the real
/// BERT vocabulary), the real libcurl client, and the loopback test server standing in for
/// the Messages API. The router's thresholds decide which path a query takes, so each test
/// sets them to force the path it checks.
@Suite(.serialized) struct CascadeTests {
    /// tiny72 with a vocabulary, an answer book for its five labels and, optionally, a
    /// calibration that makes one label mean "out of scope".
    static func modelDirectory(outOfScopeEverything: Bool = false) throws -> String {
        let dir = NSTemporaryDirectory() + "triage-cascade-\(UUID().uuidString)"
        try FileSystem.createDirectory(dir)
        let src = Paths.fixtures + "/parity/tiny72"
        for f in ["config.json", "model.safetensors"] { try FileSystem.copyFile(from: src + "/" + f, to: dir + "/" + f) }
        let vocab = try FileSystem.readText(Paths.fixtures + "/tokenizer/vocab.txt").split(separator: "\n").prefix(1000)
        try FileSystem.writeAtomically(dir + "/vocab.txt", text: vocab.joined(separator: "\n") + "\n")
        var intents: [(String, JSONValue)] = []
        for l in ["label_a", "label_b", "label_c", "label_d", "label_e"] {
            intents.append((l, .object([("answer", .string("Edge answer for \(l)."))])))
        }
        let book: JSONValue = .object([("version", 1), ("intents", .object(intents)),
                                       ("out_of_scope", "Sorry, I cannot answer that right now.")])
        try FileSystem.writeAtomically(dir + "/answers.json", text: book.serialized)
        if outOfScopeEverything {
            try FileSystem.writeAtomically(dir + "/triage.json", text: #"{"temperature": 1, "min_confidence": 1.0}"#)
        }
        return dir
    }

    struct Setup {
        let cascade: Cascade
        let server: TestServer
        let store: DecisionStore
        let dir: String
    }

    static func setup(escalate: Bool, outOfScope: Bool = false, script: [TestServer.Behaviour] = [],
                      fallback: TestServer.Behaviour = .ok(), policy: CloudPolicy? = nil, offline: Bool = false,
                      shadow: Bool = false) throws -> Setup {
        let dir = try modelDirectory(outOfScopeEverything: outOfScope)
        let classifier = try Classifier.load(directory: dir, options: .init(threads: 1))
        let book = try AnswerBook.load(path: dir + "/answers.json")
        let server = TestServer(script: script, fallback: fallback)
        var cloudPolicy = policy ?? CloudPolicy()
        if policy == nil {
            cloudPolicy.backoffBase = 0.01
            cloudPolicy.backoffMax = 0.02
            cloudPolicy.requestTimeout = 2
        }
        let endpoint = CloudEndpoint(baseURL: server.baseURL, apiKey: APIKey("sk-test-key"))
        let small = CloudTierClient(config: .small, endpoint: endpoint, policy: cloudPolicy)
        let large = CloudTierClient(config: .large, endpoint: endpoint, policy: cloudPolicy)
        var router = RouterPolicy()
        router.minConfidence = escalate ? 1.0 : 0
        router.reviewBand = 0
        router.answerBand = 0
        router.maxComplexity = 1
        let store = try DecisionStore(path: dir + "/decisions.sqlite")
        var options = CascadeOptions()
        options.offline = offline
        options.shadow = shadow
        options.hashQuery = { store.queryHash($0) }
        let cascade = Cascade(classifier: classifier, answers: BookAnswers(book: book), router: Router(policy: router),
                              small: small, large: large, cache: ResponseCache(), sink: store, options: options,
                              modelVersion: classifier.modelVersion)
        return Setup(cascade: cascade, server: server, store: store, dir: dir)
    }

    struct BookAnswers: EdgeAnswers {
        let book: AnswerBook
        func answer(label: String, query: String) -> String? { book.answer(for: label, query: query)?.text }
        var cannotAnswerMessage: String { book.outOfScopeMessage }
    }

    func ask(_ s: Setup, _ q: String) throws -> Decision {
        var ws = Workspace()
        return try s.cascade.ask(q, workspace: &ws)
    }

    @Test func confidentQueryStaysAtTheEdgeWithNoNetwork() throws {
        let s = try Self.setup(escalate: false)
        defer { s.server.stop() }
        let d = try ask(s, "how do i top up my card")
        #expect(d.route == .edge && d.reason == "optimal_edge")
        #expect(d.answer == "Edge answer for \(d.label).")
        #expect(d.tiers.isEmpty && d.costUSD == 0)
        #expect(s.server.requests.isEmpty)
        #expect(try s.store.count() == 1)
    }

    @Test func lowConfidenceGoesToTheSmallTier() throws {
        let s = try Self.setup(escalate: true)
        defer { s.server.stop() }
        let d = try ask(s, "my card payment was declined")
        #expect(d.route == .small && d.reason == "low_confidence")
        #expect(d.answer == "Your order ships tomorrow.")
        #expect(d.tiers.count == 1 && d.tiers[0].statuses == [200] && d.tiers[0].succeeded)
        #expect(abs(d.costUSD - (12 * 0.25 + 34 * 1.25) / 1e6) < 1e-12)
        let req = try #require(s.server.requests.first)
        #expect(req.path == "/v1/messages" && req.header("x-api-key") == "sk-test-key")
        #expect(req.json?["model"] as? String == CloudTierConfig.small.model)
        #expect(d.latency.cloudMs > 0 && d.latency.totalMs >= d.latency.cloudMs)
        let recorded = try s.store.decisions()
        #expect(recorded.count == 1 && recorded[0].route == .small && recorded[0].tiers[0].statuses == [200])
    }

    @Test func hedgingSmallAnswerEscalatesOnceToTheLargeTier() throws {
        let s = try Self.setup(escalate: true, script: [.ok(text: "I'm not sure, maybe check the app?"), .ok(text: "Large answer.")])
        defer { s.server.stop() }
        let d = try ask(s, "my card payment was declined")
        #expect(d.route == .large && d.reason == "low_answer_confidence" && d.answer == "Large answer.")
        #expect(d.tiers.map(\.tier) == ["small", "large"])
        // 0.85 − 2 × 0.05 (two hedges) − 0.05 (unknown category) = 0.70 < 0.80
        #expect(abs((d.tiers[0].answerConfidence ?? 0) - 0.70) < 1e-9)
        #expect(s.server.requests.map { $0.json?["model"] as? String } == [CloudTierConfig.small.model, CloudTierConfig.large.model])
        let expected = (12 * 0.25 + 34 * 1.25) / 1e6 + (12 * 3.0 + 34 * 15.0) / 1e6
        #expect(abs(d.costUSD - expected) < 1e-12, "an escalated query pays both tiers")
    }

    @Test func maxTokensStopEscalates() throws {
        let s = try Self.setup(escalate: true, script: [.ok(text: "Partial", stopReason: "max_tokens"), .ok(text: "Full.")])
        defer { s.server.stop() }
        let d = try ask(s, "my card payment was declined")
        #expect(d.route == .large)
        #expect(abs((d.tiers[0].answerConfidence ?? 0) - 0.65) < 1e-9)  // 0.85 − 0.15 − 0.05
    }

    @Test func comparisonStartsAtTheLargeTier() throws {
        let s = try Self.setup(escalate: true)
        defer { s.server.stop() }
        let d = try ask(s, "compare a visa card versus a mastercard")
        #expect(d.category == "comparison" && d.route == .large && d.tiers.map(\.tier) == ["large"])
    }

    @Test func retryAfterIsHonoured() throws {
        let s = try Self.setup(escalate: true, script: [.error(status: 429, type: "rate_limit_error", message: "slow down", retryAfter: "1")])
        defer { s.server.stop() }
        let start = Date()
        let d = try ask(s, "my card payment was declined")
        let elapsed = Date().timeIntervalSince(start)
        #expect(d.route == .small && d.tiers[0].statuses == [429, 200])
        #expect(elapsed >= 1 && elapsed < 5, "waited \(elapsed) s")
    }

    @Test func cloudDownReturnsTheEdgeAnswerMarkedAsSuch() throws {
        let s = try Self.setup(escalate: true, fallback: .error(status: 500))
        defer { s.server.stop() }
        let d = try ask(s, "my card payment was declined")
        #expect(d.route == .edge && d.reason == "cloud_unavailable")
        #expect(d.answer == "Edge answer for \(d.label).")
        #expect(d.tiers.map(\.statuses) == [[500, 500, 500], [500, 500, 500]])
        #expect(d.costUSD == 0)
        #expect(try s.store.decisions().first?.reason == "cloud_unavailable")
    }

    @Test func outOfScopeWithTheCloudDownSaysItCannotAnswer() throws {
        let s = try Self.setup(escalate: true, outOfScope: true, fallback: .error(status: 529, type: "overloaded_error", message: "Overloaded"))
        defer { s.server.stop() }
        let d = try ask(s, "what is the weather in paris")
        #expect(d.outOfScope && d.route == Route.none && d.reason == "cloud_unavailable")
        #expect(d.answer == "Sorry, I cannot answer that right now.")
    }

    @Test func clientErrorsAreNotRetried() throws {
        let s = try Self.setup(escalate: true, fallback: .error(status: 401, type: "authentication_error", message: "bad key"))
        defer { s.server.stop() }
        let d = try ask(s, "my card payment was declined")
        #expect(d.tiers.map(\.statuses) == [[401], [401]])
        #expect(d.route == .edge && d.reason == "cloud_unavailable")
    }

    @Test func malformedAndTruncatedBodiesAreFailedAttemptsNotCrashes() throws {
        let s = try Self.setup(escalate: true, script: [.raw(status: 200, body: "{not json"), .truncated])
        defer { s.server.stop() }
        let d = try ask(s, "my card payment was declined")
        #expect(d.route == .small && d.tiers[0].attempts == 3 && d.tiers[0].succeeded)
    }

    @Test func stalledServerIsBoundedByTheTimeout() throws {
        var policy = CloudPolicy()
        policy.requestTimeout = 0.5
        policy.maxAttempts = 2
        policy.backoffBase = 0.01
        let s = try Self.setup(escalate: true, fallback: .stall(seconds: 3), policy: policy)
        defer { s.server.stop() }
        let start = Date()
        let d = try ask(s, "my card payment was declined")
        let elapsed = Date().timeIntervalSince(start)
        #expect(d.reason == "cloud_unavailable")
        #expect(elapsed < 4, "2 tiers × 2 attempts × 0.5 s should stay well under 4 s, took \(elapsed)")
    }

    @Test func breakerOpensAndThenRejectsWithoutSending() throws {
        var policy = CloudPolicy()
        policy.breakerFailureThreshold = 2
        policy.breakerCooldown = 60
        policy.maxAttempts = 1
        let s = try Self.setup(escalate: true, fallback: .error(status: 503), policy: policy)
        defer { s.server.stop() }
        _ = try ask(s, "first")
        _ = try ask(s, "second")
        let sent = s.server.requests.count
        let d = try ask(s, "third")
        #expect(s.server.requests.count == sent, "an open breaker sends nothing")
        let rejected = d.tiers.allSatisfy { $0.rejectedByBreaker }
        #expect(rejected && !d.tiers.isEmpty)
        #expect(d.reason == "cloud_unavailable")
    }

    @Test func repeatedQueryIsACacheHitThatCostsNothing() throws {
        let s = try Self.setup(escalate: true)
        defer { s.server.stop() }
        let a = try ask(s, "My card payment was declined")
        let b = try ask(s, "my card   payment was declined")
        #expect(!a.cached && a.costUSD > 0)
        #expect(b.cached && b.costUSD == 0 && b.answer == a.answer && b.route == a.route && b.tiers.isEmpty)
        #expect(s.server.requests.count == 1)
    }

    @Test func shadowModeAsksTheCloudAndRecordsTheEdgeDecisionBeside() throws {
        let s = try Self.setup(escalate: false, script: [.ok(text: "intent: label_b\nHere is the cloud's answer.")], shadow: true)
        defer { s.server.stop() }
        let d = try ask(s, "how do i top up my card")
        #expect(d.route == .small && d.reason == "shadow" && d.answer == "Here is the cloud's answer.")
        let shadow = try #require(d.shadow)
        #expect(shadow.edgeRoute == .edge && shadow.edgeReason == "optimal_edge" && shadow.cloudLabel == "label_b")
        let system = s.server.requests.first?.json?["system"] as? String ?? ""
        #expect(system.contains("intent:") && system.contains("label_a"))
        let report = try s.store.report()
        #expect(report.json["shadow"]?["queries"]?.intValue == 1)
    }

    @Test func offlineNeverTouchesTheNetwork() throws {
        let s = try Self.setup(escalate: true, offline: true)
        defer { s.server.stop() }
        let d = try ask(s, "my card payment was declined")
        #expect(d.route == Route.none && d.reason == "low_confidence" && d.answer.contains("needs the cloud tier"))
        #expect(s.server.requests.isEmpty)
    }
}

@Suite struct RouterTests {
    @Test func complexityScoreFollowsTheSeedFormula() {
        let r = Router()
        // 40 characters, one sentence of 8 words, p = 0.9, no keywords.
        let text = "why was my card declined at the shop ok?"
        let c = r.complexity(of: text, confidence: 0.9)
        #expect(abs(c.length - 40.0 / 200) < 1e-12)
        #expect(abs(c.syntax - 9.0 / 15) < 1e-12)
        #expect(abs(c.uncertainty - 0.2) < 1e-9)
        #expect(c.emotion == 0)
        #expect(abs(c.total - (0.3 * 0.2 + 0.3 * 0.6 + 0.2 * 0.2)) < 1e-9)
        let angry = r.complexity(of: "This is unacceptable, I am furious and want a manager! Terrible.", confidence: 1)
        #expect(angry.emotion == 1)  // 4 keywords, capped at 3 / 3
    }

    @Test func confidenceBandsAndReasons() {
        let r = Router()
        let calm = ComplexityScore(total: 0.2, length: 0, syntax: 0, uncertainty: 0, emotion: 0)
        #expect(r.edgeVerdict(confidence: 0.97, outOfScope: false, complexity: calm) == .init(answerAtEdge: true, review: false, reason: "optimal_edge"))
        #expect(r.edgeVerdict(confidence: 0.92, outOfScope: false, complexity: calm) == .init(answerAtEdge: true, review: true, reason: "edge_review"))
        #expect(r.edgeVerdict(confidence: 0.85, outOfScope: false, complexity: calm).reason == "low_confidence")
        #expect(r.edgeVerdict(confidence: 0.99, outOfScope: true, complexity: calm).reason == "out_of_scope")
        let busy = ComplexityScore(total: 0.8, length: 1, syntax: 1, uncertainty: 0, emotion: 1)
        #expect(r.edgeVerdict(confidence: 0.99, outOfScope: false, complexity: busy).reason == "high_complexity")
    }

    @Test func taskCategories() {
        #expect(TaskCategory.of("Hello there") == .greeting)
        #expect(TaskCategory.of("hi, can you compare these two cards?") == .comparison)
        #expect(TaskCategory.of("where is my order") == .orderStatus)
        #expect(TaskCategory.of("I am looking for a savings account") == .productSearch)
        #expect(TaskCategory.of("what do you recommend for travel") == .recommendation)
        #expect(TaskCategory.of("how much is the fee") == .faq)
        #expect(TaskCategory.of("translate this into french") == .translation)
        #expect(TaskCategory.of("hiking boots") == .unknown)
        #expect(TaskCategory.comparison.startsAtLargeTier && !TaskCategory.faq.startsAtLargeTier)
    }

    @Test func answerConfidenceCheck() {
        let r = Router()
        #expect(abs(r.answerConfidence(text: "Sure, here you go.", stoppedAtMaxTokens: false, category: .greeting) - 0.95) < 1e-12)
        #expect(abs(r.answerConfidence(text: "Perhaps. I don’t know", stoppedAtMaxTokens: true, category: .discussion) - 0.50) < 1e-12)
        #expect(r.answerConfidence(text: String(repeating: "maybe ", count: 30), stoppedAtMaxTokens: true, category: .comparison) == 0)
    }

    @Test func policyOverridesAreStrict() throws {
        let p = try RouterPolicy().overriding(with: try JSONValue.parse(#"{"min_confidence": 0.8, "escalation_keywords": ["Refund"]}"#))
        #expect(p.minConfidence == 0.8 && p.escalationKeywords == ["refund"])
        #expect(throws: CascadeError.self) { try RouterPolicy().overriding(with: try JSONValue.parse(#"{"min_confidense": 0.8}"#)) }
        #expect(throws: CascadeError.self) { try RouterPolicy().overriding(with: try JSONValue.parse(#"{"min_confidence": 2}"#)) }
    }

    @Test func shadowAnswerParsing() {
        let p = Cascade.parseShadowAnswer("intent: card_arrival\nYour card ships in 3 days.", labels: ["card_arrival"])
        #expect(p.label == "card_arrival" && p.answer == "Your card ships in 3 days.")
        #expect(Cascade.parseShadowAnswer("intent: none\nNot banking.", labels: ["card_arrival"]).label == nil)
        #expect(Cascade.parseShadowAnswer("No intent line", labels: ["x"]).answer == "No intent line")
    }

    @Test func cacheExpiresAndStaysBounded() {
        let clock = Mutex(0.0)
        let cache = ResponseCache(ttl: 300, capacity: 2, historyTurns: 1, now: { clock.withLock { $0 } })
        let k1 = cache.key(query: "a", history: []), k2 = cache.key(query: "b", history: []), k3 = cache.key(query: "c", history: [])
        #expect(cache.key(query: "A ", history: []) == k1)
        #expect(cache.key(query: "a", history: [("user", "x")]) != k1)
        cache.store(k1, answer: "1", route: .small, reason: "r")
        clock.withLock { $0 = 299 }
        #expect(cache.lookup(k1)?.answer == "1")
        clock.withLock { $0 = 301 }
        #expect(cache.lookup(k1) == nil)
        cache.store(k1, answer: "1", route: .small, reason: "r")
        cache.store(k2, answer: "2", route: .small, reason: "r")
        cache.store(k3, answer: "3", route: .small, reason: "r")
        #expect(cache.count == 2 && cache.lookup(k1) == nil)
    }
}

@Suite struct ConfigTests {
    /// The complete example in the repository (and the README) is a valid config that
    /// restates every seed default.
    @Test func exampleConfigParsesToTheSeedDefaults() throws {
        let c = try TriageConfig.load(path: Paths.repository + "/config.example.json")
        let d = TriageConfig()
        #expect(c.policy == d.policy)
        #expect(c.small == d.small && c.large == d.large)
        #expect(c.router == d.router)
        #expect(c.cacheTTL == 300 && c.cacheCapacity == 1000 && c.cacheHistoryTurns == 3 && c.cachePath == nil)
        #expect(c.baseURL == "https://api.anthropic.com")
    }

    @Test func environmentWinsOverTheFileForTheBaseURL() throws {
        var c = TriageConfig()
        c.baseURL = "http://gateway.local:8080/"
        let fromFile = c.endpoint(for: c.small, environment: { _ in nil })
        #expect(fromFile.baseURL == "http://gateway.local:8080")
        let fromEnv = c.endpoint(for: c.small, environment: { $0 == "ANTHROPIC_BASE_URL" ? "http://127.0.0.1:9" : nil })
        #expect(fromEnv.baseURL == "http://127.0.0.1:9")
    }

    @Test func caFileIsCheckedWhenLoadedAndReachesEveryTier() throws {
        let c = try TriageConfig.parse(try JSONValue.parse(#"{"cloud": {"ca_file": "\#(TLSFixtures.caFile)", "max_attempts": 2}}"#))
        #expect(c.caFile == TLSFixtures.caFile && c.policy.maxAttempts == 2)
        #expect(c.endpoint(for: c.small, environment: { _ in nil }).caFile == TLSFixtures.caFile)
        #expect(c.endpoint(for: c.large, environment: { _ in nil }).caFile == TLSFixtures.caFile)
        #expect(TriageConfig().endpoint(for: TriageConfig().small, environment: { _ in nil }).caFile == nil)
        for bad in [#""/nonexistent/ca.pem""#, #""\#(TLSFixtures.directory)""#, "3", #""""#] {
            #expect(throws: CascadeError.self) { try TriageConfig.parse(try JSONValue.parse(#"{"cloud": {"ca_file": \#(bad)}}"#)) }
        }
    }

    @Test func unknownKeysAreErrors() {
        #expect(throws: CascadeError.self) { try TriageConfig.parse(try JSONValue.parse(#"{"clowd": {}}"#)) }
        #expect(throws: (any Error).self) { try TriageConfig.parse(try JSONValue.parse(#"{"small": {"modle": "x"}}"#)) }
        #expect(throws: (any Error).self) { try TriageConfig.parse(try JSONValue.parse(#"{"cache": {"ttl_seconds": -1}}"#)) }
    }
}
