// FP32 kernels for the parts of the forward pass that are not matrix products: bias,
// LayerNorm, GELU, ReLU and the masked softmax. Each has a plain scalar reference beside
// it (`Reference`), and the tests hold the two against each other.
//
// The fast versions are `@inlinable` on purpose: an instruction-set module compiled for
// AVX2 or AVX-512 calls them and gets its own vectorised copy.

#if canImport(Glibc)
import Glibc
#endif

public typealias FloatVector = SIMD16<Float>

public enum FloatKernels {
    /// y[M×N] = x[M×K] · wᵀ + bias through OpenBLAS, with the weight in `BlockedWeights`
    /// layout, for the output-column blocks in `blocks` (all by default).
    ///
    /// The calls are shaped for OpenBLAS's small-matrix path (taken when M·N·K ≤ 10⁶), which
    /// multiplies straight from the operands instead of repacking both for every call:
    /// - one block of 32 output columns per call, a contiguous [K × 32] panel that streams
    ///   from memory in order;
    /// - at most `rowBlock` rows per call;
    /// - K cut into as few parts as keep rows · 32 · K-part ≤ 10⁶, the parts accumulating.
    /// Measured on one Zen 4 core (OpenBLAS 0.3.21), against one call per panel with all rows
    /// and all of K: K = 3072, N = 768 at 16 rows 1.49 → 0.81 ms, at 128 rows 7.7 → 6.9; at
    /// 4096 rows (a batch) K = 768, N = 3072 1224 → 209 ms; and 8–16 rows 2.3× and 1.8×
    /// faster than one call on PyTorch's [N×K] layout. Where a BLAS has no such path the
    /// split costs only re-reading the M × 32 outputs. The bias is written first and
    /// accumulated with beta = 1.
    @inlinable
    public static func linear(_ x: UnsafePointer<Float>, rows m: Int, weight w: BlockedWeights,
                              bias: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, ldy: Int? = nil,
                              blocks: Range<Int>? = nil)
    {
        let n = w.outFeatures, k = w.inFeatures, ldy = ldy ?? n, bw = BlockedWeights.blockWidth
        let blocks = blocks ?? 0..<w.blockCount
        if m == 0 || blocks.isEmpty { return }
        let lo = blocks.lowerBound * bw
        let hi = min(n, blocks.upperBound * bw)
        for r in 0..<m { (y + r * ldy + lo).update(from: bias + lo, count: hi - lo) }
        let sgemm = OpenBLAS.forKernels.sgemm
        for r0 in stride(from: 0, to: m, by: rowBlock) {
            let rows = min(rowBlock, m - r0)
            let parts = min(max(1, (rows * bw * k + smallProduct - 1) / smallProduct), max(1, k / 16))
            for b in blocks {
                let c0 = b * bw, width = min(bw, n - c0), panel = w.block(b)
                for part in 0..<parts {
                    // Part boundaries on multiples of 16 floats (whole cache lines of x).
                    let k0 = part == 0 ? 0 : (k * part / parts) & ~15
                    let k1 = part == parts - 1 ? k : (k * (part + 1) / parts) & ~15
                    sgemm(OpenBLAS.rowMajor, OpenBLAS.noTranspose, OpenBLAS.noTranspose, Int32(rows), Int32(width), Int32(k1 - k0),
                                1, x + r0 * k + k0, Int32(k), panel + k0 * width, Int32(width),
                                1, y + r0 * ldy + c0, Int32(ldy))
                }
            }
        }
    }

    /// The same product through an instruction set's own FP32 kernel (`KernelSet.floatLinear`)
    /// where it has one, else through OpenBLAS.
    @inlinable
    public static func linear(_ x: UnsafePointer<Float>, rows m: Int, weight w: BlockedWeights,
                              bias: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, ldy: Int? = nil,
                              blocks: Range<Int>? = nil, kernels: KernelSet)
    {
        guard let native = kernels.floatLinear else {
            linear(x, rows: m, weight: w, bias: bias, into: y, ldy: ldy, blocks: blocks)
            return
        }
        native(FloatLinearArguments(x: x, ldx: w.inFeatures, rows: m, weight: w, bias: bias, y: y, ldy: ldy ?? w.outFeatures,
                                    blocks: blocks ?? 0..<w.blockCount))
    }

