// A minimal HTTP POST client over libcurl's easy interface.
//
// Why libcurl rather than sockets of our own: TLS with the system's CA store, proxies,
// HTTP/1.1 keep-alive and every timeout are things an edge box already has in libcurl, and
// getting them subtly wrong would be worse than a shared-library dependency.
//
// Why a pool of easy handles: libcurl keeps its connection cache on the easy handle, so
// reusing one handle across requests reuses the TCP (and TLS) connection — a full TLS
// handshake to a cloud API costs more than a short completion. A handle must never be used
// by two threads at once, so each request checks one out of the pool and returns it.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CCurl
import Synchronization

public struct HTTPHeader: Sendable, Equatable {
    public let name: String
    public let value: String
    public init(_ name: String, _ value: String) { self.name = name; self.value = value }
}

public struct HTTPResponse: Sendable, Equatable {
    public let status: Int
    /// The headers of the final response, in order (interim 100-continue headers dropped).
    public let headers: [HTTPHeader]
    public let body: [UInt8]
    /// New TCP connections this request opened; 0 means an existing connection was reused.
    public let newConnections: Int

    public init(status: Int, headers: [HTTPHeader], body: [UInt8], newConnections: Int = 0) {
        self.status = status; self.headers = headers; self.body = body; self.newConnections = newConnections
    }

    /// Header names are case-insensitive (RFC 9110); when repeated, the last one wins.
    public func header(_ name: String) -> String? {
        let key = name.lowercased()
        return headers.last { $0.name.lowercased() == key }?.value
    }

    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}

/// Why a request produced no HTTP response at all. The distinctions matter to operators
/// (a refused connect is a down gateway; a timeout after connecting is a slow model) even
/// though the retry policy treats most of them alike.
public enum TransportError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The TCP connect was refused or the host unreachable.
    case connectFailed(String)
    /// No connection within the connect timeout.
    case connectTimeout(seconds: Double)
    /// Connected, but the whole exchange did not finish within the request timeout.
    case requestTimeout(seconds: Double)
    /// The server closed the connection without sending a single byte of response.
    case emptyReply
    /// The response ended before its announced length (Content-Length or chunking).
    case partialBody
    /// The connection broke while sending or receiving (reset, broken pipe).
    case connectionDropped(String)
    case resolveFailed(String)
    /// Certificate verification or the TLS handshake failed; never retried, since the same
    /// certificate will fail the same way.
    case tls(String)
    case invalidURL(String)
    /// The body exceeded the client's limit; guards memory against a misbehaving gateway.
    case responseTooLarge(limit: Int)
    case other(code: Int, message: String)

    public var description: String {
        switch self {
        case .connectFailed(let m): return "connect failed: \(m)"
        case .connectTimeout(let s): return "connect timed out after \(formatSeconds(s))"
        case .requestTimeout(let s): return "request timed out after \(formatSeconds(s))"
        case .emptyReply: return "connection closed with no response"
        case .partialBody: return "connection closed before the full response body arrived"
        case .connectionDropped(let m): return "connection dropped: \(m)"
        case .resolveFailed(let m): return "cannot resolve host: \(m)"
        case .tls(let m): return "TLS failure: \(m)"
        case .invalidURL(let m): return "invalid URL: \(m)"
        case .responseTooLarge(let n): return "response larger than \(n) bytes"
        case .other(let c, let m): return "transport error \(c): \(m)"
        }
    }

    /// Whether trying again could plausibly succeed.
    public var isRetryable: Bool {
        switch self {
        case .tls, .invalidURL, .responseTooLarge: return false
        default: return true
        }
    }

    /// A short stable token for records and metrics ("connect_timeout", ...).
    public var kind: String {
        switch self {
        case .connectFailed: return "connect_failed"
        case .connectTimeout: return "connect_timeout"
        case .requestTimeout: return "request_timeout"
        case .emptyReply: return "empty_reply"
        case .partialBody: return "partial_body"
        case .connectionDropped: return "connection_dropped"
        case .resolveFailed: return "resolve_failed"
        case .tls: return "tls"
        case .invalidURL: return "invalid_url"
        case .responseTooLarge: return "response_too_large"
        case .other: return "transport_error"
        }
    }
}

