import TriageClassifier
import TriageJSON

/// Every threshold of the routing rules, with the seed values as defaults. All of them can
/// be set in the config file's "router" object (snake_case keys).
public struct RouterPolicy: Sendable, Equatable {
    /// The edge answers only when complexity ≤ this…
    public var maxComplexity = 0.75
    /// …and its calibrated confidence is ≥ this.
    public var minConfidence = 0.90
    /// Edge answers below this confidence are flagged for review.
    public var answerBand = 0.95
    /// Below this confidence a query always escalates (the floor of the review band).
    public var reviewBand = 0.80
    /// A query whose summed out-of-scope probability is above this escalates even when an
    /// intent is the likeliest class (1: no such rule).
    public var maxOutOfScopeScore = 1.0
    /// A query whose feature distance (the model's `oos_distance`) is above this escalates too
    /// (infinity: no such rule; a model without the score is never cut by it).
    public var maxOutOfScopeDistance = Double.infinity
    /// A small-tier answer whose checked confidence is below this escalates to the large tier.
    public var answerConfidenceThreshold = 0.80
    public var answerConfidenceBase = 0.85
    public var maxTokensPenalty = 0.15
    public var hedgingPenalty = 0.05
    public var escalationKeywords = ["frustrated", "angry", "unacceptable", "manager", "supervisor", "complaint",
                                     "terrible", "awful", "disgusted", "furious"]
    public var hedgingPhrases = ["i'm not sure", "i don't know", "it's unclear", "i cannot determine", "maybe", "perhaps"]
    public var categoryAdjustments: [String: Double] = [
        "greeting": 0.10, "faq": 0.05, "product_search": 0.03, "order_status": 0.05,
        "recommendation": -0.05, "comparison": -0.08, "discussion": -0.10, "unknown": -0.05,
    ]
    /// Complexity weights: length, syntax, uncertainty, emotion.
    public var weights = (length: 0.3, syntax: 0.3, uncertainty: 0.2, emotion: 0.2)
    public var lengthScale = 200.0       // characters for a full length score
    public var wordsPerSentenceScale = 15.0
    public var keywordScale = 3.0

    public init() {}

    public static func == (a: RouterPolicy, b: RouterPolicy) -> Bool {
        a.maxComplexity == b.maxComplexity && a.minConfidence == b.minConfidence && a.answerBand == b.answerBand
            && a.reviewBand == b.reviewBand && a.maxOutOfScopeScore == b.maxOutOfScopeScore
            && a.maxOutOfScopeDistance == b.maxOutOfScopeDistance && a.answerConfidenceThreshold == b.answerConfidenceThreshold
            && a.escalationKeywords == b.escalationKeywords && a.hedgingPhrases == b.hedgingPhrases
            && a.categoryAdjustments == b.categoryAdjustments && a.weights == b.weights
    }

    /// The thresholds `triage tune` fitted for a model, over these. The tuned edge threshold is
    /// also the floor of the review band (it was fitted as the one confidence cut).
    public func applying(_ tuned: TunedRouting?) -> RouterPolicy {
        guard let tuned else { return self }
        var p = self
        p.minConfidence = tuned.minConfidence
        p.reviewBand = tuned.minConfidence
        p.answerBand = tuned.answerBand
        p.maxOutOfScopeScore = tuned.maxOutOfScopeScore
        if let d = tuned.maxOutOfScopeDistance { p.maxOutOfScopeDistance = d }
        return p
    }

    /// The policy a model runs with: seed defaults, then the model's tuned routing, then the
    /// keys the operator's config sets (`router` object of the config file).
    public static func resolved(tuned: TunedRouting?, config overrides: JSONValue?) throws -> RouterPolicy {
        try RouterPolicy().applying(tuned).overriding(with: overrides)
    }

