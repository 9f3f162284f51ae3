// INT8 matrix products: y[m, n] = sx[m]·sw[n]·Σk (xq[m,k] − zx[m])·wq[n,k] + bias[n].
//
// Weights are int8, symmetric, one scale per output channel (range ±127, so the product
// of a uint8 and an int8 never needs the −128 corner). Activations are quantized at run time
// per row, asymmetric uint8 with a zero point: a row of GELU outputs in [−0.17, 6] uses all
// 256 levels, where ONNX Runtime's one scale per tensor spends them on the widest row.
//
// Accumulation is int32 and exact: |xq·wq| ≤ 255·127, so K up to 66,000 cannot overflow.
// The zero point is removed with precomputed column sums, Σk zx·wq[n,k] = zx·colSum[n].
// Every kernel finishes with the same float expression in the same order, so all of them
// give bit-identical outputs; the tests hold each one to the scalar reference.

/// Weights packed for the kernels: blocks of 16 output channels, and within a block, for
/// each group of 4 consecutive k, the 16 × 4 bytes side by side. That is the operand
/// layout of `vpdpbusd` (16 int32 lanes, each the dot product of 4 byte pairs), and the
/// other kernels read the same layout.
public final class PackedInt8Matrix: @unchecked Sendable {
    public let rows: Int          // N, output channels
    public let columns: Int       // K, input features
    public let paddedColumns: Int // K rounded up to a multiple of 4
    public let blocks: Int        // ceil(N / 16)
    /// blocks × (paddedColumns / 4) × 64 bytes, 64-byte aligned.
    public let data: UnsafeMutablePointer<Int8>
    /// Per output channel: scale, and the sum of its int8 weights (for the zero point).
    public let scales: FloatBuffer
    public let columnSums: UnsafeMutablePointer<Int32>

    public static let blockWidth = 16

    /// Keeps borrowed `data` alive (the memory-mapped file it points into); nil when owned.
    private let owner: AnyObject?

    /// Packs a row-major [rows × columns] int8 matrix with one scale per row.
    public init(weights: UnsafePointer<Int8>, scales: [Float], rows: Int, columns: Int) {
        precondition(scales.count == rows)
        self.rows = rows
        self.columns = columns
        paddedColumns = (columns + 3) / 4 * 4
        blocks = (rows + 15) / 16
        owner = nil
        let groups = paddedColumns / 4
        let bytes = blocks * groups * 64
        data = UnsafeMutableRawPointer.allocate(byteCount: max(64, bytes), alignment: 64)
            .bindMemory(to: Int8.self, capacity: max(64, bytes))
        data.initialize(repeating: 0, count: max(64, bytes))
        var sums = [Int32](repeating: 0, count: rows)
        for n in 0..<rows {
            let b = n / 16, lane = n % 16
            var sum: Int32 = 0
            for k in 0..<columns {
                let w = weights[n * columns + k]
                sum += Int32(w)
                data[((b * groups + k / 4) * 16 + lane) * 4 + k % 4] = w
            }
            sums[n] = sum
        }
        (self.scales, columnSums) = Self.padded(scales: scales, sums: sums, blocks: blocks)
    }

    /// Uses weights that are already in the packed layout, in place: `packed` must hold
    /// `storedBytes` bytes, be 64-byte aligned and stay valid while `owner` lives (a
    /// memory-mapped file). Loading an INT8 model is then a map, not a copy.
    public init(packed: UnsafePointer<Int8>, owner: AnyObject, scales: [Float], sums: [Int32], rows: Int, columns: Int) {
        precondition(scales.count == rows && sums.count == rows)
        precondition(Int(bitPattern: packed) % 64 == 0, "packed INT8 weights must be 64-byte aligned")
        self.rows = rows
        self.columns = columns
        paddedColumns = (columns + 3) / 4 * 4
        blocks = (rows + 15) / 16
        self.owner = owner
        data = UnsafeMutablePointer(mutating: packed)
        (self.scales, columnSums) = Self.padded(scales: scales, sums: sums, blocks: blocks)
    }

