import TriageClassifier
import TriageCloud
import TriageModel
import TriageSystem

/// What the edge knows how to say: an answer per in-scope intent, and what to say when
/// nothing can answer. The answer book implements this.
public protocol EdgeAnswers: Sendable {
    func answer(label: String, query: String) -> String?
    var cannotAnswerMessage: String { get }
}

public struct CascadeOptions: Sendable {
    /// No network at all: confident in-scope queries are answered at the edge, the others
    /// are told plainly that they need the cloud tier.
    public var offline = false
    /// Everything goes to the cloud; the edge decision is recorded beside it.
    public var shadow = false
    /// Keep the query text in the record (otherwise only a salted hash).
    public var recordText = false
    /// The edge's own cost per query, for the accounts (0 by default).
    public var edgeCostUSD = 0.0
    /// Share of plain, confident edge answers queued for review at random (review.sample_rate).
    public var reviewSampleRate = 0.02
    /// Keep the text of queries queued for review even without recordText (review.keep_text).
    public var reviewKeepText = true
    /// Uniform in [0, 1): the draw for the review sample (a test can fix it).
    public var random: @Sendable () -> Double = { Double.random(in: 0..<1) }
    /// The query hash kept in the record (the record's salted hash, so repeats can be counted).
    public var hashQuery: @Sendable (String) -> String = { SHA256.hex($0) }
    public var systemPrompt = """
        You are the support assistant of a bank's mobile app. Answer the customer's question \
        accurately and concisely, in plain language, with the steps to take in the app. If the \
        question is not about banking, answer it helpfully and briefly.
        """
    public init() {}
}

/// A candidate edge model beside the primary: `share` 0 runs it in shadow, a share in (0, 1]
/// lets it answer that fraction of the queries, picked by a stable hash of the query text
/// (a repeated question goes the same way).
public struct CandidateModel: Sendable {
    public let classifier: Classifier
    public let share: Double
    public let modelVersion: String
    public init(classifier: Classifier, share: Double, modelVersion: String) {
        self.classifier = classifier; self.share = max(0, min(1, share)); self.modelVersion = modelVersion
    }

    /// Whether the candidate answers this query: the first 8 bytes of SHA-256 of the text as
    /// a number in [0, 1), below the share.
    public func serves(_ query: String) -> Bool {
        guard share > 0 else { return false }
        let digest = SHA256.hash(Array(query.utf8))
        let value = digest.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return Double(value >> 11) / Double(1 << 53) < share
    }
}

/// The cascade: the edge classifier first, then the small cloud tier, then the large one.
/// One call to `ask` makes one decision, records it (before returning), and never throws
/// for a cloud failure: a query that nothing can answer is still a handled query.
public final class Cascade: Sendable {
    public let classifier: Classifier
    public let answers: EdgeAnswers
    public let router: Router
    public let small: CloudTierClient?
    public let large: CloudTierClient?
    public let cache: ResponseCache
    public let sink: DecisionSink?
    public let options: CascadeOptions
    public let modelVersion: String
    public let candidate: CandidateModel?
    /// Why the cloud cannot be used at all (no key for the public API, --offline), if so.
    public let cloudUnavailableReason: String?

    public init(classifier: Classifier, answers: EdgeAnswers, router: Router, small: CloudTierClient?,
                large: CloudTierClient?, cache: ResponseCache, sink: DecisionSink?, options: CascadeOptions,
                modelVersion: String, candidate: CandidateModel? = nil) {
        self.candidate = candidate
        self.classifier = classifier; self.answers = answers; self.router = router; self.small = small
        self.large = large; self.cache = cache; self.sink = sink; self.options = options; self.modelVersion = modelVersion
        if options.offline {
            cloudUnavailableReason = "offline"
        } else if small == nil && large == nil {
            cloudUnavailableReason = "no cloud tier configured"
        } else if let tier = small ?? large, tier.endpoint.apiKey == nil,
                  tier.endpoint.baseURL == CloudEndpoint.anthropicDefaultBaseURL || tier.endpoint.baseURL == CloudEndpoint.openAIDefaultBaseURL {
            cloudUnavailableReason = "no API key (set ANTHROPIC_API_KEY)"
        } else {
            cloudUnavailableReason = nil
        }
    }

    public func ask(_ query: String, history: [ChatMessage] = [], workspace: inout Workspace) throws -> Decision {
        let start = Clock.seconds()
        // The edge: tokenize, classify, decide.
        let encoded = classifier.encode([query])
        let tokenized = Clock.seconds()
        let output = try classifier.model.forward(encoded, workspace: &workspace)
        let edge = classifier.decide(logits: Array(output.logits(0)), tokenCount: encoded.lengths[0])
        let inferred = Clock.seconds()
        var candidateEdge: (Classification, Double)? = nil
        if let candidate {
            let c = candidate.classifier
            let e = c.encode([query])
            let out = try c.model.forward(e, workspace: &workspace)
            candidateEdge = (c.decide(logits: Array(out.logits(0)), tokenCount: e.lengths[0]), (Clock.seconds() - inferred) * 1e3)
        }
        return try answer(query, history: history, edge: edge, candidateEdge: candidateEdge, startedAt: start,
                          tokenizeMs: (tokenized - start) * 1e3, inferenceMs: (inferred - tokenized) * 1e3)
    }

