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
    public static let kernels = KernelSet(name: "avx2", glue: glue, floatLinear: { floatLinear($0) }) { args in gemm(args) }

    /// The FP32 glue, inlined from TriageKernels and compiled for this module's CPU level.
    public static let glue = FloatGlue(
        gelu: { FloatKernels.gelu($0, count: $1) },
        softmaxRow: softmax,
        addLayerNorm: { FloatKernels.addLayerNorm($0, residual: $1, rows: $2, features: $3, gamma: $4, beta: $5, eps: $6) },
        quantizeRows: { Int8Quantization.quantizeRows($0, rows: $1, columns: $2, into: $3, rowRange: $4) },
        attentionHead: { attentionHead($0, softmax: { FloatKernels.softmaxRow($0, count: $1) }) }, fusedMultiplyAdd: true)

    static let softmax: @Sendable (UnsafeMutablePointer<Float>, Int) -> Void = { FloatKernels.softmaxRow($0, count: $1) }

    /// Rows handled per pass over the weights: their int16 activations (at most 24 × 1536 × 2
    /// = 72 KB) stay in L2 while every block of the weights goes by.
    static let chunkRows = 24

    /// The activation rows are widened to int16 once per chunk, so that inside the k loop a
    /// row's four k are one 64-bit broadcast from memory (no ALU work on Zen), and each
    /// widened weight quarter serves six rows. Per group of 4 k, a 6-row × 8-channel tile
    /// issues 12 `vpmaddwd` + 12 `vpaddd` + 2 widenings: 26 vector operations for 192
    /// multiply-adds, against 24 for 128 in a 2-row × 16-channel tile with the activations
    /// widened in the loop. The multiply-add unit does two `vpmaddwd` per cycle, so this is
    /// within 10 % of its limit. Integer sums are exact, so the order changes no output.
    static func gemm(_ args: Int8GemmArguments) {
        let w = args.w, stride = w.paddedColumns
        let upper = args.rowRange.upperBound
        let widened = UnsafeMutablePointer<Int16>.allocate(capacity: min(chunkRows, args.rowRange.count) * stride + 16)
        defer { widened.deallocate() }
        var first = args.rowRange.lowerBound
        while first < upper {
            let rows = min(chunkRows, upper - first)
            widen(args.a, rows: first..<(first + rows), into: widened, stride: stride)
            for b in args.blockRange {
                for half in 0..<2 where b * 16 + half * 8 < w.rows {
                    var i = 0
                    while i + 6 <= rows { tile6(args, widened, stride, first: i, row: first + i, block: b, half: half); i += 6 }
                    if i + 4 <= rows { tile4(args, widened, stride, first: i, row: first + i, block: b, half: half); i += 4 }
                    while i + 2 <= rows { tile2(args, widened, stride, first: i, row: first + i, block: b, half: half); i += 2 }
                    if i < rows { tile1(args, widened, stride, first: i, row: first + i, block: b, half: half) }
                }
            }
            first += rows
        }
    }

    /// uint8 activations (rows of `a.stride` = `stride` bytes) to int16, zero-extended.
    static func widen(_ a: QuantizedRows, rows: Range<Int>, into out: UnsafeMutablePointer<Int16>, stride: Int) {
        for (i, r) in rows.enumerated() {
            let src = a.values + r * a.stride, dst = out + i * stride
            var k = 0
            while k + 16 <= stride {
                let bytes = UnsafeRawPointer(src + k).loadUnaligned(as: __m128i.self)
                UnsafeMutableRawPointer(dst + k).storeBytes(of: _mm256_cvtepu8_epi16(bytes), as: __m256i.self)
                k += 16
            }
            while k < stride { dst[k] = Int16(src[k]); k += 1 }
        }
    }

    /// Four int16 activations repeated across the register: one `vpbroadcastq` from memory.
    @inline(__always)
    static func broadcast(_ x: UnsafePointer<Int16>, _ g: Int) -> __m256i {
        _mm256_set1_epi64x(UnsafeRawPointer(x + 4 * g).loadUnaligned(as: Int64.self))
    }

    @inline(__always)
    static func madd(_ acc: __m256i, _ x: __m256i, _ w: __m256i) -> __m256i {
        _mm256_add_epi32(acc, _mm256_madd_epi16(x, w))
    }

    /// Dequantizes and stores the 8 channels from `n` of row `r` (fewer at the matrix's edge).
    @inline(__always)
    static func store8(_ c0: __m256i, _ c1: __m256i, _ args: Int8GemmArguments, row r: Int, channel n: Int) {
        let y = dequantize(reduce(c0, c1), args, row: r, channel: n)
        let out = args.out + r * args.ldo + n
        let valid = min(8, args.w.rows - n)
        if valid == 8 {
            UnsafeMutableRawPointer(out).storeBytes(of: y, as: SIMD8<Float>.self)
        } else {
            for l in 0..<valid { out[l] = y[l] }
        }
    }

    /// Rows `row ..< row + 6` (at `first` in the widened chunk) × channels 8·half ..< 8·half + 8 of block `b`.
    static func tile6(_ args: Int8GemmArguments, _ xw: UnsafeMutablePointer<Int16>, _ stride: Int,
                      first i: Int, row r: Int, block b: Int, half: Int) {
        let groups = args.w.paddedColumns / 4
        let x0 = UnsafePointer(xw + i * stride), x1 = x0 + stride, x2 = x1 + stride
        let x3 = x2 + stride, x4 = x3 + stride, x5 = x4 + stride
        var a0 = _mm256_setzero_si256(), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0
        var d0 = a0, d1 = a0, e0 = a0, e1 = a0, f0 = a0, f1 = a0
        let block = args.w.data + b * groups * 64 + 32 * half
        for g in 0..<groups {
            let p = block + 64 * g
            let w0 = quarter(p, 0), w1 = quarter(p, 1)
            var v = broadcast(x0, g); a0 = madd(a0, v, w0); a1 = madd(a1, v, w1)
            v = broadcast(x1, g); b0 = madd(b0, v, w0); b1 = madd(b1, v, w1)
            v = broadcast(x2, g); c0 = madd(c0, v, w0); c1 = madd(c1, v, w1)
            v = broadcast(x3, g); d0 = madd(d0, v, w0); d1 = madd(d1, v, w1)
            v = broadcast(x4, g); e0 = madd(e0, v, w0); e1 = madd(e1, v, w1)
            v = broadcast(x5, g); f0 = madd(f0, v, w0); f1 = madd(f1, v, w1)
        }
        let n = b * 16 + 8 * half
        store8(a0, a1, args, row: r, channel: n); store8(b0, b1, args, row: r + 1, channel: n)
        store8(c0, c1, args, row: r + 2, channel: n); store8(d0, d1, args, row: r + 3, channel: n)
        store8(e0, e1, args, row: r + 4, channel: n); store8(f0, f1, args, row: r + 5, channel: n)
    }

    /// Four rows: the remainder of a 16-token query (6 + 6 + 4), where two 2-row tiles
    /// would read each weight quarter twice (~3 M more instructions per short query).
    static func tile4(_ args: Int8GemmArguments, _ xw: UnsafeMutablePointer<Int16>, _ stride: Int,
                      first i: Int, row r: Int, block b: Int, half: Int) {
        let groups = args.w.paddedColumns / 4
        let x0 = UnsafePointer(xw + i * stride), x1 = x0 + stride, x2 = x1 + stride, x3 = x2 + stride
        var a0 = _mm256_setzero_si256(), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, d0 = a0, d1 = a0
        let block = args.w.data + b * groups * 64 + 32 * half
        for g in 0..<groups {
            let p = block + 64 * g
            let w0 = quarter(p, 0), w1 = quarter(p, 1)
            var v = broadcast(x0, g); a0 = madd(a0, v, w0); a1 = madd(a1, v, w1)
            v = broadcast(x1, g); b0 = madd(b0, v, w0); b1 = madd(b1, v, w1)
            v = broadcast(x2, g); c0 = madd(c0, v, w0); c1 = madd(c1, v, w1)
            v = broadcast(x3, g); d0 = madd(d0, v, w0); d1 = madd(d1, v, w1)
        }
        let n = b * 16 + 8 * half
        store8(a0, a1, args, row: r, channel: n); store8(b0, b1, args, row: r + 1, channel: n)
        store8(c0, c1, args, row: r + 2, channel: n); store8(d0, d1, args, row: r + 3, channel: n)
    }

    static func tile2(_ args: Int8GemmArguments, _ xw: UnsafeMutablePointer<Int16>, _ stride: Int,
                      first i: Int, row r: Int, block b: Int, half: Int) {
        let groups = args.w.paddedColumns / 4
        let x0 = UnsafePointer(xw + i * stride), x1 = x0 + stride
        var a0 = _mm256_setzero_si256(), a1 = a0, b0 = a0, b1 = a0
        let block = args.w.data + b * groups * 64 + 32 * half
        for g in 0..<groups {
            let p = block + 64 * g
            let w0 = quarter(p, 0), w1 = quarter(p, 1)
            var v = broadcast(x0, g); a0 = madd(a0, v, w0); a1 = madd(a1, v, w1)
            v = broadcast(x1, g); b0 = madd(b0, v, w0); b1 = madd(b1, v, w1)
        }
        let n = b * 16 + 8 * half
        store8(a0, a1, args, row: r, channel: n); store8(b0, b1, args, row: r + 1, channel: n)
    }

    static func tile1(_ args: Int8GemmArguments, _ xw: UnsafeMutablePointer<Int16>, _ stride: Int,
                      first i: Int, row r: Int, block b: Int, half: Int) {
        let groups = args.w.paddedColumns / 4
        let x0 = UnsafePointer(xw + i * stride)
        var a0 = _mm256_setzero_si256(), a1 = a0
        let block = args.w.data + b * groups * 64 + 32 * half
        for g in 0..<groups {
            let p = block + 64 * g
            let v = broadcast(x0, g)
            a0 = madd(a0, v, quarter(p, 0)); a1 = madd(a1, v, quarter(p, 1))
        }
        store8(a0, a1, args, row: r, channel: b * 16 + 8 * half)
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

}