    /// Applies the keys present in `json`; an unknown key or a value of the wrong type is an error.
    public func overriding(with json: JSONValue?) throws -> RouterPolicy {
        guard let json else { return self }
        guard let pairs = json.objectPairs else { throw CascadeError("config: \"router\" must be an object") }
        var p = self
        for (key, value) in pairs {
            func number() throws -> Double {
                guard let d = value.doubleValue, d.isFinite else { throw CascadeError("config: router.\(key) must be a number") }
                return d
            }
            func strings() throws -> [String] {
                guard let a = value.arrayValue?.compactMap(\.stringValue), a.count == value.arrayValue?.count else {
                    throw CascadeError("config: router.\(key) must be an array of strings")
                }
                return a.map { $0.lowercased() }
            }
            switch key {
            case "max_complexity": p.maxComplexity = try number()
            case "min_confidence": p.minConfidence = try number()
            case "answer_band": p.answerBand = try number()
            case "review_band": p.reviewBand = try number()
            case "max_oos_score": p.maxOutOfScopeScore = try number()
            case "max_oos_distance":
                p.maxOutOfScopeDistance = try number()
                guard p.maxOutOfScopeDistance >= 0 else { throw CascadeError("config: router.max_oos_distance must not be negative") }
            case "answer_confidence_threshold": p.answerConfidenceThreshold = try number()
            case "answer_confidence_base": p.answerConfidenceBase = try number()
            case "max_tokens_penalty": p.maxTokensPenalty = try number()
            case "hedging_penalty": p.hedgingPenalty = try number()
            case "escalation_keywords": p.escalationKeywords = try strings()
            case "hedging_phrases": p.hedgingPhrases = try strings()
            case "category_adjustments":
                guard let adj = value.objectPairs else { throw CascadeError("config: router.category_adjustments must be an object") }
                for (c, v) in adj {
                    guard let d = v.doubleValue else { throw CascadeError("config: router.category_adjustments.\(c) must be a number") }
                    p.categoryAdjustments[c] = d
                }
            case "weights":
                guard let w = value.objectPairs else { throw CascadeError("config: router.weights must be an object") }
                for (k, v) in w {
                    guard let d = v.doubleValue else { throw CascadeError("config: router.weights.\(k) must be a number") }
                    switch k {
                    case "length": p.weights.length = d
                    case "syntax": p.weights.syntax = d
                    case "uncertainty": p.weights.uncertainty = d
                    case "emotion": p.weights.emotion = d
                    default: throw CascadeError("config: unknown key router.weights.\(k)")
                    }
                }
            default: throw CascadeError("config: unknown key router.\(key)")
            }
        }
        for (name, v) in [("max_complexity", p.maxComplexity), ("min_confidence", p.minConfidence), ("answer_band", p.answerBand),
                          ("review_band", p.reviewBand), ("answer_confidence_threshold", p.answerConfidenceThreshold),
                          ("max_oos_score", p.maxOutOfScopeScore)]
        where !(0...1).contains(v) {
            throw CascadeError("config: router.\(name) must be within 0...1")
        }
        return p
    }
}

public struct CascadeError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The kind of task a query is, which decides the first cloud tier.
public enum TaskCategory: String, Sendable, CaseIterable {
    case greeting, faq, productSearch = "product_search", orderStatus = "order_status", summarization
    case recommendation, comparison, discussion, translation, unknown

    /// Categories the large tier handles from the start.
    public var startsAtLargeTier: Bool {
        switch self {
        case .recommendation, .comparison, .discussion, .translation: return true
        default: return false
        }
    }

    /// Keyword patterns, most demanding first, so "hi, can you compare…" is a comparison.
    static let patterns: [(TaskCategory, [String])] = [
        (.translation, ["translate", "translation"]),
        (.comparison, ["compare", "versus", " vs ", " vs. ", "difference between"]),
        (.recommendation, ["recommend", "suggest", "similar to"]),
        (.summarization, ["summarize", "summarise", "summary", "tl;dr"]),
        (.discussion, ["what do you think", "your opinion", "discuss", "pros and cons"]),
        (.orderStatus, ["order", "shipping", "delivery", "tracking"]),
        (.productSearch, ["find", "search", "looking for"]),
        (.faq, ["how do i", "how can i", "what is", "what are", "can i", "how much", "how long", "where is", "why"]),
    ]
    static let greetings = ["hi", "hello", "hey", "good morning", "good afternoon", "good evening", "greetings", "howdy"]

    public static func of(_ text: String) -> TaskCategory {
        let t = " " + text.lowercased() + " "
        for (category, keys) in patterns where keys.contains(where: { t.contains($0) }) {
            return category
        }
        let start = text.lowercased().drop { $0 == " " }
        for g in greetings where start.hasPrefix(g) {
            let rest = start.dropFirst(g.count)
            if rest.first.map({ !$0.isLetter }) ?? true { return .greeting }
        }
        return .unknown
    }
}

/// The signals and rules of the router. Pure functions: the same query and edge result always
/// give the same decision, and every decision carries its reason.
public struct Router: Sendable {
    public var policy: RouterPolicy
    public init(policy: RouterPolicy = RouterPolicy()) { self.policy = policy }

