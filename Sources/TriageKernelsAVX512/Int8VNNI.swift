// The AVX-512 VNNI INT8 kernel. This module is compiled for Cascade Lake (the first CPU with
// AVX-512 VNNI) so that the intrinsics below lower to single instructions; it is only ever
// called after the CPU has reported AVX-512 F/BW/DQ/VL/CD and VNNI.
//
// `vpdpbusd` multiplies 64 uint8 activations by 64 int8 weights and adds each group of four
// products into one of 16 int32 lanes, exactly (no 16-bit intermediate). The micro-kernel
// keeps a 4-row × 64-column tile of accumulators in 16 registers: per group of 4 k it loads
// 4 weight vectors, broadcasts 4 activation words and issues 16 `vpdpbusd`.

import _Builtin_intrinsics.intel
import TriageKernels

public enum AVX512Kernels {
    public static let kernels = KernelSet(name: "vnni", glue: glue) { args in gemm(args) }

    /// The FP32 glue, inlined from TriageKernels and compiled for this module's CPU level.
    public static let glue = FloatGlue(
        gelu: { FloatKernels.gelu($0, count: $1) },
        softmaxRow: softmax,
        addLayerNorm: { FloatKernels.addLayerNorm($0, residual: $1, rows: $2, features: $3, gamma: $4, beta: $5, eps: $6) },
        quantizeRows: { Int8Quantization.quantizeRows($0, rows: $1, columns: $2, into: $3, rowRange: $4) },
        attentionHead: { $0.run(fused: true, softmax: softmax) }, fusedMultiplyAdd: true)

    static let softmax: @Sendable (UnsafeMutablePointer<Float>, Int) -> Void = { FloatKernels.softmaxRow($0, count: $1) }

    static func gemm(_ args: Int8GemmArguments) {
        let blocks = args.blockRange, rows = args.rowRange
        var b = blocks.lowerBound
        while b + 4 <= blocks.upperBound {
            var r = rows.lowerBound
            while r + 4 <= rows.upperBound { tile4x4(args, row: r, block: b); r += 4 }
            while r < rows.upperBound { tile1x4(args, row: r, block: b); r += 1 }
            b += 4
        }
        while b < blocks.upperBound {
            var r = rows.lowerBound
            while r + 4 <= rows.upperBound { tile4x1(args, row: r, block: b); r += 4 }
            while r < rows.upperBound { tile1x1(args, row: r, block: b); r += 1 }
            b += 1
        }
    }

    @inline(__always)
    static func broadcast(_ x: UnsafeMutablePointer<UInt8>, _ g: Int) -> __m512i {
        _mm512_set1_epi32(UnsafeRawPointer(x + 4 * g).loadUnaligned(as: Int32.self))
    }

    @inline(__always)
    static func weights(_ w: PackedInt8Matrix, block: Int, group: Int, groups: Int) -> __m512i {
        _mm512_load_si512(UnsafeRawPointer(w.data + (block * groups + group) * 64))
    }

