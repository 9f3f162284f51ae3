import Testing
import TriageKernels
import TriageKernelsAVX2

/// The AVX2 attention head (6 × 16 register tiles) against the scalar reference computed in
/// the same order and against the shared kernel, bit for bit, on shapes that are not
/// multiples of its tiles (6 query rows, 16 keys, 16 features), with the output rows wider
/// than one head as in the model; and against the double-precision definition.
@Suite(.enabled(if: CPUFeatures.current.hasAVX2, "needs AVX2 and FMA"))
struct AVX2AttentionTests {
    @Test func attentionHeadMatchesReferenceBitForBit() {
        var rng = SplitMix(seed: 23)
        func values(_ n: Int, _ scale: Float) -> [Float] { (0..<n).map { _ in Float(Int(rng.next() % 20001) - 10000) / 10000 * scale } }
        let shapes: [(n: Int, dh: Int, queries: Int)] = [
            (1, 32, 1), (2, 8, 2), (5, 13, 5), (6, 32, 6), (7, 32, 7), (16, 32, 16), (17, 24, 17), (31, 40, 13),
            (64, 64, 64), (100, 32, 1), (128, 32, 128), (129, 64, 129), (257, 32, 11), (300, 17, 300),
        ]
        for (n, dh, queries) in shapes {
            let ld = 3 * dh + 5, ldo = dh + 3
            let data = values(n * ld, 4)
            func run(_ head: (AttentionHeadArguments) -> Void) -> [Float] {
                var out = [Float](repeating: .nan, count: queries * ldo)
                var scratch = [Float](repeating: .nan, count: AttentionHeadArguments.scratchCount(keys: n, headDim: dh))
                data.withUnsafeBufferPointer { p in
                    out.withUnsafeMutableBufferPointer { o in
                        scratch.withUnsafeMutableBufferPointer { sc in
                            head(AttentionHeadArguments(q: p.baseAddress!, k: p.baseAddress! + dh, v: p.baseAddress! + 2 * dh,
                                                        ld: ld, queries: queries, keys: n, headDim: dh, scale: 0.35,
                                                        out: o.baseAddress!, ldo: ldo, scratch: sc.baseAddress!))
                        }
                    }
                }
                return out
            }
            let avx2 = run(AVX2Kernels.glue.attentionHead)
            let shared = run(FloatGlue.portable.attentionHead)
            let rows = (0..<n).map { Array(data[($0 * ld)..<($0 * ld + 3 * dh)]) }
            let q = rows.prefix(queries).map { Array($0[0..<dh]) }
            let k = rows.map { Array($0[dh..<(2 * dh)]) }, v = rows.map { Array($0[(2 * dh)...]) }
            let ordered = Reference.attentionHeadFusedOrder(q: q, k: k, v: v, scale: 0.35)
            let exact = Reference.attentionHead(q: q, k: k, v: v, scale: 0.35)
            var differing = 0, sharedDiffering = 0, worst: Float = 0
            for i in 0..<queries {
                for d in 0..<ldo {
                    let a = avx2[i * ldo + d]
                    if d >= dh {
                        // Another head's columns: never written.
                        #expect(a.isNaN, "n=\(n) dh=\(dh): wrote past the head at row \(i)")
                        continue
                    }
                    if a.bitPattern != ordered[i][d].bitPattern { differing += 1 }
                    if shared[i * ldo + d].bitPattern != ordered[i][d].bitPattern { sharedDiffering += 1 }
                    worst = max(worst, abs(a - exact[i][d]))
                }
            }
            #expect(differing == 0, "n=\(n) dh=\(dh) queries=\(queries): \(differing) values differ from the scalar reference")
            #expect(sharedDiffering == 0, "n=\(n) dh=\(dh): the shared kernel differs from the scalar reference")
            // FP32 rounding in the two sums, relative to the largest |v| (4 here).
            #expect(worst <= 1e-5 * 4, "n=\(n) dh=\(dh): \(worst) from the definition")
        }
    }
}
