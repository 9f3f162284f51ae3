// Typed entry points into libcurl, loaded with dlopen on the first cloud request.
//
// The binary does not link libcurl: linking it made every process, even a one-query
// `triage classify` that never touches the network, load libcurl and the ~30 libraries it
// pulls in (TLS, Kerberos, LDAP, …) before main — measured at ~9 ms of CPU and ~480 page
// faults per process. Loaded on demand, a box without libcurl still classifies, and the
// cloud tier says plainly that libcurl is missing.
//
// `curl_easy_setopt` and `curl_easy_getinfo` are C variadic functions, which Swift cannot
// call. Each is re-declared here under several non-variadic Swift names, one per argument
// type, all bound to the same C symbol (one dlsym, several function types). That is sound on the platforms the
// engine targets: the x86-64 System V and AArch64 (Linux) ABIs pass a variadic integer or
// pointer argument in the same register as a fixed one, and the callee reads it back with
// va_arg. (On x86-64 a variadic call also sets %al to the number of vector registers used;
// libcurl's prologue only tests it to decide whether to spill XMM registers, and no
// floating-point argument is ever passed here.) Apple's arm64 ABI is different — variadic
// arguments go on the stack — so these bindings are Linux-only, like the rest of the engine.
//
// Only integer (`long`, `curl_off_t`), pointer and function-pointer arguments are declared;
// never a `double`, which would travel in a different register class.

import CCurl

#if canImport(Glibc)
import Glibc
#endif

/// CURL* — `typedef void CURL` imports as a raw pointer.
typealias CurlHandlePointer = UnsafeMutableRawPointer

/// `size_t (*)(char *data, size_t size, size_t nmemb, void *userdata)`: the shape of both the
/// body and the header callbacks.
typealias CurlDataCallback = @convention(c) (
    UnsafeMutablePointer<CChar>?, Int, Int, UnsafeMutableRawPointer?
) -> Int

/// The libcurl functions this client calls, resolved once from the shared library.
struct Libcurl: @unchecked Sendable {
    let easyInit: @convention(c) () -> CurlHandlePointer?
    let easyCleanup: @convention(c) (CurlHandlePointer?) -> Void
    let easyPerform: @convention(c) (CurlHandlePointer?) -> CURLcode
    let easyStrerror: @convention(c) (CURLcode) -> UnsafePointer<CChar>?
    let slistAppend: @convention(c) (UnsafeMutablePointer<curl_slist>?, UnsafePointer<CChar>?) -> UnsafeMutablePointer<curl_slist>?
    let slistFreeAll: @convention(c) (UnsafeMutablePointer<curl_slist>?) -> Void
    /// For `long` and `curl_off_t` options (both 64-bit on LP64 Linux).
    let setoptLong: @convention(c) (CurlHandlePointer?, CURLoption, Int) -> CURLcode
    /// For object pointers whose lifetime the caller guarantees (error buffer, header list,
    /// callback user data).
    let setoptPointer: @convention(c) (CurlHandlePointer?, CURLoption, UnsafeMutableRawPointer?) -> CURLcode
    /// For NUL-terminated strings; libcurl copies string options (since 7.17), so a pointer
    /// that only lives for the duration of the call is enough.
    let setoptString: @convention(c) (CurlHandlePointer?, CURLoption, UnsafePointer<CChar>?) -> CURLcode
    let setoptCallback: @convention(c) (CurlHandlePointer?, CURLoption, CurlDataCallback?) -> CURLcode
    let getinfoLong: @convention(c) (CurlHandlePointer?, CURLINFO, UnsafeMutablePointer<Int>) -> CURLcode

    /// libcurl, loaded and initialised on first use, or why it could not be. A Swift global
    /// is initialised exactly once, atomically: `curl_global_init` (not thread-safe) runs
    /// once per process before any other libcurl call, without a lock of our own.
    static let loaded: Result<Libcurl, TransportError> = load()

    static func load() -> Result<Libcurl, TransportError> {
        var handle: UnsafeMutableRawPointer? = nil
        for name in ["libcurl.so.4", "libcurl.so", "libcurl-gnutls.so.4"] {
            handle = dlopen(name, RTLD_NOW | RTLD_LOCAL)
            if handle != nil { break }
        }
        guard let handle else {
            let why = dlerror().map { String(cString: $0) } ?? "not found"
            return .failure(.other(code: -1, message: "libcurl could not be loaded (install libcurl4): \(why)"))
        }
        var missing: [String] = []
        func symbol<T>(_ name: String, as type: T.Type) -> T? {
            guard let p = dlsym(handle, name) else { missing.append(name); return nil }
            return unsafeBitCast(p, to: type)
        }
        typealias GlobalInit = @convention(c) (Int) -> CURLcode
        let globalInit = symbol("curl_global_init", as: GlobalInit.self)
        let api = (
            symbol("curl_easy_init", as: (@convention(c) () -> CurlHandlePointer?).self),
            symbol("curl_easy_cleanup", as: (@convention(c) (CurlHandlePointer?) -> Void).self),
            symbol("curl_easy_perform", as: (@convention(c) (CurlHandlePointer?) -> CURLcode).self),
            symbol("curl_easy_strerror", as: (@convention(c) (CURLcode) -> UnsafePointer<CChar>?).self),
            symbol("curl_slist_append", as: (@convention(c) (UnsafeMutablePointer<curl_slist>?, UnsafePointer<CChar>?) -> UnsafeMutablePointer<curl_slist>?).self),
            symbol("curl_slist_free_all", as: (@convention(c) (UnsafeMutablePointer<curl_slist>?) -> Void).self),
            symbol("curl_easy_setopt", as: (@convention(c) (CurlHandlePointer?, CURLoption, Int) -> CURLcode).self),
            symbol("curl_easy_setopt", as: (@convention(c) (CurlHandlePointer?, CURLoption, UnsafeMutableRawPointer?) -> CURLcode).self),
            symbol("curl_easy_setopt", as: (@convention(c) (CurlHandlePointer?, CURLoption, UnsafePointer<CChar>?) -> CURLcode).self),
            symbol("curl_easy_setopt", as: (@convention(c) (CurlHandlePointer?, CURLoption, CurlDataCallback?) -> CURLcode).self),
            symbol("curl_easy_getinfo", as: (@convention(c) (CurlHandlePointer?, CURLINFO, UnsafeMutablePointer<Int>) -> CURLcode).self))
        guard missing.isEmpty, let globalInit, let a0 = api.0, let a1 = api.1, let a2 = api.2, let a3 = api.3, let a4 = api.4,
              let a5 = api.5, let a6 = api.6, let a7 = api.7, let a8 = api.8, let a9 = api.9, let a10 = api.10 else {
            return .failure(.other(code: -1, message: "libcurl lacks \(missing.joined(separator: ", "))"))
        }
        let rc = globalInit(Int(CURL_GLOBAL_DEFAULT))
        guard rc == CURLE_OK else { return .failure(.other(code: Int(rc.rawValue), message: "curl_global_init failed")) }
        return .success(Libcurl(easyInit: a0, easyCleanup: a1, easyPerform: a2, easyStrerror: a3, slistAppend: a4,
                                slistFreeAll: a5, setoptLong: a6, setoptPointer: a7, setoptString: a8, setoptCallback: a9,
                                getinfoLong: a10))
    }
}

/// A message for a libcurl result code, from libcurl itself.
func curlDescription(_ curl: Libcurl, _ code: CURLcode) -> String {
    curl.easyStrerror(code).map { String(cString: $0) } ?? "libcurl error \(code.rawValue)"
}
