import Foundation
import TriageTestSupport
import Synchronization
import Testing
import TriageClassifier
import TriageCloud
import TriageHTTP
import TriageJSON
import TriageService
import TriageSystem

enum Paths {
    static let repository = TestPaths.repository
    static let shippedModel = TestPaths.shippedModel
    /// The `triage` executable built alongside the test bundle.
    static let triage = TestPaths.triage
}

func temporaryDirectory() throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("triage-http-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// A copy of the shipped model whose files can be changed (SIGHUP tests).
func modelCopy() throws -> String {
    let dir = try temporaryDirectory() + "/model"
    try FileManager.default.copyItem(atPath: Paths.shippedModel, toPath: dir)
    return dir
}

/// A real libcurl client (the project's own, from TriageCloud).
let client = HTTPClient(connectTimeout: 10, requestTimeout: 120)

struct Reply {
    let status: Int
    let headers: [HTTPHeader]
    let body: String
    var json: JSONValue? { try? JSONValue.parse(body) }
    func header(_ name: String) -> String? { headers.last { $0.name.lowercased() == name.lowercased() }?.value }
}

func call(_ port: Int, _ method: String, _ path: String, json: String? = nil, headers: [HTTPHeader] = []) throws -> Reply {
    var h = headers
    if json != nil { h.append(HTTPHeader("Content-Type", "application/json")) }
    let r = try client.send(method: method, url: "http://127.0.0.1:\(port)\(path)", headers: h, body: Array((json ?? "").utf8))
    return Reply(status: r.status, headers: r.headers, body: r.bodyText)
}

func post(_ port: Int, _ path: String, _ json: String, headers: [HTTPHeader] = []) throws -> Reply {
    try call(port, "POST", path, json: json, headers: headers)
}

func get(_ port: Int, _ path: String, headers: [HTTPHeader] = []) throws -> Reply {
    try call(port, "GET", path, headers: headers)
}

func jsonString(_ s: String) -> String { JSONValue.string(s).serialized }

/// A library server on 127.0.0.1 and an ephemeral port, running until `stop()`.
final class RunningServer: @unchecked Sendable {
    let server: TriageServer
    let port: Int
    private let task: Task<Void, any Error>

    init(model: String = Paths.shippedModel, int8: Bool = false, threads: Int = 2, config: String? = nil,
         recordPath: String? = nil, limits: ServiceLimits = ServiceLimits(),
         configure: (inout ServerOptions) -> Void = { _ in }) async throws {
        var settings = EngineSettings(modelDirectory: model, classifier: Classifier.Options(threads: threads, int8: int8),
                                      configPath: config)
        settings.recordOff = recordPath == nil
        settings.recordPath = recordPath
        // The response cache in this process only, never the user's file (a test that
        // checks the cache across requests sets its own file in its config).
        if config == nil { settings.cachePath = "memory" }
        let engine = try Engine.load(settings, warn: { _ in })
        let service = EdgeService(engine: engine, limits: limits)
        var options = ServerOptions()
        options.port = 0
        configure(&options)
        let server = TriageServer(service: service, options: options)
        let bound = Mutex<Int?>(nil)
        task = Task { try await server.run(onRunning: { p in bound.withLock { $0 = p } }) }
        var waited = 0.0
        while bound.withLock({ $0 }) == nil {
            try await Task.sleep(for: .milliseconds(10))
            waited += 0.01
            if waited > 30 { throw ServerTestError("the server did not start within 30 s") }
        }
        self.server = server
        self.port = bound.withLock { $0! }
    }

    func stop() async throws {
        await server.shutdown()
        try await task.value
    }
}

struct ServerTestError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Runs `body(i)` for i in 0..<n on n threads started together (blocking libcurl calls
/// must not share Swift's two cooperative threads), and returns the results in order.
func concurrently<T: Sendable>(_ n: Int, _ body: @escaping @Sendable (Int) -> T) -> [T] {
    let results = Mutex<[Int: T]>([:])
    let group = DispatchGroup()
    let gate = DispatchSemaphore(value: 0)
    for i in 0..<n {
        group.enter()
        let t = Thread {
            gate.wait()
            let r = body(i)
            results.withLock { $0[i] = r }
            group.leave()
        }
        t.stackSize = 1 << 20
        t.start()
    }
    for _ in 0..<n { gate.signal() }
    group.wait()
    return results.withLock { d in (0..<n).map { d[$0]! } }
}

/// Real banking queries (the shipped model's validation split) and ~128-token ones.
let shortQueries = [
    "I still have not received my new card, it has been two weeks",
    "How do I top up my account with Apple Pay?",
    "I was charged twice for the same coffee, can you refund one?",
    "What is the weather like in Paris tomorrow?",
    "Why is my transfer still pending?",
    "Can I change my PIN at an ATM?",
    "my card got declined at the supermarket",
    "what exchange rate do you use for euros",
]

func longQuery(_ i: Int) -> String {
    (0..<10).map { shortQueries[($0 + i) % shortQueries.count] }.joined(separator: " ")
}

/// A served score list as label → score.
func scores(_ list: JSONValue?) -> [String: Float] {
    var out: [String: Float] = [:]
    for item in list?.arrayValue ?? [] {
        if let label = item["label"]?.stringValue, let s = item["score"]?.doubleValue { out[label] = Float(s) }
    }
    return out
}

/// Prometheus text format: each sample as "name{labels}" → value; throws on a line that
/// is neither a comment nor a sample.
func parsePrometheus(_ text: String) throws -> [String: Double] {
    var out: [String: Double] = [:]
    for line in text.split(separator: "\n") where !line.hasPrefix("#") && !line.isEmpty {
        guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
            throw ServerTestError("not a Prometheus sample: \(line)")
        }
        out[String(line[..<space])] = value
    }
    return out
}
