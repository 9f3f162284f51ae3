import Foundation
import Testing
import TriageJSON
import TriageSystem

/// The operator's loop end to end with the real binary, the shipped model and 450 real
/// labelled queries: answer them, export the review queue, label it with the gold labels,
/// import, and the report's measured edge accuracy must bracket the accuracy computed
/// directly over every edge answer.
@Suite struct ReviewLoopTests {
    @Test func reportedEdgeAccuracyBracketsTheTruth() throws {
        let dir = NSTemporaryDirectory() + "triage-review-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A fixed seed makes the sample (and so this test) the same on every run.
        try FileSystem.writeAtomically(dir + "/config.json", text: #"{"review": {"sample_rate": 0.3, "sample_seed": 11}}"#)
        let lines = try FileSystem.readText(Paths.fixtures + "/banking77/queries.jsonl").split(separator: "\n")
        var gold: [String: String] = [:]
        var texts: [String] = []
        for line in lines {
            let v = try JSONValue.parse(String(line))
            let text = v["text"]!.stringValue!
            guard gold[text] == nil, !text.contains("\n") else { continue }
            gold[text] = v["label"]!.stringValue!
            texts.append(text)
        }
        let db = dir + "/decisions.sqlite"
        let asked = try runTriage(["ask", "--offline", "--json", "--threads", "1", "--model", Paths.shippedModel,
                                   "--config", dir + "/config.json", "--db", db],
                                  stdin: texts.joined(separator: "\n") + "\n")
        #expect(asked.status == 0, "\(asked.stderr)")
        var edgeAnswers = 0, edgeRight = 0
        for line in asked.stdout.split(separator: "\n") {
            let v = try JSONValue.parse(String(line))
            guard v["route"]?.stringValue == "edge", let text = v["text"]?.stringValue ?? v["query"]?.stringValue else { continue }
            edgeAnswers += 1
            if gold[text] == v["label"]?.stringValue { edgeRight += 1 }
        }
        #expect(edgeAnswers > 100)
        let truth = Double(edgeRight) / Double(edgeAnswers)

        let exported = try runTriage(["review", "export", "--db", db])
        #expect(exported.status == 0, "\(exported.stderr)")
        var labelled: [String] = []
        for line in exported.stdout.split(separator: "\n") {
            let v = try JSONValue.parse(String(line))
            let query = try #require(v["query"]?.stringValue, "review keeps the text without --record-text")
            labelled.append(JSONValue.object([("id", v["id"]!), ("label", .string(gold[query]!))]).serialized)
        }
        #expect(labelled.count > 20)
        try FileSystem.writeAtomically(dir + "/labels.jsonl", text: labelled.joined(separator: "\n") + "\n")
        let imported = try runTriage(["review", "import", "--db", db, dir + "/labels.jsonl"])
        #expect(imported.status == 0 && imported.stderr.contains("imported \(labelled.count)"), "\(imported.stderr)")

        let report = try runTriage(["report", "--json", "--db", db])
        #expect(report.status == 0, "\(report.stderr)")
        let edge = try #require(try JSONValue.parse(report.stdout)["measured_accuracy"]?["edge"])
        let (estimate, low, high) = (edge["accuracy"]!.doubleValue!, edge["ci95_low"]!.doubleValue!, edge["ci95_high"]!.doubleValue!)
        print("review loop: \(edgeAnswers) edge answers, truth \(truth), estimate \(estimate) [\(low), \(high)], \(labelled.count) labels")
        #expect(low <= truth && truth <= high)
        #expect(abs(estimate - truth) < 0.05)

        // An id outside the queue: a clear error, nothing stored.
        let bad = try runTriage(["review", "import", "--db", db, "-"], stdin: #"{"id": 999999, "label": "x"}"# + "\n")
        #expect(bad.status != 0 && bad.stderr.contains("999999") && bad.stderr.contains("nothing was imported"))
    }
}
