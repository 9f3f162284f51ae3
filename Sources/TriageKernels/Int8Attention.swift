// Attention's two products as INT8 products, for models quantized with `--attention int8`.
//
// Both run through the instruction set's own INT8 matrix kernel (`KernelSet.gemm`), the one
// the linear layers use, so each is exact in int32 and bit-identical on every CPU:
// - scores = Q·Kᵀ: the head's query rows quantized like any activation (uint8, one scale and
//   zero point per row), K as the "weights" — int8, symmetric, one scale per key, the
//   softmax scale 1/√d folded into it;
// - context = P·V: the probabilities quantized per row (uint8; their range starts at 0, so
//   the zero point is 0 and 255 levels span each row's largest probability), Vᵀ as the
//   weights — int8, symmetric, one scale per feature.
// K and V are quantized and packed per head at run time, O(n·d) work beside the products'
// O(n²·d). The softmax is the FP32 one. `Reference.int8AttentionHead` states the same steps
// with the scalar reference product; the tests hold each kernel set to it bit for bit.

/// Per-thread scratch for `Int8Attention.head`: grown to the largest head seen, then reused.
public final class Int8AttentionScratch: @unchecked Sendable {
    let queries = QuantizationScratch()
    let probabilities = QuantizationScratch()
    var rows = ScratchBuffer(), scores = ScratchBuffer()
    var keys = PackedScratch(), valuesT = PackedScratch()
    public init() {}

    /// Room for one packed matrix: its bytes, scales and sums, viewed as a `PackedInt8Matrix`.
    final class PackedScratch {
        private var bytes = 0, channels = 0
        private var data: UnsafeMutablePointer<Int8>? = nil
        private var sums: UnsafeMutablePointer<Int32>? = nil
        private var scales = FloatBuffer(count: 0)
        deinit { data?.deallocate(); sums?.deallocate() }

        func matrix(rows n: Int, columns k: Int) -> PackedInt8Matrix {
            let blocks = (n + 15) / 16, need = blocks * ((k + 3) / 4) * 64
            if need > bytes {
                data?.deallocate()
                bytes = need * 3 / 2
                data = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64).bindMemory(to: Int8.self, capacity: bytes)
            }
            if blocks * 16 > channels {
                sums?.deallocate()
                channels = blocks * 16 * 3 / 2 + 16
                sums = .allocate(capacity: channels)
                sums!.initialize(repeating: 0, count: channels)
                scales = FloatBuffer(count: channels)
            }
            return PackedInt8Matrix(view: data!, scales: scales, sums: sums!, rows: n, columns: k, owner: self)
        }
    }
}

public enum Int8Attention {
    /// The metadata value of `triage_attention` for this scheme.
    public static let scheme = "int8-v1"

    /// One head: softmax(scale · Q·Kᵀ) · V with both products in INT8, as described above.
    /// Uses `a`'s operands and output; its FP32 `scratch` is not touched.
    public static func head(_ a: AttentionHeadArguments, kernels: KernelSet, scratch s: Int8AttentionScratch) {
        let m = a.queries, n = a.keys, dh = a.headDim
        if m == 0 || n == 0 { return }
        // Q rows side by side, then quantized per row by the glue every linear layer uses.
        let q = s.rows.pointer(count: m * dh)
        for i in 0..<m { (q + i * dh).update(from: a.q + i * a.ld, count: dh) }
        let qq = s.queries.rows(m, columns: dh)
        kernels.glue.quantizeRows(q, m, dh, qq, 0..<m)
        let keys = s.keys.matrix(rows: n, columns: dh)
        packRows(a.k, ld: a.ld, into: keys, scaleFactor: a.scale)
        let scores = s.scores.pointer(count: m * n)
        kernels.gemm(Int8GemmArguments(a: qq, w: keys, bias: nil, out: scores, ldo: n, rowRange: 0..<m,
                                       blockRange: 0..<keys.blocks))
        for i in 0..<m { kernels.glue.softmaxRow(scores + i * n, n) }
        let pq = s.probabilities.rows(m, columns: n)
        kernels.glue.quantizeRows(scores, m, n, pq, 0..<m)
        let values = s.valuesT.matrix(rows: dh, columns: n)
        packColumns(a.v, ld: a.ld, keys: n, features: dh, into: values)
        kernels.gemm(Int8GemmArguments(a: pq, w: values, bias: nil, out: a.out, ldo: a.ldo, rowRange: 0..<m,
                                       blockRange: 0..<values.blocks))
    }

