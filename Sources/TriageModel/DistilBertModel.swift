import TriageKernels

/// Sequences packed back to back with no padding: `tokens` holds every sequence's ids in
/// turn and `lengths` their lengths. Padding is never computed; a padded batch from the
/// tokenizer is packed first, which gives the same numbers as masking the padding out.
public struct PackedSequences: Sendable, Equatable {
    public var tokens: [Int32]
    public var lengths: [Int]
    public init(tokens: [Int32], lengths: [Int]) { self.tokens = tokens; self.lengths = lengths }

    /// Packs a right-padded batch; every row's mask must be ones then zeros, with at least one 1.
    public init(paddedIds: [Int32], attentionMask: [Int32], batchSize: Int, length: Int) throws {
        guard paddedIds.count == batchSize * length, attentionMask.count == batchSize * length else {
            throw ModelError("batch of \(batchSize)×\(length) has \(paddedIds.count) ids and \(attentionMask.count) mask entries")
        }
        var tokens: [Int32] = [], lengths: [Int] = []
        for b in 0..<batchSize {
            let row = attentionMask[(b * length)..<((b + 1) * length)]
            let n = row.prefix { $0 != 0 }.count
            guard n > 0, row.dropFirst(n).allSatisfy({ $0 == 0 }) else {
                throw ModelError("row \(b) of the attention mask is not right-padded (ones, then zeros, at least one one)")
            }
            tokens += paddedIds[(b * length)..<(b * length + n)]
            lengths.append(n)
        }
        self.tokens = tokens
        self.lengths = lengths
    }
}

/// What a forward pass returns for each sequence: the final hidden state of its first token
/// ([CLS]) and, when the model has a classification head, the logits.
public struct ModelOutput: Sendable {
    public var cls: [Float]      // batch × dim
    public var logits: [Float]   // batch × labels (empty without a head)
    /// The classifier's own input, ReLU(pre_classifier([CLS])): batch × dim (empty without a head).
    public var headInput: [Float] = []
    public var dim: Int
    public var labelCount: Int
    public func logits(_ b: Int) -> ArraySlice<Float> { logits[(b * labelCount)..<((b + 1) * labelCount)] }
    public func headInput(_ b: Int) -> ArraySlice<Float> { headInput[(b * dim)..<((b + 1) * dim)] }
    public func cls(_ b: Int) -> ArraySlice<Float> { cls[(b * dim)..<((b + 1) * dim)] }
}

/// Scratch memory for one forward pass at a time; keep one per thread and reuse it.
public final class Workspace {
    var x = ScratchBuffer(), qkv = ScratchBuffer(), ctx = ScratchBuffer(), tmp = ScratchBuffer()
    var hidden = ScratchBuffer(), scores = ScratchBuffer()
    var clsX = ScratchBuffer(), clsCtx = ScratchBuffer(), clsTmp = ScratchBuffer(), clsHidden = ScratchBuffer()
    let quantized = QuantizationScratch()
    /// One per thread, for models with INT8 attention.
    var int8Attention: [Int8AttentionScratch] = []
    /// When set, each forward pass run with this workspace books its stages' times here.
    public var profile: ForwardProfile?
    public init() {}
}

/// The DistilBERT forward pass in FP32: one plain function per layer.
public final class DistilBertModel: Sendable {
    public let weights: DistilBertWeights
    public let runtime: Runtime
    public var config: DistilBertConfig { weights.config }

    /// Products smaller than this many multiply-adds run on the calling thread: waking the
    /// pool costs more than it saves.
    static let parallelThreshold = 64 * 1024

    /// Whether attention's two products run in INT8: the file's scheme unless overridden.
    public let int8Attention: Bool

