import Foundation
import Testing
import TriageCascade
import TriageClassifier
import TriageJSON
import TriageSystem

/// A candidate edge model beside the primary: in shadow it only records its view; on a
/// canary share it answers the queries a stable hash gives it; the report compares both.
@Suite struct CandidateTests {
    @Test func theCanaryShareIsAStableHash() throws {
        let c = try Classifier.load(directory: try CascadeTests.modelDirectory())
        func model(_ share: Double) -> CandidateModel { CandidateModel(classifier: c, share: share, modelVersion: "v") }
        let queries = (0..<2000).map { "query number \($0)" }
        #expect(queries.allSatisfy { !model(0).serves($0) })
        #expect(queries.allSatisfy { model(1).serves($0) })
        let half = queries.filter { model(0.5).serves($0) }.count
        #expect(half > 900 && half < 1100, "\(half) of 2000")
        // The same text always goes the same way, and a larger share keeps what a smaller one had.
        #expect(queries.allSatisfy { model(0.5).serves($0) == model(0.5).serves($0) })
        #expect(queries.allSatisfy { !model(0.2).serves($0) || model(0.5).serves($0) })
    }

    @Test func shadowAndCanaryRecordedAndCompared() throws {
        let primary = try CascadeTests.modelDirectory()
        defer { try? FileManager.default.removeItem(atPath: primary) }
        let candidate = primary + "-int8"
        defer { try? FileManager.default.removeItem(atPath: candidate) }
        let q = try runTriage(["quantize", "--model", primary, "--out", candidate])
        #expect(q.status == 0, "\(q.stderr)")
        // The test model's 1,000-token vocabulary makes most words [UNK]: lengths and
        // punctuation still give different logits, and the mechanics are what is checked.
        let queries = (0..<40).map { i in "question \(i)" + String(repeating: " word!", count: i % 7) + String(repeating: "?", count: i % 3) }
        let loader = try Classifier.load(directory: candidate)

        for share in [0.0, 0.5] {
            let db = primary + "/decisions-\(share).sqlite"
            let r = try runTriage(["ask", "--offline", "--json", "--threads", "1", "--model", primary, "--candidate", candidate,
                                   "--candidate-share", String(share), "--db", db], stdin: queries.joined(separator: "\n") + "\n")
            #expect(r.status == 0, "\(r.stderr)")
            let rows = try r.stdout.split(separator: "\n").map { try JSONValue.parse(String($0)) }
            #expect(rows.count == queries.count)
            var agree = 0, served = 0, primaryEdge = 0, candidateEdge = 0
            for (query, row) in zip(queries, rows) {
                let c = try #require(row["candidate"])
                let servedHere = c["candidate_served"]?.boolValue == true
                #expect(servedHere == CandidateModel(classifier: loader, share: share, modelVersion: "").serves(query))
                #expect(c["view_of"]?.stringValue == (servedHere ? "primary" : "candidate"))
                if servedHere { served += 1 }
                func coarse(_ v: JSONValue) -> String { v["out_of_scope"]?.boolValue == true ? "oos" : v["label"]!.stringValue! }
                if coarse(row) == coarse(c) { agree += 1 }
                let answeredAtEdge = row["route"]?.stringValue == "edge"
                let otherAtEdge = c["route"]?.stringValue == "edge"
                if servedHere { candidateEdge += answeredAtEdge ? 1 : 0; primaryEdge += otherAtEdge ? 1 : 0 }
                else { primaryEdge += answeredAtEdge ? 1 : 0; candidateEdge += otherAtEdge ? 1 : 0 }
            }
            if share == 0 { #expect(served == 0) } else { #expect(served > 5 && served < 35) }

            let report = try runTriage(["report", "--json", "--db", db])
            #expect(report.status == 0, "\(report.stderr)")
            let cmp = try #require(try JSONValue.parse(report.stdout)["candidate"])
            #expect(cmp["queries"]?.intValue == queries.count)
            #expect(cmp["candidate_served"]?.intValue == served)
            #expect(abs(cmp["agreement"]!.doubleValue! - Double(agree) / Double(queries.count)) < 1e-12)
            #expect(abs(cmp["primary"]!["edge_share"]!.doubleValue! - Double(primaryEdge) / Double(queries.count)) < 1e-12)
            #expect(abs(cmp["candidate"]!["edge_share"]!.doubleValue! - Double(candidateEdge) / Double(queries.count)) < 1e-12)
            #expect(cmp["candidate"]?["model_version"]?.stringValue?.contains("-int8@") == true)
            #expect(cmp["recommendation"]?.stringValue == "not_enough_data")
        }
    }
}
