import TriageCascade
import TriageCloud
import TriageClassifier
import TriageJSON

/// The JSON shapes of triage's results, in one place: `classify --json` and `POST
/// /v1/classify` print `classification`, `ask --json` and `POST /v1/ask` print `decision`.
/// A new field is added here once and appears in both.
public enum WireJSON {
    /// A conversation's earlier turns, `[{"role": "user"|"assistant", "content": …}, …]`
    /// (absent or null: none), as `/v1/ask` and `ask --history` take them.
    public static func history(_ value: JSONValue?) throws(ServiceError) -> [ChatMessage] {
        guard let v = value, !v.isNull else { return [] }
        guard let items = v.arrayValue else { throw ServiceError(.invalidInput, "`history` must be a list of {\"role\", \"content\"}") }
        var out: [ChatMessage] = []
        for item in items {
            guard let role = item["role"]?.stringValue, let content = item["content"]?.stringValue,
                  role == "user" || role == "assistant" else {
                throw ServiceError(.invalidInput, "each `history` entry needs `role` (\"user\" or \"assistant\") and `content` (a string)")
            }
            out.append(ChatMessage(role: role, content: content))
        }
        return out
    }

    public static func classification(text: String, _ r: Classification, labels: [String]) -> JSONValue {
        var pairs: [(String, JSONValue)] = [
            ("text", .string(text)),
            ("label", .string(r.label)),
            ("confidence", .float(r.confidence)),
            ("out_of_scope", .bool(r.outOfScope)),
            ("fine_label", .string(r.fineLabel)),
            ("oos_score", .float(r.outOfScopeScore)),
        ]
        // only for a model with a feature-distance score (triage.json's oos_distance)
        if let d = r.outOfScopeDistance { pairs.append(("oos_distance", .float(d))) }
        pairs += [
            ("probs", .object(zip(labels, r.probabilities).map { ($0, .float($1)) })),
            ("logits", .array(r.logits.map { .float($0) })),
            ("tokens", .int(r.tokenCount)),
        ]
        return .object(pairs)
    }

    public static func decision(query: String, _ d: Decision) -> JSONValue {
        var pairs: [(String, JSONValue)] = [
            ("query", .string(query)),
            ("route", .string(d.route.rawValue)), ("reason", .string(d.reason)), ("answer", .string(d.answer)),
            ("label", .string(d.label)), ("confidence", .number(d.confidence)), ("out_of_scope", .bool(d.outOfScope)),
            ("complexity", .object([("total", .number(d.complexity.total)), ("length", .number(d.complexity.length)),
                                    ("syntax", .number(d.complexity.syntax)), ("uncertainty", .number(d.complexity.uncertainty)),
                                    ("emotion", .number(d.complexity.emotion))])),
            ("category", .string(d.category)),
            ("tiers_tried", .array(d.tiers.map { t in
                .object([("tier", .string(t.tier)), ("model", .string(t.model)), ("attempts", .int(t.attempts)),
                         ("statuses", .array(t.statuses.map { .int($0) })), ("succeeded", .bool(t.succeeded)),
                         ("rejected_by_breaker", .bool(t.rejectedByBreaker)),
                         ("input_tokens", .int(t.inputTokens)), ("output_tokens", .int(t.outputTokens)),
                         ("cost_usd", .number(t.costUSD)), ("latency_ms", .number(t.latencyMs)),
                         ("answer_confidence", t.answerConfidence.map { .number($0) } ?? .null),
                         ("error", t.error.map { .string($0) } ?? .null)])
            })),
            ("cost_usd", .number(d.costUSD)),
            ("latency_ms", .number(d.latency.totalMs)),
            ("latency", .object([("tokenize_ms", .number(d.latency.tokenizeMs)), ("edge_ms", .number(d.latency.edgeMs)),
                                 ("cloud_ms", .number(d.latency.cloudMs)), ("total_ms", .number(d.latency.totalMs))])),
            ("cached", .bool(d.cached)), ("review", .bool(d.review)),
        ]
        if let c = d.candidate {
            pairs.append(("candidate", .object([
                // The model that did not answer: the candidate in shadow, the primary when the candidate served.
                ("view_of", .string(c.candidateServed ? "primary" : "candidate")),
                ("model_version", .string(c.modelVersion)), ("candidate_served", .bool(c.candidateServed)),
                ("label", .string(c.label)), ("confidence", .number(c.confidence)), ("out_of_scope", .bool(c.outOfScope)),
                ("route", .string(c.route.rawValue)), ("reason", .string(c.reason)), ("edge_ms", .number(c.edgeMs)),
            ])))
        }
        if let s = d.shadow {
            pairs.append(("shadow", .object([("edge_route", .string(s.edgeRoute.rawValue)), ("edge_reason", .string(s.edgeReason)),
                                             ("cloud_label", s.cloudLabel.map { .string($0) } ?? .null)])))
        }
        return .object(pairs)
    }

    /// TEI's prediction list: every label with its score, highest first (calibrated
    /// probabilities, or raw logits with `rawScores`).
    public static func predictions(_ r: Classification, labels: [String], rawScores: Bool) -> JSONValue {
        let scores = rawScores ? r.logits : r.probabilities
        // A stable order for equal scores: label id order, as a sort by score alone would not promise.
        let order = scores.indices.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
        return .array(order.map { .object([("score", .float(scores[$0])), ("label", .string(labels[$0]))]) })
    }

    /// TEI's error body.
    public static func error(_ message: String, type: String) -> JSONValue {
        .object([("error", .string(message)), ("error_type", .string(type))])
    }
}