    /// `int8Attention` overrides the file's attention scheme (for comparing the two on one
    /// set of weights, as `triage bench --engines int8-attn` does).
    public init(weights: DistilBertWeights, runtime: Runtime = Runtime(threads: 1, kernels: .portable),
                int8Attention: Bool? = nil) {
        self.weights = weights
        self.runtime = runtime
        self.int8Attention = int8Attention ?? weights.int8Attention
        usesOpenBLAS = weights.hasFloatLinears && runtime.kernels.floatLinear == nil
    }

    /// True when FP32 products go through OpenBLAS: FP32 layers, and kernels without an FP32
    /// product of their own (or told to use OpenBLAS, `TRIAGE_FP32_KERNEL=openblas`).
    public let usesOpenBLAS: Bool

    /// What multiplies the FP32 layers: "openblas" or the kernel set's name (nil when every
    /// linear layer is INT8).
    public var fp32Product: String? {
        weights.hasFloatLinears ? (usesOpenBLAS ? "openblas" : runtime.kernels.name) : nil
    }

    /// Loads OpenBLAS if this model needs it, or says why it cannot run: a box without it
    /// learns so when the model loads, not in the middle of a forward pass.
    public func requireProducts() throws {
        guard usesOpenBLAS else { return }
        do { _ = try OpenBLAS.require() } catch {
            throw ModelError("\(error) (FP32 products on the \(runtime.kernels.name) kernels need it; an INT8 model does not)")
        }
    }

    public func forward(_ input: PackedSequences, workspace ws: inout Workspace) throws -> ModelOutput {
        let c = config
        try requireProducts()
        for n in input.lengths where n < 1 || n > c.maxPositionEmbeddings {
            throw ModelError("sequence length \(n) is outside 1...\(c.maxPositionEmbeddings)")
        }
        guard input.lengths.reduce(0, +) == input.tokens.count else {
            throw ModelError("lengths add up to \(input.lengths.reduce(0, +)) but there are \(input.tokens.count) tokens")
        }
        for t in input.tokens where t < 0 || Int(t) >= c.vocabSize {
            throw ModelError("token id \(t) is outside the vocabulary of \(c.vocabSize)")
        }
        let total = input.tokens.count, batch = input.lengths.count, d = c.dim
        let maxLen = input.lengths.max() ?? 0
        var offsets: [Int] = [], o = 0
        for n in input.lengths { offsets.append(o); o += n }

        let x = ws.x.pointer(count: total * d)
        let qkv = ws.qkv.pointer(count: total * 3 * d)
        let ctx = ws.ctx.pointer(count: total * d)
        let tmp = ws.tmp.pointer(count: total * d)
        let hidden = ws.hidden.pointer(count: total * c.hiddenDim)
        let scores = ws.scores.pointer(count: runtime.threads * AttentionHeadArguments.scratchCount(keys: maxLen, headDim: c.headDim))
        if int8Attention {
            while ws.int8Attention.count < runtime.threads { ws.int8Attention.append(Int8AttentionScratch()) }
        }
        let int8Scratch = int8Attention ? ws.int8Attention : nil

        let profile = ws.profile
        var t = profile == nil ? 0 : ForwardProfile.now()
        embeddings(input, offsets: offsets, into: x)
        profile?.add(.embedding, since: &t, work: Double(total * d * 4 * 4))
        for (l, layer) in weights.layers.enumerated() {
            let rows = total
            linear(layer.qkv, x, rows: rows, into: qkv, ws, .qkv)
            if l < c.nLayers - 1 {
                attention(qkv: qkv, lengths: input.lengths, offsets: offsets, queriesPerSequence: nil,
                          scores: scores, int8Scratch: int8Scratch, into: ctx, profile: profile)
                attentionOutputAndFFN(layer, x: x, ctx: ctx, rows: rows, tmp: tmp, hidden: hidden, ws)
            } else {
                // Only [CLS] feeds the head: the last layer's queries, attention output and
                // FFN are computed for the first token of each sequence alone.
                let clsX = ws.clsX.pointer(count: batch * d)
                let clsCtx = ws.clsCtx.pointer(count: batch * d)
                let clsTmp = ws.clsTmp.pointer(count: batch * d)
                let clsHidden = ws.clsHidden.pointer(count: batch * c.hiddenDim)
                for b in 0..<batch { (clsX + b * d).update(from: x + offsets[b] * d, count: d) }
                attention(qkv: qkv, lengths: input.lengths, offsets: offsets, queriesPerSequence: 1,
                          scores: scores, int8Scratch: int8Scratch, into: clsCtx, profile: profile)
                attentionOutputAndFFN(layer, x: clsX, ctx: clsCtx, rows: batch, tmp: clsTmp, hidden: clsHidden, ws)
            }
        }
        let clsOut = ws.clsX.pointer(count: batch * d)
        var output = ModelOutput(cls: Array(UnsafeBufferPointer(start: clsOut, count: batch * d)), logits: [],
                                 dim: d, labelCount: weights.head == nil ? 0 : c.labels.count)
        if let head = weights.head {
            t = profile == nil ? 0 : ForwardProfile.now()
            let headInput = ws.clsTmp.pointer(count: batch * d)
            output.logits = classify(head, cls: clsOut, batch: batch, scratch: headInput, ws)
            output.headInput = Array(UnsafeBufferPointer(start: headInput, count: batch * d))
            profile?.add(.head, since: &t, work: Double(2 * batch * d * (d + head.classifier.outFeatures)))
        }
        return output
    }

