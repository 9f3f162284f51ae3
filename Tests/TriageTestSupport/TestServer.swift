// A real HTTP/1.1 server for the tests: Glibc sockets on 127.0.0.1, an ephemeral port, a
// thread per connection, keep-alive and Content-Length bodies. Each request takes the next
// behaviour from a script, so a test can say "529, then 529, then answer" and watch the real
// libcurl client deal with it on the wire. Given a `TLSIdentity` it speaks HTTPS instead.

import Foundation
import Glibc

public final class TestServer: @unchecked Sendable {
    public enum Behaviour: Sendable {
        /// A valid Messages API response.
        case ok(text: String = "Your order ships tomorrow.", stopReason: String = "end_turn",
                inputTokens: Int = 12, outputTokens: Int = 34, model: String = "claude-test-model")
        /// An Anthropic-style error body with this status; `retryAfter` becomes a header.
        case error(status: Int, type: String = "api_error", message: String = "something went wrong",
                   retryAfter: String? = nil)
        /// 401 whose message echoes the x-api-key it received, as a careless gateway might.
        case unauthorizedEchoingKey
        /// Any status and body, verbatim.
        case raw(status: Int, body: String, headers: [(String, String)] = [])
        /// Announces `Content-Length` 200 bytes longer than it sends, then closes.
        case truncated
        /// Reads the request, waits, then closes without answering.
        case stall(seconds: Double)
        /// Reads the request and closes at once without answering.
        case drop
        /// Sends half a status line, then resets the connection (RST, not FIN).
        case reset
    }

    public struct Request: Sendable {
        public let method: String
        public let path: String
        public let headers: [(String, String)]
        public let body: [UInt8]
        public func header(_ name: String) -> String? {
            headers.last { $0.0.lowercased() == name.lowercased() }?.1
        }
        public var json: [String: Any]? {
            (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
        }
    }

    public let port: UInt16
    public var baseURL: String { "\(tls == nil ? "http" : "https")://127.0.0.1:\(port)" }
    private let tls: TLSIdentity?
    private let listenFD: Int32
    private let lock = NSLock()
    private var script: [Behaviour]
    private let fallback: Behaviour
    private var _requests: [Request] = []
    private var _connections = 0
    private var _handshakesFailed = 0
    private var stopped = false

    public init(script: [Behaviour] = [], fallback: Behaviour = .ok(), tls: TLSIdentity? = nil) {
        self.script = script
        self.fallback = fallback
        self.tls = tls
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        precondition(fd >= 0, "socket failed")
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0 // the kernel picks a free port
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        precondition(bound == 0, "bind failed")
        precondition(listen(fd, 64) == 0, "listen failed")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        port = UInt16(bigEndian: addr.sin_port)
        listenFD = fd
        let t = Thread { [self] in acceptLoop() }
        t.start()
    }

    public var requests: [Request] { lock.withLock { _requests } }
    public var connections: Int { lock.withLock { _connections } }
    /// TLS connections that ended in the handshake (the client refused the certificate).
    public var handshakesFailed: Int { lock.withLock { _handshakesFailed } }

    public func enqueue(_ behaviours: Behaviour...) { lock.withLock { script.append(contentsOf: behaviours) } }

    /// Stops accepting. Only the accept thread closes the listening socket: closing it here
    /// could let the descriptor number be reused by another test's socket before that thread
    /// calls accept() on it, and then it would serve someone else's connections.
    public func stop() {
        lock.withLock { stopped = true }
        // Shutting a listening socket down makes a blocked (or future) accept() fail.
        shutdown(listenFD, Int32(SHUT_RDWR))
    }

    private func acceptLoop() {
        defer { close(listenFD) }
        while true {
            let c = accept(listenFD, nil, nil)
            if c < 0 {
                if errno == EINTR && !lock.withLock({ stopped }) { continue }
                return
            }
            lock.withLock { _connections += 1 }
            let t = Thread { [self] in serve(c) }
            t.start()
        }
    }

    private func nextBehaviour() -> Behaviour {
        lock.withLock { script.isEmpty ? fallback : script.removeFirst() }
    }

    private func serve(_ fd: Int32) {
        defer { close(fd) }
        var session: TLSSession?
        if let tls {
            session = tls.accept(fd)
            if session == nil { lock.withLock { _handshakesFailed += 1 }; return }
        }
        let connection = Connection(fd: fd, tls: session)
        serve(connection)
        session?.shutdown()
    }

