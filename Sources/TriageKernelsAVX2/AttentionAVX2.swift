// One attention head with tiles sized for AVX2's sixteen 256-bit registers.
//
// The shared kernel (`FloatKernels.attentionHead`) keeps a 4-row × 64-key tile of scores in
// sixteen SIMD16 accumulators: one register each on AVX-512, but two each on AVX2, so 32
// live vectors in 16 registers and a spill and reload around most multiply-adds. Here both
// products use the 6 × 16 tile of the classic Haswell sgemm micro-kernel: 12 accumulators,
// 2 loaded vectors and 1 broadcast per step, no spills.
//
// The result is bit-identical to the shared kernel with fused multiply-adds (and so to the
// portable and AVX-512 glue): each score is still fma(q[d], k[d], ·) over d = 0, 1, … from
// zero, then × scale; each context value fma(p[j], v[j], ·) over j = 0, 1, … from zero; the
// softmax is the same function. Only which values share a register changes.
// `AVX2AttentionTests` holds the two against each other bit for bit.
//
// The AVX-512 module keeps the shared kernel (it has 32 registers of 16 floats, so the
// 4 × 64 tile fits); the SSE4 module keeps it too (no FMA there, a different rounding).

import _Builtin_intrinsics.intel
import TriageKernels

extension AVX2Kernels {
    /// Query rows per tile; `AttentionHeadArguments.scratchCount` leaves room for 8 rows of
    /// probabilities.
    static let attentionRows = 6

    static func attentionHead(_ a: AttentionHeadArguments,
                              softmax: (UnsafeMutablePointer<Float>, Int) -> Void) {
        let n = a.keys, dh = a.headDim, ld = a.ld, queries = a.queries
        if n == 0 || queries == 0 { return }
        // Keys padded to 16 (one tile), features to 16 (one pair of vectors), both with zeros.
        let nP = (n + 15) / 16 * 16, dhP = (dh + 15) / 16 * 16
        let kt = a.scratch                 // [dh × nP]: Kᵀ
        let vp = kt + dh * nP              // [n × dhP]: V
        let p = vp + n * dhP               // [6 × nP]: scores, then probabilities
        for j in 0..<n {
            let kj = a.k + j * ld, vr = vp + j * dhP
            for d in 0..<dh { kt[d * nP + j] = kj[d] }
            vr.update(from: a.v + j * ld, count: dh)
            for d in dh..<dhP { vr[d] = 0 }
        }
        for d in 0..<dh { for j in n..<nP { kt[d * nP + j] = 0 } }
        let scale = _mm256_set1_ps(a.scale)

        @inline(__always) func load(_ p: UnsafeMutablePointer<Float>) -> __m256 { _mm256_loadu_ps(p) }
        @inline(__always) func splat(_ p: UnsafePointer<Float>) -> __m256 { _mm256_set1_ps(p.pointee) }
        @inline(__always) func fma(_ acc: __m256, _ x: __m256, _ y: __m256) -> __m256 { _mm256_fmadd_ps(x, y, acc) }

        var i0 = 0
        while i0 < queries {
            let rows = min(attentionRows, queries - i0)
            // Rows past the end repeat the last real one; their results are not stored.
            @inline(__always) func qRow(_ r: Int) -> UnsafePointer<Float> { a.q + (i0 + min(r, rows - 1)) * ld }
            let q0 = qRow(0), q1 = qRow(1), q2 = qRow(2), q3 = qRow(3), q4 = qRow(4), q5 = qRow(5)
            // Scores: 6 query rows × 16 keys per tile.
            var j = 0
            while j < nP {
                var a0 = _mm256_setzero_ps(), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0
                var a3 = a0, b3 = a0, a4 = a0, b4 = a0, a5 = a0, b5 = a0
                var kp = kt + j
                for d in 0..<dh {
                    let k0 = load(kp), k1 = load(kp + 8)
                    var x = splat(q0 + d); a0 = fma(a0, x, k0); b0 = fma(b0, x, k1)
                    x = splat(q1 + d); a1 = fma(a1, x, k0); b1 = fma(b1, x, k1)
                    x = splat(q2 + d); a2 = fma(a2, x, k0); b2 = fma(b2, x, k1)
                    x = splat(q3 + d); a3 = fma(a3, x, k0); b3 = fma(b3, x, k1)
                    x = splat(q4 + d); a4 = fma(a4, x, k0); b4 = fma(b4, x, k1)
                    x = splat(q5 + d); a5 = fma(a5, x, k0); b5 = fma(b5, x, k1)
                    kp += nP
                }
                @inline(__always) func put(_ r: Int, _ x: __m256, _ y: __m256) {
                    let row = p + r * nP + j
                    _mm256_storeu_ps(row, _mm256_mul_ps(x, scale))
                    _mm256_storeu_ps(row + 8, _mm256_mul_ps(y, scale))
                }
                put(0, a0, b0); put(1, a1, b1); put(2, a2, b2); put(3, a3, b3); put(4, a4, b4); put(5, a5, b5)
                j += 16
            }
            for r in 0..<rows { softmax(p + r * nP, n) }
            let p0 = p, p1 = p + nP, p2 = p + 2 * nP, p3 = p + 3 * nP, p4 = p + 4 * nP, p5 = p + 5 * nP
            // Context: 6 query rows × 16 features per tile.
            var db = 0
            while db < dhP {
                var a0 = _mm256_setzero_ps(), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0
                var a3 = a0, b3 = a0, a4 = a0, b4 = a0, a5 = a0, b5 = a0
                var vrow = vp + db
                for jj in 0..<n {
                    let v0 = load(vrow), v1 = load(vrow + 8)
                    var w = splat(p0 + jj); a0 = fma(a0, w, v0); b0 = fma(b0, w, v1)
                    w = splat(p1 + jj); a1 = fma(a1, w, v0); b1 = fma(b1, w, v1)
                    w = splat(p2 + jj); a2 = fma(a2, w, v0); b2 = fma(b2, w, v1)
                    w = splat(p3 + jj); a3 = fma(a3, w, v0); b3 = fma(b3, w, v1)
                    w = splat(p4 + jj); a4 = fma(a4, w, v0); b4 = fma(b4, w, v1)
                    w = splat(p5 + jj); a5 = fma(a5, w, v0); b5 = fma(b5, w, v1)
                    vrow += dhP
                }
                let width = min(16, dh - db)
                @inline(__always) func put(_ r: Int, _ x: __m256, _ y: __m256) {
                    if r >= rows { return }
                    let o = a.out + (i0 + r) * a.ldo + db
                    if width == 16 {
                        _mm256_storeu_ps(o, x); _mm256_storeu_ps(o + 8, y)
                    } else {
                        let lo = unsafeBitCast(x, to: SIMD8<Float>.self), hi = unsafeBitCast(y, to: SIMD8<Float>.self)
                        for l in 0..<width { o[l] = l < 8 ? lo[l] : hi[l - 8] }
                    }
                }
                put(0, a0, b0); put(1, a1, b1); put(2, a2, b2); put(3, a3, b3); put(4, a4, b4); put(5, a5, b5)
                db += 16
            }
            i0 += attentionRows
        }
    }
}
