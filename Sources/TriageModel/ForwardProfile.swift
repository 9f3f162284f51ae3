import TriageSystem

/// The stages a forward pass is split into for `triage bench --parts profile`.
public enum ForwardStage: Int, CaseIterable, Sendable {
    case embedding, quantize, qkv, attention, softmax, outLin, saLayerNorm, lin1, activation, lin2, outputLayerNorm, head

    public var name: String {
        switch self {
        case .embedding: "embedding + LayerNorm"
        case .quantize: "activation quantization"
        case .qkv: "q/k/v linear"
        case .attention: "attention products"
        case .softmax: "softmax"
        case .outLin: "out_lin linear"
        case .saLayerNorm: "residual + sa LayerNorm"
        case .lin1: "lin1 linear"
        case .activation: "GELU"
        case .lin2: "lin2 linear"
        case .outputLayerNorm: "residual + output LayerNorm"
        case .head: "classifier head"
        }
    }

    public var key: String {
        switch self {
        case .embedding: "embedding"
        case .quantize: "quantize"
        case .qkv: "qkv"
        case .attention: "attention"
        case .softmax: "softmax"
        case .outLin: "out_lin"
        case .saLayerNorm: "sa_layer_norm"
        case .lin1: "lin1"
        case .activation: "activation"
        case .lin2: "lin2"
        case .outputLayerNorm: "output_layer_norm"
        case .head: "head"
        }
    }

    /// Products are measured in operations (2 per multiply-add), the element-wise stages in
    /// bytes read and written.
    public var countsOperations: Bool {
        switch self {
        case .qkv, .attention, .outLin, .lin1, .lin2, .head: true
        default: false
        }
    }
}

/// Per-stage wall time of forward passes. Attach one to a `Workspace` and every pass run
/// with it adds its stages here; with none attached a pass pays one branch per stage.
///
/// Softmax runs inside each attention head's kernel, between the two products, so it
/// cannot be timed apart without changing that kernel: after each attention the profiler
/// runs the same softmax kernel on the same shapes (same rows, keys and thread split) and
/// books that time as softmax, the rest of the attention time as its products.
public final class ForwardProfile {
    /// Seconds and work (operations or bytes) of each stage in the pass being run.
    public private(set) var seconds = [Double](repeating: 0, count: ForwardStage.allCases.count)
    public private(set) var work = [Double](repeating: 0, count: ForwardStage.allCases.count)
    /// One entry per finished pass: that pass's seconds per stage.
    public private(set) var passes: [[Double]] = []

    public init() {}

    /// Starts a new pass (the running totals go back to zero).
    public func beginPass() {
        for i in seconds.indices { seconds[i] = 0; work[i] = 0 }
    }

    /// Ends the pass, keeping its seconds per stage.
    public func endPass() { passes.append(seconds) }

    public func reset() { passes = []; beginPass() }

    @inline(__always) public static func now() -> UInt64 { Clock.nanoseconds() }

    /// Books the time since `start` to `stage` and moves `start` to now.
    @inline(__always)
    public func add(_ stage: ForwardStage, since start: inout UInt64, work amount: Double) {
        let t = Clock.nanoseconds()
        seconds[stage.rawValue] += Double(t &- start) * 1e-9
        work[stage.rawValue] += amount
        start = t
    }

    /// Moves `s` seconds from one stage to another (softmax out of attention), never more
    /// than the first has: on tiny shapes the separate softmax run can outlast the noise.
    func move(_ s: Double, from: ForwardStage, to: ForwardStage) {
        let moved = min(s, seconds[from.rawValue])
        seconds[from.rawValue] -= moved
        seconds[to.rawValue] += moved
    }

    func addWork(_ stage: ForwardStage, _ amount: Double) { work[stage.rawValue] += amount }

    /// The median over the finished passes of each stage's seconds.
    public func medianSeconds() -> [Double] {
        ForwardStage.allCases.map { stage in
            let xs = passes.map { $0[stage.rawValue] }.sorted()
            return xs.isEmpty ? 0 : xs[xs.count / 2]
        }
    }
}
