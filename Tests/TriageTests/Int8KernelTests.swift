import Testing
import TriageKernels
import TriageKernelSelect
import TriageSystem

/// Every INT8 kernel this CPU can run, bit-exact against the scalar reference on shapes that
/// are not multiples of the kernels' blocks (4 rows, 16 or 64 columns, 4 k).
@Suite struct Int8KernelTests {
    static let shapes: [(m: Int, k: Int, n: Int)] = [
        (1, 1, 1), (1, 3, 17), (2, 4, 16), (3, 5, 33), (4, 64, 64), (5, 37, 65), (7, 100, 130),
        (9, 384, 51), (13, 129, 200), (17, 72, 216), (4, 3072, 20),
        (31, 40, 24), (50, 20, 16), // past the AVX2 kernel's 24-row chunks
        (16, 64, 48), (10, 9, 8), (29, 20, 24), // AVX2 remainders of 4 and 5 rows after 6-row tiles
    ]

    @Test(arguments: KernelSelection.available().map(\.name))
    func kernelMatchesReferenceBitForBit(kernelName: String) throws {
        let kernel = try KernelSelection.select(kernelName)
        var rng = SplitMix(seed: 11)
        for (m, k, n) in Self.shapes {
            // Extremes included: 255 × ±127 products, all-zero and constant rows.
            let x: [Float] = (0..<(m * k)).map { i in
                i % 97 == 0 ? 0 : Float(Int(rng.next() % 20001) - 10000) / 997
            }
            let w: [Float] = (0..<(n * k)).map { _ in Float(Int(rng.next() % 20001) - 10000) / 5003 }
            let bias: [Float] = (0..<n).map { _ in Float(Int(rng.next() % 2001) - 1000) / 100 }
            let (wq, ws) = w.withUnsafeBufferPointer { Int8Quantization.quantizeWeights($0.baseAddress!, rows: n, columns: k) }
            let packed = wq.withUnsafeBufferPointer { PackedInt8Matrix(weights: $0.baseAddress!, scales: ws, rows: n, columns: k) }
            for nn in 0..<n { for kk in 0..<k { #expect(packed.weight(nn, kk) == wq[nn * k + kk]) } }
            let scratch = QuantizationScratch()
            let rows = scratch.rows(m, columns: k)
            x.withUnsafeBufferPointer { Int8Quantization.quantizeRows($0.baseAddress!, rows: m, columns: k, into: rows) }
            var xq = [UInt8](), sx = [Float](), zx = [Int32]()
            for r in 0..<m {
                for i in 0..<k { xq.append(rows.values[r * rows.stride + i]) }
                sx.append(rows.scales[r]); zx.append(rows.zeroPoints[r])
            }
            let expected = Reference.int8Gemm(x: xq, rows: m, columns: k, rowScales: sx, zeroPoints: zx,
                                              weights: wq, weightScales: ws, outFeatures: n, bias: bias)
            var y = [Float](repeating: .nan, count: m * n + 7)
            for withBias in [true, false] {
                y.withUnsafeMutableBufferPointer { out in
                    bias.withUnsafeBufferPointer { b in
                        kernel.gemm(Int8GemmArguments(a: rows, w: packed, bias: withBias ? b.baseAddress! : nil,
                                                      out: out.baseAddress!, ldo: n, rowRange: 0..<m,
                                                      blockRange: 0..<packed.blocks))
                    }
                }
                let want = withBias ? expected : Reference.int8Gemm(x: xq, rows: m, columns: k, rowScales: sx, zeroPoints: zx,
                                                                    weights: wq, weightScales: ws, outFeatures: n, bias: nil)
                let same = zip(y.prefix(m * n), want).allSatisfy { $0.bitPattern == $1.bitPattern }
                #expect(same, "\(kernelName) differs from the reference at m=\(m) k=\(k) n=\(n) bias=\(withBias)")
                let untouched = y[(m * n)...].allSatisfy { $0.isNaN }
                #expect(untouched, "\(kernelName) wrote past the output")
            }
        }
    }

    @Test func quantizedRowsReconstructTheInput() {
        var rng = SplitMix(seed: 5)
        let m = 6, k = 45
        var x: [Float] = (0..<(m * k)).map { _ in Float(Int(rng.next() % 2001) - 1000) / 100 }
        for i in 0..<k { x[i] = 0 }                 // an all-zero row
        for i in 0..<k { x[k + i] = 3.5 }           // a constant positive row
        let scratch = QuantizationScratch()
        let rows = scratch.rows(m, columns: k)
        x.withUnsafeBufferPointer { Int8Quantization.quantizeRows($0.baseAddress!, rows: m, columns: k, into: rows) }
        for r in 0..<m {
            let s = rows.scales[r], z = rows.zeroPoints[r]
            #expect(z >= 0 && z <= 255)
            for i in 0..<k {
                let back = Float(Int32(rows.values[r * rows.stride + i]) - z) * s
                #expect(abs(back - x[r * k + i]) <= s / 2 * 1.0001, "row \(r) col \(i)")
            }
            for i in k..<rows.stride { #expect(rows.values[r * rows.stride + i] == 0) }
        }
        #expect(Float(Int32(rows.values[0]) - rows.zeroPoints[0]) * rows.scales[0] == 0, "zero must stay exact")
    }

    /// /proc/cpuinfo read byte by byte: a crafted text with the layouts the kernel uses (tabs
    /// before the colon, several processors, the model and flags taken from the first), and
    /// this machine's own file against a plain reading of it.
    @Test func cpuinfoIsParsedAsTheKernelWritesIt() throws {
        let text = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Xeon  X\nflags\t\t: fpu sse2  avx2 fma\n\n"
            + "processor\t: 1\nmodel name\t: Other\nflags\t\t: fpu\n"
        let cpu = CPUFeatures.parse(cpuinfo: Array(text.utf8))
        #expect(cpu.logicalCores == 2)
        #expect(cpu.modelName == "Xeon  X")
        #expect(cpu.flags == ["fpu", "sse2", "avx2", "fma"])
        #expect(CPUFeatures.parse(cpuinfo: []).logicalCores == 1)
        let real = try FileSystem.readText("/proc/cpuinfo")
        let lines = real.split(separator: "\n")
        #expect(CPUFeatures.current.logicalCores == lines.filter { $0.hasPrefix("processor") }.count)
        let flagsLine = try #require(lines.first { $0.hasPrefix("flags") })
        #expect(CPUFeatures.current.flags == Set(flagsLine.split(separator: ":")[1].split(separator: " ").map(String.init)))
    }

    @Test func selectionHonoursNamesAndRejectsUnknownOnes() throws {
        #expect(try KernelSelection.select("portable").name == "portable")
        #expect(throws: KernelSelectionError.self) { try KernelSelection.select("sse9") }
        let noAVX = CPUFeatures(modelName: "old", flags: ["sse2"], logicalCores: 1)
        #expect(KernelSelection.available(noAVX).map(\.name) == ["portable"])
        #expect(throws: KernelSelectionError.self) { try KernelSelection.select("vnni", cpu: noAVX) }
        #expect(try KernelSelection.select(nil, cpu: noAVX).name == "portable")
        // An Atom/Celeron-class CPU (Goldmont, Tremont): SSE4.2 but no AVX.
        let atom = CPUFeatures(modelName: "atom", flags: ["sse2", "pni", "ssse3", "sse4_1", "sse4_2", "popcnt", "cx16", "lahf_lm"],
                               logicalCores: 4)
        #expect(KernelSelection.available(atom).map(\.name) == ["sse4", "portable"])
        #expect(try KernelSelection.select(nil, cpu: atom).name == "sse4")
        #expect(throws: KernelSelectionError.self) { try KernelSelection.select("avx2", cpu: atom) }
    }
}

@Suite struct WorkerPoolTests {
    /// Job sizes that grow from one job to the next are what exposed a worker, still leaving
    /// one job, claiming an index of the next (fixed by tagging the count with its
    /// generation). Before the fix 8 of 20 runs of 200,000 jobs failed, after it 0 of 20;
    /// 100,000 jobs take about a second.
    @Test func everyTaskRunsExactlyOnceAcrossManyJobs() {
        let pool = WorkerPool(threads: 3)
        let counts = UnsafeMutablePointer<Int>.allocate(capacity: 64)
        defer { counts.deallocate() }
        var wrong = 0
        for job in 0..<100_000 {
            let n = job % 64 + 1
            counts.initialize(repeating: 0, count: n)
            pool.run(n) { i in counts[i] += 1 }
            if !(0..<n).allSatisfy({ counts[$0] == 1 }) { wrong += 1 }
            if job % 5000 == 0 { Clock.sleep(seconds: 0.001) }  // let workers park and wake again
        }
        #expect(wrong == 0, "\(wrong) of 100,000 jobs ran a task twice or not at all")
    }
}
import TriageSystem

/// The FP32 glue of every instruction-set module against the portable one, bit for bit: the
/// same source compiled for different CPUs must not change a single result. Attention in the
/// SSE4 module, which rounds its multiply-adds apart (its CPUs have no FMA), is the exception:
/// there it must agree to float rounding.
@Suite struct GlueKernelTests {
    @Test(arguments: KernelSelection.available().map(\.name))
    func glueMatchesPortableBitForBit(kernelName: String) throws {
        let glue = try KernelSelection.select(kernelName).glue, base = FloatGlue.portable
        var rng = SplitMix(seed: 9)
        func values(_ n: Int, _ scale: Float) -> [Float] { (0..<n).map { _ in Float(Int(rng.next() % 20001) - 10000) / 10000 * scale } }
        func same(_ a: [Float], _ b: [Float]) -> Bool { zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern } }
        for n in [1, 7, 16, 17, 33, 384, 1537] {
            let v = values(n, 8)
            var a = v, b = v
            a.withUnsafeMutableBufferPointer { glue.gelu($0.baseAddress!, n) }
            b.withUnsafeMutableBufferPointer { base.gelu($0.baseAddress!, n) }
            #expect(same(a, b), "gelu n=\(n)")
            a = values(n, 30); b = a
            a.withUnsafeMutableBufferPointer { glue.softmaxRow($0.baseAddress!, n) }
            b.withUnsafeMutableBufferPointer { base.softmaxRow($0.baseAddress!, n) }
            #expect(same(a, b), "softmax n=\(n)")
            let rows = 3, x = values(rows * n, 4), res = values(rows * n, 1), g = values(n, 1), bt = values(n, 1)
            a = x; b = x
            a.withUnsafeMutableBufferPointer { glue.addLayerNorm($0.baseAddress!, res, rows, n, g, bt, 1e-12) }
            b.withUnsafeMutableBufferPointer { base.addLayerNorm($0.baseAddress!, res, rows, n, g, bt, 1e-12) }
            #expect(same(a, b), "layer norm n=\(n)")
            let dh = n % 64 + 1, keys = n % 50 + 1, ld = 3 * dh
            let qkv = values(keys * ld, 3)
            var o1 = [Float](repeating: 0, count: keys * dh), o2 = o1
            var sc = [Float](repeating: 0, count: AttentionHeadArguments.scratchCount(keys: keys, headDim: dh))
            for (o, g) in [(0, glue), (1, base)] {
                qkv.withUnsafeBufferPointer { p in
                    sc.withUnsafeMutableBufferPointer { scratch in
                        var out = [Float](repeating: 0, count: keys * dh)
                        out.withUnsafeMutableBufferPointer { ob in
                            g.attentionHead(AttentionHeadArguments(q: p.baseAddress!, k: p.baseAddress! + dh, v: p.baseAddress! + 2 * dh,
                                                                   ld: ld, queries: keys, keys: keys, headDim: dh, scale: 0.25,
                                                                   out: ob.baseAddress!, ldo: dh, scratch: scratch.baseAddress!))
                        }
                        if o == 0 { o1 = out } else { o2 = out }
                    }
                }
            }
            if glue.fusedMultiplyAdd == base.fusedMultiplyAdd {
                #expect(same(o1, o2), "attention n=\(keys) dh=\(dh)")
            } else {
                let worst = zip(o1, o2).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
                #expect(worst <= 1e-5, "attention n=\(keys) dh=\(dh): \(worst)")
            }
            let s1 = QuantizationScratch(), s2 = QuantizationScratch()
            let q1 = s1.rows(rows, columns: n), q2 = s2.rows(rows, columns: n)
            glue.quantizeRows(x, rows, n, q1, 0..<rows)
            base.quantizeRows(x, rows, n, q2, 0..<rows)
            for r in 0..<rows {
                #expect(q1.scales[r].bitPattern == q2.scales[r].bitPattern && q1.zeroPoints[r] == q2.zeroPoints[r])
                for i in 0..<q1.stride { #expect(q1.values[r * q1.stride + i] == q2.values[r * q2.stride + i]) }
            }
        }
    }
}