    /// Rows per OpenBLAS call in `linear`.
    public static let rowBlock = 64
    /// The largest M·N·K OpenBLAS multiplies on its small-matrix path.
    public static let smallProduct = 1_000_000

    /// x = LayerNorm(x + residual) row by row, over `n` features. Two-pass mean/variance
    /// in FP32 (as PyTorch computes it), eps inside the square root.
    @inlinable @inline(__always)
    public static func addLayerNorm(_ x: UnsafeMutablePointer<Float>, residual: UnsafePointer<Float>?,
                                    rows m: Int, features n: Int,
                                    gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, eps: Float)
    {
        for r in 0..<m {
            let row = x + r * n
            if let residual {
                let res = residual + r * n
                var i = 0
                while i + 16 <= n {
                    let v = FloatVector(load: row + i) + FloatVector(load: res + i)
                    v.store(row + i)
                    i += 16
                }
                while i < n { row[i] += res[i]; i += 1 }
            }
            layerNormRow(row, n: n, gamma: gamma, beta: beta, eps: eps)
        }
    }

    @inlinable @inline(__always)
    static func layerNormRow(_ row: UnsafeMutablePointer<Float>, n: Int,
                             gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, eps: Float)
    {
        var acc = FloatVector(repeating: 0)
        var i = 0
        while i + 16 <= n { acc += FloatVector(load: row + i); i += 16 }
        var sum = acc.sum()
        while i < n { sum += row[i]; i += 1 }
        let mean = sum / Float(n)
        let meanV = FloatVector(repeating: mean)
        acc = FloatVector(repeating: 0)
        i = 0
        while i + 16 <= n { let d = FloatVector(load: row + i) - meanV; acc += d * d; i += 16 }
        var sq = acc.sum()
        while i < n { let d = row[i] - mean; sq += d * d; i += 1 }
        let inv = 1 / (Float(sq / Float(n)) + eps).squareRoot()
        let invV = FloatVector(repeating: inv)
        i = 0
        while i + 16 <= n {
            let v = (FloatVector(load: row + i) - meanV) * invV * FloatVector(load: gamma + i) + FloatVector(load: beta + i)
            v.store(row + i)
            i += 16
        }
        while i < n { row[i] = (row[i] - mean) * inv * gamma[i] + beta[i]; i += 1 }
    }

    /// Exact-erf GELU, x · ½(1 + erf(x/√2)), in place.
    @inlinable @inline(__always)
    public static func gelu(_ x: UnsafeMutablePointer<Float>, count: Int) {
        let half = FloatVector(repeating: 0.5), one = FloatVector(repeating: 1)
        let invSqrt2 = FloatVector(repeating: 0.70710678118654752)
        var i = 0
        while i + 16 <= count {
            let v = FloatVector(load: x + i)
            (half * v * (one + FastMath.erf(v * invSqrt2))).store(x + i)
            i += 16
        }
        while i < count { x[i] = 0.5 * x[i] * (1 + FastMath.erf(x[i] * 0.70710678118654752)); i += 1 }
    }

    @inlinable
    public static func relu(_ x: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count where !(x[i] > 0) { x[i] = 0 }
    }

