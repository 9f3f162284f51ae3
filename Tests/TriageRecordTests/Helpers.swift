import Foundation
import TriageCascade
@testable import TriageRecord

/// A fresh directory under the system temporary directory, removed by `cleanup`.
struct TempDir {
    let path: String
    init() throws {
        path = NSTemporaryDirectory() + "triage-record-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func file(_ name: String) -> String { path + "/" + name }
    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}

/// A decision with neutral defaults; tests override what they check.
func makeDecision(
    timestamp: Double = 1_700_000_000, modelVersion: String = "distilbert-test@abc123", route: Route = .edge,
    reason: String = "optimal_edge", label: String = "order_status", confidence: Double = 0.97,
    outOfScope: Bool = false, complexity: ComplexityScore = ComplexityScore(total: 0.2, length: 0.1, syntax: 0.3, uncertainty: 0.06, emotion: 0),
    category: String = "order_status", tiers: [TierCall] = [], costUSD: Double = 0,
    latency: StageLatency = StageLatency(tokenizeMs: 0.5, edgeMs: 8, cloudMs: 0, totalMs: 10),
    cached: Bool = false, review: Bool = false, queryText: String? = nil, queryHash: String = "h",
    answer: String = "Your order ships tomorrow.", shadow: ShadowComparison? = nil
) -> Decision {
    Decision(timestamp: timestamp, modelVersion: modelVersion, route: route, reason: reason, label: label,
             confidence: confidence, outOfScope: outOfScope, complexity: complexity, category: category, tiers: tiers,
             costUSD: costUSD, latency: latency, cached: cached, review: review, queryText: queryText,
             queryHash: queryHash, answer: answer, shadow: shadow)
}

/// A successful call with usage priced at the seed rates of its tier.
func call(_ tier: String, input: Int, output: Int, statuses: [Int] = [200], latencyMs: Double = 300,
          answerConfidence: Double? = nil) -> TierCall {
    let price = tier == "small" ? ReportPolicy().smallTierPrice : ReportPolicy().largeTierPrice
    return TierCall(tier: tier, model: tier == "small" ? "claude-haiku" : "claude-sonnet", statuses: statuses,
                    inputTokens: input, outputTokens: output,
                    costUSD: price.cost(inputTokens: Double(input), outputTokens: Double(output)),
                    latencyMs: latencyMs, succeeded: true, rejectedByBreaker: false,
                    answerConfidence: answerConfidence, error: nil)
}

extension Double {
    func isClose(to other: Double, tolerance: Double = 1e-12) -> Bool { abs(self - other) <= tolerance * max(1, abs(other)) }
}