    /// A view of packed weights, scales and sums that live elsewhere (scratch that INT8
    /// attention fills per head); `owner` keeps them alive. `scales` and `sums` must hold
    /// whole blocks (a multiple of 16 entries ≥ rows).
    public init(view data: UnsafeMutablePointer<Int8>, scales: FloatBuffer, sums: UnsafeMutablePointer<Int32>,
                rows: Int, columns: Int, owner: AnyObject) {
        self.rows = rows
        self.columns = columns
        paddedColumns = (columns + 3) / 4 * 4
        blocks = (rows + 15) / 16
        precondition(scales.count >= blocks * 16)
        self.owner = owner
        self.data = data
        self.scales = scales
        columnSums = sums
        ownsSums = false
    }

    /// False for a view, whose sums belong to someone else.
    private var ownsSums = true

    /// Scales and weight sums padded with zeros to whole blocks, for the kernels' full-width loads.
    static func padded(scales: [Float], sums: [Int32], blocks: Int) -> (FloatBuffer, UnsafeMutablePointer<Int32>) {
        let count = blocks * 16
        let paddedScales = FloatBuffer(count: count)
        let paddedSums = UnsafeMutablePointer<Int32>.allocate(capacity: count)
        paddedSums.initialize(repeating: 0, count: count)
        for n in scales.indices { paddedScales[n] = scales[n]; paddedSums[n] = sums[n] }
        return (paddedScales, paddedSums)
    }

    deinit {
        if owner == nil { data.deallocate() }
        if ownsSums { columnSums.deallocate() }
    }

    /// True when the weights are read in place from a memory-mapped file.
    public var isBorrowed: Bool { owner != nil }

    /// The per-channel sums of the int8 weights (the zero-point correction), unpadded.
    public var weightSums: [Int32] { (0..<rows).map { columnSums[$0] } }

    /// The weights back in row-major order.
    public func rowMajor() -> [Int8] {
        var out = [Int8](repeating: 0, count: rows * columns)
        for n in 0..<rows { for k in 0..<columns { out[n * columns + k] = weight(n, k) } }
        return out
    }

    /// The int8 weight at (n, k), read back from the packed layout.
    public func weight(_ n: Int, _ k: Int) -> Int8 {
        data[(((n / 16) * (paddedColumns / 4) + k / 4) * 16 + n % 16) * 4 + k % 4]
    }

    public var storedBytes: Int { blocks * (paddedColumns / 4) * 64 }
}

/// Activations quantized per row: uint8 values in rows of `stride` bytes (K rounded up to a
/// multiple of 4, the padding zero), with each row's scale and zero point.
public struct QuantizedRows {
    public var values: UnsafeMutablePointer<UInt8>
    public var stride: Int
    public var scales: UnsafeMutablePointer<Float>
    public var zeroPoints: UnsafeMutablePointer<Int32>
    public init(values: UnsafeMutablePointer<UInt8>, stride: Int, scales: UnsafeMutablePointer<Float>,
                zeroPoints: UnsafeMutablePointer<Int32>) {
        self.values = values; self.stride = stride; self.scales = scales; self.zeroPoints = zeroPoints
    }
}

/// Scratch space for quantized activations, grown on demand and reused.
public final class QuantizationScratch: @unchecked Sendable {
    private var capacityRows = 0, capacityStride = 0
    private var values: UnsafeMutablePointer<UInt8>? = nil
    private var scales: UnsafeMutablePointer<Float>? = nil
    private var zeros: UnsafeMutablePointer<Int32>? = nil
    public init() {}
    deinit { values?.deallocate(); scales?.deallocate(); zeros?.deallocate() }

    public func rows(_ m: Int, columns k: Int) -> QuantizedRows {
        let stride = (k + 3) / 4 * 4
        if m * stride > capacityRows * capacityStride || m > capacityRows {
            values?.deallocate(); scales?.deallocate(); zeros?.deallocate()
            capacityRows = max(m, capacityRows)
            capacityStride = max(stride, capacityStride)
            let bytes = capacityRows * capacityStride
            values = UnsafeMutableRawPointer.allocate(byteCount: bytes + 64, alignment: 64).bindMemory(to: UInt8.self, capacity: bytes + 64)
            scales = .allocate(capacity: capacityRows)
            zeros = .allocate(capacity: capacityRows)
        }
        return QuantizedRows(values: values!, stride: stride, scales: scales!, zeroPoints: zeros!)
    }
}