    /// One attention head over one sequence: for each of the first `queries` query rows,
    /// softmax(scale · q·Kᵀ) · V over its `n` keys. q, k and v point at the head's first
    /// element in rows `ld` floats apart; the context goes to `out` (rows `ldo` apart).
    ///
    /// Written out rather than as two sgemm calls: at these sizes (n up to a few hundred, a
    /// head width of 32–64) OpenBLAS spends more time packing operands than multiplying.
    /// Kᵀ and a zero-padded V are laid out once in `scratch`, so every inner loop runs along
    /// contiguous keys or features; four query rows are computed together so that four (or
    /// eight) independent accumulators hide the multiply-add latency. `scratch` holds
    /// `AttentionHeadArguments.scratchCount` floats.
    @inlinable @inline(__always)
    public static func attentionHead(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                     ld: Int, queries: Int, keys n: Int, headDim dh: Int, scale: Float,
                                     out: UnsafeMutablePointer<Float>, ldo: Int, scratch: UnsafeMutablePointer<Float>,
                                     fused: Bool,
                                     softmax: (UnsafeMutablePointer<Float>, Int) -> Void = { softmaxRow($0, count: $1) })
    {
        // `fused`: one rounding per multiply-add where the CPU has FMA. Without it a fused
        // multiply-add is a libm call per lane, which made attention most of the forward pass
        // (SSE4 INT8 at 128 tokens: 225 ms, against 68–77 ms with the product and the sum rounded
        // apart). Rounding apart everywhere would cost the AVX-512 path 10 % (INT8, 128
        // tokens: 10.65 against 9.61 ms). The choice is a constant in each instruction-set
        // module, so the branch folds.
        @inline(__always) func madd(_ acc: FloatVector, _ a: FloatVector, _ b: FloatVector) -> FloatVector {
            fused ? acc.addingProduct(a, b) : acc + a * b
        }
        let nP = (n + 63) / 64 * 64, dhP = (dh + 15) / 16 * 16
        let kt = scratch                       // [dh × nP]: Kᵀ, zero beyond n
        let vp = kt + dh * nP                  // [n × dhP]: V, zero beyond dh
        let p = vp + n * dhP                   // [4 × nP]: scores, then probabilities
        for j in 0..<n {
            let kj = k + j * ld, vr = vp + j * dhP
            for d in 0..<dh { kt[d * nP + j] = kj[d] }
            vr.update(from: v + j * ld, count: dh)
            for d in dh..<dhP { vr[d] = 0 }
        }
        for d in 0..<dh { for j in n..<nP { kt[d * nP + j] = 0 } }
        let scaleV = FloatVector(repeating: scale)
        var i0 = 0
        while i0 < queries {
            let rows = min(4, queries - i0)
            // Rows past the end repeat the last real one; their results are not stored.
            let q0 = q + i0 * ld, q1 = q + (i0 + min(1, rows - 1)) * ld
            let q2 = q + (i0 + min(2, rows - 1)) * ld, q3 = q + (i0 + min(3, rows - 1)) * ld
            // Scores: 4 query rows × 64 keys per tile, 16 independent accumulators.
            var j = 0
            while j < nP {
                var a0 = FloatVector(repeating: 0), a1 = a0, a2 = a0, a3 = a0
                var b0 = a0, b1 = a0, b2 = a0, b3 = a0
                var c0 = a0, c1 = a0, c2 = a0, c3 = a0
                var e0 = a0, e1 = a0, e2 = a0, e3 = a0
                for d in 0..<dh {
                    let base = kt + d * nP + j
                    let ka = FloatVector(load: base), kb = FloatVector(load: base + 16)
                    let kc = FloatVector(load: base + 32), ke = FloatVector(load: base + 48)
                    let x0 = FloatVector(repeating: q0[d]), x1 = FloatVector(repeating: q1[d])
                    let x2 = FloatVector(repeating: q2[d]), x3 = FloatVector(repeating: q3[d])
                    a0 = madd(a0, x0, ka); b0 = madd(b0, x0, kb); c0 = madd(c0, x0, kc); e0 = madd(e0, x0, ke)
                    a1 = madd(a1, x1, ka); b1 = madd(b1, x1, kb); c1 = madd(c1, x1, kc); e1 = madd(e1, x1, ke)
                    a2 = madd(a2, x2, ka); b2 = madd(b2, x2, kb); c2 = madd(c2, x2, kc); e2 = madd(e2, x2, ke)
                    a3 = madd(a3, x3, ka); b3 = madd(b3, x3, kb); c3 = madd(c3, x3, kc); e3 = madd(e3, x3, ke)
                }
                func put(_ r: Int, _ x: FloatVector, _ y: FloatVector, _ z: FloatVector, _ w: FloatVector) {
                    let row = p + r * nP + j
                    (x * scaleV).store(row); (y * scaleV).store(row + 16)
                    (z * scaleV).store(row + 32); (w * scaleV).store(row + 48)
                }
                put(0, a0, b0, c0, e0); put(1, a1, b1, c1, e1); put(2, a2, b2, c2, e2); put(3, a3, b3, c3, e3)
                j += 64
            }
            for r in 0..<rows { softmax(p + r * nP, n) }
            let p0 = p, p1 = p + nP, p2 = p + 2 * nP, p3 = p + 3 * nP
            // Context: 4 query rows × 32 features per tile, 8 independent accumulators.
            var db = 0
            while db < dhP {
                let two = db + 16 < dhP
                var c0 = FloatVector(repeating: 0), c1 = c0, c2 = c0, c3 = c0
                var e0 = c0, e1 = c0, e2 = c0, e3 = c0
                for jj in 0..<n {
                    let vrow = vp + jj * dhP + db
                    let va = FloatVector(load: vrow), vb = two ? FloatVector(load: vrow + 16) : va
                    let w0 = FloatVector(repeating: p0[jj]), w1 = FloatVector(repeating: p1[jj])
                    let w2 = FloatVector(repeating: p2[jj]), w3 = FloatVector(repeating: p3[jj])
                    c0 = madd(c0, w0, va); e0 = madd(e0, w0, vb)
                    c1 = madd(c1, w1, va); e1 = madd(e1, w1, vb)
                    c2 = madd(c2, w2, va); e2 = madd(e2, w2, vb)
                    c3 = madd(c3, w3, va); e3 = madd(e3, w3, vb)
                }
                func put(_ c: FloatVector, _ r: Int, _ d0: Int) {
                    let width = min(16, dh - d0)
                    let o = out + (i0 + r) * ldo + d0
                    if width == 16 { c.store(o) } else { for l in 0..<width { o[l] = c[l] } }
                }
                put(c0, 0, db)
                if rows > 1 { put(c1, 1, db) }
                if rows > 2 { put(c2, 2, db) }
                if rows > 3 { put(c3, 3, db) }
                if two {
                    put(e0, 0, db + 16)
                    if rows > 1 { put(e1, 1, db + 16) }
                    if rows > 2 { put(e2, 2, db + 16) }
                    if rows > 3 { put(e3, 3, db + 16) }
                }
                db += two ? 32 : 16
            }
            i0 += 4
        }
    }

