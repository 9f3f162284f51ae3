// The SSE4.1 INT8 kernel, for x86-64 CPUs without AVX2: the Atom, Celeron and Pentium
// Silver chips (Goldmont, Tremont) that many fanless edge boxes are built on, and anything
// older than Haswell. Compiled for Nehalem (x86-64-v2: SSE4.2, SSSE3, POPCNT); only called after the
// CPU has reported those.
//
// The AVX2 kernel at half the width: both operands widened to int16 and multiplied with
// `pmaddwd`, whose pairwise sums are exact in int32 (no 16-bit saturation, unlike
// `pmaddubsw`). It reads the same packed layout (16 channels × 4 k per 64 bytes): each
// 8-byte eighth widens to 2 channels × 4 k, and after the k loop `phaddd` sums adjacent
// lanes into one int32 per channel. A tile is 2 rows × 8 channels, so its 8 accumulators,
// 4 widened weight vectors and 2 broadcasts fit the 16 XMM registers.

import _Builtin_intrinsics.intel
import TriageKernels

public enum SSE4Kernels {
    public static let kernels = KernelSet(name: "sse4", glue: glue) { args in gemm(args) }

    /// The FP32 glue, inlined from TriageKernels and compiled for this module's CPU level.
    /// These CPUs have no FMA, so attention rounds each product and sum apart: 3× faster
    /// than a libm fmaf per lane, at the price of results that differ from the other
    /// kernels' in the last bits — FP32 logits by 1e-5; INT8 ones, where a last bit can move
    /// an activation to the next int8 level, by up to 0.19 on the shipped model's valid
    /// queries, with every label the same.
    public static let glue = FloatGlue(
        gelu: { FloatKernels.gelu($0, count: $1) },
        softmaxRow: softmax,
        addLayerNorm: { FloatKernels.addLayerNorm($0, residual: $1, rows: $2, features: $3, gamma: $4, beta: $5, eps: $6) },
        quantizeRows: { Int8Quantization.quantizeRows($0, rows: $1, columns: $2, into: $3, rowRange: $4) },
        attentionHead: { $0.run(fused: false, softmax: softmax) }, fusedMultiplyAdd: false)

    static let softmax: @Sendable (UnsafeMutablePointer<Float>, Int) -> Void = { FloatKernels.softmaxRow($0, count: $1) }

    static func gemm(_ args: Int8GemmArguments) {
        for b in args.blockRange {
            for half in 0..<2 where b * 16 + half * 8 < args.w.rows {
                var r = args.rowRange.lowerBound
                while r + 2 <= args.rowRange.upperBound { tile2(args, row: r, block: b, half: half); r += 2 }
                if r < args.rowRange.upperBound { tile1(args, row: r, block: b, half: half) }
            }
        }
    }

    /// Four activation bytes widened to int16 and repeated: the (k, k+1, k+2, k+3) operand
    /// that lines up with each channel's four weights.
    @inline(__always)
    static func broadcast(_ x: UnsafeMutablePointer<UInt8>, _ g: Int) -> __m128i {
        let v = UInt64(UnsafeRawPointer(x + 4 * g).loadUnaligned(as: UInt32.self))
        let spread = (v & 0xFF) | (v & 0xFF00) << 8 | (v & 0xFF_0000) << 16 | (v & 0xFF00_0000) << 24
        return _mm_set1_epi64x(Int64(bitPattern: spread))
    }

    /// Eighth `e` of a 64-byte group (channels 2e and 2e+1, four k each), widened to int16.
    @inline(__always)
    static func eighth(_ p: UnsafeMutablePointer<Int8>, _ e: Int) -> __m128i {
        _mm_cvtepi8_epi16(_mm_cvtsi64_si128(UnsafeRawPointer(p + 8 * e).loadUnaligned(as: Int64.self)))
    }