    /// Quantizes `w.rows` float rows of `w.columns` values (rows `ld` apart) to int8, one
    /// symmetric scale per row exactly as `Int8Quantization.quantizeWeights` does, and packs
    /// them into `w`; each row's scale is stored × `scaleFactor`.
    public static func packRows(_ x: UnsafePointer<Float>, ld: Int, into w: PackedInt8Matrix, scaleFactor: Float) {
        let n = w.rows, k = w.columns, groups = w.paddedColumns / 4
        for r in 0..<n {
            let src = x + r * ld
            let block = w.data + (r / 16) * groups * 64 + (r % 16) * 4
            var maxAbs: Float = 0, sum: Int32 = 0
            if k % 16 == 0 {
                var m = FloatVector(repeating: 0)
                for c in stride(from: 0, to: k, by: 16) { m = VectorMath.max(m, absolute(FloatVector(load: src + c))) }
                maxAbs = VectorMath.horizontalMax(m)
                let scale: Float = maxAbs > 0 ? maxAbs / 127 : 1
                let scaleV = FloatVector(repeating: scale)
                var sums = FloatVector(repeating: 0)
                for c in stride(from: 0, to: k, by: 16) {
                    let q = quantized(FloatVector(load: src + c), scaleV)
                    sums += q
                    let bytes = VectorMath.lowBytes(offsetBits(q))
                    let words = unsafeBitCast(bytes, to: SIMD4<UInt32>.self)
                    for g in 0..<4 { UnsafeMutableRawPointer(block + (c / 4 + g) * 64).storeBytes(of: words[g], as: UInt32.self) }
                }
                sum = Int32(sums.sum())  // integers, |sum| ≤ 127·k: exact in FP32 for k < 132,000
                w.scales[r] = scale * scaleFactor
            } else {
                for i in 0..<k { maxAbs = Swift.max(maxAbs, abs(src[i])) }
                let scale: Float = maxAbs > 0 ? maxAbs / 127 : 1
                for g in 0..<groups {
                    var word: UInt32 = 0
                    for e in 0..<4 where 4 * g + e < k {
                        let q = Int8(Swift.max(-127, Swift.min(127, VectorMath.roundEven(src[4 * g + e] / scale))))
                        sum &+= Int32(q)
                        word |= UInt32(UInt8(bitPattern: q)) << (8 * e)
                    }
                    UnsafeMutableRawPointer(block + g * 64).storeBytes(of: word, as: UInt32.self)
                }
                w.scales[r] = scale * scaleFactor
            }
            w.columnSums[r] = sum
        }
        zeroRowsPastEnd(w)
    }

    /// Packs Vᵀ: the `features` columns of `keys` float rows (`ld` apart) become `w`'s rows,
    /// each quantized to int8 with one symmetric scale over its keys (as `quantizeWeights`
    /// would on the transposed matrix).
    public static func packColumns(_ v: UnsafePointer<Float>, ld: Int, keys n: Int, features dh: Int,
                                   into w: PackedInt8Matrix) {
        precondition(w.rows == dh && w.columns == n)
        let groups = w.paddedColumns / 4
        let scales = w.scales.pointer
        if dh % 16 == 0 {
            for b in 0..<(dh / 16) {
                var m = FloatVector(repeating: 0)
                for j in 0..<n { m = VectorMath.max(m, absolute(FloatVector(load: v + j * ld + 16 * b))) }
                let scale = m.replacing(with: FloatVector(repeating: 1), where: .!(m .> FloatVector(repeating: 0)))
                    .replacing(with: m / FloatVector(repeating: 127), where: m .> FloatVector(repeating: 0))
                scale.store(scales + 16 * b)
                var sums = FloatVector(repeating: 0)
                // One 64-byte group is 4 keys × 16 features: lane l holds feature l's four
                // keys, byte e of it key 4g + e — the bytes of four quantized rows interleaved.
                for g in 0..<groups {
                    var word = SIMD16<UInt32>(repeating: 0)
                    for e in 0..<4 where 4 * g + e < n {
                        let q = quantized(FloatVector(load: v + (4 * g + e) * ld + 16 * b), scale)
                        sums += q
                        word |= (offsetBits(q) & 0xFF) &<< UInt32(8 * e)
                    }
                    UnsafeMutableRawPointer(w.data + (b * groups + g) * 64).storeBytes(of: word, as: SIMD16<UInt32>.self)
                }
                for l in 0..<16 { w.columnSums[16 * b + l] = Int32(sums[l]) }
            }
            return
        }
        for d in 0..<dh { scales[d] = 0 }
        for j in 0..<n {
            let src = v + j * ld
            for d in 0..<dh { scales[d] = Swift.max(scales[d], abs(src[d])) }
        }
        for d in 0..<dh { scales[d] = scales[d] > 0 ? scales[d] / 127 : 1; w.columnSums[d] = 0 }
        // Whole 64-byte groups are written, so key padding past n and feature padding past dh
        // come out zero.
        for b in 0..<w.blocks {
            for g in 0..<groups {
                var chunk = SIMD64<Int8>()
                for e in 0..<4 where 4 * g + e < n {
                    let src = v + (4 * g + e) * ld
                    for lane in 0..<min(16, dh - 16 * b) {
                        let d = 16 * b + lane
                        let q = Int8(Swift.max(-127, Swift.min(127, VectorMath.roundEven(src[d] / scales[d]))))
                        chunk[lane * 4 + e] = q
                        w.columnSums[d] &+= Int32(q)
                    }
                }
                UnsafeMutableRawPointer(w.data + (b * groups + g) * 64).storeBytes(of: chunk, as: SIMD64<Int8>.self)
            }
        }
    }