public enum Int8Quantization {
    /// Symmetric per-row int8: scale = max|w| / 127, q = round(w / scale) in [−127, 127].
    public static func quantizeWeights(_ w: UnsafePointer<Float>, rows: Int, columns: Int) -> (values: [Int8], scales: [Float]) {
        var values = [Int8](repeating: 0, count: rows * columns)
        var scales = [Float](repeating: 1, count: rows)
        for n in 0..<rows {
            var maxAbs: Float = 0
            for k in 0..<columns { maxAbs = max(maxAbs, abs(w[n * columns + k])) }
            let scale = maxAbs > 0 ? maxAbs / 127 : 1
            scales[n] = scale
            for k in 0..<columns {
                let q = (w[n * columns + k] / scale).rounded(.toNearestOrEven)
                values[n * columns + k] = Int8(max(-127, min(127, q)))
            }
        }
        return (values, scales)
    }

    /// Asymmetric uint8 per row, the range widened to include 0 so that 0 is exact:
    /// scale = (max − min) / 255, zero = round(−min / scale), q = clamp(round(x / scale) + zero).
    @inlinable @inline(__always)
    public static func quantizeRows(_ x: UnsafePointer<Float>, rows m: Int, columns k: Int, ldx: Int? = nil,
                                    into out: QuantizedRows, rowRange: Range<Int>? = nil)
    {
        let ldx = ldx ?? k
        for r in rowRange ?? 0..<m {
            let row = x + r * ldx
            var lo = FloatVector(repeating: 0), hi = FloatVector(repeating: 0)
            var i = 0
            while i + 16 <= k {
                let v = FloatVector(load: row + i)
                lo = VectorMath.min(lo, v); hi = VectorMath.max(hi, v)
                i += 16
            }
            var mn = VectorMath.horizontalMin(lo), mx = VectorMath.horizontalMax(hi)
            while i < k { mn = Swift.min(mn, row[i]); mx = Swift.max(mx, row[i]); i += 1 }
            var scale = (mx - mn) / 255
            if !(scale > 0) || !scale.isFinite { scale = 1 }
            let zero = Swift.max(0, Swift.min(255, VectorMath.roundEven(-mn / scale)))
            out.scales[r] = scale
            out.zeroPoints[r] = Int32(zero)
            let dst = out.values + r * out.stride
            let scaleV = FloatVector(repeating: scale), zeroV = FloatVector(repeating: zero)
            i = 0
            while i + 16 <= k {
                let rounded = VectorMath.roundEven(FloatVector(load: row + i) / scaleV) + zeroV
                let q = rounded.replacing(with: FloatVector(repeating: 0), where: rounded .< FloatVector(repeating: 0))
                    .replacing(with: FloatVector(repeating: 255), where: rounded .> FloatVector(repeating: 255))
                let bytes = VectorMath.lowBytes(VectorMath.integerBits(q))
                UnsafeMutableRawPointer(dst + i).storeBytes(of: bytes, as: SIMD16<UInt8>.self)
                i += 16
            }
            while i < k {
                let q = Swift.max(0, Swift.min(255, VectorMath.roundEven(row[i] / scale) + zero))
                dst[i] = UInt8(q)
                i += 1
            }
            while i < out.stride { dst[i] = 0; i += 1 }
        }
    }

    /// The shared epilogue: y = Float(acc − zero·colSum) · (sx · sw) + bias. Kept as one
    /// function so every kernel rounds identically.
    @inlinable @inline(__always)
    public static func dequantize(_ acc: Int32, zero: Int32, columnSum: Int32, rowScale: Float, columnScale: Float,
                                  bias: Float) -> Float {
        Float(acc &- zero &* columnSum) * (rowScale * columnScale) + bias
    }
}

/// Arguments of one INT8 product: rows `rowRange` of the quantized activations times the
/// column blocks `blockRange` of the packed weights, written to `out` (row stride `ldo`).
public struct Int8GemmArguments {
    public var a: QuantizedRows
    public var w: PackedInt8Matrix
    public var bias: UnsafePointer<Float>?
    public var out: UnsafeMutablePointer<Float>
    public var ldo: Int
    public var rowRange: Range<Int>
    public var blockRange: Range<Int>
    public init(a: QuantizedRows, w: PackedInt8Matrix, bias: UnsafePointer<Float>?, out: UnsafeMutablePointer<Float>,
                ldo: Int, rowRange: Range<Int>, blockRange: Range<Int>) {
        self.a = a; self.w = w; self.bias = bias; self.out = out; self.ldo = ldo
        self.rowRange = rowRange; self.blockRange = blockRange
    }
}