    /// Four channel totals from the accumulators of channels (n, n+1) and (n+2, n+3), then
    /// acc − zero·colSum → float, × (rowScale · colScale), + bias.
    @inline(__always)
    static func dequantize(_ c0: __m128i, _ c1: __m128i, _ args: Int8GemmArguments, row r: Int, channel n: Int) -> SIMD4<Float> {
        let w = args.w
        let acc = _mm_hadd_epi32(c0, c1)
        let sums = UnsafeRawPointer(w.columnSums + n).loadUnaligned(as: __m128i.self)
        let corrected = _mm_sub_epi32(acc, _mm_mullo_epi32(_mm_set1_epi32(args.a.zeroPoints[r]), sums))
        let scale = _mm_mul_ps(_mm_set1_ps(args.a.scales[r]), _mm_loadu_ps(w.scales.pointer + n))
        let y = _mm_mul_ps(_mm_cvtepi32_ps(corrected), scale)
        var bias = SIMD4<Float>.zero
        if let bp = args.bias {
            if n + 4 <= w.rows { bias = UnsafeRawPointer(bp + n).loadUnaligned(as: SIMD4<Float>.self) }
            else { for l in 0..<4 where n + l < w.rows { bias[l] = bp[n + l] } }
        }
        return _mm_add_ps(y, bias)
    }

    @inline(__always)
    static func store(_ c0: __m128i, _ c1: __m128i, _ c2: __m128i, _ c3: __m128i,
                      _ args: Int8GemmArguments, row r: Int, block b: Int, half: Int) {
        let n0 = b * 16 + half * 8
        let lo = dequantize(c0, c1, args, row: r, channel: n0)
        let hi = dequantize(c2, c3, args, row: r, channel: n0 + 4)
        let out = args.out + r * args.ldo + n0
        let valid = min(8, args.w.rows - n0)
        if valid == 8 {
            UnsafeMutableRawPointer(out).storeBytes(of: lo, as: SIMD4<Float>.self)
            UnsafeMutableRawPointer(out + 4).storeBytes(of: hi, as: SIMD4<Float>.self)
        } else {
            for l in 0..<valid { out[l] = l < 4 ? lo[l] : hi[l - 4] }
        }
    }

    static func tile2(_ args: Int8GemmArguments, row r: Int, block b: Int, half: Int) {
        let w = args.w, groups = w.paddedColumns / 4, lda = args.a.stride
        let x0 = args.a.values + r * lda, x1 = x0 + lda
        var a0 = _mm_setzero_si128(), a1 = a0, a2 = a0, a3 = a0
        var b0 = a0, b1 = a0, b2 = a0, b3 = a0
        let start = w.data + b * groups * 64 + 32 * half
        for g in 0..<groups {
            let p = start + 64 * g
            let w0 = eighth(p, 0), w1 = eighth(p, 1), w2 = eighth(p, 2), w3 = eighth(p, 3)
            let v0 = broadcast(x0, g), v1 = broadcast(x1, g)
            a0 = _mm_add_epi32(a0, _mm_madd_epi16(v0, w0)); a1 = _mm_add_epi32(a1, _mm_madd_epi16(v0, w1))
            a2 = _mm_add_epi32(a2, _mm_madd_epi16(v0, w2)); a3 = _mm_add_epi32(a3, _mm_madd_epi16(v0, w3))
            b0 = _mm_add_epi32(b0, _mm_madd_epi16(v1, w0)); b1 = _mm_add_epi32(b1, _mm_madd_epi16(v1, w1))
            b2 = _mm_add_epi32(b2, _mm_madd_epi16(v1, w2)); b3 = _mm_add_epi32(b3, _mm_madd_epi16(v1, w3))
        }
        store(a0, a1, a2, a3, args, row: r, block: b, half: half)
        store(b0, b1, b2, b3, args, row: r + 1, block: b, half: half)
    }

    static func tile1(_ args: Int8GemmArguments, row r: Int, block b: Int, half: Int) {
        let w = args.w, groups = w.paddedColumns / 4
        let x0 = args.a.values + r * args.a.stride
        var a0 = _mm_setzero_si128(), a1 = a0, a2 = a0, a3 = a0
        let start = w.data + b * groups * 64 + 32 * half
        for g in 0..<groups {
            let p = start + 64 * g
            let v0 = broadcast(x0, g)
            a0 = _mm_add_epi32(a0, _mm_madd_epi16(v0, eighth(p, 0)))
            a1 = _mm_add_epi32(a1, _mm_madd_epi16(v0, eighth(p, 1)))
            a2 = _mm_add_epi32(a2, _mm_madd_epi16(v0, eighth(p, 2)))
            a3 = _mm_add_epi32(a3, _mm_madd_epi16(v0, eighth(p, 3)))
        }
        store(a0, a1, a2, a3, args, row: r, block: b, half: half)
    }
}
