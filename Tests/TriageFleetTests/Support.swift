import Foundation
import TriageTestSupport
import Glibc
import PostgresNIO
import Testing
@testable import TriageFleet
@testable import TriageRecord
import TriageCascade

/// The throwaway server of scripts/with-postgres.sh (make test), or nothing.
enum TestPostgres {
    static let url = ProcessInfo.processInfo.environment["TRIAGE_TEST_PG_URL"]
    static let ctl = ProcessInfo.processInfo.environment["TRIAGE_TEST_PG_CTL"]
    static let required = ProcessInfo.processInfo.environment["TRIAGE_FLEET_TESTS_REQUIRED"] == "1"
    static var available: Bool { url != nil }

    static var base: FleetURL { try! FleetURL(url!, environment: { _ in nil }) }
    static var password: String { base.password ?? "" }

    /// A fresh, empty database on the test server; its URL without the password (which the
    /// tests pass through TRIAGE_PG_PASSWORD, as an operator should).
    static func freshDatabase() async throws -> (url: String, name: String) {
        let name = "triage_test_" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        // Right after a test restarted the server it may still refuse for a moment.
        var attempt = 0
        while true {
            do { try await admin("CREATE DATABASE \(name)"); break } catch {
                attempt += 1
                if attempt >= 20 { throw FleetError("CREATE DATABASE: \(FleetDatabase.describe(error))") }
                try await Task.sleep(nanoseconds: 250_000_000)
            }
        }
        let b = base
        return ("postgres://\(b.user)@\(b.host):\(b.port)/\(name)?sslmode=disable", name)
    }

    static func connect(database: String = "postgres") async throws -> PostgresConnection {
        let b = base
        let config = PostgresConnection.Configuration(host: b.host, port: b.port, username: b.user, password: b.password,
                                                      database: database, tls: .disable)
        return try await PostgresConnection.connect(configuration: config, id: 99, logger: FleetDatabase.quietLogger)
    }

    static func admin(_ sql: String) async throws {
        let c = try await connect()
        do { try await c.query(PostgresQuery(unsafeSQL: sql), logger: FleetDatabase.quietLogger) } catch {
            try? await c.close()
            throw error
        }
        try await c.close()
    }

    /// (node, uid) of every decision in `database`, and the total row count.
    static func rows(_ database: String) async throws -> (pairs: [String], count: Int) {
        let c = try await connect(database: database)
        var pairs: [String] = []
        do {
            for try await (node, uid) in try await c.query("SELECT node, uid FROM decisions", logger: FleetDatabase.quietLogger)
                .decode((String, String).self) {
                pairs.append(node + "/" + uid)
            }
        } catch {
            try? await c.close()   // PostgresNIO insists on a closed connection before it goes
            throw error
        }
        try await c.close()
        return (pairs.sorted(), pairs.count)
    }

