import Testing
import TriageKernels
import TriageKernelSelect
import TriageModel

/// `bench --parts profile`: attaching a profile must not change a single output bit, and
/// the work it books per stage must be what the layer shapes say.
@Suite struct ProfileTests {
    static let dir = Paths.fixtures + "/parity/tiny72"
    /// Two packed sequences of 5 and 9 tokens.
    static let input = PackedSequences(tokens: [101, 7, 8, 9, 102, 101, 11, 12, 13, 14, 15, 16, 17, 102], lengths: [5, 9])

    @Test(arguments: [false, true]) func profilingChangesNoOutputBit(int8: Bool) throws {
        var weights = try DistilBertWeights.load(directory: Self.dir)
        if int8 { weights = try Quantizer.quantizeInMemory(weights, embeddings: true) }
        for threads in [1, 2] {
            let model = DistilBertModel(weights: weights, runtime: Runtime(threads: threads, kernels: try KernelSelection.select()))
            var plain = Workspace(), profiled = Workspace()
            profiled.profile = ForwardProfile()
            let a = try model.forward(Self.input, workspace: &plain)
            let b = try model.forward(Self.input, workspace: &profiled)
            #expect(a.logits.map(\.bitPattern) == b.logits.map(\.bitPattern))
            #expect(a.cls.map(\.bitPattern) == b.cls.map(\.bitPattern))
            #expect(profiled.profile!.seconds.reduce(0, +) > 0)
        }
    }

    /// Operations of each product stage derived from the shapes by hand: every layer but the
    /// last runs all 14 tokens; the last runs q/k/v for all of them and the rest for the two
    /// [CLS] rows only.
    @Test(arguments: [false, true]) func bookedWorkMatchesTheShapes(int8: Bool) throws {
        var weights = try DistilBertWeights.load(directory: Self.dir)
        if int8 { weights = try Quantizer.quantizeInMemory(weights, embeddings: true) }
        let c = weights.config
        let model = DistilBertModel(weights: weights, runtime: Runtime(threads: 1, kernels: try KernelSelection.select()))
        var ws = Workspace()
        let profile = ForwardProfile()
        ws.profile = profile
        profile.beginPass()
        _ = try model.forward(Self.input, workspace: &ws)
        profile.endPass()
        let d = Double(c.dim), h = Double(c.hiddenDim), layers = Double(c.nLayers), labels = Double(c.labels.count)
        let tokens = 14.0, cls = 2.0, full = layers - 1
        func work(_ s: ForwardStage) -> Double { profile.work[s.rawValue] }
        #expect(work(.qkv) == 2 * tokens * d * 3 * d * layers)
        #expect(work(.outLin) == 2 * (tokens * full + cls) * d * d)
        #expect(work(.lin1) == 2 * (tokens * full + cls) * d * h)
        #expect(work(.lin2) == 2 * (tokens * full + cls) * h * d)
        // Q·Kᵀ and P·V: 2 · queries · keys · dim each; 5² + 9² pairs in full layers, 5 + 9 in the last.
        #expect(work(.attention) == 4 * d * ((25 + 81) * full + 14))
        #expect(work(.head) == 2 * cls * d * (d + labels))
        #expect((work(.quantize) > 0) == int8)
        #expect(profile.passes.count == 1)
        #expect(ForwardStage.allCases.allSatisfy { profile.passes[0][$0.rawValue] >= 0 })
    }
}