func formatSeconds(_ s: Double) -> String {
    let ms = (s * 1000).rounded()
    return ms.truncatingRemainder(dividingBy: 1000) == 0 ? "\(Int(ms) / 1000) s" : "\(Int(ms)) ms"
}

public final class HTTPClient: Sendable {
    public let connectTimeout: Double
    public let requestTimeout: Double
    public let maxResponseBytes: Int
    /// PEM file of the certificate authorities to trust instead of the system's store (a
    /// gateway with a private CA); nil trusts the system's store.
    public let caFile: String?
    private let idle = Mutex<[CurlEasy]>([])
    /// Idle handles kept beyond this are closed: each holds open sockets.
    private let maxIdleHandles = 4

    public init(connectTimeout: Double = 5, requestTimeout: Double = 10, maxResponseBytes: Int = 8 << 20,
                caFile: String? = nil) {
        self.connectTimeout = connectTimeout
        self.requestTimeout = requestTimeout
        self.maxResponseBytes = maxResponseBytes
        self.caFile = caFile
    }

    /// POSTs `body` to `url`. Returns the response for any HTTP status — judging a status is
    /// the caller's business — and throws only when no complete response arrived.
    public func post(url: String, headers: [HTTPHeader], body: [UInt8]) throws(TransportError) -> HTTPResponse {
        try send(method: "POST", url: url, headers: headers, body: body)
    }

    /// Any method: GET sends no body; other methods than GET and POST send `body` as POST
    /// would, under their own name.
    public func send(method: String, url: String, headers: [HTTPHeader] = [], body: [UInt8] = []) throws(TransportError) -> HTTPResponse {
        let easy: CurlEasy
        if let h = idle.withLock({ $0.popLast() }) {
            easy = h
        } else {
            // libcurl is loaded on the first request (see Curl.swift).
            let curl: Libcurl
            switch Libcurl.loaded {
            case .success(let c): curl = c
            case .failure(let e): throw e
            }
            guard let h = CurlEasy(curl: curl, connectTimeout: connectTimeout, requestTimeout: requestTimeout, caFile: caFile) else {
                throw .other(code: -1, message: "curl_easy_init failed")
            }
            easy = h
        }
        let result = easy.perform(method: method, url: url, headers: headers, body: body, maxResponseBytes: maxResponseBytes)
        idle.withLock { pool in
            if pool.count < maxIdleHandles { pool.append(easy) }
        }
        return try result.get()
    }
}

/// Receives body and header bytes from libcurl's callbacks for one request.
private final class ResponseSink {
    var body: [UInt8] = []
    var headers: [HTTPHeader] = []
    let limit: Int
    var overflowed = false
    init(limit: Int) { self.limit = limit }
}

private let writeBody: CurlDataCallback = { data, size, count, user in
    let n = size * count
    guard let user, let data else { return n }
    let sink = Unmanaged<ResponseSink>.fromOpaque(user).takeUnretainedValue()
    if sink.body.count + n > sink.limit { sink.overflowed = true; return 0 } // 0 aborts the transfer
    data.withMemoryRebound(to: UInt8.self, capacity: n) { p in
        sink.body.append(contentsOf: UnsafeBufferPointer(start: p, count: n))
    }
    return n
}

private let writeHeader: CurlDataCallback = { data, size, count, user in
    let n = size * count
    guard let user, let data else { return n }
    let sink = Unmanaged<ResponseSink>.fromOpaque(user).takeUnretainedValue()
    let line = data.withMemoryRebound(to: UInt8.self, capacity: n) { p in
        String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
    }
    if line.hasPrefix("HTTP/") {
        // A new status line: anything before it belonged to an interim (1xx) response.
        sink.headers.removeAll()
    } else if let colon = line.firstIndex(of: ":") {
        let name = line[..<colon].trimmingSpaces()
        let value = line[line.index(after: colon)...].trimmingSpaces()
        if !name.isEmpty { sink.headers.append(HTTPHeader(name, value)) }
    }
    return n
}

