import CBLAS

/// Where the forward pass runs: the worker pool and the kernels for this CPU.
///
/// OpenBLAS is told to stay on one thread: the pool splits every product by output columns
/// and hands each thread its own slice, so FP32 and INT8 share one threading scheme and
/// OpenBLAS's own threads never compete with the pool's.
public final class Runtime: Sendable {
    public let pool: WorkerPool
    /// The INT8 product and FP32 glue for this CPU's instruction set.
    public let kernels: KernelSet
    public var threads: Int { pool.threadCount }

    public init(threads: Int, kernels: KernelSet) {
        openblas_set_num_threads(1)
        pool = WorkerPool(threads: max(1, threads))
        self.kernels = kernels
    }

    /// The cores this process may run on.
    public static var defaultThreads: Int { CPUFeatures.current.logicalCores }

    /// The OpenBLAS build, as it describes itself (for benchmark reports).
    public static var blasConfiguration: String {
        guard let c = openblas_get_config() else { return "OpenBLAS" }
        return "OpenBLAS " + String(cString: c)
    }
}
