import Foundation
import Testing
import TriageSystem
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

    /// The byte-level vocabulary index against a plain linear scan: every real token maps to
    /// the id of its first occurrence, a duplicate keeps the first id, and strings that are
    /// not tokens (including ones that share a hash prefix or differ only by `##`) are absent.
    @Test func vocabularyIndexAgreesWithALinearScan() throws {
        let tokenizer = try WordPieceTokenizer.load(directory: Self.directory)
        let vocabulary = tokenizer.vocabulary
        var firstId: [String: Int32] = [:]
        for (i, t) in vocabulary.enumerated() where firstId[t] == nil { firstId[t] = Int32(i) }
        var wrong: [String] = []
        for t in vocabulary where tokenizer.id(of: t) != firstId[t] { wrong.append(t) }
        #expect(wrong.isEmpty, "\(wrong.count) tokens map to the wrong id: \(wrong.prefix(10))")
        for missing in ["", "##", "qwertyuiopasdf", "hello world", "##the##", "[cls]", "unaffable"] {
            #expect(tokenizer.id(of: missing) == nil, "\(missing) is not a token")
        }
        let small = try WordPieceTokenizer(vocabulary: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "ab", "##ab", "ab", "é"])
        #expect(small.id(of: "ab") == 4)
        #expect(small.id(of: "##ab") == 5)
        #expect(small.id(of: "é") == 7)
        #expect(small.id(of: "e") == nil)
        #expect(small.encode("abab ab").ids == [2, 4, 5, 4, 3])
        #expect(small.encode("aba").ids == [2, 1, 3])
    }

    /// vocab.txt read over its bytes: CRLF lines, a missing final newline and empty lines
    /// as tokens behave as the line splitting before them did; an empty or non-UTF-8 file
    /// is refused with its path in the message.
    /// The vocabulary's UTF-8 check (no String built) against the standard library's, on
    /// crafted edge cases and on random byte strings biased towards multi-byte forms.
    @Test func utf8ValidationAgreesWithTheStandardLibrary() {
        let crafted: [[UInt8]] = [
            [], Array("plain ascii, longer than eight bytes".utf8), Array("naïve ##é 中文 😀".utf8),
            [0xC0, 0x80], [0xC1, 0xBF], [0xC2, 0x80], [0xDF, 0xBF], [0xE0, 0x9F, 0x80], [0xE0, 0xA0, 0x80],
            [0xED, 0x9F, 0xBF], [0xED, 0xA0, 0x80], [0xEF, 0xBF, 0xBF], [0xF0, 0x8F, 0xBF, 0xBF], [0xF0, 0x90, 0x80, 0x80],
            [0xF4, 0x8F, 0xBF, 0xBF], [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80], [0xFF], [0x80],
            [0xE2, 0x82], [0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0xE2, 0x82, 0xAC], [0xE2, 0x82, 0xAC, 0x80],
        ]
        var rng = SplitMix(seed: 5)
        let pieces: [UInt8] = [0x41, 0x7F, 0x80, 0x9F, 0xA0, 0xBF, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5]
        let random = (0..<20_000).map { _ in (0..<Int(rng.next() % 12)).map { _ in pieces[Int(rng.next() % UInt64(pieces.count))] } }
        var valid = 0
        for bytes in crafted + random {
            let expected = String(validating: bytes, as: UTF8.self) != nil
            if expected { valid += 1 }
            #expect(bytes.withUnsafeBytes(FileSystem.isValidUTF8) == expected, "\(bytes.map { String($0, radix: 16) })")
        }
        #expect(valid > 1_000, "the random cases include valid multi-byte text")
    }

    @Test func readBytesReadsWholeFilesAndOnesWithoutASize() throws {
        let path = NSTemporaryDirectory() + "triage-read-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let bytes = (0..<200_003).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(try FileSystem.readBytes(path) == bytes)
        // procfs reports size 0: read on in chunks.
        let status = try FileSystem.readBytes("/proc/self/status")
        #expect(String(decoding: status, as: UTF8.self).contains("VmRSS"))
        #expect(throws: Error.self) { try FileSystem.readBytes(NSTemporaryDirectory()) }
    }

    @Test func vocabularyFileEdgeCases() throws {
        let dir = NSTemporaryDirectory() + "triage-vocab-\(UUID().uuidString)"
        try FileSystem.createDirectory(dir)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func load(_ bytes: [UInt8]) throws -> WordPieceTokenizer {
            try FileSystem.writeAtomically(dir + "/vocab.txt", bytes: bytes)
            return try WordPieceTokenizer.load(directory: dir)
        }
        let crlf = try load(Array("[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\nab\r\n##ab".utf8))
        #expect(Array(crlf.vocabulary) == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "ab", "##ab"])
        #expect(crlf.encode("abab").ids == [2, 4, 5, 3])
        let blank = try load(Array("[PAD]\n\n[UNK]\n[CLS]\n[SEP]\n".utf8))
        #expect(Array(blank.vocabulary) == ["[PAD]", "", "[UNK]", "[CLS]", "[SEP]"])
        #expect(blank.unkId == 2)
        for bad in [[], [0x5B, 0xFF, 0x5D, 0x0A]] as [[UInt8]] {
            #expect {
                _ = try load(bad)
            } throws: { error in
                let message = "\(error)"
                return message.contains(dir + "/vocab.txt") && (message.contains("empty") || message.contains("UTF-8"))
            }
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

/// Every Unicode scalar, one by one, against the reference's per-scalar behaviour recorded
/// by tools/gen_tokenizer_fixtures.py (an independent probe from the one that generated the
/// tokenizer's own tables).
@Suite struct TokenizerScalarTests {
    @Test func everyScalarNormalizesAsTheReference() throws {
        let classes = try readJSON(Paths.fixtures + "/tokenizer/scalar_classes.json")
        func ranges(_ key: String) -> [ClosedRange<UInt32>] {
            classes["ranges"]![key]!.arrayValue!.map { r in
                let a = r.arrayValue!
                return UInt32(a[0].intValue!)...UInt32(a[1].intValue!)
            }
        }
        func lookup(_ rs: [ClosedRange<UInt32>], _ v: UInt32) -> Bool {
            var lo = 0, hi = rs.count
            while lo < hi { let m = (lo + hi) / 2; if rs[m].upperBound < v { lo = m + 1 } else { hi = m } }
            return lo < rs.count && rs[lo].contains(v)
        }
        let vanish = ranges("vanish"), space = ranges("whitespace"), cjk = ranges("cjk"), punct = ranges("punctuation")
        var mapped: [UInt32: String] = [:]
        for pair in classes["mapped"]!.arrayValue! {
            let p = pair.arrayValue!
            mapped[UInt32(p[0].intValue!)] = p[1].stringValue!
        }
        let tokenizer = try WordPieceTokenizer.load(directory: TokenizerTests.directory)
        var failures: [String] = []
        for v in UInt32(0)...0x10FFFF {
            guard let s = Unicode.Scalar(v) else { continue }
            let out = tokenizer.normalizedForTesting(s)
            let expected: String
            if v == 0 || v == 0xFFFD || lookup(vanish, v) { expected = "" }
            else if lookup(space, v) { expected = " " }
            else if lookup(cjk, v) { expected = " \(Character(s)) " }
            else if let m = mapped[v] { expected = m }
            else if (0xAC00...0xD7A3).contains(v) { continue }  // algorithmic Hangul, checked by the cases
            else { expected = String(Character(s)) }
            if out != expected && !(lookup(vanish, v) == false && expected.isEmpty) {
                failures.append(String(v, radix: 16) + ": got \(out.unicodeScalars.map { String($0.value, radix: 16) }) expected \(expected.unicodeScalars.map { String($0.value, radix: 16) })")
            }
            // Punctuation is decided on the normalized scalar (U+1FEF becomes "`").
            let normalized = Array(out.unicodeScalars)
            if normalized.count == 1, tokenizer.isPunctuationForTesting(normalized[0]) != lookup(punct, v) {
                failures.append(String(v, radix: 16) + ": punctuation")
            }
        }
        #expect(failures.isEmpty, Comment(rawValue: "\(failures.count) scalars differ:\n" + failures.prefix(30).joined(separator: "\n")))
    }
}
