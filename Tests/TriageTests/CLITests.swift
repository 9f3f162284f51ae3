import Foundation
import Synchronization
import Testing
import TriageJSON
import TriageKernels
import TriageModel
import TriageSystem
import TriageTensors
import TriageRecord
import TriageTestSupport

/// The real `triage` binary: exit codes, messages and output formats.
@Suite struct CLITests {
    /// A model directory built from the tiny72 parity fixture plus the first 1,000 tokens of
    /// the real BERT vocabulary, optionally with one tensor removed.
    func tinyModel(dropping tensor: String? = nil) throws -> String {
        let dir = NSTemporaryDirectory() + "triage-cli-\(UUID().uuidString)"
        try FileSystem.createDirectory(dir)
        let src = Paths.fixtures + "/parity/tiny72"
        try FileSystem.copyFile(from: src + "/config.json", to: dir + "/config.json")
        let vocab = try FileSystem.readText(Paths.fixtures + "/tokenizer/vocab.txt").split(separator: "\n").prefix(1000)
        try FileSystem.writeAtomically(dir + "/vocab.txt", text: vocab.joined(separator: "\n") + "\n")
        let file = try SafeTensorsFile(path: src + "/model.safetensors")
        var w = SafeTensorsWriter()
        for t in file.tensors where t.name != tensor {
            w.add(t.name, dtype: t.dtype, shape: t.shape, bytes: Array(file.bytes(of: t)))
        }
        try w.write(to: dir + "/model.safetensors")
        return dir
    }

