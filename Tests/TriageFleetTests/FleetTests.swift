// The fleet against a real PostgreSQL server (scripts/with-postgres.sh starts one for
// `make test`): real `triage` processes, each with its own SQLite record, shipping to one
// database through outages, cut connections and SIGKILL. Each test gets its own database.

import Foundation
import Glibc
import PostgresNIO
import Testing
import TriageCascade
@testable import TriageFleet
import TriageJSON
@testable import TriageRecord

@Suite(.serialized) struct FleetServerTests {
    @Test func serverIsThereWhenRequired() {
        // make test sets TRIAGE_FLEET_TESTS_REQUIRED: there, a missing server is a failure,
        // not a silent skip of every test below.
        if TestPostgres.required { #expect(TestPostgres.available, "TRIAGE_TEST_PG_URL is not set") }
    }

    @Test(.enabled(if: TestPostgres.available)) func schemaIsCreatedOnceByConcurrentBoxes() async throws {
        let db = try await TestPostgres.freshDatabase()
        let url = try FleetURL(db.url, environment: { _ in TestPostgres.password })
        // Eight boxes starting at once: the advisory lock makes one migrate, the rest wait.
        try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    let d = try await FleetDatabase.connect(url)
                    let v = try await d.schemaVersionOnServer()
                    await d.close()
                    return v
                }
            }
            for try await v in group { #expect(v == FleetDatabase.schemaVersion) }
        }
        let c = try await TestPostgres.connect(database: db.name)
        var rows = 0
        for try await _ in try await c.query("SELECT version FROM triage_schema", logger: FleetDatabase.quietLogger).decode(Int.self) { rows += 1 }
        try await c.close()
        #expect(rows == 1)
    }

    @Test(.enabled(if: TestPostgres.available)) func roundTripKeepsEveryField() async throws {
        let scratch = try Scratch()
        defer { scratch.cleanup() }
        let db = try await TestPostgres.freshDatabase()
        let store = try DecisionStore(path: scratch.file("a.sqlite"), node: "box-a")
        for i in 0..<40 { try store.insert(sampleDecision(i)) }
        let url = try FleetURL(db.url, environment: { _ in TestPostgres.password })
        let replicator = Replicator(store: store, url: url)
        let shipped = try await replicator.shipPending()
        #expect(shipped.newDecisions == 40 && shipped.alreadyThere == 0)
        #expect(try store.pendingCounts().decisions == 0)
        let fleet = try await FleetDatabase.connect(url)
        let loaded = try await fleet.load(since: nil)
        await fleet.close()
        let local = try store.decisions()
        #expect(loaded.decisions.count == 40)
        let byUID = Dictionary(uniqueKeysWithValues: loaded.decisions.map { ($0.uid, $0) })
        for d in local { #expect(byUID[d.uid] == d, "decision \(d.uid) changed on the way") }
        // Shipping again sends nothing.
        #expect(try await replicator.shipPending() == Replicator.Shipment())
        await replicator.close()
    }

    /// Two boxes, each `triage ask --offline` into its own SQLite with `triage sync --follow`
    /// beside it, into one database: every row arrives once, and the fleet report's totals
    /// and per-node rows are those of the two boxes' own reports.
    @Test(.enabled(if: TestPostgres.available)) func twoBoxesShipEveryRowOnceAndTheFleetReportAddsUp() async throws {
        let scratch = try Scratch()
        defer { scratch.cleanup() }
        let db = try await TestPostgres.freshDatabase()
        let env = ["TRIAGE_PG_PASSWORD": TestPostgres.password]
        let phrases = ["I still have not received my new card", "How do I top up with Apple Pay?",
                       "I was charged twice for the same coffee", "What is the weather in Paris?",
                       "my card payment was declined", "can I change my PIN at an ATM", "why is my transfer pending",
                       "how long does a bank transfer take", "tell me a joke about penguins", "where can I use my card"]
        var followers: [Child] = []
        var askers: [Child] = []
        let perBox = 120
        for box in ["box-a", "box-b"] {
            let config = try scratch.config(node: box, postgres: db.url)
            let queries = (0..<perBox).map { "\(phrases[$0 % phrases.count]) (\(box) \($0))" }.joined(separator: "\n") + "\n"
            askers.append(try Child(Binary.triage, ["ask", "--offline", "--model", Binary.model, "--config", config,
                                                    "--db", scratch.file("\(box).sqlite"), "--threads", "1"],
                                    environment: env, stdin: queries))
            followers.append(try Child(Binary.triage, ["sync", "--follow", "--config", config, "--db", scratch.file("\(box).sqlite"),
                                                       "--batch-size", "25"], environment: env))
        }
        for a in askers { #expect(await a.waitAsync() == 0, "ask failed: \(a.stderr)") }
        let arrived = try await eventually(120) { (try? await TestPostgres.rows(db.name).count) == 2 * perBox }
        for f in followers { f.kill(SIGTERM); await f.waitAsync() }
        #expect(arrived, "the followers did not ship everything: \(followers.map(\.stderr))")

        var localPairs: [String] = []
        for box in ["box-a", "box-b"] {
            let store = try DecisionStore(path: scratch.file("\(box).sqlite"), readOnly: true)
            let ds = try store.decisions()
            #expect(ds.count == perBox)
            localPairs += ds.map { "\(box)/\($0.uid)" }
        }
        let remote = try await TestPostgres.rows(db.name)
        #expect(remote.pairs == localPairs.sorted(), "the database holds exactly the local rows, each once")

        // The fleet report against the two box reports, through the real binary.
        let fleet = try await triage(["report", "--json", "--db", db.url], environment: env)
        #expect(fleet.status == 0, "\(fleet.stderr)")
        let f = try JSONValue.parse(fleet.stdout)
        var boxes: [JSONValue] = []
        for box in ["box-a", "box-b"] {
            let r = try await triage(["report", "--json", "--db", scratch.file("\(box).sqlite")])
            #expect(r.status == 0, "\(r.stderr)")
            boxes.append(try JSONValue.parse(r.stdout))
        }
        #expect(f["total_queries"]?.intValue == boxes.compactMap { $0["total_queries"]?.intValue }.reduce(0, +))
        for route in ["edge", "small", "large", "none"] {
            #expect(f["route_counts"]?[route]?.intValue == boxes.compactMap { $0["route_counts"]?[route]?.intValue }.reduce(0, +))
        }
        let fleetCost = try #require(f["total_cost_usd"]?.doubleValue)
        let boxCost = boxes.compactMap { $0["total_cost_usd"]?.doubleValue }.reduce(0, +)
        #expect(abs(fleetCost - boxCost) <= 1e-9)
        let nodes = try #require(f["nodes"]?.arrayValue)
        #expect(nodes.compactMap { $0["node"]?.stringValue } == ["box-a", "box-b"])
        for (node, box) in zip(nodes, boxes) {
            #expect(node["total_queries"]?.intValue == box["total_queries"]?.intValue)
            #expect(node["edge_share"]?.doubleValue == box["edge_share"]?.doubleValue)
            #expect(node["availability"]?.doubleValue == box["availability"]?.doubleValue)
            #expect(node["p95_ms"]?.doubleValue == box["latency_ms"]?["p95"]?.doubleValue)
            #expect(node["health_score"]?.intValue == box["health_score"]?.intValue)
        }
        // The text form shows the per-node table.
        let text = try await triage(["report", "--db", db.url], environment: env)
        #expect(text.status == 0 && text.stdout.contains("Nodes") && text.stdout.contains("box-a") && text.stdout.contains("box-b"))
    }

    /// The server stopped while a shipper is running, then started again: the shipper backs
    /// off, resumes, and the database ends with every row once.
    @Test(.enabled(if: TestPostgres.available && TestPostgres.ctl != nil)) func serverStoppedMidRunAndRestarted() async throws {
        let scratch = try Scratch()
        defer { scratch.cleanup() }
        let db = try await TestPostgres.freshDatabase()
        let env = ["TRIAGE_PG_PASSWORD": TestPostgres.password]
        let store = try DecisionStore(path: scratch.file("a.sqlite"), node: "box-a")
        for i in 0..<200 { try store.insert(sampleDecision(i)) }
        let follower = try Child(Binary.triage, ["sync", "--follow", "--to", db.url, "--db", scratch.file("a.sqlite"),
                                                 "--batch-size", "10", "--timeout", "5"], environment: env)
        defer { follower.kill(); follower.wait() }
        let started = try await eventually(60) { ((try? await TestPostgres.rows(db.name).count) ?? 0) > 0 }
        #expect(started)
        try await TestPostgres.stopServer()
        var restarted = false
        defer { if !restarted { _ = try? Child(TestPostgres.ctl!, ["start"]).wait() } }
        // The box keeps answering while the database is away: 400 more decisions queue locally.
        for i in 200..<600 { try store.insert(sampleDecision(i)) }
        try await Task.sleep(nanoseconds: 3_000_000_000)
        #expect(try store.pendingCounts().decisions >= 400)
        try await TestPostgres.startServer()
        restarted = true
        let done = try await eventually(120) { (try? await TestPostgres.rows(db.name).count) == 600 }
        #expect(done, "not everything arrived after the restart: \(follower.stderr)")
        #expect(follower.stderr.contains("retrying"), "the outage was not noticed")
        let remote = try await TestPostgres.rows(db.name)
        #expect(remote.pairs == (try store.decisions()).map { "box-a/\($0.uid)" }.sorted())
    }

    /// The connection cut after COMMIT was sent, before its acknowledgement came back: the
    /// rows are in the database but the box does not know it. Run again: nothing doubled.
    @Test(.enabled(if: TestPostgres.available)) func connectionCutBetweenCommitAndAcknowledgement() async throws {
        let scratch = try Scratch()
        defer { scratch.cleanup() }
        let db = try await TestPostgres.freshDatabase()
        let env = ["TRIAGE_PG_PASSWORD": TestPostgres.password]
        let url = try FleetURL(db.url, environment: { _ in TestPostgres.password })
        await (try FleetDatabase.connect(url)).close()  // the schema, made directly
        let store = try DecisionStore(path: scratch.file("a.sqlite"), node: "box-a")
        for i in 0..<150 { try store.insert(sampleDecision(i)) }
        let proxy = try CuttingProxy(to: url.host, port: url.port, mode: .cutAfterCommit)
        defer { proxy.close() }
        let viaProxy = "postgres://\(url.user)@127.0.0.1:\(proxy.port)/\(url.database)?sslmode=disable"
        let cut = try await triage(["sync", "--to", viaProxy, "--db", scratch.file("a.sqlite"), "--batch-size", "500", "--timeout", "10"],
                             environment: env)
        #expect(cut.status == 1, "the cut should fail the sync: \(cut.stdout) \(cut.stderr)")
        #expect(proxy.commitsSeen == 1)
        #expect(try await TestPostgres.rows(db.name).count == 150, "the COMMIT went through")
        #expect(try store.pendingCounts().decisions == 150, "unacknowledged: still pending locally")

        let again = try await triage(["sync", "--json", "--to", db.url, "--db", scratch.file("a.sqlite")], environment: env)
        #expect(again.status == 0, "\(again.stderr)")
        let out = try JSONValue.parse(again.stdout)
        #expect(out["new"]?.intValue == 0 && out["already_there"]?.intValue == 150 && out["pending"]?.intValue == 0)
        #expect(try await TestPostgres.rows(db.name).count == 150)
    }

    /// The shipper SIGKILLed while it waits for the COMMIT's acknowledgement, and at random
    /// moments of a longer run: afterwards the database holds exactly the local rows.
    @Test(.enabled(if: TestPostgres.available)) func shipperKilledAtRandomMoments() async throws {
        let scratch = try Scratch()
        defer { scratch.cleanup() }
        let db = try await TestPostgres.freshDatabase()
        let env = ["TRIAGE_PG_PASSWORD": TestPostgres.password]
        let url = try FleetURL(db.url, environment: { _ in TestPostgres.password })
        await (try FleetDatabase.connect(url)).close()
        let path = scratch.file("a.sqlite")
        let store = try DecisionStore(path: path, node: "box-a")
        for i in 0..<2100 { try store.insert(sampleDecision(i)) }

        // Killed while waiting for the acknowledgement of a committed batch.
        let proxy = try CuttingProxy(to: url.host, port: url.port, mode: .holdAfterCommit)
        let viaProxy = "postgres://\(url.user)@127.0.0.1:\(proxy.port)/\(url.database)?sslmode=disable"
        let held = try Child(Binary.triage, ["sync", "--to", viaProxy, "--db", path, "--batch-size", "100"], environment: env)
        let committed = try await eventually(60) { proxy.commitsSeen >= 1 }
        #expect(committed)
        try await Task.sleep(nanoseconds: 300_000_000)
        held.kill()
        #expect(await held.waitAsync() == 128 + SIGKILL)
        proxy.close()

        // Then killed at random moments.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<8 {
            let c = try Child(Binary.triage, ["sync", "--to", db.url, "--db", path, "--batch-size", "50"], environment: env)
            try await Task.sleep(nanoseconds: UInt64.random(in: 20_000_000...400_000_000, using: &generator))
            c.kill()
            await c.waitAsync()
        }
        let last = try await triage(["sync", "--to", db.url, "--db", path], environment: env)
        #expect(last.status == 0, "\(last.stderr)")
        let remote = try await TestPostgres.rows(db.name)
        #expect(remote.count == 2100)
        #expect(remote.pairs == (try store.decisions()).map { "box-a/\($0.uid)" }.sorted())
        let check = try DecisionStore.integrityCheck(path: path)
        #expect(check == "ok")
    }

    /// Past record.max_pending the oldest unshipped decisions are dropped, and the drop is
    /// itself recorded, shipped and reported.
    @Test(.enabled(if: TestPostgres.available)) func backlogBoundDropsAreRecordedShippedAndReported() async throws {
        let scratch = try Scratch()
        defer { scratch.cleanup() }
        let db = try await TestPostgres.freshDatabase()
        let env = ["TRIAGE_PG_PASSWORD": TestPostgres.password]
        let path = scratch.file("a.sqlite")
        let store = try DecisionStore(path: path, node: "box-a", maxPending: 10)
        var droppedCost = 0.0
        for i in 0..<25 {
            let d = sampleDecision(i)
            if i < 15 { droppedCost += d.costUSD }
            try store.insert(d)
        }
        #expect(try store.count() == 10)
        let gaps = try store.gaps()
        #expect(gaps.count == 1 && gaps[0].dropped == 15 && abs(gaps[0].costUSD - droppedCost) < 1e-12)
        #expect(gaps[0].firstTimestamp == sampleDecision(0).timestamp && gaps[0].lastTimestamp == sampleDecision(14).timestamp)

        let sync = try await triage(["sync", "--json", "--to", db.url, "--db", path], environment: env)
        #expect(sync.status == 0, "\(sync.stderr)")
        let out = try JSONValue.parse(sync.stdout)
        #expect(out["new"]?.intValue == 10 && out["gaps"]?.intValue == 1)
        let report = try await triage(["report", "--json", "--db", db.url], environment: env)
        let r = try JSONValue.parse(report.stdout)
        #expect(r["total_queries"]?.intValue == 10)
        #expect(r["dropped_unshipped"]?.intValue == 15)
        #expect(r["alerts"]?.arrayValue?.contains { $0["name"]?.stringValue == "dropped_unshipped" } == true)
        let text = try await triage(["report", "--db", db.url], environment: env)
        #expect(text.stdout.contains("dropped unshipped: 15"))
    }

    /// A wrong password is reported as such, and the password is printed nowhere.
    @Test(.enabled(if: TestPostgres.available)) func wrongPasswordIsReportedWithoutBeingPrinted() async throws {
        let scratch = try Scratch()
        defer { scratch.cleanup() }
        let db = try await TestPostgres.freshDatabase()
        let path = scratch.file("a.sqlite")
        let store = try DecisionStore(path: path, node: "box-a")
        try store.insert(sampleDecision(1))
        let secret = "Wr0ng-s3cret-\(UInt32.random(in: 0...UInt32.max))"
        let viaEnv = try await triage(["sync", "--to", db.url, "--db", path], environment: ["TRIAGE_PG_PASSWORD": secret])
        #expect(viaEnv.status == 1)
        #expect(viaEnv.stderr.contains("password authentication failed"), "\(viaEnv.stderr)")
        #expect(!viaEnv.stderr.contains(secret) && !viaEnv.stdout.contains(secret))
        let inURL = db.url.replacingOccurrences(of: "\(TestPostgres.base.user)@", with: "\(TestPostgres.base.user):\(secret)@")
        for args in [["sync", "--json", "--to", inURL, "--db", path], ["report", "--db", inURL]] {
            let r = try await triage(args)
            #expect(r.status == 1)
            #expect(r.stderr.contains("password authentication failed") || r.stdout.contains("password authentication failed"),
                    "\(r.stdout) \(r.stderr)")
            #expect(!r.stderr.contains(secret) && !r.stdout.contains(secret))
        }
        #expect(try store.pendingCounts().decisions == 1)
    }
}
