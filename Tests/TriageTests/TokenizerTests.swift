import Testing
import TriageJSON
import TriageTokenizer

/// Every case in the fixture was tokenized by Hugging Face `tokenizers`
/// (tools/gen_tokenizer_fixtures.py); every id must match.
@Suite struct TokenizerTests {
    static let directory = Paths.fixtures + "/tokenizer"

    @Test func matchesHuggingFaceOnEveryFixture() throws {
        let tokenizer = try WordPieceTokenizer.load(directory: Self.directory)
        #expect(tokenizer.vocabulary.count == 30522)
        let cases = try readJSONLines(Self.directory + "/cases.jsonl")
        #expect(cases.count >= 2000)
        var failures: [String] = []
        var kinds: [String: Int] = [:]
        for c in cases {
            let text = c["text"]!.stringValue!
            let pair = c["text_pair"]?.stringValue
            let maxLength = c["max_length"]?.intValue ?? 0
            let e = tokenizer.encode(text, pair: pair, maxLength: maxLength)
            kinds[c["kind"]!.stringValue!, default: 0] += 1
            if e.ids != c["ids"]!.int32s {
                failures.append("\(c["kind"]!.stringValue!): \(text.debugDescription.prefix(80)) → \(e.ids.prefix(20)) expected \(c["ids"]!.int32s.prefix(20))")
            }
            if let types = c["type_ids"], e.typeIds != types.int32s {
                failures.append("type ids of \(text.debugDescription.prefix(60))")
            }
        }
        #expect(failures.isEmpty, Comment(rawValue: "\(failures.count) of \(cases.count) cases differ:\n" + failures.prefix(20).joined(separator: "\n")))
        for kind in ["fuzz", "accents", "cjk", "emoji", "control_format"] {
            #expect(kinds.keys.contains { $0.hasPrefix(kind) }, "fixture has no \(kind) cases")
        }
    }

    @Test func batchPadsToLongestWithMask() throws {
        let tokenizer = try WordPieceTokenizer.load(directory: Self.directory)
        let batch = tokenizer.encodeBatch(["hello", "how do i top up my card?", ""])
        let lengths = ["hello", "how do i top up my card?", ""].map { tokenizer.encode($0).count }
        #expect(batch.length == lengths.max())
        #expect(batch.lengths == lengths)
        for b in 0..<3 {
            let row = batch.attentionMask[(b * batch.length)..<((b + 1) * batch.length)]
            #expect(Array(row) == [Int32](repeating: 1, count: lengths[b]) + [Int32](repeating: 0, count: batch.length - lengths[b]))
            let ids = batch.ids[(b * batch.length)..<((b + 1) * batch.length)]
            #expect(ids.suffix(batch.length - lengths[b]).allSatisfy { $0 == tokenizer.padId })
        }
    }

    @Test func truncatesToModelMaximumByDefault() throws {
        let tokenizer = try WordPieceTokenizer.load(directory: Self.directory)
        let long = String(repeating: "card ", count: 2000)
        let e = tokenizer.encode(long)
        #expect(e.count == tokenizer.options.maxLength)
        #expect(e.ids.first == tokenizer.clsId && e.ids.last == tokenizer.sepId)
    }
}