    /// 0.3·length + 0.3·syntax + 0.2·uncertainty + 0.2·emotion, each part in [0, 1].
    public func complexity(of text: String, confidence p: Double) -> ComplexityScore {
        let length = min(Double(text.count) / policy.lengthScale, 1)
        var sentences = 0, words = 0, inWord = false, sentenceHasWords = false
        for ch in text {
            if ch.isWhitespace {
                inWord = false
            } else if ".!?".contains(ch) {
                inWord = false
                if sentenceHasWords { sentences += 1; sentenceHasWords = false }
            } else if !inWord {
                inWord = true
                words += 1
                sentenceHasWords = true
            }
        }
        if sentenceHasWords { sentences += 1 }
        let syntax = min(Double(words) / Double(max(1, sentences)) / policy.wordsPerSentenceScale, 1)
        let uncertainty = 1 - abs(2 * p - 1)
        let found = keywords(in: text).count
        let emotion = min(Double(found) / policy.keywordScale, 1)
        let w = policy.weights
        let total = w.length * length + w.syntax * syntax + w.uncertainty * uncertainty + w.emotion * emotion
        return ComplexityScore(total: total, length: length, syntax: syntax, uncertainty: uncertainty, emotion: emotion)
    }

    /// The escalation keywords present in the text (each counted once, whole words).
    public func keywords(in text: String) -> [String] {
        let words = Set(text.lowercased().split { !$0.isLetter }.map(String.init))
        return policy.escalationKeywords.filter { words.contains($0) }
    }

    public struct EdgeVerdict: Sendable, Equatable {
        public var answerAtEdge: Bool
        public var review: Bool
        public var reason: String
        public init(answerAtEdge: Bool, review: Bool, reason: String) {
            self.answerAtEdge = answerAtEdge; self.review = review; self.reason = reason
        }
    }

    /// Whether the edge answers. Out of scope first (the decision, then the summed out-of-scope
    /// probability, then the feature distance when the model has one), then complexity, then the
    /// confidence bands: ≥ answerBand answer; ≥ max(minConfidence, reviewBand) answer and flag
    /// for review; below that, escalate.
    public func edgeVerdict(confidence: Double, outOfScope: Bool, outOfScopeScore: Double = 0,
                            outOfScopeDistance: Double? = nil, complexity: ComplexityScore) -> EdgeVerdict {
        if outOfScope { return EdgeVerdict(answerAtEdge: false, review: false, reason: "out_of_scope") }
        if outOfScopeScore > policy.maxOutOfScopeScore {
            return EdgeVerdict(answerAtEdge: false, review: false, reason: "out_of_scope_score")
        }
        if let d = outOfScopeDistance, d > policy.maxOutOfScopeDistance {
            return EdgeVerdict(answerAtEdge: false, review: false, reason: "out_of_scope_distance")
        }
        if complexity.total > policy.maxComplexity {
            return EdgeVerdict(answerAtEdge: false, review: false, reason: "high_complexity")
        }
        if confidence < max(policy.minConfidence, policy.reviewBand) {
            return EdgeVerdict(answerAtEdge: false, review: false, reason: "low_confidence")
        }
        if confidence < policy.answerBand { return EdgeVerdict(answerAtEdge: true, review: true, reason: "edge_review") }
        return EdgeVerdict(answerAtEdge: true, review: false, reason: "optimal_edge")
    }

    /// The check of a small-tier answer: base, minus the max-tokens and hedging penalties,
    /// plus the category adjustment, clamped to [0, 1].
    public func answerConfidence(text: String, stoppedAtMaxTokens: Bool, category: TaskCategory) -> Double {
        var c = policy.answerConfidenceBase
        if stoppedAtMaxTokens { c -= policy.maxTokensPenalty }
        let lower = text.lowercased().replacingTypographicApostrophes()
        for phrase in policy.hedgingPhrases {
            c -= policy.hedgingPenalty * Double(lower.occurrences(of: phrase))
        }
        c += policy.categoryAdjustments[category.rawValue] ?? 0
        // Rounded to 1e-9 so that 0.85 − 0.05 is 0.80, not 0.7999999999999999 (which would
        // escalate an answer the rule accepts).
        return min(1, max(0, (c * 1e9).rounded() / 1e9))
    }
}

extension String {
    func replacingTypographicApostrophes() -> String {
        String(map { $0 == "\u{2019}" ? "'" : $0 })
    }

    /// Non-overlapping occurrences of a phrase at word boundaries.
    func occurrences(of phrase: String) -> Int {
        guard !phrase.isEmpty else { return 0 }
        let chars = Array(self), p = Array(phrase)
        var count = 0, i = 0
        while i + p.count <= chars.count {
            if Array(chars[i..<(i + p.count)]) == p
                && (i == 0 || !chars[i - 1].isLetter) && (i + p.count == chars.count || !chars[i + p.count].isLetter) {
                count += 1
                i += p.count
            } else {
                i += 1
            }
        }
        return count
    }
}