    /// The decision once the edge classification of `query` is known: a server runs the
    /// forward pass in a shared batch and the rest (routing, cloud, record) here.
    /// `startedAt` is the `Clock.seconds()` the query arrived, for the total latency.
    /// `candidateEdge`: the candidate model's classification of the same query and its
    /// milliseconds, when a candidate is configured.
    public func answer(_ query: String, history: [ChatMessage] = [], edge primaryEdge: Classification,
                       candidateEdge: (Classification, Double)? = nil, startedAt start: Double,
                       tokenizeMs: Double, inferenceMs primaryMs: Double) throws -> Decision {
        let routing = Clock.seconds()
        // On a canary share the candidate answers its part of the queries; the other model's
        // view is recorded beside the decision either way.
        var edge = primaryEdge, inferenceMs = primaryMs, modelVersion = self.modelVersion
        var other: (Classification, Double, String, Bool)? = nil
        if let candidate, let (candidateResult, candidateMs) = candidateEdge {
            if candidate.serves(query) {
                other = (primaryEdge, primaryMs, self.modelVersion, true)
                (edge, inferenceMs, modelVersion) = (candidateResult, candidateMs, candidate.modelVersion)
            } else {
                other = (candidateResult, candidateMs, candidate.modelVersion, false)
            }
        }
        let complexity = router.complexity(of: query, confidence: Double(edge.confidence))
        let verdict = router.edgeVerdict(confidence: Double(edge.confidence), outOfScope: edge.outOfScope,
                                         outOfScopeScore: Double(edge.outOfScopeScore),
                                         outOfScopeDistance: edge.outOfScopeDistance.map(Double.init), complexity: complexity)
        let category = TaskCategory.of(query)
        let edgeMs = inferenceMs + (Clock.seconds() - routing) * 1e3

        var d = Decision(
            timestamp: Clock.unixTime(), modelVersion: modelVersion, route: .edge, reason: verdict.reason,
            label: edge.label, confidence: Double(edge.confidence), outOfScope: edge.outOfScope, complexity: complexity,
            category: category.rawValue, tiers: [], costUSD: 0,
            latency: StageLatency(tokenizeMs: tokenizeMs, edgeMs: edgeMs),
            cached: false, review: false, queryText: options.recordText ? query : nil,
            queryHash: options.hashQuery(query), answer: "", shadow: nil)
        let edgeAnswer = edge.outOfScope ? nil : answers.answer(label: edge.label, query: query)
        if let (result, ms, version, candidateServed) = other {
            let c = router.complexity(of: query, confidence: Double(result.confidence))
            let v = router.edgeVerdict(confidence: Double(result.confidence), outOfScope: result.outOfScope, complexity: c)
            let answerable = !result.outOfScope && answers.answer(label: result.label, query: query) != nil
            d.candidate = CandidateResult(
                modelVersion: version, label: result.label, confidence: Double(result.confidence), outOfScope: result.outOfScope,
                route: v.answerAtEdge && answerable ? .edge : (category.startsAtLargeTier ? .large : .small),
                reason: v.reason, candidateServed: candidateServed, edgeMs: ms)
        }

        if verdict.answerAtEdge && !options.shadow, let edgeAnswer {
            d.route = .edge
            d.review = verdict.review
            d.answer = edgeAnswer
            d.costUSD = options.edgeCostUSD
        } else if let why = cloudUnavailableReason {
            unavailable(&d, edgeAnswer: edgeAnswer, because: why)
        } else {
            escalate(&d, query: query, history: history, category: category, verdict: verdict, edgeAnswer: edgeAnswer)
        }
        d.reviewReason = reviewReason(d)
        if d.reviewReason != nil && options.reviewKeepText { d.reviewText = query }
        d.latency.totalMs = (Clock.seconds() - start) * 1e3
        try sink?.record(d)
        return d
    }

    /// What puts a decision in the review queue: the doubtful ones always, a random sample
    /// of the plain edge answers and of the small tier's answers so that their accuracy is
    /// measured too.
    func reviewReason(_ d: Decision) -> ReviewReason? {
        guard let stratum = ReviewReason.stratum(of: d) else { return nil }
        if stratum != .sample { return stratum }
        // Plain edge answers and small-tier answers: a random share measures each without bias.
        return options.reviewSampleRate > 0 && options.random() < options.reviewSampleRate ? .sample : nil
    }

    /// No cloud at all: the edge answer if it has one, else a plain "needs the cloud tier".
    func unavailable(_ d: inout Decision, edgeAnswer: String?, because why: String) {
        if options.offline {
            // Keep the escalation reason: the record should say why the cloud was needed.
            d.route = .none
            d.answer = "This question needs the cloud tier (\(d.reason.replacingOccurrences("_", " "))), which is off: triage runs with --offline."
            return
        }
        fallBack(&d, edgeAnswer: edgeAnswer)
        d.answer += d.route == .none ? " (\(why))" : ""
    }