    @inline(__always)
    static func absolute(_ v: FloatVector) -> FloatVector { VectorMath.max(v, FloatVector(repeating: 0) - v) }

    /// round(x / scale) clamped to ±127, as floats (the division, not a reciprocal, so that
    /// it rounds as `quantizeWeights` does).
    @inline(__always)
    static func quantized(_ x: FloatVector, _ scale: FloatVector) -> FloatVector {
        VectorMath.clamp(VectorMath.roundEven(x / scale), -127, 127)
    }

    /// Integral lanes in [−127, 127] as the bit patterns of their int8 values (low byte).
    @inline(__always)
    static func offsetBits(_ q: FloatVector) -> SIMD16<UInt32> {
        VectorMath.integerBits(q + FloatVector(repeating: 128)) ^ SIMD16<UInt32>(repeating: 0x80)
    }

    /// Channels past `rows` in the last block read as zero weights.
    static func zeroRowsPastEnd(_ w: PackedInt8Matrix) {
        let groups = w.paddedColumns / 4, last = w.blocks - 1
        if w.rows % 16 == 0 { return }
        for g in 0..<groups {
            for lane in (w.rows % 16)..<16 {
                UnsafeMutableRawPointer(w.data + ((last * groups + g) * 16 + lane) * 4).storeBytes(of: UInt32(0), as: UInt32.self)
            }
        }
    }
}

extension Reference {
    /// One INT8 attention head stated with the scalar pieces: Q quantized per row by the
    /// shared row quantizer, K and Vᵀ by `quantizeWeights`, both products by the scalar
    /// `int8Gemm`, the shared softmax in between. Every kernel set must give these bits.
    public static func int8AttentionHead(q: [[Float]], k: [[Float]], v: [[Float]], scale: Float) -> [[Float]] {
        let m = q.count, n = k.count, dh = q.first?.count ?? 0
        func quantizedRows(_ rows: [[Float]], columns: Int) -> (values: [UInt8], scales: [Float], zeros: [Int32]) {
            let flat = rows.flatMap { $0 }
            let stride = (columns + 3) / 4 * 4
            var values = [UInt8](repeating: 0, count: rows.count * stride)
            var scales = [Float](repeating: 0, count: rows.count), zeros = [Int32](repeating: 0, count: rows.count)
            flat.withUnsafeBufferPointer { x in
                values.withUnsafeMutableBufferPointer { vp in
                    scales.withUnsafeMutableBufferPointer { sp in
                        zeros.withUnsafeMutableBufferPointer { zp in
                            Int8Quantization.quantizeRows(x.baseAddress!, rows: rows.count, columns: columns,
                                                          into: QuantizedRows(values: vp.baseAddress!, stride: stride,
                                                                              scales: sp.baseAddress!, zeroPoints: zp.baseAddress!))
                        }
                    }
                }
            }
            // Unpadded rows, as `int8Gemm` reads them.
            let unpadded = (0..<rows.count).flatMap { values[($0 * stride)..<($0 * stride + columns)] }
            return (unpadded, scales, zeros)
        }
        let qq = quantizedRows(q, columns: dh)
        let kq = k.flatMap { $0 }.withUnsafeBufferPointer { Int8Quantization.quantizeWeights($0.baseAddress!, rows: n, columns: dh) }
        var scores = int8Gemm(x: qq.values, rows: m, columns: dh, rowScales: qq.scales, zeroPoints: qq.zeros,
                              weights: kq.values, weightScales: kq.scales.map { $0 * scale }, outFeatures: n, bias: nil)
        scores.withUnsafeMutableBufferPointer { s in for i in 0..<m { FloatKernels.softmaxRow(s.baseAddress! + i * n, count: n) } }
        let probabilities = (0..<m).map { Array(scores[($0 * n)..<($0 * n + n)]) }
        let pq = quantizedRows(probabilities, columns: n)
        let vt = (0..<dh).flatMap { d in v.map { $0[d] } }
        let vq = vt.withUnsafeBufferPointer { Int8Quantization.quantizeWeights($0.baseAddress!, rows: dh, columns: n) }
        let out = int8Gemm(x: pq.values, rows: m, columns: n, rowScales: pq.scales, zeroPoints: pq.zeros,
                           weights: vq.values, weightScales: vq.scales, outFeatures: dh, bias: nil)
        return (0..<m).map { Array(out[($0 * dh)..<($0 * dh + dh)]) }
    }
}