extension Substring {
    func trimmingSpaces() -> String {
        var s = self[...]
        while let c = s.first, c == " " || c == "\t" || c == "\r" || c == "\n" || c == "\r\n" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" || c == "\r" || c == "\n" || c == "\r\n" { s = s.dropLast() }
        return String(s)
    }
}

/// One libcurl easy handle and its error buffer. Used by one thread at a time (the pool
/// guarantees it), hence `@unchecked Sendable`.
final class CurlEasy: @unchecked Sendable {
    let curl: Libcurl
    let handle: CurlHandlePointer
    let errorBuffer: UnsafeMutablePointer<CChar>
    let connectTimeout: Double
    let requestTimeout: Double

    init?(curl: Libcurl, connectTimeout: Double, requestTimeout: Double, caFile: String?) {
        self.curl = curl
        guard let h = curl.easyInit() else { return nil }
        handle = h
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        self.connectTimeout = connectTimeout
        self.requestTimeout = requestTimeout
        // Signals are unusable for timeouts in a multi-threaded process.
        _ = curl.setoptLong(h, CURLOPT_NOSIGNAL, 1)
        _ = curl.setoptLong(h, CURLOPT_CONNECTTIMEOUT_MS, max(1, Int(connectTimeout * 1000)))
        _ = curl.setoptLong(h, CURLOPT_TIMEOUT_MS, max(1, Int(requestTimeout * 1000)))
        // Stated explicitly (they are libcurl's defaults) so no build or environment can
        // quietly turn verification off. There is no option in this client to disable it.
        _ = curl.setoptLong(h, CURLOPT_SSL_VERIFYPEER, 1)
        _ = curl.setoptLong(h, CURLOPT_SSL_VERIFYHOST, 2)
        // Replaces the trusted authorities, it does not loosen verification.
        if let caFile { _ = caFile.withCString { curl.setoptString(h, CURLOPT_CAINFO, $0) } }
        // A URL from the environment must not be able to reach file://, gopher:// and co.
        _ = "http,https".withCString { curl.setoptString(h, CURLOPT_PROTOCOLS_STR, $0) }
        _ = curl.setoptLong(h, CURLOPT_FOLLOWLOCATION, 0)
        _ = curl.setoptLong(h, CURLOPT_TCP_KEEPALIVE, 1)
        _ = curl.setoptPointer(h, CURLOPT_ERRORBUFFER, UnsafeMutableRawPointer(errorBuffer))
        _ = curl.setoptCallback(h, CURLOPT_WRITEFUNCTION, writeBody)
        _ = curl.setoptCallback(h, CURLOPT_HEADERFUNCTION, writeHeader)
    }

    deinit {
        curl.easyCleanup(handle)
        errorBuffer.deallocate()
    }