    /// word embedding + position embedding, then LayerNorm.
    func embeddings(_ input: PackedSequences, offsets: [Int], into x: UnsafeMutablePointer<Float>) {
        let d = config.dim
        for (b, n) in input.lengths.enumerated() {
            for t in 0..<n {
                let row = x + (offsets[b] + t) * d
                weights.positionEmbeddings.copyRow(t, to: row)
                weights.wordEmbeddings.addRow(Int(input.tokens[offsets[b] + t]), to: row)
            }
        }
        let ln = weights.embeddingLayerNorm
        runtime.kernels.glue.addLayerNorm(x, nil, input.tokens.count, d, ln.gamma.pointer, ln.beta.pointer, config.layerNormEps)
    }

    /// Multi-head self-attention over each sequence's own tokens. Reads q, k, v from the
    /// fused [rows × 3·dim] projection; writes the per-head contexts side by side. With
    /// `queriesPerSequence` set, only that many leading queries per sequence are computed and
    /// their contexts are written one sequence after another. With `int8Scratch` (one per
    /// thread) both products run in INT8 (`Int8Attention`).
    func attention(qkv: UnsafeMutablePointer<Float>, lengths: [Int], offsets: [Int], queriesPerSequence: Int?,
                   scores: UnsafeMutablePointer<Float>, int8Scratch: [Int8AttentionScratch]? = nil,
                   into ctx: UnsafeMutablePointer<Float>, profile: ForwardProfile? = nil)
    {
        var t = profile == nil ? 0 : ForwardProfile.now()
        let c = config, d = c.dim, dh = c.headDim, ld = 3 * d
        let scale = 1 / Float(dh).squareRoot()
        let maxLen = lengths.max() ?? 0
        let tasks = lengths.count * c.nHeads
        let work = lengths.reduce(0) { $0 + min(queriesPerSequence ?? $1, $1) * $1 } * d * 2
        let chunks = work < Self.parallelThreshold ? 1 : min(runtime.threads, tasks)
        let kernels = runtime.kernels
        let head: (AttentionHeadArguments, Int) -> Void = int8Scratch.map { scratch in
            { Int8Attention.head($0, kernels: kernels, scratch: scratch[$1]) }
        } ?? { args, _ in kernels.glue.attentionHead(args) }
        let perChunk = AttentionHeadArguments.scratchCount(keys: maxLen, headDim: dh)
        let body = { (chunk: Int) in
            let s = scores + chunk * perChunk
            for task in (tasks * chunk / chunks)..<(tasks * (chunk + 1) / chunks) {
                let b = task / c.nHeads, h = task % c.nHeads, n = lengths[b]
                let queries = min(queriesPerSequence ?? n, n)
                let base = qkv + offsets[b] * ld
                let out = queriesPerSequence == nil ? ctx + offsets[b] * d : ctx + b * queries * d
                head(AttentionHeadArguments(q: base + h * dh, k: base + d + h * dh, v: base + 2 * d + h * dh, ld: ld,
                                            queries: queries, keys: n, headDim: dh, scale: scale,
                                            out: out + h * dh, ldo: d, scratch: s), chunk)
            }
        }
        if chunks == 1 { body(0) } else { runtime.pool.run(chunks, body) }
        guard let profile else { return }
        profile.add(.attention, since: &t, work: Double(2 * work))
        // Softmax again on the same shapes and thread split, timed alone (see ForwardProfile).
        let softmax = runtime.kernels.glue.softmaxRow
        let probe = { (chunk: Int) in
            let row = scores + chunk * perChunk
            for task in (tasks * chunk / chunks)..<(tasks * (chunk + 1) / chunks) {
                let n = lengths[task / c.nHeads]
                // Filled once per head, then each query's softmax runs on the row the one before
                // left: its cost does not depend on the values (no branch on them), and a fill
                // per query (as first written) booked ~15 % more to softmax at 128 keys (INT8,
                // one thread: 1.13–1.15 → 0.97 ms), time then taken from attention products.
                for j in 0..<n { row[j] = Float(j & 7) * 0.125 }
                for _ in 0..<min(queriesPerSequence ?? n, n) { softmax(row, n) }
            }
        }
        let fill = ForwardProfile.now()
        if chunks == 1 { probe(0) } else { runtime.pool.run(chunks, probe) }
        let elapsed = Double(ForwardProfile.now() &- fill) * 1e-9
        profile.move(elapsed, from: .attention, to: .softmax)
        profile.addWork(.softmax, Double(work / (d * 2) * c.nHeads * 8))
    }

