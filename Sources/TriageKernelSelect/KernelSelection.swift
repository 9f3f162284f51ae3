import TriageKernels
import TriageKernelsAVX2
import TriageKernelsSSE4
import TriageKernelsAVX512
import TriageSystem

public struct KernelSelectionError: Error, CustomStringConvertible {
    public let description: String
}

/// Picks the kernels for this CPU: the fastest one it can run, or the one named by
/// `TRIAGE_KERNEL` (vnni, avx2, sse4, portable) when a researcher wants to compare them.
public enum KernelSelection {
    /// The kernels this CPU can run, fastest first.
    public static func available(_ cpu: CPUFeatures = .current) -> [KernelSet] {
        var kernels: [KernelSet] = []
        if cpu.hasAVX512VNNI { kernels.append(AVX512Kernels.kernels) }
        if cpu.hasAVX2 { kernels.append(AVX2Kernels.kernels) }
        if cpu.hasSSE42 { kernels.append(SSE4Kernels.kernels) }
        kernels.append(KernelSet.portable)
        return kernels
    }

    public static let names = ["vnni", "avx2", "sse4", "portable"]

    /// The kernel named `name` (or by $TRIAGE_KERNEL when `name` is nil), else the best one;
    /// with FP32 products through OpenBLAS when $TRIAGE_FP32_KERNEL is `openblas` (`native`,
    /// the default, uses the kernel set's own FP32 product where it has one).
    public static func select(_ name: String? = nil, cpu: CPUFeatures = .current) throws -> KernelSet {
        let fp32 = Environment.get("TRIAGE_FP32_KERNEL").flatMap { $0.isEmpty ? nil : $0 } ?? "native"
        guard fp32 == "native" || fp32 == "openblas" else {
            throw KernelSelectionError(description: "unknown FP32 kernel '\(fp32)' (TRIAGE_FP32_KERNEL must be native or openblas)")
        }
        let set = try select(instructionSet: name, cpu: cpu)
        return fp32 == "openblas" ? set.fp32ThroughOpenBLAS : set
    }

    static func select(instructionSet name: String?, cpu: CPUFeatures) throws -> KernelSet {
        let requested = name ?? Environment.get("TRIAGE_KERNEL").flatMap { $0.isEmpty ? nil : $0 }
        let kernels = available(cpu)
        guard let requested else { return kernels[0] }
        guard names.contains(requested) else {
            throw KernelSelectionError(description: "unknown kernel '\(requested)' (TRIAGE_KERNEL must be one of \(names.joined(separator: ", ")))")
        }
        guard let k = kernels.first(where: { $0.name == requested }) else {
            throw KernelSelectionError(description: "this CPU (\(cpu.isaSummary)) cannot run the \(requested) kernel; available: \(kernels.map(\.name).joined(separator: ", "))")
        }
        return k
    }
}