    private func serve(_ conn: Connection) {
        var reader = Reader(connection: conn)
        while let request = reader.readRequest() {
            lock.withLock { _requests.append(request) }
            switch nextBehaviour() {
            case let .ok(text, stopReason, input, output, model):
                let body = """
                {"id":"msg_test","type":"message","role":"assistant","model":\(jsonString(model)),\
                "content":[{"type":"text","text":\(jsonString(text))}],"stop_reason":\(jsonString(stopReason)),\
                "stop_sequence":null,"usage":{"input_tokens":\(input),"output_tokens":\(output)}}
                """
                respond(conn, status: 200, body: body)
            case let .error(status, type, message, retryAfter):
                let body = #"{"type":"error","error":{"type":\#(jsonString(type)),"message":\#(jsonString(message))}}"#
                respond(conn, status: status, body: body, headers: retryAfter.map { [("Retry-After", $0)] } ?? [])
            case .unauthorizedEchoingKey:
                let key = request.header("x-api-key") ?? ""
                let body = #"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key \#(key)"}}"#
                respond(conn, status: 401, body: body, headers: [("X-Echo", key)])
            case let .raw(status, body, headers):
                respond(conn, status: status, body: body, headers: headers)
            case .truncated:
                let body = #"{"type":"message","content":[{"type":"text","text":"cut"#
                send(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count + 200)\r\n\r\n" + body)
                return
            case .stall(let seconds):
                Thread.sleep(forTimeInterval: seconds)
                return
            case .drop:
                return
            case .reset:
                send(conn, "HTTP/1.1 200 OK\r\nContent-Le")
                usleep(50_000)
                // Linger on with a zero timeout: close() sends RST instead of FIN.
                var lingerOption = linger(l_onoff: 1, l_linger: 0)
                setsockopt(conn.fd, SOL_SOCKET, SO_LINGER, &lingerOption, socklen_t(MemoryLayout<linger>.size))
                return
            }
        }
    }

    private func respond(_ conn: Connection, status: Int, body: String, headers: [(String, String)] = []) {
        var head = "HTTP/1.1 \(status) \(reason(status))\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        send(conn, head + "\r\n" + body)
    }

    private func send(_ conn: Connection, _ text: String) {
        let bytes = Array(text.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { conn.write(UnsafeRawBufferPointer(rebasing: $0[off...])) }
            if n <= 0 { if errno == EINTR { continue }; return }
            off += n
        }
    }

    private func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 429: return "Too Many Requests"
        case 500: return "Internal Server Error"
        case 529: return "Overloaded"
        default: return "Status"
        }
    }
}

func jsonString(_ s: String) -> String {
    let data = try! JSONSerialization.data(withJSONObject: [s], options: [.fragmentsAllowed])
    let array = String(decoding: data, as: UTF8.self)
    return String(array.dropFirst().dropLast())
}

/// An accepted socket, plain or wrapped in TLS.
private struct Connection {
    let fd: Int32
    let tls: TLSSession?

    func read(_ buffer: UnsafeMutableRawBufferPointer) -> Int {
        tls.map { $0.read(buffer) } ?? recv(fd, buffer.baseAddress, buffer.count, 0)
    }

    func write(_ buffer: UnsafeRawBufferPointer) -> Int {
        tls.map { $0.write(buffer) } ?? Glibc.send(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL))
    }
}

/// Reads HTTP/1.1 requests (request line, headers, Content-Length body) off a connection.
private struct Reader {
    let connection: Connection
    var buffer: [UInt8] = []

    mutating func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { connection.read($0) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            buffer.append(contentsOf: chunk[0..<n])
            return true
        }
    }

    mutating func readRequest() -> TestServer.Request? {
        let terminator: [UInt8] = [13, 10, 13, 10]
        var headerEnd: Int?
        while headerEnd == nil {
            if buffer.count >= 4 {
                headerEnd = (0...(buffer.count - 4)).first { Array(buffer[$0..<$0 + 4]) == terminator }
            }
            if headerEnd == nil && !fill() { return nil }
        }
        let head = String(decoding: buffer[0..<headerEnd!], as: UTF8.self)
        buffer.removeFirst(headerEnd! + 4)
        var lines = head.components(separatedBy: "\r\n")
        let requestLine = lines.removeFirst().split(separator: " ")
        guard requestLine.count >= 2 else { return nil }
        var headers: [(String, String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        let length = headers.last { $0.0.lowercased() == "content-length" }.flatMap { Int($0.1) } ?? 0
        while buffer.count < length { if !fill() { return nil } }
        let body = Array(buffer[0..<length])
        buffer.removeFirst(length)
        return TestServer.Request(method: String(requestLine[0]), path: String(requestLine[1]), headers: headers, body: body)
    }
}

/// A listener whose accept queue is full and never drained: the kernel drops further SYNs,
/// so a connect to it hangs until the client's connect timeout — a local stand-in for an
/// unreachable host, without touching the network.
public final class BlackHoleListener: @unchecked Sendable {
    public let port: UInt16
    private let listenFD: Int32
    private var fillers: [Int32] = []

    public init() {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        listen(fd, 0)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        port = UInt16(bigEndian: addr.sin_port)
        listenFD = fd
        // Backlog 0 holds one completed connection; a few more make sure the queue is full.
        for _ in 0..<3 {
            let c = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            _ = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(c, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            fillers.append(c)
        }
        usleep(100_000)
    }

    deinit {
        for c in fillers { close(c) }
        close(listenFD)
    }
}

/// A port that is bound but not listening: connects to it are refused, and because the
/// socket stays open no parallel test's server can be given the same port meanwhile (a
/// closed-then-reused port would let this test steal another test's scripted responses).
public final class RefusingPort: @unchecked Sendable {
    public let port: UInt16
    private let fd: Int32

    public init() {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        port = UInt16(bigEndian: addr.sin_port)
    }

    deinit { close(fd) }
}
