import TriageSystem

/// What the CPU can run, as the kernel reports it in /proc/cpuinfo. The kernel clears the
/// AVX flags when the OS does not save the wide registers, so these are safe to act on.
public struct CPUFeatures: Sendable {
    public let modelName: String
    public let flags: Set<String>
    public let logicalCores: Int

    public static let current = parse(cpuinfo: (try? FileSystem.readBytes("/proc/cpuinfo")) ?? [])

    /// Reads /proc/cpuinfo's bytes: cores from the `processor` lines, the first `model name`
    /// and the first `flags` line. Byte by byte because it runs in every process: splitting
    /// the text as Characters cost ~1.9 M instructions, about a tenth of a one-query start.
    public static func parse(cpuinfo bytes: [UInt8]) -> CPUFeatures {
        var model = "unknown", flags = Set<String>(), cores = 0
        bytes.withUnsafeBufferPointer { b in
            func isBlank(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 }
            func trimmed(_ r: Range<Int>) -> Range<Int> {
                var lo = r.lowerBound, hi = r.upperBound
                while lo < hi && isBlank(b[lo]) { lo += 1 }
                while hi > lo && isBlank(b[hi - 1]) { hi -= 1 }
                return lo..<hi
            }
            func equals(_ r: Range<Int>, _ word: String) -> Bool {
                r.count == word.utf8.count && zip(r, word.utf8).allSatisfy { b[$0] == $1 }
            }
            func string(_ r: Range<Int>) -> String { String(decoding: UnsafeBufferPointer(rebasing: b[r]), as: UTF8.self) }
            var start = 0
            while start < b.count {
                var end = start
                while end < b.count && b[end] != 0x0A { end += 1 }
                var colon = start
                while colon < end && b[colon] != 0x3A { colon += 1 }
                if colon < end {
                    let key = trimmed(start..<colon), value = trimmed((colon + 1)..<end)
                    if equals(key, "processor") {
                        cores += 1
                    } else if model == "unknown" && equals(key, "model name") {
                        model = string(value)
                    } else if flags.isEmpty && equals(key, "flags") {
                        var i = value.lowerBound
                        while i < value.upperBound {
                            while i < value.upperBound && isBlank(b[i]) { i += 1 }
                            var j = i
                            while j < value.upperBound && !isBlank(b[j]) { j += 1 }
                            if j > i { flags.insert(string(i..<j)) }
                            i = j
                        }
                    }
                }
                start = end + 1
            }
        }
        return CPUFeatures(modelName: model, flags: flags, logicalCores: max(1, cores))
    }

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
