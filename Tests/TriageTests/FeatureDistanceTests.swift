import Foundation
import Testing
import TriageCascade
import TriageClassifier
import TriageJSON
import TriageModel
import TriageSystem
import TriageTensors

/// The feature-distance out-of-scope score (triage.json's `oos_distance`, issue 13 lever 5).
@Suite struct FeatureDistanceTests {
    static let fixture = Paths.fixtures + "/banking77/oos_distance.json"

    /// A model directory in a fresh temporary folder: the tiny72 parity model (dim 72, 5 labels)
    /// with the given triage.json and, when given, a statistics file.
    static func tinyModel(triage: String, stats: [UInt8]?) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("oos-distance-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for f in ["config.json", "model.safetensors"] {
            try FileManager.default.copyItem(atPath: Paths.fixtures + "/parity/tiny72/" + f, toPath: dir + "/" + f)
        }
        // the tiny72 parity model ships no vocabulary: the first 1000 tokens of the shipped one
        let vocab = try FileSystem.readText(Paths.shippedModel + "/vocab.txt").split(separator: "\n").prefix(1000)
        try (vocab.joined(separator: "\n") + "\n").write(toFile: dir + "/vocab.txt", atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(atPath: Paths.shippedModel + "/tokenizer_config.json", toPath: dir + "/tokenizer_config.json")
        try triage.write(toFile: dir + "/triage.json", atomically: true, encoding: .utf8)
        if let stats { try Data(stats).write(to: URL(fileURLWithPath: dir + "/stats.safetensors")) }
        return dir
    }

    static func stats(dim: Int, whitening: [Float], means: [Float], classes: Int, dtype16: Bool = false,
                      extra: Bool = false) -> [UInt8] {
        var w = SafeTensorsWriter()
        if dtype16 { w.add("whitening", shape: [dim, dim], halves: whitening) } else { w.add("whitening", shape: [dim, dim], floats: whitening) }
        w.add("means", shape: [classes, dim], floats: means)
        if extra { w.add("bias", shape: [dim], floats: [Float](repeating: 0, count: dim)) }
        return w.serialize()
    }

    static let config = #"{"oos_distance": {"kind": "mahalanobis", "feature": "pre_classifier", "file": "stats.safetensors", "threshold": 5}}"#