    /// Softmax over the first `n` entries of a row, in place.
    @inlinable @inline(__always)
    public static func softmaxRow(_ row: UnsafeMutablePointer<Float>, count n: Int) {
        var maxV = FloatVector(repeating: -.infinity)
        var i = 0
        while i + 16 <= n { maxV = VectorMath.max(maxV, FloatVector(load: row + i)); i += 16 }
        var mx = VectorMath.horizontalMax(maxV)
        while i < n { mx = max(mx, row[i]); i += 1 }
        let mxV = FloatVector(repeating: mx)
        var sumV = FloatVector(repeating: 0)
        i = 0
        while i + 16 <= n {
            let e = FastMath.exp(FloatVector(load: row + i) - mxV)
            e.store(row + i)
            sumV += e
            i += 16
        }
        var sum = sumV.sum()
        while i < n { let e = FastMath.exp(row[i] - mx); row[i] = e; sum += e; i += 1 }
        let inv = FloatVector(repeating: 1 / sum)
        i = 0
        while i + 16 <= n { (FloatVector(load: row + i) * inv).store(row + i); i += 16 }
        while i < n { row[i] *= 1 / sum; i += 1 }
    }
}

extension SIMD16 where Scalar == Float {
    @inlinable @inline(__always)
    public init(load p: UnsafePointer<Float>) {
        self = UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
    }
    @inlinable @inline(__always)
    public init(load p: UnsafeMutablePointer<Float>) { self.init(load: UnsafePointer(p)) }
    @inlinable @inline(__always)
    public func store(_ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: self, as: SIMD16<Float>.self)
    }
}