    static func stopServer() async throws { try #require(await Child(ctl!, ["stop"]).waitAsync() == 0, "pg_ctl stop failed") }
    static func startServer() async throws { try #require(await Child(ctl!, ["start"]).waitAsync() == 0, "pg_ctl start failed") }
}

/// The `triage` executable built alongside the test bundle.
enum Binary {
    static let triage = TestPaths.triage
    static let repository = TestPaths.repository
    static let model = TestPaths.shippedModel
}

/// A child process started with posix_spawn and reaped with waitpid. (Foundation's
/// Process.waitUntilExit hangs on children that leave daemons behind, such as pg_ctl.)
final class Child: @unchecked Sendable {
    let pid: pid_t
    let stdoutPath: String
    let stderrPath: String
    private let directory: String
    private var status: Int32?

    init(_ path: String, _ arguments: [String], environment: [String: String] = [:], stdin: String? = nil) throws {
        let dir = NSTemporaryDirectory() + "triage-child-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        directory = dir
        stdoutPath = dir + "/out"
        stderrPath = dir + "/err"
        let stdinPath = dir + "/in"
        try (stdin ?? "").write(toFile: stdinPath, atomically: true, encoding: .utf8)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdinPath, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        // The children never see the test server's password unless a test gives it to them.
        env["TRIAGE_TEST_PG_URL"] = nil
        if environment["TRIAGE_PG_PASSWORD"] == nil { env["TRIAGE_PG_PASSWORD"] = nil }
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { argv.forEach { free($0) }; envp.forEach { free($0) } }
        // A clean signal state: the spawning thread may block signals (the test runner's and
        // NIO's threads do), and a child inherits the mask — SIGTERM would never reach it.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var child: pid_t = 0
        let rc = posix_spawn(&child, path, &actions, &attributes, argv, envp)
        guard rc == 0 else { throw FleetError("posix_spawn \(path): \(String(cString: strerror(rc)))") }
        pid = child
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    /// Waits for the child and returns its exit status (128 + signal when killed).
    @discardableResult
    func wait() -> Int32 {
        if let status { return status }
        var raw: Int32 = 0
        while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
        let s = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
        status = s
        return s
    }

    /// `wait` without blocking a thread of the cooperative pool (only as many as cores):
    /// polls every 20 ms. Async tests use this, so PostgresNIO's continuations can run.
    @discardableResult
    func waitAsync() async -> Int32 {
        if let status { return status }
        while true {
            var raw: Int32 = 0
            let r = waitpid(pid, &raw, WNOHANG)
            if r == pid {
                let s = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
                status = s
                return s
            }
            if r < 0 && errno != EINTR { return -1 }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
    }

    func kill(_ signal: Int32 = SIGKILL) { Glibc.kill(pid, signal) }

    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }
}

/// Runs a program to completion; its exit status.
@discardableResult
func run(_ path: String, _ arguments: [String], environment: [String: String] = [:]) throws -> Int32 {
    try Child(path, arguments, environment: environment).wait()
}

struct Finished {
    var status: Int32
    var stdout: String
    var stderr: String
}

func triage(_ arguments: [String], environment: [String: String] = [:], stdin: String? = nil) async throws -> Finished {
    let c = try Child(Binary.triage, arguments, environment: environment, stdin: stdin)
    let s = await c.waitAsync()
    return Finished(status: s, stdout: c.stdout, stderr: c.stderr)
}

/// A fresh directory removed by `cleanup`.
struct Scratch {
    let path: String
    init() throws {
        path = NSTemporaryDirectory() + "triage-fleet-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func file(_ name: String) -> String { path + "/" + name }
    func cleanup() { try? FileManager.default.removeItem(atPath: path) }

    /// A config naming the node and the fleet database.
    func config(node: String, postgres: String?, maxPending: Int? = nil) throws -> String {
        var record: [String] = []
        if let postgres { record.append("\"postgres\": \"\(postgres)\"") }
        if let maxPending { record.append("\"max_pending\": \(maxPending)") }
        let text = "{\"node\": \"\(node)\", \"record\": {\(record.joined(separator: ", "))}}"
        let path = file("config-\(node).json")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}

/// A decision with varied fields, so shipping round trips have something to lose.
func sampleDecision(_ i: Int, node: String = "", t0: Double = 1_760_000_000) -> Decision {
    let routes: [Route] = [.edge, .edge, .small, .large, .none]
    let route = routes[i % routes.count]
    var tiers: [TierCall] = []
    if route == .small || route == .large {
        tiers.append(TierCall(tier: "small", model: "haiku", statuses: route == .large ? [529, 200] : [200], inputTokens: 100 + i,
                              outputTokens: 50 + i % 7, costUSD: Double(100 + i) * 0.25e-6 + Double(50 + i % 7) * 1.25e-6,
                              latencyMs: 300 + Double(i % 11), succeeded: true, rejectedByBreaker: false,
                              answerConfidence: route == .large ? 0.7 : 0.9, error: nil))
    }
    if route == .large {
        tiers.append(TierCall(tier: "large", model: "sonnet", statuses: [200], inputTokens: 120, outputTokens: 80,
                              costUSD: 120 * 3e-6 + 80 * 15e-6, latencyMs: 900, succeeded: true, rejectedByBreaker: false,
                              answerConfidence: nil, error: nil))
    }
    let cost = tiers.reduce(0.0) { $0 + $1.costUSD }
    return Decision(timestamp: t0 + Double(i) * 37, modelVersion: "m@1", route: route, reason: route == .edge ? "optimal_edge" : "low_confidence",
                    label: "card_arrival", confidence: 0.5 + Double(i % 50) / 100, outOfScope: route == .none,
                    complexity: ComplexityScore(total: 0.3, length: 0.1, syntax: 0.2, uncertainty: 0.4, emotion: 0),
                    category: ["faq", "order_status", "comparison"][i % 3], tiers: tiers, costUSD: cost,
                    latency: StageLatency(tokenizeMs: 0.1, edgeMs: 2.5, cloudMs: tiers.reduce(0.0) { $0 + $1.latencyMs },
                                          totalMs: 3 + tiers.reduce(0.0) { $0 + $1.latencyMs }),
                    cached: i % 13 == 0, review: i % 17 == 0, queryText: i % 2 == 0 ? "query \(i) with 'quotes' and ünïcode" : nil,
                    queryHash: "hash\(i % 40)", answer: "answer \(i)", shadow: nil, node: node)
}

/// Polls `condition` every 100 ms for up to `seconds`.
func eventually(_ seconds: Double, _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try await condition() { return true }
        try await Task.sleep(nanoseconds: 100_000_000)
    }
    return try await condition()
}

/// A loopback TCP proxy in front of the test server that can cut a connection at the worst
/// moment: after the client's COMMIT has been forwarded, before the server's answer comes
/// back. `cutAfterCommit`: close both sides; `holdAfterCommit`: keep the client waiting.
final class CuttingProxy: @unchecked Sendable {
    enum Mode { case cutAfterCommit, holdAfterCommit }
    let port: UInt16
    private let listenFD: Int32
    private let target: (host: String, port: Int)
    private let mode: Mode
    private let lock = NSLock()
    private var _commitsSeen = 0
    var commitsSeen: Int { lock.withLock { _commitsSeen } }

    init(to host: String, port targetPort: Int, mode: Mode) throws {
        target = (host, targetPort)
        self.mode = mode
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        listen(fd, 16)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        port = UInt16(bigEndian: addr.sin_port)
        listenFD = fd
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    func close() { shutdown(listenFD, Int32(SHUT_RDWR)); Glibc.close(listenFD) }

    private func acceptLoop() {
        while true {
            let client = accept(listenFD, nil, nil)
            if client < 0 { return }
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr(target.host)
            addr.sin_port = UInt16(target.port).bigEndian
            let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            if rc != 0 { Glibc.close(client); Glibc.close(server); continue }
            let cut = CutState()
            Thread.detachNewThread { [self] in pump(from: client, to: server, watchCommit: true, cut: cut) }
            Thread.detachNewThread { [self] in pump(from: server, to: client, watchCommit: false, cut: cut) }
        }
    }

    final class CutState: @unchecked Sendable {
        let lock = NSLock()
        var committed = false
    }

    private func pump(from: Int32, to: Int32, watchCommit: Bool, cut: CutState) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        let commit = Array("COMMIT".utf8)
        while true {
            let n = read(from, &buffer, buffer.count)
            if n <= 0 { break }
            let chunk = Array(buffer[0..<n])
            if !watchCommit && cut.lock.withLock({ cut.committed }) {
                // The server's answer to COMMIT: never delivered.
                if mode == .cutAfterCommit { break }
                continue
            }
            let isCommit = watchCommit && contains(chunk, commit)
            if isCommit {
                // Marked before forwarding, so the server's answer cannot slip through first.
                lock.withLock { _commitsSeen += 1 }
                cut.lock.withLock { cut.committed = true }
            }
            var sent = 0
            while sent < n {
                let w = chunk.withUnsafeBytes { write(to, $0.baseAddress! + sent, n - sent) }
                if w <= 0 { break }
                sent += w
            }
            if isCommit {
                if mode == .cutAfterCommit {
                    // Give the server time to commit, then cut both directions.
                    usleep(300_000)
                    break
                }
            }
        }
        shutdown(from, Int32(SHUT_RDWR)); shutdown(to, Int32(SHUT_RDWR))
        Glibc.close(from)
    }

    private func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard haystack.count >= needle.count else { return false }
        for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] {
            if Array(haystack[i..<(i + needle.count)]) == needle { return true }
        }
        return false
    }
}
