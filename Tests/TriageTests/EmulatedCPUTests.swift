import Foundation
import Testing
import TriageJSON
import TriageKernelSelect

/// The one binary on CPUs that lack what this machine has. Each instruction-set module runs
/// under QEMU's emulation of a CPU with only its own level — which traps any instruction
/// beyond it — and must answer as it does natively.
///
/// The kernel is named with TRIAGE_KERNEL because QEMU's user mode shows the program the
/// host's /proc/cpuinfo, so the automatic choice would be the host's and would trap.
@Suite struct EmulatedCPUTests {
    static let queries = ["I still have not received my new card", "what is the weather like in paris tomorrow?",
                          "Can I top up by bank transfer, and how long does it take to arrive?"]

    /// (kernel, QEMU CPU model that has that kernel's level and nothing above it).
    static let cases: [(String, String)] = [("avx2", "Haswell-v4"), ("sse4", "Nehalem"), ("portable", "qemu64")]

    /// OpenBLAS takes QEMU's generic x86-64 CPU for an Opteron and picks kernels with 3DNow!
    /// instructions, which QEMU does not emulate; its SSE3 (Prescott) kernels are the right
    /// ones for that CPU. The other models are recognised correctly.
    static func blasOverride(_ cpu: String) -> [String: String] {
        cpu == "qemu64" ? ["OPENBLAS_CORETYPE": "Prescott"] : [:]
    }

    static func logits(_ r: ProcessResult) throws -> [[Double]] {
        try r.stdout.split(separator: "\n").map { line in
            try #require(try JSONValue.parse(String(line))["logits"]?.arrayValue).map { $0.doubleValue ?? .nan }
        }
    }

    @Test(arguments: cases)
    func kernelRunsOnACPUWithoutTheLevelsAbove(kernel: String, cpu: String) throws {
        for int8 in [true, false] {
            let args = ["classify", "--json"] + (int8 ? ["--int8"] : []) + Self.queries
            let native = try runTriage(args, environment: ["TRIAGE_KERNEL": kernel])
            let emulated = try runTriage(args, environment: ["TRIAGE_KERNEL": kernel].merging(Self.blasOverride(cpu)) { $1 },
                                         emulatedCPU: cpu)
            #expect(native.status == 0, "\(native.stderr)")
            #expect(emulated.status == 0, "\(kernel) on \(cpu): \(emulated.stderr)")
            let want = try Self.logits(native), got = try Self.logits(emulated)
            try #require(want.count == Self.queries.count && got.count == Self.queries.count)
            if int8 {
                // Every INT8 step is triage's own code: bit for bit.
                #expect(got == want, "\(kernel) on \(cpu)")
            } else {
                // OpenBLAS picks its own kernels for the emulated CPU, which round differently.
                let delta = zip(got.joined(), want.joined()).map { abs($0 - $1) }.max() ?? .nan
                #expect(delta <= 1e-4, "\(kernel) on \(cpu): max |Δlogit| \(delta)")
            }
        }
    }

    /// The control: the best kernel here, on a CPU without it, must die of an illegal
    /// instruction — otherwise the emulator would not be checking anything.
    @Test func theEmulatorTrapsInstructionsTheCPUDoesNotHave() throws {
        let best = try #require(KernelSelection.available().first { $0.name != "portable" && $0.name != "sse4" },
                                "this machine has neither AVX2 nor AVX-512: nothing to trap")
        let r = try runTriage(["classify", "--int8", "--json", Self.queries[0]], environment: ["TRIAGE_KERNEL": best.name, "SWIFT_BACKTRACE": "enable=no"],
                              emulatedCPU: "Nehalem")
        #expect(r.status != 0)
        #expect(r.stderr.contains("Illegal instruction"), "\(r.stderr)")
    }
}