    /// The distance of the real model on real queries equals the Python reference
    /// (tools/feature_oos.py: transformers features, float64 distance from the same statistics),
    /// and so does the decision: the softmax rule, or the distance above the threshold.
    @Test func shippedModelMatchesPython() throws {
        let f = try readJSON(Self.fixture)
        let classifier = try Classifier.load(directory: Paths.shippedModel, options: .init(threads: 2))
        let rule = try #require(classifier.calibration.distance)
        #expect(rule.feature == .preClassifier && rule.dim == 384 && rule.classes == 50)
        let tau = f["threshold"]!.doubleValue!
        #expect(abs(rule.threshold - tau) < 1e-3)
        let cases = f["cases"]!.arrayValue!
        #expect(cases.count >= 14)
        var ws = Workspace()
        let results = try classifier.classify(cases.map { $0["text"]!.stringValue! }, workspace: &ws)
        var worst = 0.0, flipped = 0
        for (c, r) in zip(cases, results) {
            let expected = c["distance"]!.doubleValue!
            let got = Double(try #require(r.outOfScopeDistance))
            worst = max(worst, abs(got - expected) / expected)
            // a query within 0.1 % of the threshold may fall either side of it
            if abs(expected - tau) / tau > 1e-3 {
                #expect(r.outOfScope == c["out_of_scope"]!.boolValue!, "\(c["text"]!.stringValue!)")
            }
            if r.outOfScope && !c["softmax_out_of_scope"]!.boolValue! { flipped += 1 }
        }
        print("oos_distance: max relative |Δd| vs Python = \(worst) over \(cases.count) queries; \(flipped) sent out of scope by the distance alone")
        #expect(worst < 1e-3)
        #expect(flipped >= 8)
    }

    /// The eval-level check: on the fixture's labelled valid queries, `Evaluation.report` with the
    /// distance counts the out-of-scope decisions the Python reference counts.
    @Test func evaluationCountsTheDistanceDecisions() throws {
        let f = try readJSON(Self.fixture)
        let labelled = f["cases"]!.arrayValue!.filter { $0["label"] != nil }
        let classifier = try Classifier.load(directory: Paths.shippedModel, options: .init(threads: 2))
        var ws = Workspace()
        let queries = labelled.map { LabelledQuery(text: $0["text"]!.stringValue!, label: $0["label"]!.stringValue!) }
        let results = try classifier.classify(queries.map(\.text), workspace: &ws)
        let report = Evaluation.report(queries: queries, results: results, labels: classifier.labels, calibration: classifier.calibration)
        let gold = labelled.map { $0["label"]!.stringValue! == "oos" }
        let said = labelled.map { $0["out_of_scope"]!.boolValue! }
        let tp = zip(gold, said).filter { $0 && $1 }.count
        let expectedRecall = Double(tp) / Double(gold.filter { $0 }.count)
        let expectedPrecision = Double(tp) / Double(said.filter { $0 }.count)
        #expect(abs(report.outOfScopeRecall - expectedRecall) < 1e-9)
        #expect(abs(report.outOfScopePrecision - expectedPrecision) < 1e-9)
        // without the distance the same queries lose the out-of-domain ones it catches
        var plain = classifier.calibration
        plain.distance = nil
        let softOnly = results.map { Classifier.decide(logits: $0.logits, labels: classifier.labels, calibration: plain) }
        let without = Evaluation.report(queries: queries, results: softOnly, labels: classifier.labels, calibration: plain)
        #expect(without.outOfScopeRecall < report.outOfScopeRecall)
    }

    /// The formula on a model small enough to check by hand: with W = 2·I the distance is
    /// 4·min_c ‖x − μ_c‖² over the classifier's input x (the means are stored whitened: 2·μ_c).
    @Test func formulaOnTheTinyModel() throws {
        let dim = 72
        var identity2 = [Float](repeating: 0, count: dim * dim)
        for i in 0..<dim { identity2[i * dim + i] = 2 }
        let mu0 = (0..<dim).map { Float($0 % 7) * 0.1 }, mu1 = (0..<dim).map { Float($0 % 3) * -0.2 }
        let dir = try Self.tinyModel(triage: Self.config, stats: Self.stats(dim: dim, whitening: identity2,
                                                                          means: (mu0 + mu1).map { 2 * $0 }, classes: 2))
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let classifier = try Classifier.load(directory: dir, options: .init(threads: 1))
        var ws = Workspace()
        let input = classifier.encode(["hello world", "a b c"])
        let out = try classifier.model.forward(input, workspace: &ws)
        #expect(out.headInput.count == 2 * dim)
        for b in 0..<2 {
            let x = Array(out.headInput(b))
            #expect(x.allSatisfy { $0 >= 0 })  // after the ReLU
            let d0 = zip(x, mu0).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +)
            let d1 = zip(x, mu1).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +)
            let expected = 4 * min(d0, d1)
            let got = Double(classifier.distance(out, b)!)
            #expect(abs(got - expected) <= 1e-5 * max(1, expected))
            let c = classifier.decide(logits: Array(out.logits(b)), distance: Float(got))
            #expect(c.outOfScope == (got > 5 || Classifier.decide(logits: Array(out.logits(b)), labels: classifier.labels,
                                                                   calibration: Calibration()).outOfScope))
        }
    }

    /// Strict loading: each malformed configuration or statistics file is refused with a clear error.
    @Test func strictLoading() throws {
        let dim = 72
        let good = Self.stats(dim: dim, whitening: [Float](repeating: 0, count: dim * dim), means: [Float](repeating: 0, count: 3 * dim), classes: 3)
        let cases: [(triage: String, stats: [UInt8]?, message: String)] = [
            (Self.config, nil, "does not exist"),
            (Self.config, Self.stats(dim: 64, whitening: [Float](repeating: 0, count: 64 * 64), means: [Float](repeating: 0, count: 64), classes: 1),
             "hidden size is 72"),
            (Self.config, Self.stats(dim: dim, whitening: [Float](repeating: 0, count: dim * dim), means: [Float](repeating: 0, count: dim), classes: 1, dtype16: true),
             "must be F32"),
            (Self.config, Self.stats(dim: dim, whitening: [Float](repeating: 0, count: dim * dim), means: [Float](repeating: 0, count: dim), classes: 1, extra: true),
             "exactly the tensors"),
            (Self.config, Array("not a safetensors file".utf8), "stats.safetensors"),
            (Self.config.replacingOccurrences(of: "mahalanobis", with: "cosine"), good, "kind must be"),
            (Self.config.replacingOccurrences(of: "pre_classifier", with: "mean"), good, "feature must be"),
            (Self.config.replacingOccurrences(of: "\"threshold\": 5", with: "\"threshold\": -1"), good, "threshold must be"),
            (Self.config.replacingOccurrences(of: "stats.safetensors", with: "../stats.safetensors"), good, "file must name"),
            (Self.config.replacingOccurrences(of: "\"threshold\": 5", with: "\"threshold\": 5, \"scale\": 1"), good, "unknown key oos_distance.scale"),
            (#"{"routing": {"min_confidence": 0.8, "answer_band": 0.9, "max_oos_score": 1, "max_oos_distance": -3}}"#, nil,
             "max_oos_distance must be a non-negative number"),
        ]
        for c in cases {
            let dir = try Self.tinyModel(triage: c.triage, stats: c.stats)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            do {
                _ = try Classifier.load(directory: dir, options: .init(threads: 1))
                Issue.record("loaded despite: \(c.message)")
            } catch {
                #expect("\(error)".contains(c.message), "\(error)")
            }
        }
        // and the good one loads, with a version that changes with the statistics
        let dir = try Self.tinyModel(triage: Self.config, stats: good)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = try Classifier.load(directory: dir, options: .init(threads: 1))
        #expect(a.calibration.distance?.classes == 3)
        // Taken before the file is rewritten in place: the statistics are read from its memory
        // map, as the weights are, so a running process sees a file rewritten under it.
        let versionA = a.modelVersion
        try Data(Self.stats(dim: dim, whitening: [Float](repeating: 1, count: dim * dim), means: [Float](repeating: 0, count: 3 * dim), classes: 3))
            .write(to: URL(fileURLWithPath: dir + "/stats.safetensors"))
        let b = try Classifier.load(directory: dir, options: .init(threads: 1))
        #expect(versionA != b.modelVersion)
    }

    /// Statistics with a NaN or an infinity anywhere (in the eight-lane part and the tail)
    /// are refused; the largest finite floats are not.
    @Test func nonFiniteStatisticsAreRefused() throws {
        let dim = 3
        for bad in [Float.nan, .infinity, -.infinity, .signalingNaN] {
            for position in [0, 7, 8] {
                var w = [Float](repeating: 0.5, count: dim * dim)
                w[position] = bad
                #expect(throws: ClassifierError.self) {
                    try FeatureDistance(feature: .cls, file: "s", threshold: 1, dim: dim, whitening: w, means: [0, 0, 0])
                }
            }
        }
        let big = [Float](repeating: .greatestFiniteMagnitude, count: dim * dim)
        #expect(throws: Never.self) {
            try FeatureDistance(feature: .cls, file: "s", threshold: 1, dim: dim, whitening: big, means: [-.greatestFiniteMagnitude, 0, 0])
        }
    }

    /// The router escalates a query whose distance is above its cut (and only with a distance).
    @Test func routerCut() throws {
        var policy = RouterPolicy()
        policy.maxOutOfScopeDistance = 100
        let router = Router(policy: policy)
        let simple = router.complexity(of: "hi", confidence: 0.99)
        #expect(router.edgeVerdict(confidence: 0.99, outOfScope: false, outOfScopeDistance: 150, complexity: simple).reason == "out_of_scope_distance")
        #expect(router.edgeVerdict(confidence: 0.99, outOfScope: false, outOfScopeDistance: 100, complexity: simple).answerAtEdge)
        #expect(router.edgeVerdict(confidence: 0.99, outOfScope: false, outOfScopeDistance: nil, complexity: simple).answerAtEdge)
        // tuned routing carries the cut into the policy; the operator's config may override it
        let tuned = try TunedRouting.parse(JSONValue.parse(#"{"min_confidence": 0.8, "answer_band": 0.9, "max_oos_score": 0.5, "max_oos_distance": 42.5}"#))
        #expect(tuned.maxOutOfScopeDistance == 42.5)
        #expect(try TunedRouting.parse(tuned.json) == tuned)
        #expect(RouterPolicy().applying(tuned).maxOutOfScopeDistance == 42.5)
        #expect(RouterPolicy().maxOutOfScopeDistance == .infinity)
        let overridden = try RouterPolicy().applying(tuned).overriding(with: JSONValue.parse(#"{"max_oos_distance": 7}"#))
        #expect(overridden.maxOutOfScopeDistance == 7)
        #expect(throws: (any Error).self) { try RouterPolicy().overriding(with: JSONValue.parse(#"{"max_oos_distance": -1}"#)) }
    }

    /// tune's fit uses the distance when the points have one: two wrong answers at high confidence
    /// but far from every class can only be cut by distance, which keeps the rest at the edge.
    @Test func tuneFitsADistanceCut() {
        var points: [TunePoint] = []
        // 96 right answers at confidence 0.9, distance 10; 4 wrong ones at 0.95, distance 50
        for i in 0..<96 {
            points.append(TunePoint(confidence: 0.9, outOfScopeScore: 0, outOfScopeDistance: 10, decidedOutOfScope: false,
                                    goldOutOfScope: false, correct: true, stratum: "a\(i % 4)"))
        }
        for _ in 0..<4 {
            points.append(TunePoint(confidence: 0.95, outOfScopeScore: 0, outOfScopeDistance: 50, decidedOutOfScope: false,
                                    goldOutOfScope: false, correct: false, stratum: "b"))
        }
        // 4 % wrong at every confidence cut that keeps the right ones: without the distance the
        // best cut within a 2 % budget is above 0.95 (keeps nothing)
        let noDistance = points.map {
            TunePoint(confidence: $0.confidence, outOfScopeScore: 0, decidedOutOfScope: false, goldOutOfScope: false,
                      correct: $0.correct, stratum: $0.stratum)
        }
        let plain = RoutingTuner.fit(noDistance, maxEdgeError: 0.02, maxUnderRouting: 0.02)
        #expect(plain == nil || plain!.outcome.keptInScope == 0)
        let fitted = RoutingTuner.fit(points, maxEdgeError: 0.02, maxUnderRouting: 0.02)!
        #expect(fitted.outcome.keptInScope == 96 && fitted.outcome.wrongAnswers == 0)
        #expect(fitted.cut.maxOutOfScopeDistance >= 10 && fitted.cut.maxOutOfScopeDistance < 50)
    }
}
