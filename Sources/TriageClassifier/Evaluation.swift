import TriageJSON
import TriageSystem

/// One labelled query of an evaluation file (`{"text", "label"}` per line).
public struct LabelledQuery: Sendable {
    public var text: String
    public var label: String
    public init(text: String, label: String) { self.text = text; self.label = label }

    /// Reads JSON lines; a line that is not an object with string "text" and "label" is an
    /// error naming its line number.
    public static func load(path: String) throws -> [LabelledQuery] {
        let text: String
        do { text = try FileSystem.readText(path) } catch { throw ClassifierError("\(error)") }
        var out: [LabelledQuery] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if line.allSatisfy({ $0 == " " || $0 == "\r" || $0 == "\t" }) { continue }
            guard let v = try? JSONValue.parse(String(line)), let t = v["text"]?.stringValue,
                  let l = v["label"]?.stringValue
            else { throw ClassifierError("\(path):\(i + 1): expected a JSON object with string \"text\" and \"label\"") }
            out.append(LabelledQuery(text: t, label: l))
        }
        guard !out.isEmpty else { throw ClassifierError("\(path) holds no queries") }
        return out
    }
}

/// The numbers `triage eval` reports, computed from each query's gold label and decision.
public struct EvaluationReport: Sendable {
    public struct ClassScores: Sendable {
        public var label: String
        public var precision: Double, recall: Double, f1: Double
        public var support: Int
    }

    public var count = 0
    public var inScopeCount = 0
    public var outOfScopeCount = 0
    /// Decided label (the out-of-scope label when the rule fires) equals the gold label.
    public var accuracy = 0.0
    public var inScopeAccuracy = 0.0
    public var outOfScopePrecision = 0.0, outOfScopeRecall = 0.0, outOfScopeF1 = 0.0
    /// Expected calibration error of the top class, 15 equal-width bins: calibrated, and with
    /// the raw logits (temperature 1).
    public var ece = 0.0, eceUncalibrated = 0.0
    /// In-scope queries the edge keeps (confident enough, not out of scope) and their accuracy.
    public var edgeThreshold = 0.9
    public var edgeKeptShare = 0.0, edgeKeptAccuracy = 0.0, edgeKeptCount = 0
    /// Out-of-scope queries the edge would have answered anyway (under-routing).
    public var outOfScopeKeptShare = 0.0
    public var perClass: [ClassScores] = []
    /// The most frequent (gold, decided) confusions.
    public var confusions: [(gold: String, predicted: String, count: Int)] = []
    public var unknownLabels: [String] = []
}

public enum Evaluation {
    /// Expected calibration error: Σ over bins of |accuracy − mean confidence| × bin share.
    public static func expectedCalibrationError(confidences: [Double], correct: [Bool], bins: Int = 15) -> Double {
        var count = [Int](repeating: 0, count: bins), conf = [Double](repeating: 0, count: bins), acc = [Double](repeating: 0, count: bins)
        for (c, ok) in zip(confidences, correct) {
            let b = min(bins - 1, max(0, Int((c * Double(bins)).rounded(.up)) - 1))
            count[b] += 1; conf[b] += c; acc[b] += ok ? 1 : 0
        }
        let n = Double(confidences.count)
        var ece = 0.0
        for b in 0..<bins where count[b] > 0 {
            ece += abs(acc[b] - conf[b]) / n
        }
        return ece
    }