    func perform(method: String, url: String, headers: [HTTPHeader], body: [UInt8],
                 maxResponseBytes: Int) -> Result<HTTPResponse, TransportError> {
        let h = handle
        errorBuffer[0] = 0
        var list: UnsafeMutablePointer<curl_slist>? = nil
        for header in headers {
            // CR or LF in a value would let it inject headers; values come from the
            // environment (a key pasted with a trailing newline), so strip rather than fail.
            let value = String(header.value.unicodeScalars.filter { $0 != "\r" && $0 != "\n" })
            list = curl.slistAppend(list, "\(header.name): \(value)")
        }
        // libcurl would otherwise send `Expect: 100-continue` for larger bodies and wait a
        // second for a go-ahead that many gateways never send.
        list = curl.slistAppend(list, "Expect:")
        defer { curl.slistFreeAll(list) }

        let sink = ResponseSink(limit: maxResponseBytes)
        let sinkPointer = Unmanaged.passUnretained(sink).toOpaque()
        let rc = withExtendedLifetime(sink) { () -> CURLcode in
            _ = url.withCString { curl.setoptString(h, CURLOPT_URL, $0) }
            if method == "GET" {
                _ = curl.setoptLong(h, CURLOPT_HTTPGET, 1)
            } else {
                _ = curl.setoptLong(h, CURLOPT_POST, 1)
                _ = curl.setoptLong(h, CURLOPT_POSTFIELDSIZE_LARGE, body.count)
                // COPYPOSTFIELDS: libcurl keeps its own copy, so `body` need not outlive setopt.
                _ = body.withUnsafeBufferPointer { buf in
                    buf.baseAddress.map { p in
                        p.withMemoryRebound(to: CChar.self, capacity: buf.count) { curl.setoptString(h, CURLOPT_COPYPOSTFIELDS, $0) }
                    } ?? "".withCString { curl.setoptString(h, CURLOPT_COPYPOSTFIELDS, $0) }
                }
            }
            if method != "GET" && method != "POST" { _ = method.withCString { curl.setoptString(h, CURLOPT_CUSTOMREQUEST, $0) } }
            _ = curl.setoptPointer(h, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(list))
            _ = curl.setoptPointer(h, CURLOPT_WRITEDATA, sinkPointer)
            _ = curl.setoptPointer(h, CURLOPT_HEADERDATA, sinkPointer)
            let rc = curl.easyPerform(h)
            // The header list dies with this call; the handle must not keep a dangling pointer.
            _ = curl.setoptPointer(h, CURLOPT_HTTPHEADER, nil)
            _ = curl.setoptPointer(h, CURLOPT_WRITEDATA, nil)
            _ = curl.setoptPointer(h, CURLOPT_HEADERDATA, nil)
            if method != "GET" && method != "POST" { _ = curl.setoptPointer(h, CURLOPT_CUSTOMREQUEST, nil) }
            return rc
        }
        var connects = 0
        _ = curl.getinfoLong(h, CURLINFO_NUM_CONNECTS, &connects)

        if rc == CURLE_OK {
            var status = 0
            _ = curl.getinfoLong(h, CURLINFO_RESPONSE_CODE, &status)
            return .success(HTTPResponse(status: status, headers: sink.headers, body: sink.body, newConnections: connects))
        }
        if rc == CURLE_WRITE_ERROR && sink.overflowed { return .failure(.responseTooLarge(limit: maxResponseBytes)) }
        let detail = errorBuffer[0] != 0 ? String(cString: errorBuffer) : curlDescription(curl, rc)
        errorBuffer[0] = 0
        switch rc {
        case CURLE_COULDNT_CONNECT:
            return .failure(.connectFailed(detail))
        case CURLE_OPERATION_TIMEDOUT:
            // libcurl reports both timeouts with one code. Whether any request bytes went
            // out tells them apart: none means the connect (or TLS handshake) never finished.
            var requestBytes = 0
            _ = curl.getinfoLong(h, CURLINFO_REQUEST_SIZE, &requestBytes)
            if requestBytes == 0 {
                return .failure(.connectTimeout(seconds: min(connectTimeout, requestTimeout)))
            }
            return .failure(.requestTimeout(seconds: requestTimeout))
        case CURLE_GOT_NOTHING:
            return .failure(.emptyReply)
        case CURLE_PARTIAL_FILE:
            return .failure(.partialBody)
        case CURLE_RECV_ERROR, CURLE_SEND_ERROR:
            return .failure(.connectionDropped(detail))
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
            return .failure(.resolveFailed(detail))
        case CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CONNECT_ERROR, CURLE_SSL_CACERT_BADFILE,
             CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER, CURLE_SSL_ENGINE_NOTFOUND, CURLE_SSL_ISSUER_ERROR,
             CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_CRL_BADFILE:
            return .failure(.tls(detail))
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL:
            return .failure(.invalidURL(detail))
        default:
            return .failure(.other(code: Int(rc.rawValue), message: detail))
        }
    }
}