    /// y = x · Wᵀ + bias through the kernel set's FP32 product or OpenBLAS (FP32), or its
    /// INT8 kernel, split by output columns across the pool.
    func linear(_ l: Linear, _ x: UnsafeMutablePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>,
                _ ws: Workspace, _ stage: ForwardStage? = nil)
    {
        let n = l.outFeatures, k = l.inFeatures
        let profile = stage == nil ? nil : ws.profile
        var t = profile == nil ? 0 : ForwardProfile.now()
        defer { if let stage { profile?.add(stage, since: &t, work: Double(2 * rows * n * k)) } }
        let parallel = rows * n * k >= Self.parallelThreshold && runtime.threads > 1
        switch l.weight {
        case let .float(w):
            if parallel {
                runtime.pool.parallelRanges(w.blockCount) {
                    FloatKernels.linear(x, rows: rows, weight: w, bias: l.bias.pointer, into: y, blocks: $0, kernels: runtime.kernels)
                }
            } else {
                FloatKernels.linear(x, rows: rows, weight: w, bias: l.bias.pointer, into: y, kernels: runtime.kernels)
            }
        case let .int8(w):
            let q = ws.quantized.rows(rows, columns: k)
            let quantize = runtime.kernels.glue.quantizeRows
            if parallel && rows >= 2 * runtime.threads {
                runtime.pool.parallelRanges(rows) { r in quantize(x, rows, k, q, r) }
            } else {
                quantize(x, rows, k, q, 0..<rows)
            }
            profile?.add(.quantize, since: &t, work: Double(rows * k * 5))
            let kernel = runtime.kernels
            let args = Int8GemmArguments(a: q, w: w, bias: l.bias.pointer, out: y, ldo: n, rowRange: 0..<rows,
                                         blockRange: 0..<w.blocks)
            if !parallel { kernel.gemm(args); return }
            // Split by groups of 4 blocks (64 columns), the VNNI kernel's widest tile.
            runtime.pool.parallelRanges(w.blocks, grain: 4) { blocks in
                var a = args
                a.blockRange = blocks
                kernel.gemm(a)
            }
        }
    }