    public static func report(queries: [LabelledQuery], results: [Classification], labels: [String],
                              calibration: Calibration, edgeThreshold: Double = 0.9) -> EvaluationReport {
        var r = EvaluationReport()
        r.edgeThreshold = edgeThreshold
        r.count = queries.count
        let oosLabel = calibration.outOfScopeLabel ?? "oos"
        let known = Set(labels)
        var unknown = Set<String>()
        var decided: [String] = [], gold: [String] = []
        var confCal: [Double] = [], confRaw: [Double] = [], topCorrect: [Bool] = []
        var inScopeRight = 0, kept = 0, keptRight = 0, oosKept = 0
        var tp = 0, fp = 0, fn = 0
        for (q, c) in zip(queries, results) {
            var g = q.label
            if calibration.isOutOfScope(g) {
                g = oosLabel
            } else if !known.contains(g) {
                unknown.insert(g); g = oosLabel
            }
            let goldOOS = g == oosLabel
            let d = c.outOfScope ? oosLabel : c.label
            decided.append(d); gold.append(g)
            confCal.append(Double(c.confidence))
            confRaw.append(Double(Classifier.decide(logits: c.logits, labels: labels, calibration: calibration, temperature: 1).confidence))
            topCorrect.append(c.label == g)
            if goldOOS { r.outOfScopeCount += 1 } else { r.inScopeCount += 1 }
            if !goldOOS && d == g { inScopeRight += 1 }
            if c.outOfScope && goldOOS { tp += 1 } else if c.outOfScope { fp += 1 } else if goldOOS { fn += 1 }
            let edgeKeeps = !c.outOfScope && Double(c.confidence) >= edgeThreshold
            if edgeKeeps && !goldOOS { kept += 1; if d == g { keptRight += 1 } }
            if edgeKeeps && goldOOS { oosKept += 1 }
        }
        func ratio(_ a: Int, _ b: Int) -> Double { b == 0 ? 0 : Double(a) / Double(b) }
        r.accuracy = ratio(zip(decided, gold).filter { $0 == $1 }.count, r.count)
        r.inScopeAccuracy = ratio(inScopeRight, r.inScopeCount)
        r.outOfScopePrecision = ratio(tp, tp + fp)
        r.outOfScopeRecall = ratio(tp, tp + fn)
        r.outOfScopeF1 = r.outOfScopePrecision + r.outOfScopeRecall == 0 ? 0
            : 2 * r.outOfScopePrecision * r.outOfScopeRecall / (r.outOfScopePrecision + r.outOfScopeRecall)
        r.ece = expectedCalibrationError(confidences: confCal, correct: topCorrect)
        r.eceUncalibrated = expectedCalibrationError(confidences: confRaw, correct: topCorrect)
        r.edgeKeptCount = kept
        r.edgeKeptShare = ratio(kept, r.inScopeCount)
        r.edgeKeptAccuracy = ratio(keptRight, kept)
        r.outOfScopeKeptShare = ratio(oosKept, r.outOfScopeCount)
        r.unknownLabels = unknown.sorted()

        var classes = labels.filter { !calibration.isOutOfScope($0) }
        classes.append(oosLabel)
        for label in classes {
            let tpc = zip(decided, gold).filter { $0 == label && $1 == label }.count
            let predicted = decided.filter { $0 == label }.count, support = gold.filter { $0 == label }.count
            let p = ratio(tpc, predicted), rc = ratio(tpc, support)
            r.perClass.append(.init(label: label, precision: p, recall: rc, f1: p + rc == 0 ? 0 : 2 * p * rc / (p + rc), support: support))
        }
        var pairs: [String: Int] = [:]
        for (d, g) in zip(decided, gold) where d != g { pairs[g + "\u{0}" + d, default: 0] += 1 }
        r.confusions = pairs.map { key, count in
            let parts = key.split(separator: "\u{0}", omittingEmptySubsequences: false)
            return (String(parts[0]), String(parts[1]), count)
        }.sorted { $0.count != $1.count ? $0.count > $1.count : ($0.gold, $0.predicted) < ($1.gold, $1.predicted) }
        return r
    }
}

extension EvaluationReport {
    public var json: JSONValue {
        .object([
            ("queries", .int(count)), ("in_scope", .int(inScopeCount)), ("out_of_scope", .int(outOfScopeCount)),
            ("accuracy", .number(accuracy)), ("in_scope_accuracy", .number(inScopeAccuracy)),
            ("oos_precision", .number(outOfScopePrecision)), ("oos_recall", .number(outOfScopeRecall)),
            ("oos_f1", .number(outOfScopeF1)),
            ("ece", .number(ece)), ("ece_uncalibrated", .number(eceUncalibrated)),
            ("edge_threshold", .number(edgeThreshold)),
            ("edge_kept_share", .number(edgeKeptShare)), ("edge_kept_accuracy", .number(edgeKeptAccuracy)),
            ("edge_kept", .int(edgeKeptCount)), ("oos_kept_share", .number(outOfScopeKeptShare)),
            ("per_class", .array(perClass.map {
                .object([("label", .string($0.label)), ("precision", .number($0.precision)), ("recall", .number($0.recall)),
                         ("f1", .number($0.f1)), ("support", .int($0.support))])
            })),
            ("confusions", .array(confusions.prefix(20).map {
                .object([("gold", .string($0.gold)), ("predicted", .string($0.predicted)), ("count", .int($0.count))])
            })),
            ("unknown_labels", .array(unknownLabels.map { .string($0) })),
        ])
    }
}