/// The operands of one FP32 product, y[rows × N] = x[rows × K] · wᵀ + bias, over the
/// weight's column blocks `blocks`; x rows `ldx` floats apart, y rows `ldy` apart.
public struct FloatLinearArguments {
    public var x: UnsafePointer<Float>
    public var ldx: Int
    public var rows: Int
    public var weight: BlockedWeights
    public var bias: UnsafePointer<Float>
    public var y: UnsafeMutablePointer<Float>
    public var ldy: Int
    public var blocks: Range<Int>
    public init(x: UnsafePointer<Float>, ldx: Int, rows: Int, weight: BlockedWeights, bias: UnsafePointer<Float>,
                y: UnsafeMutablePointer<Float>, ldy: Int, blocks: Range<Int>) {
        self.x = x; self.ldx = ldx; self.rows = rows; self.weight = weight; self.bias = bias
        self.y = y; self.ldy = ldy; self.blocks = blocks
    }
}

/// An FP32 weight as `FloatKernels.linear` reads it: PyTorch's [N×K] matrix transposed and
/// cut into blocks of 32 output columns, each block a contiguous [K × width] panel (width 32,
/// less for a last block of fewer columns), block after block: N × K floats in all. Laid out
/// at load, or read in place from a file that stores them so (`triage pack`).
public final class BlockedWeights: @unchecked Sendable {
    public static let blockWidth = 32
    public let outFeatures: Int
    public let inFeatures: Int
    /// The first panel; `outFeatures × inFeatures` floats.
    public let panels: UnsafePointer<Float>
    /// Keeps the memory behind `panels` alive: the buffer laid out at load, or the file.
    private let owner: AnyObject
    /// True when the panels are read in place from a file's mapping.
    public let isMapped: Bool
    public var blockCount: Int { (outFeatures + Self.blockWidth - 1) / Self.blockWidth }

    /// From a row-major [n × k] weight (PyTorch layout).
    public init(_ w: UnsafePointer<Float>, outFeatures n: Int, inFeatures k: Int) {
        outFeatures = n
        inFeatures = k
        let storage = FloatBuffer(count: n * k)
        let t = storage.pointer
        for c0 in stride(from: 0, to: n, by: Self.blockWidth) {
            let width = min(Self.blockWidth, n - c0)
            let panel = t + c0 * k
            for c in 0..<width {
                let src = w + (c0 + c) * k
                for r in 0..<k { panel[r * width + c] = src[r] }
            }
        }
        panels = UnsafePointer(t)
        owner = storage
        isMapped = false
    }

    /// Panels already laid out (n × k floats at `panels`), kept alive by `owner`.
    public init(panels: UnsafePointer<Float>, owner: AnyObject, outFeatures n: Int, inFeatures k: Int) {
        outFeatures = n
        inFeatures = k
        self.panels = panels
        self.owner = owner
        isMapped = true
    }

    @inlinable
    public func block(_ b: Int) -> UnsafePointer<Float> {
        panels + b * Self.blockWidth * inFeatures
    }

    /// The weight at (output n, input k), read back.
    public func weight(_ n: Int, _ k: Int) -> Float {
        let b = n / Self.blockWidth, width = min(Self.blockWidth, outFeatures - b * Self.blockWidth)
        return panels[b * Self.blockWidth * inFeatures + k * width + n % Self.blockWidth]
    }

    /// The weight back in PyTorch's row-major [N × K] order.
    public func rowMajor() -> [Float] {
        var w = [Float](repeating: 0, count: outFeatures * inFeatures)
        for c0 in stride(from: 0, to: outFeatures, by: Self.blockWidth) {
            let width = min(Self.blockWidth, outFeatures - c0), panel = panels + c0 * inFeatures
            for r in 0..<inFeatures {
                for c in 0..<width { w[(c0 + c) * inFeatures + r] = panel[r * width + c] }
            }
        }
        return w
    }
}