    @Test func missingModelDirectory() throws {
        let r = try runTriage(["classify", "--model", "/nonexistent/model", "hello"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("/nonexistent/model") && r.stderr.contains("does not exist"))
        #expect(r.stdout.isEmpty)
    }

    @Test func missingTensorIsNamed() throws {
        let dir = try tinyModel(dropping: "distilbert.transformer.layer.1.ffn.lin2.weight")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try runTriage(["classify", "--model", dir, "hello"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("missing tensors: distilbert.transformer.layer.1.ffn.lin2.weight"))
    }

    @Test func emptyInputIsAUsageError() throws {
        let dir = try tinyModel()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try runTriage(["classify", "--model", dir], stdin: "")
        #expect(r.status == 64)
        #expect(r.stderr.contains("no input"))
    }

    /// `quantize --attention int8` through the binary: the file carries the scheme, the
    /// INT8 model classifies from it, and an unknown scheme is a usage error.
    @Test func quantizeWithInt8Attention() throws {
        let dir = try tinyModel()
        defer { try? FileManager.default.removeItem(atPath: dir); try? FileManager.default.removeItem(atPath: dir + "-int8") }
        let q = try runTriage(["quantize", "--model", dir, "--attention", "int8"])
        #expect(q.status == 0, "\(q.stderr)")
        let file = try SafeTensorsFile(path: dir + "-int8/model.safetensors")
        #expect(file.metadata("triage_attention") == "int8-v1")
        let r = try runTriage(["classify", "--model", dir, "--int8", "--json", "hello there"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("\"label\""))
        let bad = try runTriage(["quantize", "--model", dir, "--attention", "int4", "--out", dir + "-x"])
        #expect(bad.status == 64)
        #expect(bad.stderr.contains("--attention must be float or int8"))
        #expect(!FileSystem.exists(dir + "-x"))
    }

    /// `triage pack` on the shipped model (F16 on disk): the copy classifies byte for byte as
    /// the source, and every linear layer is read in place from the file's mapping.
    @Test func packWritesPanelsThatLoadAsAMemoryMap() throws {
        let dir = NSTemporaryDirectory() + "triage-pack-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = try runTriage(["pack", "--model", Paths.shippedModel, "--out", dir])
        #expect(p.status == 0, "\(p.stderr)")
        #expect(p.stderr.contains("packed ") && p.stderr.contains(dir))
        let queries = ["I still have not received my new card", "how do I top up with apple pay", "what is the weather in lima"]
        let source = try runTriage(["classify", "--json", "--model", Paths.shippedModel] + queries)
        let packed = try runTriage(["classify", "--json", "--model", dir] + queries)
        #expect(packed.status == 0, "\(packed.stderr)")
        #expect(packed.stdout == source.stdout && !packed.stdout.isEmpty)
        let weights = try DistilBertWeights.load(directory: dir)
        let linears = weights.layers.flatMap { [$0.qkv, $0.outLin, $0.lin1, $0.lin2] } + [weights.head!.preClassifier, weights.head!.classifier]
        for l in linears {
            guard case let .float(w) = l.weight else { Issue.record("not FP32"); continue }
            #expect(w.isMapped)
        }
        let card = try FileSystem.readText(dir + "/README.md")
        #expect(card.contains("FP32 panels copy"))
        // An INT8 model cannot be packed; the message says why, exit 1.
        let int8 = try runTriage(["pack", "--model", Paths.shippedModel + "-int8", "--out", dir + "-x"])
        #expect(int8.status == 1 && int8.stderr.contains("is an INT8 model"), "\(int8.stderr)")
        #expect(!FileSystem.exists(dir + "-x"))
    }

    @Test func classifyJSONOnePerInputInOrder() throws {
        let dir = try tinyModel()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lines = ["first query", "", "a third, longer query about cards and money", "[CLS] literal"]
        let r = try runTriage(["classify", "--json", "--model", dir], stdin: lines.joined(separator: "\n") + "\n")
        #expect(r.status == 0, "\(r.stderr)")
        let out = try r.stdout.split(separator: "\n").map { try JSONValue.parse(String($0)) }
        #expect(out.count == lines.count)
        for (o, text) in zip(out, lines) {
            #expect(o["text"]?.stringValue == text)
            let probs = o["probs"]!.objectPairs!
            #expect(probs.map(\.0) == ["label_a", "label_b", "label_c", "label_d", "label_e"])
            #expect(abs(probs.reduce(0) { $0 + $1.1.doubleValue! } - 1) < 1e-5)
            #expect(o["logits"]!.arrayValue!.count == 5)
            let best = probs.max { $0.1.doubleValue! < $1.1.doubleValue! }!
            #expect(o["label"]?.stringValue == best.0)
            #expect(o["confidence"]?.doubleValue == best.1.doubleValue)
        }
        // Alone, as an argument, the first query gets the same answer (up to the summation
        // order OpenBLAS picks for a different batch size).
        let a = try runTriage(["classify", "--json", "--model", dir, "first query"])
        let alone = try JSONValue.parse(String(a.stdout.split(separator: "\n")[0]))
        #expect(alone["label"] == out[0]["label"])
        for (x, y) in zip(alone["logits"]!.arrayValue!, out[0]["logits"]!.arrayValue!) {
            #expect(abs(x.doubleValue! - y.doubleValue!) < 1e-5)
        }
    }

    @Test func tokenizeJSON() throws {
        let r = try runTriage(["tokenize", "--json", "--model", Paths.fixtures + "/tokenizer"], stdin: "Hello, world!\n")
        #expect(r.status == 0)
        let v = try JSONValue.parse(String(r.stdout.split(separator: "\n")[0]))
        #expect(v["tokens"]!.arrayValue!.compactMap(\.stringValue) == ["[CLS]", "hello", ",", "world", "!", "[SEP]"])
        #expect(v["ids"]!.arrayValue!.count == 6)
    }

    @Test func unknownOptionIsAUsageError() throws {
        let r = try runTriage(["classify", "--bogus"])
        #expect(r.status == 64)
    }
}

/// `triage ask` as a process: the record survives SIGKILL, two processes can write at once,
/// and it talks to a real HTTP server through the environment settings.
@Suite(.serialized) struct AskCLITests {
    @Test func killedMidBatchLosesNoPrintedAnswer() throws {
        // Writing to the killed child's stdin must fail with EPIPE, not kill the test process.
        signal(SIGPIPE, SIG_IGN)
        let dir = try CascadeTests.modelDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = dir + "/kill.sqlite"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Paths.triage)
        process.arguments = ["ask", "--offline", "--json", "--record-text", "--threads", "1", "--model", dir, "--db", db]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        // Feed a long batch from another thread; the child answers line by line.
        let writer = Thread {
            for i in 0..<5000 {
                let line = "query number \(i) about my card payment\n"
                guard (try? input.fileHandleForWriting.write(contentsOf: Data(line.utf8))) != nil else { return }
            }
        }
        writer.start()
        var printed: [String] = []
        var buffer = Data()
        while printed.count < 40 {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            buffer.append(chunk)
            while let nl = buffer.firstIndex(of: 0x0A) {
                printed.append(String(decoding: buffer[buffer.startIndex..<nl], as: UTF8.self))
                buffer = Data(buffer[(nl + 1)...])
            }
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal)
        // Whatever else was in the pipe was also printed before the kill.
        buffer.append(output.fileHandleForReading.readDataToEndOfFile())
        printed += String(decoding: buffer, as: UTF8.self).split(separator: "\n").map(String.init)
        let answered = printed.compactMap { try? JSONValue.parse($0)["query"]?.stringValue }
        #expect(answered.count >= 40)

        let store = try DecisionStore(path: db, readOnly: true)
        let rows = try store.decisions()
        let recorded = Set(rows.compactMap(\.queryText))
        #expect(rows.count >= answered.count, "\(rows.count) rows for \(answered.count) printed answers")
        for q in answered { #expect(recorded.contains(q), "printed but not recorded: \(q)") }
        let check = try runSQLite(db, "PRAGMA integrity_check;")
        #expect(check == "ok")
    }

    @Test func twoProcessesRecordEveryRow() throws {
        let dir = try CascadeTests.modelDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = dir + "/two.sqlite"
        let lines = (0..<150).map { "question \($0) about a transfer" }.joined(separator: "\n") + "\n"
        let results = Mutex<[ProcessResult]>([])
        let threads = (0..<2).map { _ in
            Thread {
                let r = try? runTriage(["ask", "--offline", "--threads", "1", "--model", dir, "--db", db], stdin: lines)
                results.withLock { if let r { $0.append(r) } else { $0.append(ProcessResult(status: -1, stdout: "", stderr: "did not run")) } }
            }
        }
        threads.forEach { $0.start() }
        while results.withLock({ $0.count }) < 2 { Thread.sleep(forTimeInterval: 0.05) }
        let done = results.withLock { $0 }
        #expect(done.allSatisfy { $0.status == 0 }, "\(done.map(\.stderr))")
        let store = try DecisionStore(path: db, readOnly: true)
        #expect(try store.count() == 300)
    }

    @Test func asksTheCloudThroughTheEnvironmentAndKeepsTheKeySecret() throws {
        let dir = try CascadeTests.modelDirectory(outOfScopeEverything: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = TestServer(fallback: .ok(text: "From the cloud."))
        defer { server.stop() }
        let r = try runTriage(["ask", "--json", "--model", dir, "--record-off", "what is the capital of peru"],
                              environment: ["ANTHROPIC_BASE_URL": server.baseURL, "ANTHROPIC_API_KEY": "sk-secret-123",
                                            "XDG_CONFIG_HOME": dir])
        #expect(r.status == 0, "\(r.stderr)")
        let v = try JSONValue.parse(String(try #require(r.stdout.split(separator: "\n").first)))
        #expect(v["route"]?.stringValue == "small" && v["reason"]?.stringValue == "out_of_scope")
        #expect(v["answer"]?.stringValue == "From the cloud.")
        #expect((v["cost_usd"]?.doubleValue ?? 0) > 0)
        #expect(server.requests.first?.header("x-api-key") == "sk-secret-123")
        #expect(!r.stdout.contains("sk-secret-123") && !r.stderr.contains("sk-secret-123"))
    }

    /// libcurl is loaded on the first cloud request and OpenBLAS when an FP32 model loads,
    /// neither linked: a one-query classify loads none of libcurl's ~30 libraries, an INT8
    /// one not OpenBLAS either, and a box without them still classifies.
    @Test func theBinaryLinksNeitherLibcurlNorOpenBLAS() throws {
        let ldd = Process()
        ldd.executableURL = URL(fileURLWithPath: "/usr/bin/ldd")
        ldd.arguments = [Paths.triage]
        let pipe = Pipe()
        ldd.standardOutput = pipe
        try ldd.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        ldd.waitUntilExit()
        #expect(out.contains("libc.so"), "\(out)")
        #expect(!out.contains("libopenblas"), "\(out)")
        #expect(!out.contains("libcurl"), "\(out)")
    }

    /// `classify`'s everyday arguments are read without ArgumentParser; the same request
    /// spelled in a form only ArgumentParser reads (`--opt=value`) must print the same bytes,
    /// and what ArgumentParser rejects is still rejected by it, with its message and exit 64.
    @Test func classifyReadsTheSameWithAndWithoutArgumentParser() throws {
        let model = Paths.shippedModel + "-int8"
        let texts = ["I still have not received my new card", "--", "-5 degrees in Oslo?"]
        let plain = try runTriage(["classify", "--json", "--int8", "--threads", "1", "--model", model, "--batch-size", "2"] + texts)
        let parsed = try runTriage(["classify", "--json", "--int8", "--threads=1", "--model=\(model)", "--batch-size=2"] + texts)
        #expect(plain.status == 0 && parsed.status == 0, "\(plain.stderr) \(parsed.stderr)")
        #expect(plain.stdout.split(separator: "\n").count == 2)
        #expect(plain.stdout.contains("-5 degrees in Oslo?"))
        #expect(plain.stdout == parsed.stdout)
        let table = try runTriage(["classify", "--int8", "--model", model, "I want a refund"])
        let tableParsed = try runTriage(["classify", "--int8", "--model=\(model)", "I want a refund"])
        #expect(table.status == 0 && table.stdout == tableParsed.stdout && table.stdout.hasPrefix("LABEL"))
        for bad in [["--threads", "0"], ["--batch-size", "0"], ["--no-such-flag"], ["--threads", "x"]] {
            let r = try runTriage(["classify", "--model", model] + bad + ["hello"])
            #expect(r.status == 64, "\(bad): \(r.status) \(r.stderr)")
            let message = bad[0] == "--threads" && bad[1] == "x" ? "The value 'x' is invalid" : "Usage: triage classify"
            #expect(r.stderr.contains(message) && r.stdout.isEmpty, "\(bad): \(r.stderr)")
        }
        // A repeated flag is not read by the fast path; ArgumentParser accepts it.
        let twice = try runTriage(["classify", "--int8", "--int8", "--model", model, "I want a refund"])
        #expect(twice.status == 0 && twice.stdout == table.stdout)
        let noInput = try runTriage(["classify", "--model", model], stdin: "")
        #expect(noInput.status == 64 && noInput.stderr.contains("no input"))
    }

    /// Without OpenBLAS (TRIAGE_OPENBLAS names a library that is not there) the INT8 model
    /// classifies as before; the FP32 one runs on the CPU's own FP32 product where it has one
    /// (AVX2) and, told to use OpenBLAS (or without such a product), refuses to load with the
    /// reason, exit 1.
    @Test func anInt8ModelNeedsNoOpenBLASAndAnFP32OneSaysWhatIsMissing() throws {
        let query = "I still have not received my new card"
        let missing = ["TRIAGE_OPENBLAS": "/nonexistent/libopenblas.so.0"]
        let int8 = try runTriage(["classify", "--json", "--int8", "--model", Paths.shippedModel + "-int8", query], environment: missing)
        let reference = try runTriage(["classify", "--json", "--int8", "--model", Paths.shippedModel + "-int8", query])
        #expect(int8.status == 0, "\(int8.stderr)")
        #expect(int8.stdout == reference.stdout && !int8.stdout.isEmpty)
        if CPUFeatures.current.hasAVX2 {
            let native = try runTriage(["classify", "--json", "--model", Paths.shippedModel, query], environment: missing)
            let withBLAS = try runTriage(["classify", "--json", "--model", Paths.shippedModel, query])
            #expect(native.status == 0 && native.stdout == withBLAS.stdout && !native.stdout.isEmpty, "\(native.stderr)")
        }
        var blas = missing
        blas["TRIAGE_FP32_KERNEL"] = "openblas"
        let fp32 = try runTriage(["classify", "--json", "--model", Paths.shippedModel, query], environment: blas)
        #expect(fp32.status == 1)
        #expect(fp32.stderr.contains("OpenBLAS could not be loaded") && fp32.stderr.contains("/nonexistent/libopenblas.so.0"),
                "\(fp32.stderr)")
        #expect(fp32.stdout.isEmpty)
        blas["TRIAGE_FP32_KERNEL"] = "blis"
        let unknown = try runTriage(["classify", "--json", "--model", Paths.shippedModel, query], environment: blas)
        #expect(unknown.status != 0 && unknown.stderr.contains("TRIAGE_FP32_KERNEL must be native or openblas"), "\(unknown.stderr)")
    }

    /// The response cache is a file: a second `triage ask` process gets the answer the first
    /// one paid for, with no HTTP request; a different conversation is a different key.
    @Test func aSecondProcessIsAnsweredFromTheCacheFile() throws {
        let dir = try CascadeTests.modelDirectory(outOfScopeEverything: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = TestServer(fallback: .ok(text: "Lima."))
        defer { server.stop() }
        let environment = ["ANTHROPIC_BASE_URL": server.baseURL, "ANTHROPIC_API_KEY": "k", "XDG_CONFIG_HOME": dir,
                           "XDG_CACHE_HOME": dir + "/cache"]
        func ask(_ args: [String] = []) throws -> JSONValue {
            let r = try runTriage(["ask", "--json", "--model", dir, "--record-off"] + args + ["what is the capital of peru"],
                                  environment: environment)
            #expect(r.status == 0, "\(r.stderr)")
            return try JSONValue.parse(String(try #require(r.stdout.split(separator: "\n").first)))
        }
        let first = try ask(), second = try ask()
        #expect(first["cached"]?.boolValue == false && first["answer"]?.stringValue == "Lima.")
        #expect(second["cached"]?.boolValue == true && second["answer"]?.stringValue == "Lima.")
        #expect(second["cost_usd"]?.doubleValue == 0)
        #expect(server.requests.count == 1)
        #expect(FileSystem.exists(dir + "/cache/triage/responses.sqlite"))

        // With a conversation before it the same question is asked again, and the last three
        // turns (not the first) go with it.
        let turns = (1...4).map { i in #"{"role": "\#(i % 2 == 1 ? "user" : "assistant")", "content": "turn \#(i)"}"# }
        try FileSystem.writeAtomically(dir + "/history.json", text: "[" + turns.joined(separator: ",") + "]")
        let third = try ask(["--history", dir + "/history.json"])
        #expect(third["cached"]?.boolValue == false)
        #expect(server.requests.count == 2)
        let messages = (server.requests.last?.json?["messages"] as? [[String: Any]]) ?? []
        #expect(messages.compactMap { $0["content"] as? String } == ["turn 2", "turn 3", "turn 4", "what is the capital of peru"])

        // JSON lines carry each query's own history; a bad line is a clear error.
        let lines = #"{"query": "what is the capital of peru", "history": [{"role": "user", "content": "turn 9"}]}"# + "\n"
        let jsonl = try runTriage(["ask", "--json", "--model", dir, "--record-off", "--input-jsonl"], stdin: lines + "{\"query\": 3}\n",
                                  environment: environment)
        #expect(jsonl.status == 1 && jsonl.stderr.contains("line 2") && jsonl.stderr.contains("query"))
        #expect(jsonl.stdout.split(separator: "\n").count == 1)
        let lastMessages = (server.requests.last?.json?["messages"] as? [[String: Any]]) ?? []
        #expect(lastMessages.compactMap { $0["content"] as? String } == ["turn 9", "what is the capital of peru"])
        let badHistory = try runTriage(["ask", "--model", dir, "--record-off", "--history", dir + "/answers.json", "hi"],
                                       environment: environment)
        #expect(badHistory.status != 0 && badHistory.stderr.contains("history"))
    }

    @Test func asksAGatewayBehindAPrivateAuthorityOverHTTPS() throws {
        let dir = try CascadeTests.modelDirectory(outOfScopeEverything: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = TestServer(fallback: .ok(text: "Verified."), tls: try TLSFixtures.server())
        defer { server.stop() }
        let trusting = dir + "/trusting.json", plain = dir + "/plain.json"
        try FileSystem.writeAtomically(trusting, text: #"{"cloud": {"base_url": "\#(server.baseURL)", "ca_file": "\#(TLSFixtures.caFile)"}}"#)
        try FileSystem.writeAtomically(plain, text: #"{"cloud": {"base_url": "\#(server.baseURL)"}}"#)
        let environment = ["ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": ""]
        let ok = try runTriage(["ask", "--json", "--config", trusting, "--model", dir, "--record-off", "what is the capital of peru"],
                               environment: environment)
        #expect(ok.status == 0, "\(ok.stderr)")
        let v = try JSONValue.parse(String(try #require(ok.stdout.split(separator: "\n").first)))
        #expect(v["route"]?.stringValue == "small" && v["answer"]?.stringValue == "Verified.")
        // Without the authority the system store refuses the certificate: handled, not answered.
        let refused = try runTriage(["ask", "--json", "--config", plain, "--model", dir, "--record-off", "what is the capital of peru"],
                                    environment: environment)
        #expect(refused.status == 0, "\(refused.stderr)")
        let w = try JSONValue.parse(String(try #require(refused.stdout.split(separator: "\n").first)))
        #expect(w["route"]?.stringValue == "none" && w["reason"]?.stringValue == "cloud_unavailable")
        #expect(server.requests.count == 1)
    }

    @Test func cloudDownStillExitsZero() throws {
        let dir = try CascadeTests.modelDirectory(outOfScopeEverything: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let port = RefusingPort()
        let config = dir + "/operator-config.json"
        try FileSystem.writeAtomically(config, text: #"{"cloud": {"max_attempts": 1, "connect_timeout": 1}}"#)
        let r = try runTriage(["ask", "--json", "--config", config, "--model", dir, "--record-off", "anything at all"],
                              environment: ["ANTHROPIC_BASE_URL": "http://127.0.0.1:\(port.port)", "ANTHROPIC_API_KEY": "k"])
        #expect(r.status == 0, "\(r.stderr)")
        let v = try JSONValue.parse(String(try #require(r.stdout.split(separator: "\n").first)))
        #expect(v["route"]?.stringValue == "none" && v["reason"]?.stringValue == "cloud_unavailable")
    }

    @Test func badConfigIsAClearError() throws {
        let dir = try CascadeTests.modelDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileSystem.writeAtomically(dir + "/bad.json", text: #"{"router": {"min_confidense": 0.5}}"#)
        let r = try runTriage(["ask", "--config", dir + "/bad.json", "--model", dir, "--record-off", "hi"])
        #expect(r.status == 1 && r.stderr.contains("min_confidense"))
    }
}

/// The system sqlite3 shell is not needed: integrity is checked through the store's own
/// connection type.
func runSQLite(_ path: String, _ sql: String) throws -> String {
    try DecisionStore.integrityCheck(path: path)
}
