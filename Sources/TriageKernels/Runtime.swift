/// Where the forward pass runs: the worker pool and the kernels for this CPU.
///
/// The pool splits every product by output columns and hands each thread its own slice, so
/// FP32 and INT8 share one threading scheme; OpenBLAS, loaded on the first FP32 product, is
/// told to stay on one thread (see OpenBLAS.swift).
public final class Runtime: Sendable {
    public let pool: WorkerPool
    /// The INT8 product and FP32 glue for this CPU's instruction set.
    public let kernels: KernelSet
    public var threads: Int { pool.threadCount }

    public init(threads: Int, kernels: KernelSet) {
        pool = WorkerPool(threads: max(1, threads))
        self.kernels = kernels
    }

    /// The cores this process may run on.
    public static var defaultThreads: Int { CPUFeatures.current.logicalCores }

    /// The OpenBLAS build, as it describes itself (for benchmark reports).
    public static var blasConfiguration: String {
        switch OpenBLAS.loaded {
        case let .success(blas): return blas.configuration
        case let .failure(error): return error.description
        }
    }
}