/// Lane-wise helpers written only with operations every x86-64 level vectorises (compare,
/// select, add, multiply, integer shifts). The standard library's `pointwiseMin`, `clamped`
/// and `rounded` carry NaN and rounding-mode semantics that LLVM lowers lane by lane on the
/// baseline target; these do not.
public enum VectorMath {
    @inlinable @inline(__always)
    public static func max(_ a: FloatVector, _ b: FloatVector) -> FloatVector { a.replacing(with: b, where: b .> a) }
    @inlinable @inline(__always)
    public static func min(_ a: FloatVector, _ b: FloatVector) -> FloatVector { a.replacing(with: b, where: b .< a) }
    @inlinable @inline(__always)
    public static func clamp(_ a: FloatVector, _ lo: Float, _ hi: Float) -> FloatVector {
        min(max(a, FloatVector(repeating: lo)), FloatVector(repeating: hi))
    }
    /// Round half to even for |x| < 2²²: adding and subtracting 1.5·2²³ leaves the rounded
    /// value, since the FPU rounds the sum to an integer in the default mode.
    @inlinable @inline(__always)
    public static func roundEven(_ a: FloatVector) -> FloatVector {
        let magic = FloatVector(repeating: 12_582_912)
        return (a + magic) - magic
    }
    @inlinable @inline(__always)
    public static func roundEven(_ a: Float) -> Float { (a + 12_582_912) - 12_582_912 }
    /// The integer value of lanes holding integral floats in [0, 2²³), as bits.
    @inlinable @inline(__always)
    public static func integerBits(_ a: FloatVector) -> SIMD16<UInt32> {
        unsafeBitCast(a + FloatVector(repeating: 8_388_608), to: SIMD16<UInt32>.self) & SIMD16<UInt32>(repeating: 0x7F_FFFF)
    }
    /// The low byte of each lane. Spelled out lane by lane: LLVM turns this into one narrowing
    /// shuffle, where SIMD16<UInt8>(truncatingIfNeeded:) would be a call per lane.
    @inlinable @inline(__always)
    public static func lowBytes(_ b: SIMD16<UInt32>) -> SIMD16<UInt8> {
        SIMD16<UInt8>(
            UInt8(truncatingIfNeeded: b[0]), UInt8(truncatingIfNeeded: b[1]), UInt8(truncatingIfNeeded: b[2]),
            UInt8(truncatingIfNeeded: b[3]), UInt8(truncatingIfNeeded: b[4]), UInt8(truncatingIfNeeded: b[5]),
            UInt8(truncatingIfNeeded: b[6]), UInt8(truncatingIfNeeded: b[7]), UInt8(truncatingIfNeeded: b[8]),
            UInt8(truncatingIfNeeded: b[9]), UInt8(truncatingIfNeeded: b[10]), UInt8(truncatingIfNeeded: b[11]),
            UInt8(truncatingIfNeeded: b[12]), UInt8(truncatingIfNeeded: b[13]), UInt8(truncatingIfNeeded: b[14]),
            UInt8(truncatingIfNeeded: b[15]))
    }
    @inlinable @inline(__always)
    public static func horizontalMax(_ v: FloatVector) -> Float {
        let a = max(v.lowHalf.lowHalf, v.lowHalf.highHalf), b = max(v.highHalf.lowHalf, v.highHalf.highHalf)
        let c = max(a, b)
        return Swift.max(Swift.max(c[0], c[1]), Swift.max(c[2], c[3]))
    }
    @inlinable @inline(__always)
    public static func horizontalMin(_ v: FloatVector) -> Float {
        let a = min(v.lowHalf.lowHalf, v.lowHalf.highHalf), b = min(v.highHalf.lowHalf, v.highHalf.highHalf)
        let c = min(a, b)
        return Swift.min(Swift.min(c[0], c[1]), Swift.min(c[2], c[3]))
    }
    @inlinable @inline(__always)
    static func max(_ a: SIMD4<Float>, _ b: SIMD4<Float>) -> SIMD4<Float> { a.replacing(with: b, where: b .> a) }
    @inlinable @inline(__always)
    static func min(_ a: SIMD4<Float>, _ b: SIMD4<Float>) -> SIMD4<Float> { a.replacing(with: b, where: b .< a) }
}

