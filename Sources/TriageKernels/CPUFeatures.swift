import TriageSystem

/// What the CPU can run, as the kernel reports it in /proc/cpuinfo. The kernel clears the
/// AVX flags when the OS does not save the wide registers, so these are safe to act on.
public struct CPUFeatures: Sendable {
    public let modelName: String
    public let flags: Set<String>
    public let logicalCores: Int

    public static let current: CPUFeatures = {
        let text = (try? FileSystem.readText("/proc/cpuinfo")) ?? ""
        var model = "unknown", flags = Set<String>(), cores = 0
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon].trimmingCharacters(), value = line[line.index(after: colon)...].trimmingCharacters()
            switch key {
            case "processor": cores += 1
            case "model name" where model == "unknown": model = String(value)
            case "flags" where flags.isEmpty: flags = Set(value.split(separator: " ").map(String.init))
            default: break
            }
        }
        return CPUFeatures(modelName: model, flags: flags, logicalCores: max(1, cores))
    }()

    public init(modelName: String, flags: Set<String>, logicalCores: Int) {
        self.modelName = modelName; self.flags = flags; self.logicalCores = logicalCores
    }

    /// Everything the Cascade Lake target of the VNNI module may use.
    public var hasAVX512VNNI: Bool {
        flags.isSuperset(of: ["avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd", "avx512_vnni",
                              "avx2", "fma", "bmi2", "f16c"])
    }

    /// Everything the Haswell target of the AVX2 module may use.
    public var hasAVX2: Bool { flags.isSuperset(of: ["avx2", "fma", "bmi1", "bmi2", "f16c", "movbe"]) }

    /// Everything the Nehalem (x86-64-v2) target of the SSE4 module may use (`pni` is SSE3).
    public var hasSSE42: Bool {
        flags.isSuperset(of: ["sse4_1", "sse4_2", "ssse3", "pni", "popcnt", "cx16", "lahf_lm"])
    }

    /// The widest instruction-set level present, for reports.
    public var isaSummary: String {
        hasAVX512VNNI ? "AVX-512 VNNI" : hasAVX2 ? "AVX2" : hasSSE42 ? "SSE4.2" : "x86-64 baseline"
    }
}

extension Substring {
    func trimmingCharacters() -> Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return s
    }
}