    /// out_lin, residual + sa_layer_norm, then lin1 → activation → lin2, residual +
    /// output_layer_norm. `x` is updated in place.
    func attentionOutputAndFFN(_ layer: TransformerLayerWeights, x: UnsafeMutablePointer<Float>,
                               ctx: UnsafeMutablePointer<Float>, rows: Int,
                               tmp: UnsafeMutablePointer<Float>, hidden: UnsafeMutablePointer<Float>, _ ws: Workspace)
    {
        let c = config, profile = ws.profile
        let normBytes = Double(rows * c.dim * 12)
        linear(layer.outLin, ctx, rows: rows, into: tmp, ws, .outLin)
        var t = profile == nil ? 0 : ForwardProfile.now()
        addLayerNorm(tmp, residual: x, rows: rows, layer.saLayerNorm)
        profile?.add(.saLayerNorm, since: &t, work: normBytes)
        linear(layer.lin1, tmp, rows: rows, into: hidden, ws, .lin1)
        t = profile == nil ? 0 : ForwardProfile.now()
        activation(hidden, count: rows * c.hiddenDim)
        profile?.add(.activation, since: &t, work: Double(rows * c.hiddenDim * 8))
        linear(layer.lin2, hidden, rows: rows, into: x, ws, .lin2)
        t = profile == nil ? 0 : ForwardProfile.now()
        addLayerNorm(x, residual: tmp, rows: rows, layer.outputLayerNorm)
        profile?.add(.outputLayerNorm, since: &t, work: normBytes)
    }

    func addLayerNorm(_ x: UnsafeMutablePointer<Float>, residual: UnsafeMutablePointer<Float>, rows: Int,
                      _ ln: LayerNormWeights) {
        let d = config.dim, eps = config.layerNormEps
        let norm = runtime.kernels.glue.addLayerNorm
        if rows * d < Self.parallelThreshold || runtime.threads == 1 {
            norm(x, residual, rows, d, ln.gamma.pointer, ln.beta.pointer, eps)
            return
        }
        runtime.pool.parallelRanges(rows) { r in
            norm(x + r.lowerBound * d, residual + r.lowerBound * d, r.count, d, ln.gamma.pointer, ln.beta.pointer, eps)
        }
    }

    func activation(_ h: UnsafeMutablePointer<Float>, count: Int) {
        let apply = { (p: UnsafeMutablePointer<Float>, n: Int) in
            switch self.config.activation {
            case .gelu: self.runtime.kernels.glue.gelu(p, n)
            case .relu: FloatKernels.relu(p, count: n)
            }
        }
        if count < Self.parallelThreshold || runtime.threads == 1 { apply(h, count); return }
        runtime.pool.parallelRanges(count, grain: 64) { r in apply(h + r.lowerBound, r.count) }
    }

    /// pre_classifier → ReLU → classifier on each [CLS] state.
    func classify(_ head: ClassifierHead, cls: UnsafeMutablePointer<Float>, batch: Int,
                  scratch: UnsafeMutablePointer<Float>, _ ws: Workspace) -> [Float]
    {
        let d = config.dim, labels = head.classifier.outFeatures
        linear(head.preClassifier, cls, rows: batch, into: scratch, ws)
        FloatKernels.relu(scratch, count: batch * d)
        var logits = [Float](repeating: 0, count: batch * labels)
        logits.withUnsafeMutableBufferPointer { out in
            linear(head.classifier, scratch, rows: batch, into: out.baseAddress!, ws)
        }
        return logits
    }
}
