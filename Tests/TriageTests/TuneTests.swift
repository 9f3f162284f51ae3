import Foundation
import Testing
import TriageCascade
import TriageClassifier
import TriageJSON
import TriageSystem

/// Several out-of-scope labels: the decision sums their probabilities (checked against a
/// softmax computed here, in Double, from the PyTorch logits of the tiny72 fixture and from
/// logits worked out by hand).
@Suite struct OutOfScopeLabelsTests {
    static let labels = ["label_a", "label_b", "label_c", "label_d", "label_e"]

    @Test func handWorkedLogits() {
        // p ∝ e², e¹, e⁰, e^1.5, e^1.5: label_a is the likeliest single label (0.368), but the two
        // out-of-scope labels together hold 2e^1.5 / (e² + e + 1 + 2e^1.5) = 0.4466.
        let c = Classifier.decide(logits: [2, 1, 0, 1.5, 1.5], labels: Self.labels,
                                  calibration: Calibration(outOfScopeLabels: ["label_d", "label_e"]))
        let z = exp(2.0) + exp(1.0) + 1 + 2 * exp(1.5)
        #expect(c.outOfScope && c.label == "oos")
        #expect(c.fineLabel == "label_d")  // a tie between d and e: the first
        #expect(abs(Double(c.confidence) - 2 * exp(1.5) / z) < 1e-6)
        #expect(abs(Double(c.outOfScopeScore) - 2 * exp(1.5) / z) < 1e-6)
        // The same logits with one out-of-scope label (the old single-label rule): label_a wins.
        let single = Classifier.decide(logits: [2, 1, 0, 1.5, 1.5], labels: Self.labels,
                                       calibration: Calibration(outOfScopeLabel: "label_e"))
        #expect(!single.outOfScope && single.label == "label_a" && single.fineLabel == "label_a")
        #expect(abs(Double(single.outOfScopeScore) - exp(1.5) / z) < 1e-6)
        // …and with the out-of-scope label the likeliest, it keeps that label's name.
        let old = Classifier.decide(logits: [0, 0, 0, 0, 3], labels: Self.labels, calibration: Calibration(outOfScopeLabel: "label_e"))
        #expect(old.outOfScope && old.label == "label_e")
    }

    @Test(arguments: [[3, 4], [0, 1], [1, 2, 4], [2]])
    func pytorchLogitsOfTheTinyModel(outOfScopeIds: [Int]) throws {
        let expected = try readJSON(Paths.fixtures + "/parity/tiny72/expected.json")
        let calibration = Calibration(temperature: 1.5, outOfScopeLabels: outOfScopeIds.map { Self.labels[$0] })
        let intents = (0..<5).filter { !outOfScopeIds.contains($0) }
        var checked = 0, outOfScope = 0
        for c in expected["cases"]!.arrayValue! {
            for row in c["logits"]!.arrayValue! {
                let logits = row.floats
                let d = Classifier.decide(logits: logits, labels: Self.labels, calibration: calibration)
                let e = logits.map { exp(Double($0) / 1.5) }
                let p = e.map { $0 / e.reduce(0, +) }
                let oos = outOfScopeIds.map { p[$0] }.reduce(0, +)
                let bestIntent = intents.max { p[$0] < p[$1] }!
                let bestOOS = outOfScopeIds.max { p[$0] < p[$1] || (p[$0] == p[$1] && $0 > $1) }!
                let isOOS = oos > p[bestIntent]
                #expect(d.outOfScope == isOOS)
                #expect(d.label == (isOOS ? "oos" : Self.labels[bestIntent]))
                #expect(d.fineLabel == Self.labels[isOOS ? bestOOS : bestIntent])
                #expect(abs(Double(d.confidence) - (isOOS ? oos : p[bestIntent])) < 1e-5)
                #expect(abs(Double(d.outOfScopeScore) - oos) < 1e-5)
                checked += 1
                if isOOS { outOfScope += 1 }
            }
        }
        #expect(checked >= 11)
        print("tiny72 with labels \(outOfScopeIds) out of scope: \(outOfScope) of \(checked) rows out of scope")
    }

