// The AVX2 INT8 kernel, for x86-64 CPUs without AVX-512. Compiled for Haswell; only called
// after the CPU has reported AVX2, FMA, BMI2 and F16C.
//
// AVX2's byte multiply-add (`vpmaddubsw`) saturates at 16 bits, which would make the result
// depend on the data. Instead both operands are widened to int16 and multiplied with
// `vpmaddwd`, whose pairwise sums are exact in int32. The packed weight layout is the VNNI
// one (16 channels × 4 k per 64 bytes): each 16-byte quarter widens to 4 channels × 4 k, and
// after the k loop adjacent lanes are summed to give one int32 per channel.

import _Builtin_intrinsics.intel
import TriageKernels

public enum AVX2Kernels {
    public static let kernels = KernelSet(name: "avx2", glue: glue) { args in gemm(args) }

    /// The FP32 glue, inlined from TriageKernels and compiled for this module's CPU level.
    public static let glue = FloatGlue(
        gelu: { FloatKernels.gelu($0, count: $1) },
        softmaxRow: softmax,
        addLayerNorm: { FloatKernels.addLayerNorm($0, residual: $1, rows: $2, features: $3, gamma: $4, beta: $5, eps: $6) },
        quantizeRows: { Int8Quantization.quantizeRows($0, rows: $1, columns: $2, into: $3, rowRange: $4) },
        attentionHead: { attentionHead($0, softmax: { FloatKernels.softmaxRow($0, count: $1) }) }, fusedMultiplyAdd: true)

    static let softmax: @Sendable (UnsafeMutablePointer<Float>, Int) -> Void = { FloatKernels.softmaxRow($0, count: $1) }

    static func gemm(_ args: Int8GemmArguments) {
        for b in args.blockRange {
            var r = args.rowRange.lowerBound
            while r + 2 <= args.rowRange.upperBound { tile2x1(args, row: r, block: b); r += 2 }
            if r < args.rowRange.upperBound { tile1x1(args, row: r, block: b) }
        }
    }

    /// Four activation bytes widened to int16 and repeated across the register: the
    /// (k, k+1, k+2, k+3) operand that lines up with each channel's four weights. One
    /// 32-bit broadcast and one zero-extension (`vpbroadcastd` + `vpmovzxbw`): spreading the
    /// bytes in a general-purpose register first cost six more instructions per group.
    @inline(__always)
    static func broadcast(_ x: UnsafeMutablePointer<UInt8>, _ g: Int) -> __m256i {
        let four = UnsafeRawPointer(x + 4 * g).loadUnaligned(as: Int32.self)
        return _mm256_cvtepu8_epi16(_mm_set1_epi32(four))
    }

    @inline(__always)
    static func quarter(_ p: UnsafeMutablePointer<Int8>, _ q: Int) -> __m256i {
        _mm256_cvtepi8_epi16(UnsafeRawPointer(p + 16 * q).load(as: __m128i.self))
    }

    /// Sums adjacent lanes of two accumulators (channels 0–3 and 4–7 of a block half) into
    /// eight int32 channel totals, in channel order.
    static let order = unsafeBitCast(SIMD8<Int32>(0, 1, 4, 5, 2, 3, 6, 7), to: __m256i.self)

    @inline(__always)
    static func reduce(_ lo: __m256i, _ hi: __m256i) -> __m256i {
        _mm256_permutevar8x32_epi32(_mm256_hadd_epi32(lo, hi), order)
    }

    /// acc − zero·colSum → float, × (rowScale · colScale), + bias, for 8 channels from `n`.
    @inline(__always)
    static func dequantize(_ acc: __m256i, _ args: Int8GemmArguments, row r: Int, channel n: Int) -> SIMD8<Float> {
        let w = args.w
        let sums = UnsafeRawPointer(w.columnSums + n).loadUnaligned(as: __m256i.self)
        let corrected = _mm256_sub_epi32(acc, _mm256_mullo_epi32(_mm256_set1_epi32(args.a.zeroPoints[r]), sums))
        let scale = _mm256_mul_ps(_mm256_set1_ps(args.a.scales[r]), _mm256_loadu_ps(w.scales.pointer + n))
        let y = _mm256_mul_ps(_mm256_cvtepi32_ps(corrected), scale)
        var bias = SIMD8<Float>.zero
        if let bp = args.bias {
            if n + 8 <= w.rows { bias = UnsafeRawPointer(bp + n).loadUnaligned(as: SIMD8<Float>.self) }
            else { for l in 0..<8 where n + l < w.rows { bias[l] = bp[n + l] } }
        }
        return _mm256_add_ps(y, bias)
    }

    @inline(__always)
    static func store(_ c0: __m256i, _ c1: __m256i, _ c2: __m256i, _ c3: __m256i,
                      _ args: Int8GemmArguments, row r: Int, block b: Int) {
        let n0 = b * 16
        let lo = dequantize(reduce(c0, c1), args, row: r, channel: n0)
        let hi = dequantize(reduce(c2, c3), args, row: r, channel: n0 + 8)
        let out = args.out + r * args.ldo + n0
        let valid = min(16, args.w.rows - n0)
        if valid == 16 {
            UnsafeMutableRawPointer(out).storeBytes(of: lo, as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(out + 8).storeBytes(of: hi, as: SIMD8<Float>.self)
        } else {
            for l in 0..<valid { out[l] = l < 8 ? lo[l] : hi[l - 8] }
        }
    }

    static func tile2x1(_ args: Int8GemmArguments, row r: Int, block b: Int) {
        let w = args.w, groups = w.paddedColumns / 4, lda = args.a.stride
        let x0 = args.a.values + r * lda, x1 = x0 + lda
        var a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0
        var b0 = a0, b1 = a0, b2 = a0, b3 = a0
        let block = w.data + b * groups * 64
        for g in 0..<groups {
            let p = block + 64 * g
            let w0 = quarter(p, 0), w1 = quarter(p, 1), w2 = quarter(p, 2), w3 = quarter(p, 3)
            let v0 = broadcast(x0, g), v1 = broadcast(x1, g)
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(v0, w0)); a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(v0, w1))
            a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(v0, w2)); a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(v0, w3))
            b0 = _mm256_add_epi32(b0, _mm256_madd_epi16(v1, w0)); b1 = _mm256_add_epi32(b1, _mm256_madd_epi16(v1, w1))
            b2 = _mm256_add_epi32(b2, _mm256_madd_epi16(v1, w2)); b3 = _mm256_add_epi32(b3, _mm256_madd_epi16(v1, w3))
        }
        store(a0, a1, a2, a3, args, row: r, block: b)
        store(b0, b1, b2, b3, args, row: r + 1, block: b)
    }

    static func tile1x1(_ args: Int8GemmArguments, row r: Int, block b: Int) {
        let w = args.w, groups = w.paddedColumns / 4
        let x0 = args.a.values + r * args.a.stride
        var a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0
        let block = w.data + b * groups * 64
        for g in 0..<groups {
            let p = block + 64 * g
            let v0 = broadcast(x0, g)
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(v0, quarter(p, 0)))
            a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(v0, quarter(p, 1)))
            a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(v0, quarter(p, 2)))
            a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(v0, quarter(p, 3)))
        }
        store(a0, a1, a2, a3, args, row: r, block: b)
    }
}
