import Foundation
import Testing
import TriageJSON
import TriageSystem
import TriageTensors

/// The real `triage` binary: exit codes, messages and output formats.
@Suite struct CLITests {
    /// A model directory built from the tiny72 parity fixture plus the first 1,000 tokens of
    /// the real BERT vocabulary, optionally with one tensor removed.
    func tinyModel(dropping tensor: String? = nil) throws -> String {
        let dir = NSTemporaryDirectory() + "triage-cli-\(UUID().uuidString)"
        try FileSystem.createDirectory(dir)
        let src = Paths.fixtures + "/parity/tiny72"
        try FileSystem.copyFile(from: src + "/config.json", to: dir + "/config.json")
        let vocab = try FileSystem.readText(Paths.fixtures + "/tokenizer/vocab.txt").split(separator: "\n").prefix(1000)
        try FileSystem.writeAtomically(dir + "/vocab.txt", text: vocab.joined(separator: "\n") + "\n")
        let file = try SafeTensorsFile(path: src + "/model.safetensors")
        var w = SafeTensorsWriter()
        for t in file.tensors where t.name != tensor {
            w.add(t.name, dtype: t.dtype, shape: t.shape, bytes: Array(file.bytes(of: t)))
        }
        try w.write(to: dir + "/model.safetensors")
        return dir
    }

    @Test func missingModelDirectory() throws {
        let r = try runTriage(["classify", "--model", "/nonexistent/model", "hello"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("/nonexistent/model") && r.stderr.contains("does not exist"))
        #expect(r.stdout.isEmpty)
    }

    @Test func missingTensorIsNamed() throws {
        let dir = try tinyModel(dropping: "distilbert.transformer.layer.1.ffn.lin2.weight")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try runTriage(["classify", "--model", dir, "hello"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("missing tensors: distilbert.transformer.layer.1.ffn.lin2.weight"))
    }

    @Test func emptyInputIsAUsageError() throws {
        let dir = try tinyModel()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try runTriage(["classify", "--model", dir], stdin: "")
        #expect(r.status == 64)
        #expect(r.stderr.contains("no input"))
    }

    @Test func classifyJSONOnePerInputInOrder() throws {
        let dir = try tinyModel()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lines = ["first query", "", "a third, longer query about cards and money", "[CLS] literal"]
        let r = try runTriage(["classify", "--json", "--model", dir], stdin: lines.joined(separator: "\n") + "\n")
        #expect(r.status == 0, "\(r.stderr)")
        let out = try r.stdout.split(separator: "\n").map { try JSONValue.parse(String($0)) }
        #expect(out.count == lines.count)
        for (o, text) in zip(out, lines) {
            #expect(o["text"]?.stringValue == text)
            let probs = o["probs"]!.objectPairs!
            #expect(probs.map(\.0) == ["label_a", "label_b", "label_c", "label_d", "label_e"])
            #expect(abs(probs.reduce(0) { $0 + $1.1.doubleValue! } - 1) < 1e-5)
            #expect(o["logits"]!.arrayValue!.count == 5)
            let best = probs.max { $0.1.doubleValue! < $1.1.doubleValue! }!
            #expect(o["label"]?.stringValue == best.0)
            #expect(o["confidence"]?.doubleValue == best.1.doubleValue)
        }
        // Alone, as an argument, the first query gets the same answer (up to the summation
        // order OpenBLAS picks for a different batch size).
        let a = try runTriage(["classify", "--json", "--model", dir, "first query"])
        let alone = try JSONValue.parse(String(a.stdout.split(separator: "\n")[0]))
        #expect(alone["label"] == out[0]["label"])
        for (x, y) in zip(alone["logits"]!.arrayValue!, out[0]["logits"]!.arrayValue!) {
            #expect(abs(x.doubleValue! - y.doubleValue!) < 1e-5)
        }
    }

    @Test func tokenizeJSON() throws {
        let r = try runTriage(["tokenize", "--json", "--model", Paths.fixtures + "/tokenizer"], stdin: "Hello, world!\n")
        #expect(r.status == 0)
        let v = try JSONValue.parse(String(r.stdout.split(separator: "\n")[0]))
        #expect(v["tokens"]!.arrayValue!.compactMap(\.stringValue) == ["[CLS]", "hello", ",", "world", "!", "[SEP]"])
        #expect(v["ids"]!.arrayValue!.count == 6)
    }

    @Test func unknownOptionIsAUsageError() throws {
        let r = try runTriage(["classify", "--bogus"])
        #expect(r.status == 64)
    }
}