    @Test func evaluationCountsEveryOutOfScopeLabelAsOutOfScope() {
        let q = [LabelledQuery(text: "a", label: "label_a"), LabelledQuery(text: "d", label: "label_d"),
                 LabelledQuery(text: "o", label: "oos"), LabelledQuery(text: "b", label: "label_b")]
        let cal = Calibration(outOfScopeLabels: ["label_d", "label_e"])
        let results = [[5, 0, 0, 0, 0], [0, 0, 0, 5, 0], [0, 0, 0, 0, 5], [0, 0, 5, 0, 0]].map {
            Classifier.decide(logits: $0, labels: Self.labels, calibration: cal)
        }
        let r = Evaluation.report(queries: q, results: results, labels: Self.labels, calibration: cal)
        #expect(r.inScopeCount == 2 && r.outOfScopeCount == 2)
        #expect(r.inScopeAccuracy == 0.5)  // label_b taken for label_c
        #expect(r.outOfScopePrecision == 1 && r.outOfScopeRecall == 1)
        #expect(r.perClass.map(\.label) == ["label_a", "label_b", "label_c", "oos"])
        #expect(r.unknownLabels.isEmpty)
    }

    @Test func triageJSONIsChecked() throws {
        let dir = NSTemporaryDirectory() + "triage-oos-\(UUID().uuidString)"
        try FileSystem.createDirectory(dir)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func load(_ text: String) throws -> Calibration {
            try FileSystem.writeAtomically(dir + "/triage.json", text: text)
            return try Calibration.load(directory: dir)
        }
        let c = try load(#"{"temperature": 2, "out_of_scope_labels": ["x", "y"], "routing": {"min_confidence": 0.8, "answer_band": 0.9, "max_oos_score": 0.1, "fit": {"queries": 3}}}"#)
        #expect(c.outOfScopeLabels == ["x", "y"] && c.outOfScopeLabel == "oos" && c.temperature == 2)
        #expect(c.routing == TunedRouting(minConfidence: 0.8, answerBand: 0.9, maxOutOfScopeScore: 0.1, fit: .object([("queries", .int(3))])))
        #expect(c.isOutOfScope("x") && c.isOutOfScope("oos") && !c.isOutOfScope("z"))
        let old = try load(#"{"out_of_scope_label": "oos", "min_confidence": 0}"#)
        #expect(old.outOfScopeLabels == ["oos"] && old.outOfScopeLabel == "oos" && old.routing == nil)
        for bad in [#"{"out_of_scope_labels": []}"#, #"{"out_of_scope_labels": ["x", 3]}"#,
                    #"{"routing": {"min_confidence": 0.8, "answer_band": 0.9}}"#,
                    #"{"routing": {"min_confidence": 1.8, "answer_band": 0.9, "max_oos_score": 0.1}}"#,
                    #"{"routing": {"min_confidence": 0.8, "answer_band": 0.9, "max_oos_score": 0.1, "typo": 1}}"#] {
            #expect(throws: ClassifierError.self, "\(bad)") { try load(bad) }
        }
    }
}

/// Routing thresholds: seed defaults < the model's tuned routing < the keys the config sets.
@Suite struct RoutingPrecedenceTests {
    let tuned = TunedRouting(minConfidence: 0.7, answerBand: 0.85, maxOutOfScopeScore: 0.2)

    @Test func seedThenModelThenConfig() throws {
        let seed = try RouterPolicy.resolved(tuned: nil, config: nil)
        #expect(seed.minConfidence == 0.90 && seed.reviewBand == 0.80 && seed.answerBand == 0.95 && seed.maxOutOfScopeScore == 1)
        let model = try RouterPolicy.resolved(tuned: tuned, config: nil)
        #expect(model.minConfidence == 0.7 && model.reviewBand == 0.7 && model.answerBand == 0.85 && model.maxOutOfScopeScore == 0.2)
        let config = try TriageConfig.parse(try JSONValue.parse(#"{"router": {"answer_band": 0.99, "max_oos_score": 0.5}}"#))
        let both = try config.routerPolicy(tuned: tuned)
        #expect(both.minConfidence == 0.7 && both.reviewBand == 0.7 && both.answerBand == 0.99 && both.maxOutOfScopeScore == 0.5)
        // A config without a router object leaves the model's routing alone.
        #expect(try TriageConfig().routerPolicy(tuned: tuned) == model)
    }

    @Test func outOfScopeScoreEscalates() throws {
        let r = Router(policy: try RouterPolicy.resolved(tuned: tuned, config: nil))
        let calm = ComplexityScore(total: 0.1, length: 0, syntax: 0, uncertainty: 0, emotion: 0)
        #expect(r.edgeVerdict(confidence: 0.9, outOfScope: false, outOfScopeScore: 0.2, complexity: calm).reason == "optimal_edge")
        #expect(r.edgeVerdict(confidence: 0.9, outOfScope: false, outOfScopeScore: 0.21, complexity: calm).reason == "out_of_scope_score")
        #expect(r.edgeVerdict(confidence: 0.8, outOfScope: false, outOfScopeScore: 0, complexity: calm) == .init(answerAtEdge: true, review: true, reason: "edge_review"))
        #expect(r.edgeVerdict(confidence: 0.69, outOfScope: false, outOfScopeScore: 0, complexity: calm).reason == "low_confidence")
    }
}

/// `triage tune`'s fit, on crafted queries whose best thresholds are worked out by hand, and
/// against a brute-force search over the whole grid.
@Suite struct TuneTests {
    static func point(_ conf: Double, score: Double = 0, oos: Bool = false, right: Bool = true, decidedOOS: Bool = false,
                      eligible: Bool = true, stratum: String = "x") -> TunePoint {
        TunePoint(confidence: conf, outOfScopeScore: score, decidedOutOfScope: decidedOOS, eligible: eligible,
                  goldOutOfScope: oos, correct: right, stratum: oos ? "oos" : stratum)
    }

    /// 25 in-scope queries: 10 right at 0.99, 5 right at 0.95, 4 right + 1 wrong at 0.90,
    /// 3 right + 2 wrong at 0.80; 10 out of scope: one at confidence 0.97 with score 0.30, one
    /// at 0.85 with score 0.01, eight the classifier already calls out of scope.
    static let crafted: [TunePoint] = {
        var p: [TunePoint] = []
        p += (0..<10).map { _ in point(0.99) }
        p += (0..<5).map { _ in point(0.95) }
        p += (0..<4).map { _ in point(0.90) } + [point(0.90, right: false)]
        p += (0..<3).map { _ in point(0.80) } + (0..<2).map { _ in point(0.80, right: false) }
        p += [point(0.97, score: 0.30, oos: true), point(0.85, score: 0.01, oos: true)]
        p += (0..<8).map { _ in point(0.6, score: 0.9, oos: true, decidedOOS: true) }
        return p
    }()

    @Test func craftedCaseHasTheHandDerivedAnswer() throws {
        // Budgets 6 % / 10 %. Keeping the 0.80 queries answers 3 wrong of ≥ 25 (≥ 12 %): out.
        // Cutting at 0.90 keeps 20 with 1 wrong (5 %) — if the 0.97 oos query is also let in
        // (score cut ≥ 0.30) that is 2 of 21 (9.5 %): out, so the score cut must be < 0.30.
        // Cutting in (0.80, 0.85] also keeps 20 but lets the 0.85 oos query in unless the score
        // cut is 0.005: same 20 kept, same 1 wrong — the tie goes to the higher confidence cut,
        // 0.90, then the lower score cut, 0.005.
        let fit = try #require(RoutingTuner.fit(Self.crafted, maxEdgeError: 0.06, maxUnderRouting: 0.1))
        #expect(fit.cut == EdgeCut(minConfidence: 0.90, maxOutOfScopeScore: 0.005))
        #expect(fit.outcome.keptInScope == 20 && fit.outcome.wrongAnswers == 1 && fit.outcome.outOfScopeAnswered == 0)
        #expect(fit.outcome.keptShare == 0.8 && fit.outcome.edgeError == 0.05 && fit.outcome.underRouting == 0)
        // Review band: at 0.90 the answers are 5 % wrong (> half the budget, 3 %); from 0.905 up
        // they are the 15 right ones.
        #expect(RoutingTuner.answerBand(Self.crafted, cut: fit.cut, maxEdgeError: 0.06) == 0.905)
        // With a 10 % budget the 0.97 oos query may be answered too: still 20 kept, but the
        // tie-break on wrong answers keeps the score cut below 0.30.
        let loose = try #require(RoutingTuner.fit(Self.crafted, maxEdgeError: 0.1, maxUnderRouting: 0.1))
        #expect(loose.outcome.keptInScope == 20 && loose.outcome.wrongAnswers == 1 && loose.cut.maxOutOfScopeScore < 0.30)
        // A budget nothing meets except answering nothing: the best cut keeps nothing.
        let none = try #require(RoutingTuner.fit([Self.point(0.99, right: false)], maxEdgeError: 0, maxUnderRouting: 0))
        #expect(none.outcome.answered == 0)
    }

    @Test func ineligibleAndDecidedOutOfScopeQueriesNeverStay() {
        let p = [Self.point(0.99, eligible: false), Self.point(0.99, decidedOOS: true), Self.point(0.99)]
        let o = RoutingTuner.outcome(p, EdgeCut(minConfidence: 0, maxOutOfScopeScore: 1))
        #expect(o.keptInScope == 1 && o.inScope == 3)
    }

    /// Every cut on the grid, scored one by one.
    static func bruteForce(_ points: [TunePoint], _ maxEdgeError: Double, _ maxUnderRouting: Double) -> (EdgeCut, EdgeOutcome)? {
        var best: (EdgeCut, EdgeOutcome)? = nil
        for t in RoutingTuner.confidenceGrid {
            for s in RoutingTuner.scoreGrid {
                let cut = EdgeCut(minConfidence: t, maxOutOfScopeScore: s)
                let o = RoutingTuner.outcome(points, cut)
                guard o.meets(maxEdgeError: maxEdgeError, maxUnderRouting: maxUnderRouting) else { continue }
                if let b = best {
                    let key = (o.keptInScope, -o.wrongAnswers, -o.outOfScopeAnswered, t, -s)
                    let bkey = (b.1.keptInScope, -b.1.wrongAnswers, -b.1.outOfScopeAnswered, b.0.minConfidence, -b.0.maxOutOfScopeScore)
                    if key > bkey { best = (cut, o) }
                } else {
                    best = (cut, o)
                }
            }
        }
        return best
    }

    @Test func fitEqualsBruteForceOnRandomQueries() throws {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> Double {  // a 64-bit LCG; the top 53 bits as a number in [0, 1)
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Double(state >> 11) / Double(1 << 53)
        }
        for trial in 0..<6 {
            var points: [TunePoint] = []
            for _ in 0..<40 {
                let oos = next() < 0.3
                let conf = trial % 2 == 0 ? (next() * 200).rounded() / 200 : next()  // on and off the grid
                points.append(Self.point(conf, score: oos ? next() : next() * 0.3, oos: oos, right: next() < 0.85 + 0.15 * conf,
                                         decidedOOS: oos && next() < 0.5, eligible: next() < 0.95))
            }
            for (e, u) in [(0.02, 0.02), (0.1, 0.05), (0.2, 0.3)] {
                let fast = RoutingTuner.fit(points, maxEdgeError: e, maxUnderRouting: u)
                let slow = Self.bruteForce(points, e, u)
                #expect(fast?.cut == slow?.0, "trial \(trial), budgets \(e)/\(u)")
                #expect(fast?.outcome == slow?.1)
            }
        }
    }

    @Test func crossValidationOnTwinQueriesEqualsTheFit() throws {
        // Every query twice in a row: the two folds hold one copy each, so each fold's fit is the
        // full fit and the held-out figure is the fitted one.
        let twins = Self.crafted.flatMap { [$0, $0] }
        let folds = RoutingTuner.folds(twins, k: 2)
        #expect(folds.prefix(4) == [0, 1, 0, 1])
        let cv = RoutingTuner.crossValidate(twins, k: 2, maxEdgeError: 0.06, maxUnderRouting: 0.1)
        let full = try #require(RoutingTuner.fit(Self.crafted, maxEdgeError: 0.06, maxUnderRouting: 0.1))
        #expect(cv.cuts == [full.cut, full.cut])
        #expect(cv.heldOut == full.outcome + full.outcome)
        // Folds are stratified: each label's queries spread evenly.
        let strata = (0..<9).map { Self.point(0.9, stratum: $0 < 6 ? "a" : "b") }
        #expect(RoutingTuner.folds(strata, k: 3) == [0, 1, 2, 0, 1, 2, 0, 1, 2])
    }

    @Test func svgIsWellFormed() throws {
        let fit = try #require(RoutingTuner.fit(Self.crafted, maxEdgeError: 0.06, maxUnderRouting: 0.1))
        let svg = RoutingTuner.svg(curve: RoutingTuner.curve(Self.crafted, maxOutOfScopeScore: fit.cut.maxOutOfScopeScore),
                                   chosen: fit.cut, maxEdgeError: 0.06)
        #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\"") && svg.hasSuffix("</svg>\n"))
        #expect(svg.components(separatedBy: "<circle").count == 2)
        // One polyline vertex per confidence cut that answers anything.
        let answering = RoutingTuner.curve(Self.crafted, maxOutOfScopeScore: fit.cut.maxOutOfScopeScore).filter { $0.outcome.answered > 0 }.count
        let points = try #require(svg.components(separatedBy: "points=\"").last?.split(separator: "\"").first)
        #expect(points.split(separator: " ").count == answering)
    }
}

/// `classify`, `eval` and `tune` as processes, on the tiny model with two out-of-scope labels.
@Suite struct TuneCLITests {
    func model() throws -> String {
        let dir = try CLITests().tinyModel()
        try FileSystem.writeAtomically(dir + "/triage.json", text: #"{"temperature": 1.5, "out_of_scope_labels": ["label_d", "label_e"]}"#)
        return dir
    }

    @Test func classifyJSONCarriesTheFineLabelAndTheScore() throws {
        let dir = try model()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let texts = ["first query", "a third, longer query about cards and money", "hello", "what is the time", "card"]
        let r = try runTriage(["classify", "--json", "--model", dir], stdin: texts.joined(separator: "\n") + "\n")
        #expect(r.status == 0, "\(r.stderr)")
        for line in r.stdout.split(separator: "\n") {
            let o = try JSONValue.parse(String(line))
            let probs = Dictionary(uniqueKeysWithValues: o["probs"]!.objectPairs!.map { ($0.0, $0.1.doubleValue!) })
            let score = probs["label_d"]! + probs["label_e"]!
            #expect(abs(o["oos_score"]!.doubleValue! - score) < 1e-6)
            let intent = ["label_a", "label_b", "label_c"].max { probs[$0]! < probs[$1]! }!
            let oos = score > probs[intent]!
            #expect(o["out_of_scope"]?.boolValue == oos)
            #expect(o["label"]?.stringValue == (oos ? "oos" : intent))
            #expect(o["fine_label"]?.stringValue == (oos ? (probs["label_d"]! >= probs["label_e"]! ? "label_d" : "label_e") : intent))
        }
    }

    @Test func tuneWritesRoutingThatTheModelThenLoads() throws {
        let dir = try model()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var lines: [String] = []
        for (i, text) in ["first query", "hello there", "card money", "what is the time", "a b c", "query", "money", "cards",
                          "the time", "hello"].enumerated() {
            let label = ["label_a", "label_b", "label_c", "label_d", "oos"][i % 5]
            lines.append(JSONValue.object([("text", .string(text)), ("label", .string(label))]).serialized)
        }
        let data = dir + "/data.jsonl", out = dir + "/tuned.json", svg = dir + "/curve.svg"
        try FileSystem.writeAtomically(data, text: lines.joined(separator: "\n") + "\n")
        let r = try runTriage(["tune", "--model", dir, "--data", data, "--max-edge-error", "1", "--max-under-routing", "1",
                               "--folds", "2", "--out", out, "--svg", svg, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let v = try JSONValue.parse(r.stdout)
        #expect(v["written"]?.arrayValue?.compactMap(\.stringValue) == [out])
        // The model directory's own triage.json is untouched with --out.
        #expect(try FileSystem.readText(dir + "/triage.json").contains("routing") == false)
        let tuned = try JSONValue.parse(FileSystem.readText(out))
        #expect(tuned["out_of_scope_labels"]?.arrayValue?.count == 2)
        let routing = try TunedRouting.parse(try #require(tuned["routing"]))
        #expect(routing.fit?["fitted"]?["in_scope"]?.intValue == 6)
        #expect(routing.fit?["fitted"]?["out_of_scope"]?.intValue == 4)
        // With budgets of 100 % every in-scope query the classifier does not call out of scope
        // stays at the edge (the texts are short: no complexity escalation).
        let texts = lines.map { try! JSONValue.parse($0) }
        let c = try runTriage(["classify", "--json", "--model", dir], stdin: texts.map { $0["text"]!.stringValue! }.joined(separator: "\n") + "\n")
        let kept = zip(texts, c.stdout.split(separator: "\n")).filter { q, line in
            let gold = q["label"]!.stringValue!
            return !["label_d", "oos"].contains(gold) && (try! JSONValue.parse(String(line)))["out_of_scope"]?.boolValue == false
        }.count
        #expect(routing.fit?["fitted"]?["kept_in_scope"]?.intValue == kept)
        #expect(try FileSystem.readText(svg).hasPrefix("<svg"))
        // Bad input: a clear error, exit 1 or 64, nothing written.
        let bad = try runTriage(["tune", "--model", dir, "--data", dir + "/missing.jsonl", "--dry-run"])
        #expect(bad.status == 1 && bad.stderr.contains("missing.jsonl"))
        #expect(try runTriage(["tune", "--model", dir, "--data", data, "--folds", "1"]).status == 64)
        #expect(try runTriage(["tune", "--model", dir, "--data", data, "--max-edge-error", "2"]).status == 64)
        // Eval on the same model counts the gold label_d queries as out of scope.
        let e = try runTriage(["eval", "--model", dir, "--data", data, "--json"])
        #expect(e.status == 0, "\(e.stderr)")
        let report = try JSONValue.parse(e.stdout)
        #expect(report["in_scope"]?.intValue == 6 && report["out_of_scope"]?.intValue == 4)
    }
}