    /// When no tier could answer: the edge's answer, marked as such, or for an out-of-scope
    /// query a clear "cannot answer now".
    func fallBack(_ d: inout Decision, edgeAnswer: String?) {
        d.reason = "cloud_unavailable"
        if let edgeAnswer, !d.outOfScope {
            d.route = .edge
            d.answer = edgeAnswer
            d.review = true
        } else {
            d.route = .none
            d.answer = answers.cannotAnswerMessage
        }
    }

    func escalate(_ d: inout Decision, query: String, history: [ChatMessage], category: TaskCategory,
                  verdict: Router.EdgeVerdict, edgeAnswer: String?) {
        let firstLarge = category.startsAtLargeTier
        if options.shadow {
            d.shadow = ShadowComparison(
                edgeRoute: verdict.answerAtEdge && edgeAnswer != nil ? .edge : (firstLarge ? .large : .small),
                edgeReason: verdict.reason, cloudLabel: nil)
            d.reason = "shadow"
        }
        let key = cache.key(query: query, history: history.map { ($0.role, $0.content) })
        if !options.shadow, let hit = cache.lookup(key) {
            d.route = hit.route
            d.answer = hit.answer
            d.cached = true
            return
        }
        // The same turns as the cache key: an answer is reused only in the context it was given in.
        let messages = Array(history.suffix(cache.historyTurns)) + [.user(query)]
        let system = options.shadow ? shadowPrompt() : options.systemPrompt
        var tiers: [(CloudTierClient, Route)] = []
        if !firstLarge, let small { tiers.append((small, .small)) }
        if let large { tiers.append((large, .large)) }
        if tiers.isEmpty, let small { tiers.append((small, .small)) }

        var cloudMs = 0.0
        for (index, (client, route)) in tiers.enumerated() {
            let outcome = client.send(system: system, messages: messages)
            cloudMs += outcome.latency * 1e3
            var call = TierCall(
                tier: client.config.name, model: outcome.model,
                statuses: outcome.attempts.map { $0.status ?? 0 }, inputTokens: outcome.inputTokens,
                outputTokens: outcome.outputTokens, costUSD: outcome.costUSD, latencyMs: outcome.latency * 1e3,
                succeeded: outcome.succeeded, rejectedByBreaker: outcome.rejectedByBreaker, answerConfidence: nil,
                error: outcome.failure)
            d.costUSD += outcome.costUSD
            guard let response = outcome.response else {
                d.tiers.append(call)
                continue  // this tier failed after its retries: try the next one
            }
            var text = response.text
            if options.shadow {
                let parsed = Self.parseShadowAnswer(text, labels: classifier.labels.filter { !classifier.calibration.isOutOfScope($0) })
                d.shadow?.cloudLabel = parsed.label
                text = parsed.answer
            }
            let isLast = index == tiers.count - 1
            if route == .small {
                let confidence = router.answerConfidence(text: text, stoppedAtMaxTokens: response.stoppedAtMaxTokens,
                                                         category: category)
                call.answerConfidence = confidence
                d.tiers.append(call)
                if confidence < router.policy.answerConfidenceThreshold && !isLast {
                    if !options.shadow { d.reason = "low_answer_confidence" }
                    continue  // one escalation to the large tier
                }
            } else {
                d.tiers.append(call)
            }
            d.route = route
            d.answer = text
            d.latency.cloudMs = cloudMs
            if !options.shadow { cache.store(key, answer: text, route: route, reason: d.reason) }
            return
        }
        d.latency.cloudMs = cloudMs
        fallBack(&d, edgeAnswer: edgeAnswer)
    }

    func shadowPrompt() -> String {
        options.systemPrompt + "\n\nBefore the answer, write one line \"intent: <label>\" naming which of these intents the question is, or \"intent: none\": "
            + classifier.labels.filter { !classifier.calibration.isOutOfScope($0) }.joined(separator: ", ")
    }

    /// Splits "intent: <label>" off the first line of a shadow-mode answer.
    public static func parseShadowAnswer(_ text: String, labels: [String]) -> (label: String?, answer: String) {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard let first = lines.first?.trimmingCharacters(in: " \t\r*"),
              first.lowercased().hasPrefix("intent:") else { return (nil, text) }
        let value = first.dropFirst("intent:".count).trimmingCharacters(in: " \t`\"'.")
        lines.removeFirst()
        let answer = lines.joined(separator: "\n").trimmingCharacters(in: " \n")
        return (labels.contains(String(value)) ? String(value) : nil, answer)
    }
}

extension StringProtocol {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return String(s)
    }

    func replacingOccurrences(_ a: Character, _ b: String) -> String {
        var out = ""
        for c in self { if c == a { out += b } else { out.append(c) } }
        return out
    }
}