/// The FP32 element-wise kernels, as compiled for one instruction set. The bodies are the
/// `@inlinable` ones in `FloatKernels` and `Int8Quantization`; each instruction-set module
/// builds its own copy, so the same source runs with 16-lane vectors on AVX-512.
public struct FloatGlue: Sendable {
    public let gelu: @Sendable (UnsafeMutablePointer<Float>, Int) -> Void
    public let softmaxRow: @Sendable (UnsafeMutablePointer<Float>, Int) -> Void
    /// (x, residual, rows, features, gamma, beta, eps)
    public let addLayerNorm: @Sendable (UnsafeMutablePointer<Float>, UnsafePointer<Float>?, Int, Int,
                                        UnsafePointer<Float>, UnsafePointer<Float>, Float) -> Void
    /// (x, rows, columns, out, rowRange)
    public let quantizeRows: @Sendable (UnsafePointer<Float>, Int, Int, QuantizedRows, Range<Int>) -> Void
    public let attentionHead: @Sendable (AttentionHeadArguments) -> Void
    /// Whether attention uses fused multiply-adds: every module but SSE4's, whose CPUs have
    /// no FMA. Glue of the same kind gives bit-identical results on every CPU; the two kinds
    /// differ in rounding.
    public let fusedMultiplyAdd: Bool

    public init(gelu: @escaping @Sendable (UnsafeMutablePointer<Float>, Int) -> Void,
                softmaxRow: @escaping @Sendable (UnsafeMutablePointer<Float>, Int) -> Void,
                addLayerNorm: @escaping @Sendable (UnsafeMutablePointer<Float>, UnsafePointer<Float>?, Int, Int,
                                                   UnsafePointer<Float>, UnsafePointer<Float>, Float) -> Void,
                quantizeRows: @escaping @Sendable (UnsafePointer<Float>, Int, Int, QuantizedRows, Range<Int>) -> Void,
                attentionHead: @escaping @Sendable (AttentionHeadArguments) -> Void, fusedMultiplyAdd: Bool) {
        self.gelu = gelu; self.softmaxRow = softmaxRow; self.addLayerNorm = addLayerNorm; self.quantizeRows = quantizeRows
        self.attentionHead = attentionHead; self.fusedMultiplyAdd = fusedMultiplyAdd
    }

    /// Fused like the AVX modules, so that the portable kernels, the reference that runs
    /// anywhere, give their results bit for bit; on the rare x86-64 without SSE4.2 that
    /// costs a libm call per lane in attention.
    public static let portable = FloatGlue(
        gelu: { FloatKernels.gelu($0, count: $1) },
        softmaxRow: { FloatKernels.softmaxRow($0, count: $1) },
        addLayerNorm: { FloatKernels.addLayerNorm($0, residual: $1, rows: $2, features: $3, gamma: $4, beta: $5, eps: $6) },
        quantizeRows: { Int8Quantization.quantizeRows($0, rows: $1, columns: $2, into: $3, rowRange: $4) },
        attentionHead: { $0.run(fused: true, softmax: { FloatKernels.softmaxRow($0, count: $1) }) },
        fusedMultiplyAdd: true)
}

/// The operands of `FloatKernels.attentionHead`, bundled so that every instruction-set
/// module can pass them through one closure type.
public struct AttentionHeadArguments {
    public var q, k, v: UnsafePointer<Float>
    public var ld, queries, keys, headDim: Int
    public var scale: Float
    public var out: UnsafeMutablePointer<Float>
    public var ldo: Int
    public var scratch: UnsafeMutablePointer<Float>
    public init(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, ld: Int, queries: Int, keys: Int,
                headDim: Int, scale: Float, out: UnsafeMutablePointer<Float>, ldo: Int, scratch: UnsafeMutablePointer<Float>) {
        self.q = q; self.k = k; self.v = v; self.ld = ld; self.queries = queries; self.keys = keys; self.headDim = headDim
        self.scale = scale; self.out = out; self.ldo = ldo; self.scratch = scratch
    }
    /// Scratch floats a head of `keys` keys needs: Kᵀ, V and up to 8 rows of probabilities
    /// (the shared kernel uses 4, the AVX2 one 6).
    public static func scratchCount(keys: Int, headDim: Int) -> Int {
        let nP = (keys + 63) / 64 * 64, dhP = (headDim + 15) / 16 * 16
        return headDim * nP + keys * dhP + 8 * nP + 16
    }

