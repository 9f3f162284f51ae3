// The server side of TLS for the test server, so the real libcurl client can be checked
// against real certificates: accepted when it trusts their authority, refused when it does
// not or when the name does not match.
//
// OpenSSL is loaded at run time from libssl.so.3, the library libcurl itself is linked
// against on Debian, so the tests need no -dev package and no module map. The handful of
// functions used have plain C signatures (pointers and ints), bound with dlsym.

import Glibc

public struct TLSError: Error, CustomStringConvertible {
    public let description: String
}

/// A certificate chain and its private key, loaded into one OpenSSL server context.
public final class TLSIdentity: @unchecked Sendable {
    let context: UnsafeMutableRawPointer
    private let ssl: OpenSSL

    /// `certificateChain` and `privateKey` are PEM files (see `tools/gen_tls_fixtures.sh`).
    public init(certificateChain: String, privateKey: String) throws {
        let ssl = try OpenSSL.shared.get()
        self.ssl = ssl
        guard let method = ssl.serverMethod(), let ctx = ssl.contextNew(method) else {
            throw TLSError(description: "SSL_CTX_new failed")
        }
        guard ssl.useCertificateChainFile(ctx, certificateChain) == 1 else {
            ssl.contextFree(ctx)
            throw TLSError(description: "cannot load certificate chain \(certificateChain)")
        }
        guard ssl.usePrivateKeyFile(ctx, privateKey, 1 /* SSL_FILETYPE_PEM */) == 1 else {
            ssl.contextFree(ctx)
            throw TLSError(description: "cannot load private key \(privateKey)")
        }
        context = ctx
    }

    deinit { ssl.contextFree(context) }

    /// Runs the server handshake on an accepted socket; nil when the client gave up (for
    /// instance because it refused the certificate).
    func accept(_ fd: Int32) -> TLSSession? {
        guard let s = ssl.new(context) else { return nil }
        guard ssl.setFD(s, fd) == 1, ssl.accept(s) == 1 else { ssl.free(s); return nil }
        return TLSSession(ssl: ssl, handle: s)
    }
}

/// One server-side TLS connection; used by the one thread that serves it.
final class TLSSession {
    private let ssl: OpenSSL
    private let handle: UnsafeMutableRawPointer
    init(ssl: OpenSSL, handle: UnsafeMutableRawPointer) { self.ssl = ssl; self.handle = handle }

    func read(_ buffer: UnsafeMutableRawBufferPointer) -> Int {
        Int(ssl.read(handle, buffer.baseAddress, Int32(clamping: buffer.count)))
    }

    func write(_ buffer: UnsafeRawBufferPointer) -> Int {
        Int(ssl.write(handle, buffer.baseAddress, Int32(clamping: buffer.count)))
    }

    /// Sends close_notify, so the client sees an orderly end of the stream.
    func shutdown() { _ = ssl.shutdown(handle) }

    deinit { ssl.free(handle) }
}

/// The OpenSSL entry points, resolved once per process.
struct OpenSSL: @unchecked Sendable {
    typealias Pointer = UnsafeMutableRawPointer
    let serverMethod: @convention(c) () -> Pointer?
    let contextNew: @convention(c) (Pointer) -> Pointer?
    let contextFree: @convention(c) (Pointer) -> Void
    let useCertificateChainFile: @convention(c) (Pointer, UnsafePointer<CChar>) -> Int32
    let usePrivateKeyFile: @convention(c) (Pointer, UnsafePointer<CChar>, Int32) -> Int32
    let new: @convention(c) (Pointer) -> Pointer?
    let free: @convention(c) (Pointer) -> Void
    let setFD: @convention(c) (Pointer, Int32) -> Int32
    let accept: @convention(c) (Pointer) -> Int32
    let read: @convention(c) (Pointer, UnsafeMutableRawPointer?, Int32) -> Int32
    let write: @convention(c) (Pointer, UnsafeRawPointer?, Int32) -> Int32
    let shutdown: @convention(c) (Pointer) -> Int32

    static let shared: Result<OpenSSL, TLSError> = {
        // A client that drops the connection mid-write must not kill the test process:
        // SSL_write writes to the socket without MSG_NOSIGNAL.
        signal(SIGPIPE, SIG_IGN)
        guard let lib = dlopen("libssl.so.3", RTLD_NOW) else {
            return .failure(TLSError(description: "cannot load libssl.so.3: \(String(cString: dlerror()))"))
        }
        func symbol<T>(_ name: String, as: T.Type) throws(TLSError) -> T {
            guard let p = dlsym(lib, name) else { throw TLSError(description: "libssl.so.3 has no \(name)") }
            return unsafeBitCast(p, to: T.self)
        }
        do throws(TLSError) {
            return .success(OpenSSL(
                serverMethod: try symbol("TLS_server_method", as: (@convention(c) () -> Pointer?).self),
                contextNew: try symbol("SSL_CTX_new", as: (@convention(c) (Pointer) -> Pointer?).self),
                contextFree: try symbol("SSL_CTX_free", as: (@convention(c) (Pointer) -> Void).self),
                useCertificateChainFile: try symbol("SSL_CTX_use_certificate_chain_file",
                                                    as: (@convention(c) (Pointer, UnsafePointer<CChar>) -> Int32).self),
                usePrivateKeyFile: try symbol("SSL_CTX_use_PrivateKey_file",
                                              as: (@convention(c) (Pointer, UnsafePointer<CChar>, Int32) -> Int32).self),
                new: try symbol("SSL_new", as: (@convention(c) (Pointer) -> Pointer?).self),
                free: try symbol("SSL_free", as: (@convention(c) (Pointer) -> Void).self),
                setFD: try symbol("SSL_set_fd", as: (@convention(c) (Pointer, Int32) -> Int32).self),
                accept: try symbol("SSL_accept", as: (@convention(c) (Pointer) -> Int32).self),
                read: try symbol("SSL_read", as: (@convention(c) (Pointer, UnsafeMutableRawPointer?, Int32) -> Int32).self),
                write: try symbol("SSL_write", as: (@convention(c) (Pointer, UnsafeRawPointer?, Int32) -> Int32).self),
                shutdown: try symbol("SSL_shutdown", as: (@convention(c) (Pointer) -> Int32).self)))
        } catch {
            return .failure(error)
        }
    }()
}

/// The identities `tools/gen_tls_fixtures.sh` wrote to Tests/Fixtures/tls.
public enum TLSFixtures {
    public static let directory: String = {
        var path = #filePath
        for _ in 0..<2 { path = String(path[..<path.lastIndex(of: "/")!]) }
        return path + "/Fixtures/tls"
    }()
    /// The authority that signed both server certificates.
    public static var caFile: String { directory + "/ca.pem" }
    /// An authority that signed neither.
    public static var otherCAFile: String { directory + "/other-ca.pem" }
    /// For 127.0.0.1 and localhost.
    public static func server() throws -> TLSIdentity { try identity("server") }
    /// For gateway.invalid only: right authority, wrong name.
    public static func wrongName() throws -> TLSIdentity { try identity("wrong-name") }

    private static func identity(_ name: String) throws -> TLSIdentity {
        try TLSIdentity(certificateChain: directory + "/\(name).pem", privateKey: directory + "/\(name).key")
    }
}
