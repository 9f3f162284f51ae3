import Testing
import TriageKernels

/// Each fast FP32 kernel against its plain reference, on sizes that are not multiples of
/// the 16-lane vector width.
@Suite struct FloatKernelTests {
    func random(_ n: Int, _ rng: inout SplitMix, scale: Float = 1) -> [Float] {
        (0..<n).map { _ in Float(Double(rng.next() % 2_000_001) / 1_000_000 - 1) * scale }
    }

    @Test func erfAndGeluMatchLibm() {
        var worst: Float = 0
        var x: Float = -9
        while x <= 9 {
            worst = max(worst, abs(FastMath.erf(x) - Float(Glibc_erf(Double(x)))))
            x += 0.000_37
        }
        #expect(worst < 5e-7, "max |erf error| \(worst)")
        var rng = SplitMix(seed: 1)
        for n in [1, 15, 16, 17, 200, 1537] {
            let v = random(n, &rng, scale: 6)
            var fast = v
            fast.withUnsafeMutableBufferPointer { FloatKernels.gelu($0.baseAddress!, count: n) }
            for (a, b) in zip(fast, Reference.gelu(v)) { #expect(abs(a - b) <= 1e-6 * max(1, abs(b))) }
        }
    }

    @Test func expMatchesLibm() {
        var worstRel: Float = 0
        var x: Float = -100
        while x <= 88 {
            let e = Float(Glibc_exp(Double(x)))
            let f = FastMath.exp(x)
            if e > 1.2e-38 { worstRel = max(worstRel, abs(f - e) / e) } else { #expect(abs(f - e) <= 1.2e-38) }
            x += 0.0013
        }
        #expect(worstRel < 4e-7, "max relative exp error \(worstRel)")
        #expect(FastMath.exp(-Float.infinity) == 0)
        #expect(FastMath.exp(Float(-1e30)) == 0)
    }

    @Test func softmaxMatchesReference() {
        var rng = SplitMix(seed: 2)
        for n in [1, 2, 15, 16, 17, 64, 129, 512] {
            let v = random(n, &rng, scale: 20)
            var fast = v
            fast.withUnsafeMutableBufferPointer { FloatKernels.softmaxRow($0.baseAddress!, count: n) }
            for (a, b) in zip(fast, Reference.softmax(v)) { #expect(abs(a - b) <= 1e-6) }
            #expect(abs(fast.reduce(0, +) - 1) < 1e-5)
        }
    }

    @Test func layerNormMatchesReference() {
        var rng = SplitMix(seed: 3)
        for (m, n) in [(1, 1), (3, 15), (2, 16), (5, 72), (4, 385)] {
            let x = random(m * n, &rng, scale: 3), res = random(m * n, &rng)
            let g = random(n, &rng), b = random(n, &rng)
            var fast = x
            fast.withUnsafeMutableBufferPointer { p in
                res.withUnsafeBufferPointer { r in
                    FloatKernels.addLayerNorm(p.baseAddress!, residual: r.baseAddress!, rows: m, features: n,
                                              gamma: g, beta: b, eps: 1e-12)
                }
            }
            let ref = Reference.layerNorm(zip(x, res).map { $0 + $1 }, rows: m, features: n, gamma: g, beta: b, eps: 1e-12)
            for (a, r) in zip(fast, ref) { #expect(abs(a - r) <= 2e-5 * max(1, abs(r))) }
        }
    }

    @Test func attentionHeadMatchesReference() {
        var rng = SplitMix(seed: 6)
        for (n, dh, queries) in [(1, 13, 1), (5, 12, 5), (17, 32, 17), (40, 13, 1), (129, 64, 7)] { for fused in [true, false] {
            let ld = 3 * dh + 5  // rows wider than one head, as in the fused projection
            let data = random(n * ld, &rng, scale: 2)
            var out = [Float](repeating: .nan, count: queries * dh)
            var scratch = [Float](repeating: .nan, count: AttentionHeadArguments.scratchCount(keys: n, headDim: dh))
            data.withUnsafeBufferPointer { p in
                out.withUnsafeMutableBufferPointer { o in
                    scratch.withUnsafeMutableBufferPointer { sc in
                        FloatKernels.attentionHead(q: p.baseAddress!, k: p.baseAddress! + dh, v: p.baseAddress! + 2 * dh, ld: ld,
                                                   queries: queries, keys: n, headDim: dh, scale: 0.3, out: o.baseAddress!,
                                                   ldo: dh, scratch: sc.baseAddress!, fused: fused)
                    }
                }
            }
            let rows = (0..<n).map { Array(data[($0 * ld)..<($0 * ld + 3 * dh)]) }
            let ref = Reference.attentionHead(q: rows.prefix(queries).map { Array($0[0..<dh]) },
                                              k: rows.map { Array($0[dh..<(2 * dh)]) },
                                              v: rows.map { Array($0[(2 * dh)...]) }, scale: 0.3)
            for (a, b) in zip(out, ref.joined()) { #expect(abs(a - b) <= 2e-5, "n=\(n) dh=\(dh) fused=\(fused)") }
        }
        }
    }

    @Test func linearThroughOpenBLASMatchesReference() {
        var rng = SplitMix(seed: 4)
        // The last three take several row blocks (`rowBlock`) or K parts (`smallProduct`):
        // 130 rows in 64 + 64 + 2; K = 800 in 2 parts; 70 rows, K = 1100 in 3 + 1 parts.
        for (m, k, n) in [(1, 1, 1), (3, 17, 5), (7, 72, 216), (33, 100, 13), (5, 64, 97), (130, 40, 300),
                          (64, 800, 70), (70, 1100, 40)] {
            let x = random(m * k, &rng), w = random(n * k, &rng), bias = random(n, &rng)
            var y = [Float](repeating: .nan, count: m * n)
            let blocked = w.withUnsafeBufferPointer { BlockedWeights($0.baseAddress!, outFeatures: n, inFeatures: k) }
            #expect((0..<n).allSatisfy { r in (0..<k).allSatisfy { c in blocked.weight(r, c) == w[r * k + c] } })
            y.withUnsafeMutableBufferPointer { out in
                FloatKernels.linear(x, rows: m, weight: blocked, bias: bias, into: out.baseAddress!)
            }
            let ref = Reference.linear(x, rows: m, inFeatures: k, weight: w, bias: bias, outFeatures: n)
            for (a, r) in zip(y, ref) { #expect(abs(a - r) <= 1e-4) }
            // Some blocks at a time, as the worker pool hands them out.
            if blocked.blockCount > 1 {
                var z = [Float](repeating: .nan, count: m * n)
                let split = blocked.blockCount / 2
                z.withUnsafeMutableBufferPointer { out in
                    FloatKernels.linear(x, rows: m, weight: blocked, bias: bias, into: out.baseAddress!, blocks: 0..<split)
                    FloatKernels.linear(x, rows: m, weight: blocked, bias: bias, into: out.baseAddress!, blocks: split..<blocked.blockCount)
                }
                for (a, r) in zip(z, ref) { #expect(abs(a - r) <= 1e-4) }
            }

        }
    }
}

#if canImport(Glibc)
import Glibc
func Glibc_erf(_ x: Double) -> Double { Glibc.erf(x) }
func Glibc_exp(_ x: Double) -> Double { Glibc.exp(x) }
#endif