    /// Runs the head with the given softmax (each instruction-set module passes its own) and
    /// multiply-add kind.
    @inlinable @inline(__always)
    public func run(fused: Bool, softmax: (UnsafeMutablePointer<Float>, Int) -> Void) {
        FloatKernels.attentionHead(q: q, k: k, v: v, ld: ld, queries: queries, keys: keys, headDim: headDim, scale: scale,
                                   out: out, ldo: ldo, scratch: scratch, fused: fused, softmax: softmax)
    }
}

/// The kernels for one instruction set: the INT8 product, the FP32 element-wise glue and,
/// where the module has one, its own FP32 product (OpenBLAS multiplies FP32 otherwise).
public struct KernelSet: Sendable {
    public let name: String
    public let gemm: @Sendable (Int8GemmArguments) -> Void
    public let glue: FloatGlue
    public let floatLinear: (@Sendable (FloatLinearArguments) -> Void)?
    public init(name: String, glue: FloatGlue, floatLinear: (@Sendable (FloatLinearArguments) -> Void)? = nil,
                gemm: @escaping @Sendable (Int8GemmArguments) -> Void) {
        self.name = name; self.gemm = gemm; self.glue = glue; self.floatLinear = floatLinear
    }

    /// The same kernels with FP32 products through OpenBLAS (for comparing the two).
    public var fp32ThroughOpenBLAS: KernelSet { KernelSet(name: name, glue: glue, floatLinear: nil, gemm: gemm) }

    /// Plain Swift over the packed layout; runs on any CPU.
    public static let portable = KernelSet(name: "portable", glue: .portable) { args in
        let w = args.w, groups = w.paddedColumns / 4
        var acc = [Int32](repeating: 0, count: 16)
        for r in args.rowRange {
            let x = args.a.values + r * args.a.stride
            let zero = args.a.zeroPoints[r], rowScale = args.a.scales[r]
            for b in args.blockRange {
                for l in 0..<16 { acc[l] = 0 }
                let block = w.data + b * groups * 64
                for g in 0..<groups {
                    let x0 = Int32(x[4 * g]), x1 = Int32(x[4 * g + 1]), x2 = Int32(x[4 * g + 2]), x3 = Int32(x[4 * g + 3])
                    let p = block + g * 64
                    for l in 0..<16 {
                        acc[l] &+= x0 &* Int32(p[4 * l]) &+ x1 &* Int32(p[4 * l + 1])
                            &+ x2 &* Int32(p[4 * l + 2]) &+ x3 &* Int32(p[4 * l + 3])
                    }
                }
                for l in 0..<min(16, w.rows - b * 16) {
                    let n = b * 16 + l
                    args.out[r * args.ldo + n] = Int8Quantization.dequantize(
                        acc[l], zero: zero, columnSum: w.columnSums[n], rowScale: rowScale,
                        columnScale: w.scales[n], bias: args.bias?[n] ?? 0)
                }
            }
        }
    }
}

extension Reference {
    /// The yardstick for every INT8 kernel: unpacked weights, one multiply-add at a time.
    public static func int8Gemm(x: [UInt8], rows m: Int, columns k: Int, rowScales: [Float], zeroPoints: [Int32],
                                weights: [Int8], weightScales: [Float], outFeatures n: Int, bias: [Float]?) -> [Float]
    {
        var y = [Float](repeating: 0, count: m * n)
        for r in 0..<m {
            for c in 0..<n {
                var acc: Int32 = 0
                var colSum: Int32 = 0
                for i in 0..<k {
                    acc += Int32(x[r * k + i]) * Int32(weights[c * k + i])
                    colSum += Int32(weights[c * k + i])
                }
                y[r * n + c] = Int8Quantization.dequantize(acc, zero: zeroPoints[r], columnSum: colSum,
                                                           rowScale: rowScales[r], columnScale: weightScales[c],
                                                           bias: bias?[c] ?? 0)
            }
        }
        return y
    }
}