/// Vectorisable erf and exp with errors of a few ulp, far below what the 1e-4 logit
/// parity budget can see, and much cheaper than calling libm per element.
public enum FastMath {
    /// erf(x) as x·P(x²)/Q(x²) on [-4, 4] (outside, erf is ±1 in FP32): the rational
    /// minimax approximation Eigen and XLA use for float.
    @inlinable @inline(__always)
    public static func erf(_ a: FloatVector) -> FloatVector {
        let lo = FloatVector(repeating: -4), hi = FloatVector(repeating: 4)
        let x = a.replacing(with: lo, where: a .< lo).replacing(with: hi, where: a .> hi)
        let x2 = x * x
        var p = FloatVector(repeating: -2.72614225801306e-10)
        p = p * x2 + FloatVector(repeating: 2.77068142495902e-08)
        p = p * x2 + FloatVector(repeating: -2.10102402082508e-06)
        p = p * x2 + FloatVector(repeating: -5.69250639462346e-05)
        p = p * x2 + FloatVector(repeating: -7.34990630326855e-04)
        p = p * x2 + FloatVector(repeating: -2.95459980854025e-03)
        p = p * x2 + FloatVector(repeating: -1.60960333262415e-02)
        p = p * x
        var q = FloatVector(repeating: -1.45660718464996e-05)
        q = q * x2 + FloatVector(repeating: -2.13374055278905e-04)
        q = q * x2 + FloatVector(repeating: -1.68282697438203e-03)
        q = q * x2 + FloatVector(repeating: -7.37332916720468e-03)
        q = q * x2 + FloatVector(repeating: -1.42647390514189e-02)
        return p / q
    }

    @inlinable @inline(__always)
    public static func erf(_ a: Float) -> Float { erf(FloatVector(repeating: a))[0] }

    /// e^x: x = n·ln2 + r with |r| ≤ ln2/2, a degree-6 polynomial for e^r, 2^n built in the
    /// exponent bits. Inputs below -87.3 give 0 (expf is subnormal there); above 88.3 are
    /// clamped (softmax only ever passes x ≤ 0).
    @inlinable @inline(__always)
    public static func exp(_ a: FloatVector) -> FloatVector {
        let lo = FloatVector(repeating: -87.33654), hi = FloatVector(repeating: 88.3)
        let x = a.replacing(with: lo, where: a .< lo).replacing(with: hi, where: a .> hi)
        let n = VectorMath.roundEven(x * FloatVector(repeating: 1.44269504088896341))
        // Cody–Waite split of ln 2 keeps r exact to FP32 precision.
        var r = x - n * FloatVector(repeating: 0.693359375)
        r = r - n * FloatVector(repeating: -2.12194440e-4)
        var p = FloatVector(repeating: 1.9875691500e-4)
        p = p * r + FloatVector(repeating: 1.3981999507e-3)
        p = p * r + FloatVector(repeating: 8.3334519073e-3)
        p = p * r + FloatVector(repeating: 4.1665795894e-2)
        p = p * r + FloatVector(repeating: 1.6666665459e-1)
        p = p * r + FloatVector(repeating: 5.0000001201e-1)
        p = p * (r * r) + r + FloatVector(repeating: 1)
        // n + 127 is an integer in [1, 254]: its bits shifted into the exponent field are 2^n.
        let scale = unsafeBitCast(VectorMath.integerBits(n + FloatVector(repeating: 127)) &<< 23, to: FloatVector.self)
        return (p * scale).replacing(with: FloatVector(repeating: 0), where: a .< FloatVector(repeating: -87.33654))
    }

    @inlinable @inline(__always)
    public static func exp(_ a: Float) -> Float { exp(FloatVector(repeating: a))[0] }
}

/// Plain scalar versions of every kernel, the yardstick for the fast ones.
public enum Reference {
    /// y = x · wᵀ + bias with `w` in PyTorch layout [N×K], each output the bias then one
    /// fused multiply-add per k in order: what every native FP32 kernel must give bit for bit.
    public static func fusedLinear(_ x: [Float], rows m: Int, inFeatures k: Int, weight w: [Float], bias: [Float],
                                   outFeatures n: Int) -> [Float] {
        var y = [Float](repeating: 0, count: m * n)
        for r in 0..<m {
            for c in 0..<n {
                var acc = bias[c]
                for i in 0..<k { acc = acc.addingProduct(x[r * k + i], w[c * k + i]) }
                y[r * n + c] = acc
            }
        }
        return y
    }

