import Foundation
import Testing
import TriageKernels
import TriageKernelSelect
import TriageModel
import TriageSystem
import TriageTensors

/// INT8 attention (`quantize --attention int8`): each kernel set against the scalar
/// statement of the same steps, bit for bit; the model with it against FP32; the scheme
/// carried by `__metadata__` and an unknown one refused.
@Suite struct Int8AttentionTests {
    @Test func everyKernelSetGivesTheReferenceBits() {
        var rng = SplitMix(seed: 77)
        func values(_ n: Int, _ scale: Float) -> [Float] { (0..<n).map { _ in Float(Int(rng.next() % 20001) - 10000) / 10000 * scale } }
        // Head widths on the vector path (multiples of 16) and off it; key counts around the
        // 16-channel blocks and 4-key groups; fewer queries than keys (the [CLS]-only layer).
        let shapes: [(n: Int, dh: Int, queries: Int)] = [
            (1, 32, 1), (2, 16, 2), (5, 13, 5), (7, 32, 7), (16, 64, 16), (17, 24, 17), (31, 40, 3),
            (64, 32, 64), (100, 32, 1), (130, 64, 130), (257, 32, 11),
        ]
        for (n, dh, queries) in shapes {
            let ld = 3 * dh + 5, ldo = dh + 3
            var data = values(n * ld, 3)
            // A row of zeros (scale 1 by convention) and an outlier.
            if n > 3 { for d in 0..<(3 * dh) { data[2 * ld + d] = 0 }; data[ld + 1] = 40 }
            let rows = (0..<n).map { Array(data[($0 * ld)..<($0 * ld + 3 * dh)]) }
            let q = rows.prefix(queries).map { Array($0[0..<dh]) }
            let k = rows.map { Array($0[dh..<(2 * dh)]) }, v = rows.map { Array($0[(2 * dh)...]) }
            let expected = Reference.int8AttentionHead(q: q, k: k, v: v, scale: 0.35)
            let exact = Reference.attentionHead(q: q, k: k, v: v, scale: 0.35)
            let scratch = Int8AttentionScratch()
            for kernels in KernelSelection.available() {
                var out = [Float](repeating: .nan, count: queries * ldo)
                data.withUnsafeBufferPointer { p in
                    out.withUnsafeMutableBufferPointer { o in
                        Int8Attention.head(AttentionHeadArguments(q: p.baseAddress!, k: p.baseAddress! + dh, v: p.baseAddress! + 2 * dh,
                                                                  ld: ld, queries: queries, keys: n, headDim: dh, scale: 0.35,
                                                                  out: o.baseAddress!, ldo: ldo, scratch: o.baseAddress!),
                                           kernels: kernels, scratch: scratch)
                    }
                }
                var differing = 0, worst: Float = 0
                for i in 0..<queries {
                    for d in 0..<ldo {
                        let a = out[i * ldo + d]
                        if d >= dh { #expect(a.isNaN, "\(kernels.name) n=\(n) dh=\(dh): wrote past the head"); continue }
                        if a.bitPattern != expected[i][d].bitPattern { differing += 1 }
                        worst = max(worst, abs(a - exact[i][d]))
                    }
                }
                #expect(differing == 0, "\(kernels.name) n=\(n) dh=\(dh) queries=\(queries): \(differing) values differ from the reference")
                // Quantization error, not a wrong product: within a few percent of the largest |v|.
                #expect(worst <= 0.06 * (n > 3 ? 40 : 3), "\(kernels.name) n=\(n) dh=\(dh): \(worst) from the FP32 definition")
            }
        }
    }

    @Test func modelWithInt8AttentionIsReproducibleAndCloseToFP32() throws {
        let dir = Paths.fixtures + "/parity/tiny72"
        let fp32 = try DistilBertWeights.load(directory: dir)
        let plain = try Quantizer.quantizeInMemory(fp32, embeddings: true)
        let int8 = try Quantizer.quantizeInMemory(fp32, embeddings: true, int8Attention: true)
        #expect(int8.int8Attention && !plain.int8Attention)
        let inputs = try Int8ModelTests().inputs()
        var ws = Workspace()
        var reference: [[Float]]? = nil
        for kernel in KernelSelection.available() {
            for threads in [1, 2] {
                let model = DistilBertModel(weights: int8, runtime: Runtime(threads: threads, kernels: kernel))
                #expect(model.int8Attention)
                let logits = try inputs.map { try model.forward($0, workspace: &ws).logits }
                // The override on the plain INT8 weights is the same model.
                let overridden = DistilBertModel(weights: plain, runtime: Runtime(threads: threads, kernels: kernel), int8Attention: true)
                #expect(try inputs.map { try overridden.forward($0, workspace: &ws).logits } == logits)
                // SSE4's FP32 glue rounds apart (no FMA) but INT8 attention has no FP32
                // product left; its softmax and quantizer are shared code, so all agree.
                if let reference { #expect(logits == reference, "\(kernel.name), \(threads) threads") } else { reference = logits }
            }
        }
        let a = DistilBertModel(weights: fp32), b = DistilBertModel(weights: int8), c = DistilBertModel(weights: plain)
        var worst: Float = 0, worstPlain: Float = 0
        for input in inputs {
            let x = try a.forward(input, workspace: &ws).logits
            let y = try b.forward(input, workspace: &ws).logits, z = try c.forward(input, workspace: &ws).logits
            for (p, q) in zip(x, y) { worst = max(worst, abs(p - q)) }
            for (p, q) in zip(x, z) { worstPlain = max(worstPlain, abs(p - q)) }
        }
        print("tiny72 INT8 with INT8 attention vs FP32: max |Δlogit| = \(worst) (INT8 alone \(worstPlain))")
        #expect(worst < 0.2, "max |Δlogit| \(worst)")
        #expect(worst != worstPlain, "INT8 attention changed nothing: was it run?")
    }

    @Test func schemeTravelsInMetadataAndAnUnknownOneIsRefused() throws {
        let dir = Paths.fixtures + "/parity/tiny72"
        let out = NSTemporaryDirectory() + "triage-int8attn-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: out) }
        try Quantizer.quantizeDirectory(from: dir, to: out, embeddings: true, int8Attention: true)
        let file = try SafeTensorsFile(path: out + "/model.safetensors")
        #expect(file.metadata(Quantizer.attentionKey) == Int8Attention.scheme)
        #expect(try DistilBertWeights.load(directory: out).int8Attention)

        var w = SafeTensorsWriter()
        w.metadata = file.metadata.map { $0.0 == Quantizer.attentionKey ? ($0.0, "int4-v9") : $0 }
        w.alignment = 64
        for t in file.tensors { w.add(t.name, dtype: t.dtype, shape: t.shape, bytes: Array(file.bytes(of: t))) }
        try w.write(to: out + "/model.safetensors")
        do {
            _ = try DistilBertWeights.load(directory: out)
            Issue.record("expected a load error")
        } catch {
            #expect("\(error)".contains("attention scheme 'int4-v9'"), "\(error)")
        }
    }
}
