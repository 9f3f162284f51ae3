import Testing
import TriageKernels
import TriageKernelSelect
import TriageModel

/// The instruction sets' own FP32 products (`KernelSet.floatLinear`; AVX2 on x86-64 CPUs
/// that have it) against `Reference.fusedLinear`, bit for bit, and the FP32 model on them
/// against the same model through OpenBLAS.
@Suite struct FloatLinearTests {
    /// Every kernel set this CPU runs that has an FP32 product of its own.
    static var nativeKernels: [KernelSet] { KernelSelection.available().filter { $0.floatLinear != nil } }

    func random(_ n: Int, _ rng: inout SplitMix) -> [Float] {
        (0..<n).map { _ in Float(Double(rng.next() % 2_000_001) / 1_000_000 - 1) }
    }

    @Test func nativeProductsMatchTheFusedReferenceBitForBit() throws {
        let kernels = Self.nativeKernels
        if CPUFeatures.current.hasAVX2 { #expect(kernels.contains { $0.name == "avx2" }) }
        var rng = SplitMix(seed: 12)
        // Rows on and off the 6-row tile (1, 4, 5, 6, 7, 13, 16, 19); columns in whole
        // 16-column halves, a half block (48), a remainder (5, 19, 77, 40 = 32 + 8) and a single
        // one; K from 1 to the FFN's 1536.
        let shapes = [(1, 1, 1), (4, 3, 16), (5, 7, 5), (6, 384, 32), (7, 33, 40), (13, 100, 48), (16, 64, 77),
                      (19, 1536, 64), (2, 5, 19), (1, 768, 96)]
        for kernel in kernels {
            let native = try #require(kernel.floatLinear)
            for (m, k, n) in shapes {
                let x = random(m * k, &rng), w = random(n * k, &rng), bias = random(n, &rng)
                let blocked = w.withUnsafeBufferPointer { BlockedWeights($0.baseAddress!, outFeatures: n, inFeatures: k) }
                let expected = Reference.fusedLinear(x, rows: m, inFeatures: k, weight: w, bias: bias, outFeatures: n)
                // Output rows 3 floats wider than the layer: nothing may be written there.
                let ldy = n + 3
                func run(_ splits: [Range<Int>]) -> [Float] {
                    var y = [Float](repeating: .nan, count: m * ldy)
                    x.withUnsafeBufferPointer { xp in
                        bias.withUnsafeBufferPointer { bp in
                            y.withUnsafeMutableBufferPointer { yp in
                                for blocks in splits {
                                    native(FloatLinearArguments(x: xp.baseAddress!, ldx: k, rows: m, weight: blocked,
                                                                bias: bp.baseAddress!, y: yp.baseAddress!, ldy: ldy, blocks: blocks))
                                }
                            }
                        }
                    }
                    return y
                }
                let whole = run([0..<blocked.blockCount])
                let split = blocked.blockCount / 2
                // Some blocks at a time, as the worker pool hands them out.
                let parts = run([split..<blocked.blockCount, 0..<split])
                for r in 0..<m {
                    for c in 0..<n {
                        #expect(whole[r * ldy + c].bitPattern == expected[r * n + c].bitPattern,
                                "\(kernel.name) \(m)×\(k)×\(n) at (\(r), \(c))")
                        #expect(parts[r * ldy + c].bitPattern == expected[r * n + c].bitPattern)
                    }
                    for c in n..<ldy { #expect(whole[r * ldy + c].isNaN && parts[r * ldy + c].isNaN, "written past the row") }
                }
            }
        }
    }

    /// The reference itself against double-precision sums: one rounding per multiply-add
    /// keeps it within float rounding of the exact product.
    @Test func fusedReferenceIsWithinRoundingOfTheExactProduct() {
        var rng = SplitMix(seed: 13)
        let (m, k, n) = (3, 1536, 7)
        let x = random(m * k, &rng), w = random(n * k, &rng), bias = random(n, &rng)
        let fused = Reference.fusedLinear(x, rows: m, inFeatures: k, weight: w, bias: bias, outFeatures: n)
        let exact = Reference.linear(x, rows: m, inFeatures: k, weight: w, bias: bias, outFeatures: n)
        for (a, b) in zip(fused, exact) { #expect(abs(a - b) <= 1e-4) }
    }

    /// The tiny72 checkpoint through each native product and through OpenBLAS: the same logits
    /// within rounding, and bit-identical across thread counts (each thread multiplies whole
    /// column blocks, so the split changes no sum).
    @Test func modelOnNativeProductsAgreesWithOpenBLAS() throws {
        let weights = try DistilBertWeights.load(directory: Paths.fixtures + "/parity/tiny72")
        let tokens: [Int32] = [101] + (0..<60).map { Int32(($0 * 37) % 900 + 50) } + [102]
        let input = PackedSequences(tokens: tokens, lengths: [tokens.count])
        var ws = Workspace()
        let blas = DistilBertModel(weights: weights, runtime: Runtime(threads: 1, kernels: KernelSet.portable))
        #expect(blas.usesOpenBLAS && blas.fp32Product == "openblas")
        let int8 = try Quantizer.quantizeInMemory(weights, embeddings: false)
        #expect(DistilBertModel(weights: int8, runtime: Runtime(threads: 1, kernels: KernelSet.portable)).fp32Product == nil)
        let reference = try blas.forward(input, workspace: &ws).logits
        for kernel in Self.nativeKernels {
            let one = DistilBertModel(weights: weights, runtime: Runtime(threads: 1, kernels: kernel))
            let two = DistilBertModel(weights: weights, runtime: Runtime(threads: 2, kernels: kernel))
            #expect(!one.usesOpenBLAS && one.fp32Product == kernel.name)
            #expect(DistilBertModel(weights: weights, runtime: Runtime(threads: 1, kernels: kernel.fp32ThroughOpenBLAS)).usesOpenBLAS)
            let a = try one.forward(input, workspace: &ws).logits
            let b = try two.forward(input, workspace: &ws).logits
            #expect(a.map(\.bitPattern) == b.map(\.bitPattern), "\(kernel.name): 1 and 2 threads differ")
            let worst = zip(a, reference).map { abs($0 - $1) }.max() ?? 0
            #expect(worst <= 2e-5, "\(kernel.name) vs OpenBLAS: max |Δlogit| \(worst)")
        }
    }

    /// Each output of the native product is summed in the same order whatever the other rows,
    /// so a sequence's logits in a packed batch are its logits alone, bit for bit (through
    /// OpenBLAS only within rounding: it splits sums by the row count).
    @Test func batchNeighboursChangeNoBitOnNativeProducts() throws {
        let weights = try DistilBertWeights.load(directory: Paths.fixtures + "/parity/tiny72")
        let seqs: [[Int32]] = [[101, 5, 6, 7, 102], [101, 9, 102], Array(1...40).map { Int32($0) },
                               [101] + (0..<20).map { Int32($0 * 13 % 700 + 100) } + [102]]
        var ws = Workspace()
        for kernel in Self.nativeKernels {
            for threads in [1, 2] {
                let model = DistilBertModel(weights: weights, runtime: Runtime(threads: threads, kernels: kernel))
                let batch = try model.forward(PackedSequences(tokens: seqs.flatMap { $0 }, lengths: seqs.map(\.count)), workspace: &ws)
                for (i, s) in seqs.enumerated() {
                    let single = try model.forward(PackedSequences(tokens: s, lengths: [s.count]), workspace: &ws)
                    #expect(single.logits.map(\.bitPattern) == Array(batch.logits(i)).map(\.bitPattern),
                            "\(kernel.name), \(threads) thread(s), sequence \(i)")
                }
            }
        }
    }
}