    /// acc − zero·colSum → float, × (rowScale · colScale), + bias; the tail block is masked.
    @inline(__always)
    static func store(_ acc: __m512i, _ args: Int8GemmArguments, row r: Int, block b: Int) {
        let w = args.w
        let n0 = b * 16
        let sums = _mm512_loadu_si512(UnsafeRawPointer(w.columnSums + n0))
        let corrected = _mm512_sub_epi32(acc, _mm512_mullo_epi32(_mm512_set1_epi32(args.a.zeroPoints[r]), sums))
        let scale = _mm512_mul_ps(_mm512_set1_ps(args.a.scales[r]), _mm512_loadu_ps(UnsafeRawPointer(w.scales.pointer + n0)))
        var y = _mm512_mul_ps(_mm512_cvtepi32_ps(corrected), scale)
        let valid = min(16, w.rows - n0)
        let mask: __mmask16 = valid == 16 ? 0xFFFF : __mmask16((1 << valid) - 1)
        if let bias = args.bias {
            y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(mask, UnsafeRawPointer(bias + n0)))
        } else {
            y = _mm512_add_ps(y, _mm512_setzero_ps())
        }
        _mm512_mask_storeu_ps(UnsafeMutableRawPointer(args.out + r * args.ldo + n0), mask, y)
    }

    static func tile4x4(_ args: Int8GemmArguments, row r: Int, block b: Int) {
        let w = args.w, groups = w.paddedColumns / 4, lda = args.a.stride
        let x0 = args.a.values + r * lda, x1 = x0 + lda, x2 = x1 + lda, x3 = x2 + lda
        var c00 = _mm512_setzero_si512(), c01 = c00, c02 = c00, c03 = c00
        var c10 = c00, c11 = c00, c12 = c00, c13 = c00
        var c20 = c00, c21 = c00, c22 = c00, c23 = c00
        var c30 = c00, c31 = c00, c32 = c00, c33 = c00
        for g in 0..<groups {
            let w0 = weights(w, block: b, group: g, groups: groups)
            let w1 = weights(w, block: b + 1, group: g, groups: groups)
            let w2 = weights(w, block: b + 2, group: g, groups: groups)
            let w3 = weights(w, block: b + 3, group: g, groups: groups)
            var a = broadcast(x0, g)
            c00 = _mm512_dpbusd_epi32(c00, a, w0); c01 = _mm512_dpbusd_epi32(c01, a, w1)
            c02 = _mm512_dpbusd_epi32(c02, a, w2); c03 = _mm512_dpbusd_epi32(c03, a, w3)
            a = broadcast(x1, g)
            c10 = _mm512_dpbusd_epi32(c10, a, w0); c11 = _mm512_dpbusd_epi32(c11, a, w1)
            c12 = _mm512_dpbusd_epi32(c12, a, w2); c13 = _mm512_dpbusd_epi32(c13, a, w3)
            a = broadcast(x2, g)
            c20 = _mm512_dpbusd_epi32(c20, a, w0); c21 = _mm512_dpbusd_epi32(c21, a, w1)
            c22 = _mm512_dpbusd_epi32(c22, a, w2); c23 = _mm512_dpbusd_epi32(c23, a, w3)
            a = broadcast(x3, g)
            c30 = _mm512_dpbusd_epi32(c30, a, w0); c31 = _mm512_dpbusd_epi32(c31, a, w1)
            c32 = _mm512_dpbusd_epi32(c32, a, w2); c33 = _mm512_dpbusd_epi32(c33, a, w3)
        }
        store(c00, args, row: r, block: b); store(c01, args, row: r, block: b + 1)
        store(c02, args, row: r, block: b + 2); store(c03, args, row: r, block: b + 3)
        store(c10, args, row: r + 1, block: b); store(c11, args, row: r + 1, block: b + 1)
        store(c12, args, row: r + 1, block: b + 2); store(c13, args, row: r + 1, block: b + 3)
        store(c20, args, row: r + 2, block: b); store(c21, args, row: r + 2, block: b + 1)
        store(c22, args, row: r + 2, block: b + 2); store(c23, args, row: r + 2, block: b + 3)
        store(c30, args, row: r + 3, block: b); store(c31, args, row: r + 3, block: b + 1)
        store(c32, args, row: r + 3, block: b + 2); store(c33, args, row: r + 3, block: b + 3)
    }

    static func tile1x4(_ args: Int8GemmArguments, row r: Int, block b: Int) {
        let w = args.w, groups = w.paddedColumns / 4
        let x0 = args.a.values + r * args.a.stride
        var c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0
        for g in 0..<groups {
            let a = broadcast(x0, g)
            c0 = _mm512_dpbusd_epi32(c0, a, weights(w, block: b, group: g, groups: groups))
            c1 = _mm512_dpbusd_epi32(c1, a, weights(w, block: b + 1, group: g, groups: groups))
            c2 = _mm512_dpbusd_epi32(c2, a, weights(w, block: b + 2, group: g, groups: groups))
            c3 = _mm512_dpbusd_epi32(c3, a, weights(w, block: b + 3, group: g, groups: groups))
        }
        store(c0, args, row: r, block: b); store(c1, args, row: r, block: b + 1)
        store(c2, args, row: r, block: b + 2); store(c3, args, row: r, block: b + 3)
    }

    static func tile4x1(_ args: Int8GemmArguments, row r: Int, block b: Int) {
        let w = args.w, groups = w.paddedColumns / 4, lda = args.a.stride
        let x0 = args.a.values + r * lda, x1 = x0 + lda, x2 = x1 + lda, x3 = x2 + lda
        var c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0
        for g in 0..<groups {
            let w0 = weights(w, block: b, group: g, groups: groups)
            c0 = _mm512_dpbusd_epi32(c0, broadcast(x0, g), w0)
            c1 = _mm512_dpbusd_epi32(c1, broadcast(x1, g), w0)
            c2 = _mm512_dpbusd_epi32(c2, broadcast(x2, g), w0)
            c3 = _mm512_dpbusd_epi32(c3, broadcast(x3, g), w0)
        }
        store(c0, args, row: r, block: b); store(c1, args, row: r + 1, block: b)
        store(c2, args, row: r + 2, block: b); store(c3, args, row: r + 3, block: b)
    }

    static func tile1x1(_ args: Int8GemmArguments, row r: Int, block b: Int) {
        let w = args.w, groups = w.paddedColumns / 4
        let x0 = args.a.values + r * args.a.stride
        var c0 = _mm512_setzero_si512()
        for g in 0..<groups {
            c0 = _mm512_dpbusd_epi32(c0, broadcast(x0, g), weights(w, block: b, group: g, groups: groups))
        }
        store(c0, args, row: r, block: b)
    }
}
