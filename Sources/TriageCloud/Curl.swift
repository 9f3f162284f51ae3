// Typed entry points into libcurl.
//
// `curl_easy_setopt` and `curl_easy_getinfo` are C variadic functions, which Swift cannot
// call. Each is re-declared here under several non-variadic Swift names, one per argument
// type, all bound to the same C symbol with `@_extern(c)`. That is sound on the platforms the
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

/// CURL* — `typedef void CURL` imports as a raw pointer.
typealias CurlHandlePointer = UnsafeMutableRawPointer

/// `size_t (*)(char *data, size_t size, size_t nmemb, void *userdata)`: the shape of both the
/// body and the header callbacks.
typealias CurlDataCallback = @convention(c) (
    UnsafeMutablePointer<CChar>?, Int, Int, UnsafeMutableRawPointer?
) -> Int

/// For `long` and `curl_off_t` options (both 64-bit on LP64 Linux).
@_extern(c, "curl_easy_setopt")
func curl_setopt_long(_ handle: CurlHandlePointer?, _ option: CURLoption, _ value: Int) -> CURLcode

/// For object pointers whose lifetime the caller guarantees (error buffer, header list,
/// callback user data).
@_extern(c, "curl_easy_setopt")
func curl_setopt_pointer(_ handle: CurlHandlePointer?, _ option: CURLoption, _ value: UnsafeMutableRawPointer?) -> CURLcode

/// For NUL-terminated strings; libcurl copies string options (since 7.17), so a pointer that
/// only lives for the duration of the call is enough.
@_extern(c, "curl_easy_setopt")
func curl_setopt_string(_ handle: CurlHandlePointer?, _ option: CURLoption, _ value: UnsafePointer<CChar>?) -> CURLcode

@_extern(c, "curl_easy_setopt")
func curl_setopt_callback(_ handle: CurlHandlePointer?, _ option: CURLoption, _ value: CurlDataCallback?) -> CURLcode

@_extern(c, "curl_easy_getinfo")
func curl_getinfo_long(_ handle: CurlHandlePointer?, _ info: CURLINFO, _ out: UnsafeMutablePointer<Int>) -> CURLcode

/// libcurl must be initialised once per process before any other thread uses it
/// (`curl_global_init` is not thread-safe). A Swift global is initialised exactly once,
/// atomically, on first use, which gives that guarantee without a lock of our own.
let curlGlobalInitResult: CURLcode = curl_global_init(Int(CURL_GLOBAL_DEFAULT))

/// A message for a libcurl result code, from libcurl itself.
func curlDescription(_ code: CURLcode) -> String {
    String(cString: curl_easy_strerror(code))
}
