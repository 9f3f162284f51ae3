// OpenBLAS, loaded with dlopen on the first FP32 product.
//
// Linked, OpenBLAS's constructor ran before main in every process: it probes the CPU,
// allocates its buffers and starts a thread per core — 8.1 M instructions and ~7 ms of
// wall clock for an empty C program on this machine (hyperfine: 2.0 → 8.8 ms mean) — even
// in a one-query `triage classify --int8`, whose INT8 forward pass never calls it. Loaded on
// demand, an INT8 process skips all of that, and a box without OpenBLAS still runs the INT8
// model; an FP32 model there fails to load with a message that names the package.
//
// Only three functions are used. The CBLAS enums are plain C ints (`CBLAS_ORDER` and
// `CBLAS_TRANSPOSE` in cblas.h), so the binary needs no OpenBLAS header to build either.

#if canImport(Glibc)
import Glibc
#endif

/// `cblas_sgemm` with its enum arguments as the ints they are in C.
public typealias SgemmFunction = @convention(c) (
    Int32, Int32, Int32, Int32, Int32, Int32, Float, UnsafePointer<Float>?, Int32,
    UnsafePointer<Float>?, Int32, Float, UnsafeMutablePointer<Float>?, Int32
) -> Void

public struct OpenBLASError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

public struct OpenBLAS: @unchecked Sendable {
    /// cblas.h: CblasRowMajor = 101; CblasNoTrans = 111, CblasTrans = 112.
    public static let rowMajor: Int32 = 101
    public static let noTranspose: Int32 = 111
    public static let transpose: Int32 = 112

    public let sgemm: SgemmFunction
    let config: (@convention(c) () -> UnsafeMutablePointer<CChar>?)?

    /// OpenBLAS, loaded on first use, or why it could not be. A Swift global is initialised
    /// once, atomically, so two threads asking at once load it once.
    public static let loaded: Result<OpenBLAS, OpenBLASError> = load()

    /// The library, or an error that says how to install it.
    public static func require() throws -> OpenBLAS { try loaded.get() }

    /// For the kernels: an FP32 model checked `require()` when it loaded, so this cannot fail
    /// there; a test or tool that calls the kernels directly on a box without OpenBLAS stops
    /// here with the reason.
    @usableFromInline static var forKernels: OpenBLAS {
        switch loaded {
        case let .success(blas): return blas
        case let .failure(error): fatalError(error.description)
        }
    }

    static func load() -> Result<OpenBLAS, OpenBLASError> {
        var handle: UnsafeMutableRawPointer? = nil
        var why = "not found"
        // TRIAGE_OPENBLAS names another build (a path or a soname), e.g. an OpenMP or a
        // locally tuned one; it must export the same three functions.
        let names = getenv("TRIAGE_OPENBLAS").map { [String(cString: $0)] } ?? ["libopenblas.so.0", "libopenblas.so"]
        for name in names {
            handle = dlopen(name, RTLD_NOW | RTLD_LOCAL)
            if handle != nil { break }
            why = dlerror().map { String(cString: $0) } ?? why
        }
        guard let handle else {
            return .failure(OpenBLASError(description: "OpenBLAS could not be loaded (install libopenblas0, or set TRIAGE_OPENBLAS): \(why)"))
        }
        guard let sgemm = dlsym(handle, "cblas_sgemm"), let setThreads = dlsym(handle, "openblas_set_num_threads") else {
            return .failure(OpenBLASError(description: "the OpenBLAS found lacks cblas_sgemm or openblas_set_num_threads"))
        }
        // The worker pool splits every product and gives each thread its own slice, so
        // OpenBLAS must not start threads of its own inside a call.
        unsafeBitCast(setThreads, to: (@convention(c) (Int32) -> Void).self)(1)
        let config = dlsym(handle, "openblas_get_config")
            .map { unsafeBitCast($0, to: (@convention(c) () -> UnsafeMutablePointer<CChar>?).self) }
        return .success(OpenBLAS(sgemm: unsafeBitCast(sgemm, to: SgemmFunction.self), config: config))
    }

    /// The OpenBLAS build, as it describes itself (for benchmark reports).
    public var configuration: String {
        guard let c = config?() else { return "OpenBLAS" }
        return "OpenBLAS " + String(cString: c)
    }
}
