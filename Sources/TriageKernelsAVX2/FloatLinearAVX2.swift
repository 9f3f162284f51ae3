// The AVX2 FP32 product for the linear layers, on the weights' `BlockedWeights` panels.
//
// OpenBLAS multiplies these shapes at 40–45 GOP/s with 16 rows and 60–70 with 128 on one
// Zen 3 core (`bench --parts kernels`), a half to two thirds of the core's 2 FMA × 8 lanes
// per cycle: every call re-reads or repacks operands that are already laid out here (the
// weight panels are [K × 32], contiguous in k). This kernel multiplies straight from the
// panels with the 6 × 16 tile of the classic Haswell sgemm micro-kernel: 12 accumulators,
// 2 weight vectors and 1 broadcast per k, no spills, no packing.
//
// The FP32 weights (42 MB for the shipped model) do not fit in L3, so a pass streams them
// from memory; with 16 rows each block is computed from memory once and from cache twice.
// The first row tile therefore prefetches both cache lines of the panel row `prefetchRows`
// k ahead: `bench --parts latency`, 1 thread, native ÷ OpenBLAS in the same run went from
// ~0.9 (no prefetch; 48 or 192 rows ahead, one line) to ~0.79 at 16 tokens.
//
// Each output is bias + Σ x·w with one fused multiply-add per k, in order k = 0, 1, …, from
// the bias: `Reference.fusedLinear` states exactly that and `FloatLinearTests` holds the two
// to the same bits. OpenBLAS accumulates in its own order, so the two FP32 products differ
// by rounding (~1e-6 relative), not more.

import _Builtin_intrinsics.intel
import CPrefetch
import TriageKernels

extension AVX2Kernels {
    /// Rows per tile: 12 accumulators of 8 lanes, plus 2 weight vectors and a broadcast, fill
    /// 15 of AVX2's 16 vector registers.
    static let floatTileRows = 6
    /// How many panel rows (k) ahead the first row tile prefetches (12 KB: ~600 cycles of
    /// that tile's multiply-adds, more than a trip to memory).
    static let prefetchRows = 96

    static func floatLinear(_ a: FloatLinearArguments) {
        let w = a.weight, k = w.inFeatures, n = w.outFeatures, bw = BlockedWeights.blockWidth
        let m = a.rows
        if m == 0 { return }
        for b in a.blocks {
            let c0 = b * bw, width = min(bw, n - c0), panel = w.block(b)
            var h = 0
            while h < width {
                let cols = min(16, width - h)
                if cols < 16 {
                    remainderColumns(a, panel: panel, width: width, column: h, count: cols, firstColumn: c0)
                    break
                }
                var r0 = 0
                while r0 < m {
                    if r0 == 0 {
                        tile(a, rows: min(floatTileRows, m - r0), firstRow: r0, panel: panel + h, width: width, column: c0 + h,
                             prefetch: true)
                    } else {
                        tile(a, rows: min(floatTileRows, m - r0), firstRow: r0, panel: panel + h, width: width, column: c0 + h,
                             prefetch: false)
                    }
                    r0 += floatTileRows
                }
                h += 16
            }
        }
    }

    /// Rows r0 ..< r0 + rows (at most 6) × 16 columns starting at `column`, from the panel
    /// columns at `panel` (rows of the panel `width` floats apart).
    @inline(__always)
    static func tile(_ a: FloatLinearArguments, rows: Int, firstRow r0: Int, panel: UnsafePointer<Float>, width: Int,
                     column c: Int, prefetch: Bool) {
        let k = a.weight.inFeatures, ldx = a.ldx
        // Rows past the end repeat the last real one; their results are not stored.
        @inline(__always) func xRow(_ r: Int) -> UnsafePointer<Float> { a.x + (r0 + min(r, rows - 1)) * ldx }
        let x0 = xRow(0), x1 = xRow(1), x2 = xRow(2), x3 = xRow(3), x4 = xRow(4), x5 = xRow(5)
        let bias0 = _mm256_loadu_ps(a.bias + c), bias1 = _mm256_loadu_ps(a.bias + c + 8)
        var a0 = bias0, b0 = bias1, a1 = bias0, b1 = bias1, a2 = bias0, b2 = bias1
        var a3 = bias0, b3 = bias1, a4 = bias0, b4 = bias1, a5 = bias0, b5 = bias1
        var wp = panel
        for kk in 0..<k {
            if prefetch { triage_prefetch(wp + prefetchRows * width); triage_prefetch(wp + prefetchRows * width + 16) }
            let w0 = _mm256_loadu_ps(wp), w1 = _mm256_loadu_ps(wp + 8)
            var s = _mm256_set1_ps(x0[kk]); a0 = _mm256_fmadd_ps(s, w0, a0); b0 = _mm256_fmadd_ps(s, w1, b0)
            s = _mm256_set1_ps(x1[kk]); a1 = _mm256_fmadd_ps(s, w0, a1); b1 = _mm256_fmadd_ps(s, w1, b1)
            s = _mm256_set1_ps(x2[kk]); a2 = _mm256_fmadd_ps(s, w0, a2); b2 = _mm256_fmadd_ps(s, w1, b2)
            s = _mm256_set1_ps(x3[kk]); a3 = _mm256_fmadd_ps(s, w0, a3); b3 = _mm256_fmadd_ps(s, w1, b3)
            s = _mm256_set1_ps(x4[kk]); a4 = _mm256_fmadd_ps(s, w0, a4); b4 = _mm256_fmadd_ps(s, w1, b4)
            s = _mm256_set1_ps(x5[kk]); a5 = _mm256_fmadd_ps(s, w0, a5); b5 = _mm256_fmadd_ps(s, w1, b5)
            wp += width
        }
        @inline(__always) func put(_ r: Int, _ lo: __m256, _ hi: __m256) {
            let y = a.y + (r0 + r) * a.ldy + c
            _mm256_storeu_ps(y, lo); _mm256_storeu_ps(y + 8, hi)
        }
        put(0, a0, b0)
        if rows > 1 { put(1, a1, b1) }
        if rows > 2 { put(2, a2, b2) }
        if rows > 3 { put(3, a3, b3) }
        if rows > 4 { put(4, a4, b4) }
        if rows > 5 { put(5, a5, b5) }
    }

    /// The last block's columns past its last whole 16 (a layer whose width is not a multiple
    /// of 16, such as a classifier's labels): one scalar fused multiply-add at a time, in the
    /// same order as the tiles.
    static func remainderColumns(_ a: FloatLinearArguments, panel: UnsafePointer<Float>, width: Int, column h: Int,
                                 count: Int, firstColumn c0: Int) {
        let k = a.weight.inFeatures
        for r in 0..<a.rows {
            let x = a.x + r * a.ldx, y = a.y + r * a.ldy + c0 + h
            for c in 0..<count {
                var acc = a.bias[c0 + h + c]
                var wp = panel + h + c
                for kk in 0..<k { acc = acc.addingProduct(x[kk], wp.pointee); wp += width }
                y[c] = acc
            }
        }
    }
}
