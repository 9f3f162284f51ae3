import Foundation
import Synchronization
import Testing
import TriageCascade
import TriageClassifier
import TriageCloud
import TriageHTTP
import TriageJSON
import TriageModel
import TriageRecord
import TriageService
import TriageSystem
import TriageTestSupport

/// `triage serve` over real HTTP on 127.0.0.1 with libcurl: the library server for most
/// paths, the real binary for signals, the API key in logs, and the CLI's own JSON.
/// The HTTP suites run one after another: each test blocks a thread of Swift's global
/// executor in synchronous libcurl calls, and the library server's handlers need the others.
@Suite(.serialized) enum HTTPTests {}

extension HTTPTests {
@Suite(.serialized) struct ServerTests {
    @Test func predictShapesAndScoresMatchClassifyingAlone() async throws {
        let s = try await RunningServer()
        defer { Task { try? await s.stop() } }
        let classifier = try Classifier.load(directory: Paths.shippedModel, options: .init(threads: 1))
        var ws = Workspace()
        let text = shortQueries[0]
        let alone = try classifier.classify([text], workspace: &ws)[0]

        let one = try post(s.port, "/predict", #"{"inputs": \#(jsonString(text))}"#)
        #expect(one.status == 200)
        let list = try #require(one.json?.arrayValue)
        // Every label, highest first, calibrated probabilities.
        #expect(list.count == classifier.labels.count)
        let served = list.map { Float($0["score"]?.doubleValue ?? -1) }
        #expect(served == served.sorted(by: >))
        #expect(list[0]["label"]?.stringValue == alone.label)
        let byLabel = scores(one.json)
        for (i, label) in classifier.labels.enumerated() { #expect(abs(byLabel[label]! - alone.probabilities[i]) <= 1e-6) }
        // TEI's timing headers, whole milliseconds.
        for h in ["x-total-time", "x-tokenization-time", "x-queue-time", "x-inference-time", "x-compute-tokens"] {
            #expect(one.header(h).flatMap { Int($0) } != nil, "\(h)")
        }
        #expect(one.header("x-compute-tokens") == String(alone.tokenCount))

        // raw_scores: the logits.
        let raw = try post(s.port, "/predict", #"{"inputs": \#(jsonString(text)), "raw_scores": true}"#)
        let rawScores = scores(raw.json)
        for (i, label) in classifier.labels.enumerated() { #expect(abs(rawScores[label]! - alone.logits[i]) <= 1e-4) }

        // POST / is /predict (huggingface_hub's InferenceClient posts there).
        let root = try post(s.port, "/", #"{"inputs": \#(jsonString(text)), "parameters": {}}"#)
        #expect(root.status == 200 && scores(root.json).count == classifier.labels.count)

        // A batch gives a list of lists in order; ["a", "b"] is a pair, [["a"], ["b"]] a batch.
        let batch = try post(s.port, "/predict", #"{"inputs": [[\#(jsonString(shortQueries[1]))], [\#(jsonString(shortQueries[3]))]]}"#)
        let lists = try #require(batch.json?.arrayValue)
        #expect(lists.count == 2)
        let expected = try classifier.classify([shortQueries[1], shortQueries[3]], workspace: &ws)
        // TEI lists the model's own labels: the top one is the fine label (an out-of-scope
        // query's may be one of several out-of-scope labels).
        #expect(lists[0].arrayValue?.first?["label"]?.stringValue == expected[0].fineLabel)
        #expect(lists[1].arrayValue?.first?["label"]?.stringValue == expected[1].fineLabel)
        let pair = try post(s.port, "/predict", #"{"inputs": ["my card", "has not arrived"]}"#)
        #expect(pair.status == 200)
        let pairTokens = classifier.tokenizer.encode("my card", pair: "has not arrived").count
        #expect(pair.header("x-compute-tokens") == String(pairTokens))
    }

    @Test func sixtyFourConcurrentPredictionsEqualOneAtATime() async throws {
        // INT8: bit for bit, whatever the batch; FP32 below within float rounding.
        for int8 in [true, false] {
            let s = try await RunningServer(int8: int8)
            let texts = (0..<64).map { $0 % 4 == 3 ? longQuery($0) : shortQueries[$0 % shortQueries.count] + " #\($0)" }
            let port = s.port
            let sequential = try texts.map { try scores(post(port, "/predict", #"{"inputs": \#(jsonString($0))}"#).json) }
            let parallel = concurrently(64) { i in
                (try? post(port, "/predict", #"{"inputs": \#(jsonString(texts[i]))}"#)).map { ($0.status, scores($0.json)) }
            }
            for i in 0..<64 {
                let (status, got) = try #require(parallel[i])
                #expect(status == 200)
                #expect(got.count == sequential[i].count)
                for (label, p) in sequential[i] {
                    if int8 { #expect(got[label] == p, "\(i) \(label)") } else { #expect(abs(got[label]! - p) <= 1e-5, "\(i) \(label)") }
                }
            }
            // They were batched: fewer forward passes than requests.
            let m = try parsePrometheus(get(port, "/metrics").body)
            let passes = try #require(m["triage_batch_size_count"])
            let sequences = try #require(m["triage_batch_size_sum"])
            #expect(sequences == 128)
            #expect(passes < 128, "no two requests shared a forward pass")
            try await s.stop()
        }
    }

    @Test func errorPathsHaveTEIStatusesAndBodies() async throws {
        var limits = ServiceLimits()
        limits.maxClientBatchSize = 4
        let s = try await RunningServer(limits: limits) { $0.payloadLimit = 4096 }
        defer { Task { try? await s.stop() } }
        func expectError(_ r: Reply, _ status: Int, _ type: String, sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(r.status == status, "\(r.body)", sourceLocation: sourceLocation)
            #expect(r.json?["error_type"]?.stringValue == type, "\(r.body)", sourceLocation: sourceLocation)
            #expect((r.json?["error"]?.stringValue ?? "").isEmpty == false, sourceLocation: sourceLocation)
        }
        expectError(try post(s.port, "/predict", #"{"inputs": []}"#), 400, "empty")
        expectError(try post(s.port, "/predict", "not json"), 422, "validation")
        expectError(try post(s.port, "/predict", #"{"text": "no inputs"}"#), 422, "validation")
        expectError(try post(s.port, "/predict", #"{"inputs": 7}"#), 422, "validation")
        expectError(try post(s.port, "/predict", #"{"inputs": ["a", "b", "c"]}"#), 422, "validation")
        expectError(try post(s.port, "/predict", #"{"inputs": "x", "truncate": "yes"}"#), 422, "validation")
        expectError(try post(s.port, "/predict", #"{"inputs": [["a"], ["b"], ["c"], ["d"], ["e"]]}"#), 422, "validation")
        expectError(try post(s.port, "/tokenize", #"{"inputs": ["a", "b", "c", "d", "e"]}"#), 422, "validation")
        // Longer than the model takes: refused unless truncation is asked for.
        let long = String(repeating: "card ", count: 600)
        expectError(try post(s.port, "/predict", #"{"inputs": \#(jsonString(long))}"#), 422, "validation")
        let truncated = try post(s.port, "/predict", #"{"inputs": \#(jsonString(long)), "truncate": true}"#)
        #expect(truncated.status == 200 && truncated.header("x-compute-tokens") == "512")
        // Past the payload limit.
        expectError(try post(s.port, "/predict", #"{"inputs": \#(jsonString(String(repeating: "a", count: 5000)))}"#), 413, "validation")
        expectError(try post(s.port, "/v1/ask", #"{"history": []}"#), 422, "validation")
        expectError(try post(s.port, "/v1/ask", #"{"query": "hi", "history": [{"role": "system", "content": "x"}]}"#), 422, "validation")
        expectError(try post(s.port, "/v1/classify", #"{"inputs": [1, 2]}"#), 422, "validation")
        let notFound = try get(s.port, "/nope")
        #expect(notFound.status == 404)
        let wrongMethod = try get(s.port, "/predict")
        #expect(wrongMethod.status == 405 && wrongMethod.header("allow") == "POST")
        #expect(try call(s.port, "DELETE", "/info").status == 405)
        // The server still answers after all that.
        #expect(try post(s.port, "/predict", #"{"inputs": "hello"}"#).status == 200)
    }

    @Test func tokenizeInfoHealthAndProbes() async throws {
        let s = try await RunningServer(int8: true)
        defer { Task { try? await s.stop() } }
        let classifier = try Classifier.load(directory: Paths.shippedModel, options: .init(threads: 1, int8: true))
        let tok = try post(s.port, "/tokenize", #"{"inputs": ["Hello world", "my card"]}"#)
        #expect(tok.status == 200)
        let lists = try #require(tok.json?.arrayValue)
        #expect(lists.count == 2)
        let ids = lists[0].arrayValue?.compactMap { $0["id"]?.intValue } ?? []
        #expect(ids == classifier.tokenizer.encode("Hello world").ids.map { Int($0) })
        #expect(lists[0].arrayValue?.first?["special"]?.boolValue == true)
        #expect(lists[0].arrayValue?.first?["text"]?.stringValue == "[CLS]")
        let plain = try post(s.port, "/tokenize", #"{"inputs": "Hello world", "add_special_tokens": false}"#)
        #expect(plain.json?.arrayValue?.first?.arrayValue?.count == ids.count - 2)

        let info = try #require(try get(s.port, "/info").json)
        #expect(info["model_dtype"]?.stringValue == "int8")
        #expect(info["max_input_length"]?.intValue == 512)
        #expect(info["max_client_batch_size"]?.intValue == 32)
        #expect(info["labels"]?.arrayValue?.count == classifier.labels.count)
        #expect(info["model_type"]?["classifier"]?["id2label"]?["0"]?.stringValue == classifier.labels[0])
        #expect(info["threads"]?.intValue == 2)
        #expect(info["kernels"]?.stringValue == classifier.model.runtime.kernels.name)
        // What multiplies FP32 layers: none in an INT8 model.
        #expect(info["fp32_product"] == .null)

        let health = try get(s.port, "/health")
        #expect(health.status == 200 && health.body.isEmpty)
        #expect(try get(s.port, "/livez").status == 200)
        #expect(try get(s.port, "/readyz").json?["status"]?.stringValue == "ready")
    }

    @Test func overloadAnswers429AndLosesNothingAccepted() async throws {
        var limits = ServiceLimits()
        limits.queue.maxConcurrentRequests = 8
        let s = try await RunningServer(int8: true, limits: limits)
        let classifier = try Classifier.load(directory: Paths.shippedModel, options: .init(threads: 1, int8: true))
        var ws = Workspace()
        // Each request is a batch of 4 long inputs: two fill the admission limit.
        let batches = (0..<24).map { r in (0..<4).map { longQuery(r * 4 + $0) } }
        let expected = try batches.map { try classifier.classify($0, workspace: &ws).map(\.label) }
        let port = s.port
        let replies = concurrently(24) { i in
            try? post(port, "/predict", #"{"inputs": [\#(batches[i].map { "[" + jsonString($0) + "]" }.joined(separator: ","))]}"#)
        }
        var ok = 0, overloaded = 0
        for (i, r) in replies.enumerated() {
            let r = try #require(r, "request \(i) got no HTTP response")
            switch r.status {
            case 200:
                ok += 1
                let labels = r.json?.arrayValue?.map { $0.arrayValue?.first?["label"]?.stringValue ?? "" }
                #expect(labels == expected[i], "request \(i)")
            case 429:
                overloaded += 1
                #expect(r.json?["error_type"]?.stringValue == "overloaded")
            default:
                Issue.record("request \(i): status \(r.status) \(r.body)")
            }
        }
        #expect(ok >= 2 && overloaded >= 1, "ok \(ok), 429 \(overloaded)")
        #expect(ok + overloaded == 24)
        let m = try parsePrometheus(get(port, "/metrics").body)
        #expect(m[#"triage_http_requests_total{endpoint="predict",status="429"}"#] == Double(overloaded))
        #expect(m[#"triage_http_requests_total{endpoint="predict",status="200"}"#] == Double(ok))
        #expect(m["triage_queue_in_flight"] == 0)
        try await s.stop()
    }

    @Test func metricsArePresentFromTheFirstScrapeAndCount() async throws {
        let s = try await RunningServer(int8: true)
        defer { Task { try? await s.stop() } }
        let first = try get(s.port, "/metrics")
        #expect(first.status == 200 && first.header("content-type")?.hasPrefix("text/plain") == true)
        let before = try parsePrometheus(first.body)
        for name in [#"triage_http_requests_total{endpoint="predict",status="200"}"#, #"triage_http_requests_total{endpoint="v1_ask",status="200"}"#,
                     "triage_http_request_duration_seconds_count{endpoint=\"predict\"}",
                     "triage_tokenize_duration_seconds_count", "triage_queue_duration_seconds_count",
                     "triage_inference_duration_seconds_count", "triage_cloud_duration_seconds_count",
                     "triage_queue_size", "triage_batch_size_count", "triage_batch_tokens_count",
                     #"triage_routes_total{route="edge"}"#, #"triage_routes_total{route="none"}"#,
                     #"triage_cloud_attempts_total{tier="small",status="200"}"#, #"triage_cloud_cost_usd_total{tier="large"}"#,
                     "triage_cache_hits_total", #"triage_breaker_open{tier="small"}"#, #"triage_model_reloads_total{result="refused"}"#] {
            #expect(before[name] != nil, "\(name) missing from the first scrape")
        }
        #expect(before[#"triage_http_requests_total{endpoint="predict",status="200"}"#] == 0)
        for q in shortQueries.prefix(5) { _ = try post(s.port, "/predict", #"{"inputs": \#(jsonString(q))}"#) }
        _ = try post(s.port, "/predict", #"{"inputs": []}"#)
        _ = try post(s.port, "/v1/ask", #"{"query": "How do I top up with Apple Pay?", "offline": true}"#)
        let after = try parsePrometheus(get(s.port, "/metrics").body)
        #expect(after[#"triage_http_requests_total{endpoint="predict",status="200"}"#] == 5)
        #expect(after[#"triage_http_requests_total{endpoint="predict",status="400"}"#] == 1)
        #expect(after[#"triage_http_requests_total{endpoint="v1_ask",status="200"}"#] == 1)
        #expect(after["triage_batch_size_sum"] == 6)
        #expect(after["triage_inference_duration_seconds_count"] == 6)
        let routes = Route.allCases.reduce(0.0) { $0 + (after["triage_routes_total{route=\"\($1.rawValue)\"}"] ?? 0) }
        #expect(routes == 1)
    }

    @Test func classifyMatchesTheCLIAndAskIsRecordedBeforeTheAnswer() async throws {
        let dir = try temporaryDirectory()
        let db = dir + "/decisions.sqlite"
        let s = try await RunningServer(recordPath: db)
        defer { Task { try? await s.stop() } }
        let texts = Array(shortQueries.prefix(3))
        let served = try post(s.port, "/v1/classify", #"{"inputs": [\#(texts.map(jsonString).joined(separator: ","))]}"#)
        #expect(served.status == 200)
        // The same objects as `triage classify --json` prints, byte for byte.
        let cli = try runBinary(["classify", "--json", "--threads", "2", "--model", Paths.shippedModel] + texts)
        #expect(cli.status == 0, "\(cli.stderr)")
        let cliObjects = cli.stdout.split(separator: "\n").map(String.init)
        let servedObjects = try #require(served.json?.arrayValue).map(\.serialized)
        #expect(servedObjects == cliObjects)

        for (i, q) in shortQueries.prefix(4).enumerated() {
            let r = try post(s.port, "/v1/ask", #"{"query": \#(jsonString(q)), "offline": true}"#)
            #expect(r.status == 200, "\(r.body)")
            #expect(["edge", "none"].contains(r.json?["route"]?.stringValue ?? ""))
            // Already in the record when the answer arrives.
            let store = try DecisionStore(path: db, readOnly: true)
            #expect(try store.count() == i + 1)
        }
    }

    @Test func askSharesCacheAndBreakersAcrossRequests() async throws {
        let cloud = TestServer(fallback: .ok(text: "From the cloud."))
        defer { cloud.stop() }
        let dir = try temporaryDirectory()
        let config = dir + "/config.json"
        // The response cache in this test's own file, not the user's.
        try FileSystem.writeAtomically(config, text: #"{"cloud": {"base_url": "\#(cloud.baseURL)", "max_attempts": 1, "breaker_failure_threshold": 2, "breaker_cooldown": 600}, "cache": {"path": "\#(dir)/responses.sqlite"}}"#)
        let s = try await RunningServer(config: config)
        defer { Task { try? await s.stop() } }
        let question = "what is the capital of peru"
        let first = try #require(try post(s.port, "/v1/ask", #"{"query": \#(jsonString(question))}"#).json)
        #expect(first["route"]?.stringValue == "small" && first["answer"]?.stringValue == "From the cloud.")
        #expect(first["cached"]?.boolValue == false)
        let sent = cloud.requests.count
        // The same question from another request: the shared cache answers, nothing is sent.
        let second = try #require(try post(s.port, "/v1/ask", #"{"query": \#(jsonString(question))}"#).json)
        #expect(second["cached"]?.boolValue == true && second["answer"]?.stringValue == "From the cloud.")
        #expect(cloud.requests.count == sent)
        // History is passed on to the Messages API.
        // The same question after a conversation: another cache key, so it goes to the cloud
        // (the edge escalated it the first time), with the turns before it.
        let followUp = question
        let withHistory = try post(s.port, "/v1/ask", #"{"query": \#(jsonString(followUp)), "history": [{"role": "user", "content": \#(jsonString(question))}, {"role": "assistant", "content": "Lima."}]}"#)
        #expect(withHistory.status == 200 && withHistory.json?["route"]?.stringValue != "edge", "\(withHistory.body)")
        let request = cloud.requests.last { (($0.json?["messages"] as? [[String: Any]])?.last?["content"] as? String) == followUp }
        let messages = request?.json?["messages"] as? [[String: Any]]
        #expect(messages?.count == 3)

        // Two failing requests open both tiers' breakers; a third request sends nothing.
        cloud.enqueue(.error(status: 500), .error(status: 500), .error(status: 500), .error(status: 500))
        for q in ["how tall is mount everest", "who wrote hamlet"] {
            let r = try #require(try post(s.port, "/v1/ask", #"{"query": \#(jsonString(q))}"#).json)
            #expect(r["reason"]?.stringValue == "cloud_unavailable", "\(r.serialized)")
        }
        let before = cloud.requests.count
        let rejected = try #require(try post(s.port, "/v1/ask", #"{"query": "what is the speed of light"}"#).json)
        #expect(cloud.requests.count == before)
        let tiers = rejected["tiers_tried"]?.arrayValue ?? []
        #expect(!tiers.isEmpty && tiers.allSatisfy { $0["rejected_by_breaker"]?.boolValue == true })
        let m = try parsePrometheus(get(s.port, "/metrics").body)
        #expect(m[#"triage_breaker_open{tier="small"}"#] == 1)
        #expect(m["triage_cache_hits_total"] == 1)
        #expect(m[#"triage_cloud_attempts_total{tier="small",status="500"}"#] == 2)
        #expect((m[#"triage_cloud_cost_usd_total{tier="small"}"#] ?? 0) > 0)
    }

    @Test func apiKeyIsRequiredComparedAndNeverShown() async throws {
        let key = "tk-very-secret-4711"
        let dir = try temporaryDirectory()
        let db = dir + "/decisions.sqlite"
        let s = try await RunningServer(recordPath: db) { $0.apiKey = key }
        let auth = [HTTPHeader("Authorization", "Bearer \(key)")]
        #expect(try post(s.port, "/predict", #"{"inputs": "hi"}"#).status == 401)
        #expect(try post(s.port, "/predict", #"{"inputs": "hi"}"#, headers: [HTTPHeader("Authorization", "Bearer \(key)x")]).status == 401)
        #expect(try post(s.port, "/predict", #"{"inputs": "hi"}"#, headers: [HTTPHeader("Authorization", "Bearer tk-very-secret-4710")]).status == 401)
        #expect(try post(s.port, "/predict", #"{"inputs": "hi"}"#, headers: [HTTPHeader("Authorization", key)]).status == 401)
        #expect(try get(s.port, "/metrics").status == 401)
        #expect(try get(s.port, "/openapi.json").status == 401)
        #expect(try post(s.port, "/predict", #"{"inputs": "hi"}"#, headers: auth).status == 200)
        #expect(try post(s.port, "/v1/ask", #"{"query": "how do I top up?", "offline": true}"#, headers: auth).status == 200)
        for open in ["/health", "/livez", "/readyz"] { #expect(try get(s.port, open).status == 200, "\(open)") }
        let metrics = try get(s.port, "/metrics", headers: auth)
        #expect(metrics.status == 200 && !metrics.body.contains(key))
        #expect(try parsePrometheus(metrics.body)[#"triage_http_requests_total{endpoint="predict",status="401"}"#] == 4)
        try await s.stop()
        let record = try Data(contentsOf: URL(fileURLWithPath: db))
        #expect(record.range(of: Data(key.utf8)) == nil)
    }
}
}

// MARK: The real binary

struct RunningBinary {
    let process: Process
    let port: Int
    let logPath: String
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Starts `triage serve --port 0 …` and reads its port from the JSON log.
    static func start(_ arguments: [String], environment: [String: String] = [:]) throws -> RunningBinary {
        let dir = try temporaryDirectory()
        let logPath = dir + "/serve.log"
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Paths.triage)
        process.arguments = ["serve", "--port", "0", "--json-logs"] + arguments
        var env = ProcessInfo.processInfo.environment
        // The response cache in the test's directory, not the user's.
        env["XDG_CACHE_HOME"] = dir
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardError = log
        process.standardOutput = log
        try process.run()
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n") {
                if let v = try? JSONValue.parse(String(line)), v["msg"]?.stringValue == "listening",
                   let address = v["address"]?.stringValue, let port = address.split(separator: ":").last.flatMap({ Int($0) }) {
                    return RunningBinary(process: process, port: port, logPath: logPath)
                }
            }
            if !process.isRunning { throw ServerTestError("triage serve exited with \(process.terminationStatus): \(text)") }
            Thread.sleep(forTimeInterval: 0.05)
        }
        process.terminate()
        throw ServerTestError("triage serve did not start")
    }

    func signal(_ sig: Int32) { kill(process.processIdentifier, sig) }

    func waitForExit(timeout: Double = 60) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if process.isRunning { process.terminate(); return nil }
        return process.terminationStatus
    }
}

struct BinaryResult { let status: Int32; let stdout: String; let stderr: String }

func runBinary(_ arguments: [String]) throws -> BinaryResult {
    let dir = try temporaryDirectory()
    let out = dir + "/out", err = dir + "/err"
    FileManager.default.createFile(atPath: out, contents: nil)
    FileManager.default.createFile(atPath: err, contents: nil)
    let p = Process()
    p.executableURL = URL(fileURLWithPath: Paths.triage)
    p.arguments = arguments
    p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
    p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
    try p.run()
    p.waitUntilExit()
    return BinaryResult(status: p.terminationStatus, stdout: try String(contentsOfFile: out, encoding: .utf8),
                        stderr: try String(contentsOfFile: err, encoding: .utf8))
}

extension HTTPTests {
@Suite(.serialized) struct BinaryServerTests {
    @Test func sigtermFinishesEveryAcceptedRequestAndExitsZero() throws {
        let b = try RunningBinary.start(["--int8", "--threads", "2", "--record-off", "--shutdown-timeout", "120", "--request-timeout", "0"])
        let port = b.port
        // Sixteen requests of 8 long inputs each; SIGTERM goes out as soon as the first one
        // is answered, while the others wait in the queue or run.
        let body = #"{"inputs": [\#((0..<8).map { "[" + jsonString(longQuery($0)) + "]" }.joined(separator: ","))]}"#
        let firstAnswer = DispatchSemaphore(value: 0)
        let signalledAt = Mutex<Double>(.infinity)
        let replies: [(Result<Int, TransportError>, Double)?] = concurrently(17) { i in
            if i == 16 {
                firstAnswer.wait()
                signalledAt.withLock { $0 = Clock.seconds() }
                b.signal(SIGTERM)
                return nil
            }
            let r: Result<Int, TransportError>
            do throws(TransportError) {
                r = .success(try client.post(url: "http://127.0.0.1:\(port)/predict", headers: [], body: Array(body.utf8)).status)
            } catch {
                r = .failure(error)
            }
            firstAnswer.signal()
            return (r, Clock.seconds())
        }
        let status = b.waitForExit()
        #expect(status == 0, "exit \(String(describing: status)): \(b.log)")
        var answered = 0, answeredAfterSignal = 0
        let signalled = signalledAt.withLock { $0 }
        for r in replies.prefix(16) {
            guard let (result, at) = r else { Issue.record("no result"); continue }
            switch result {
            case .success(let code):
                #expect(code == 200)
                answered += 1
                if at > signalled { answeredAfterSignal += 1 }
            case .failure(let e):
                // Only a connection the server never accepted may fail, never one mid-request.
                if case .connectFailed = e {} else { Issue.record("an accepted request failed: \(e)") }
            }
        }
        #expect(answered >= 2)
        #expect(answeredAfterSignal >= 1, "nothing was in flight at SIGTERM")
        #expect(b.log.contains("draining"))
    }

    @Test func sighupLoadsTheNewModelAndRefusesABrokenOne() throws {
        let model = try modelCopy()
        let b = try RunningBinary.start(["--model", model, "--threads", "2", "--record-off"])
        let port = b.port
        func readyModel() throws -> String { try get(port, "/readyz").json?["model"]?.stringValue ?? "" }
        func topScore() throws -> Double {
            try post(port, "/predict", #"{"inputs": \#(jsonString(shortQueries[0]))}"#).json?.arrayValue?.first?["score"]?.doubleValue ?? -1
        }
        let v1 = try readyModel()
        let s1 = try topScore()
        // A new calibration: a new model version and other probabilities.
        let calibration = model + "/triage.json"
        var t = try JSONValue.parse(String(contentsOfFile: calibration, encoding: .utf8))
        if case .object(var pairs) = t {
            pairs.removeAll { $0.0 == "temperature" }
            pairs.append(("temperature", .number(3)))
            t = .object(pairs)
        }
        try t.serialized.write(toFile: calibration, atomically: true, encoding: .utf8)
        func reloads(_ result: String) throws -> Double {
            try parsePrometheus(get(port, "/metrics").body)["triage_model_reloads_total{result=\"\(result)\"}"] ?? -1
        }
        b.signal(SIGHUP)
        for _ in 0..<600 where try reloads("ok") < 1 { Thread.sleep(forTimeInterval: 0.05) }
        #expect(try reloads("ok") == 1)
        let v2 = try readyModel()
        #expect(v2 != v1)
        let s2 = try topScore()
        #expect(s2 < s1)

        // A broken model: refused, the running one keeps serving.
        try "{ not json".write(toFile: model + "/config.json", atomically: true, encoding: .utf8)
        b.signal(SIGHUP)
        for _ in 0..<600 where try reloads("refused") < 1 { Thread.sleep(forTimeInterval: 0.05) }
        #expect(try reloads("refused") == 1)
        #expect(try readyModel() == v2)
        #expect(try topScore() == s2)
        #expect(b.log.contains("reload refused"))
        b.signal(SIGTERM)
        #expect(b.waitForExit() == 0)
    }

    @Test func apiKeyFromTheEnvironmentNeverReachesTheLogs() throws {
        let key = "tk-env-secret-0815"
        let dir = try temporaryDirectory()
        let b = try RunningBinary.start(["--int8", "--db", dir + "/d.sqlite"], environment: ["TRIAGE_API_KEY": key])
        #expect(try post(b.port, "/predict", #"{"inputs": "hi"}"#).status == 401)
        #expect(try post(b.port, "/predict", #"{"inputs": "hi"}"#, headers: [HTTPHeader("Authorization", "Bearer wrong-\(key)")]).status == 401)
        let auth = [HTTPHeader("Authorization", "Bearer \(key)")]
        #expect(try post(b.port, "/v1/ask", #"{"query": "how do I top up?", "offline": true}"#, headers: auth).status == 200)
        #expect(try post(b.port, "/predict", #"{"inputs": []}"#, headers: auth).status == 400)
        let metrics = try get(b.port, "/metrics", headers: auth).body
        b.signal(SIGINT)
        #expect(b.waitForExit() == 0)
        #expect(!b.log.isEmpty && !b.log.contains(key))
        #expect(!metrics.contains(key))
        let record = try Data(contentsOf: URL(fileURLWithPath: dir + "/d.sqlite"))
        #expect(record.range(of: Data(key.utf8)) == nil)
    }
}
}