    /// y = x · wᵀ + bias with `w` in PyTorch layout [N×K], in double precision.
    public static func linear(_ x: [Float], rows m: Int, inFeatures k: Int, weight w: [Float], bias: [Float]?, outFeatures n: Int) -> [Float] {
        var y = [Float](repeating: 0, count: m * n)
        for r in 0..<m {
            for c in 0..<n {
                var acc: Double = 0
                for i in 0..<k { acc += Double(x[r * k + i]) * Double(w[c * k + i]) }
                y[r * n + c] = Float(acc) + (bias?[c] ?? 0)
            }
        }
        return y
    }

    public static func layerNorm(_ x: [Float], rows m: Int, features n: Int, gamma: [Float], beta: [Float], eps: Float) -> [Float] {
        var y = x
        for r in 0..<m {
            let row = x[(r * n)..<(r * n + n)]
            let mean = row.reduce(0, +) / Float(n)
            let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(n)
            let inv = 1 / (variance + eps).squareRoot()
            for i in 0..<n { y[r * n + i] = (x[r * n + i] - mean) * inv * gamma[i] + beta[i] }
        }
        return y
    }

    public static func gelu(_ x: [Float]) -> [Float] {
        x.map { Float(0.5 * Double($0) * (1 + Glibc.erf(Double($0) / 2.0.squareRoot()))) }
    }

    /// One attention head, exactly as the definition reads (double accumulation).
    public static func attentionHead(q: [[Float]], k: [[Float]], v: [[Float]], scale: Float) -> [[Float]] {
        q.map { qi in
            let scores = k.map { kj in Float(zip(qi, kj).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }) * scale }
            let p = softmax(scores)
            return (0..<v[0].count).map { d in Float(zip(p, v).reduce(0.0) { $0 + Double($1.0) * Double($1.1[d]) }) }
        }
    }

    /// One attention head in the order the FMA kernels compute it, one scalar at a time:
    /// each score fma(q[d], k[d], ·) over d = 0, 1, … from zero, then × scale; softmax by the
    /// shared row kernel; each context value fma(p[j], v[j][d], ·) over j = 0, 1, … from zero.
    /// Every fused attention kernel (shared, AVX2) must give these bits exactly.
    public static func attentionHeadFusedOrder(q: [[Float]], k: [[Float]], v: [[Float]], scale: Float) -> [[Float]] {
        q.map { qi in
            var p = k.map { kj in
                var acc: Float = 0
                for d in 0..<qi.count { acc = acc.addingProduct(qi[d], kj[d]) }
                return acc * scale
            }
            p.withUnsafeMutableBufferPointer { FloatKernels.softmaxRow($0.baseAddress!, count: $0.count) }
            return (0..<v[0].count).map { d in
                var acc: Float = 0
                for j in 0..<p.count { acc = acc.addingProduct(p[j], v[j][d]) }
                return acc
            }
        }
    }

    public static func softmax(_ x: [Float]) -> [Float] {
        let m = x.max() ?? 0
        let e = x.map { Glibc.exp(Double($0 - m)) }
        let s = e.reduce(0, +)
        return e.map { Float($0 / s) }
    }
}

/// Row-major sgemm: c[m×n] = alpha · op(a) · op(b), with op = transpose when asked.
@inlinable
public func cblas_sgemm_rowmajor(m: Int, n: Int, k: Int, alpha: Float,
                                 a: UnsafePointer<Float>, lda: Int, transA: Bool,
                                 b: UnsafePointer<Float>, ldb: Int, transB: Bool,
                                 c: UnsafeMutablePointer<Float>, ldc: Int)
{
    if m == 0 || n == 0 { return }
    OpenBLAS.forKernels.sgemm(OpenBLAS.rowMajor, transA ? OpenBLAS.transpose : OpenBLAS.noTranspose,
                              transB ? OpenBLAS.transpose : OpenBLAS.noTranspose,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), 0, c, Int32(ldc))
}
