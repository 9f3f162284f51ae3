// BERT uncased WordPiece tokenization, matching the Hugging Face `tokenizers` pipeline
// (BertNormalizer → BertPreTokenizer → WordPiece → TemplateProcessing) id for id.
//
// The order of the normalizer steps is the reference's, not the slow Python tokenizer's:
// clean text, pad CJK ideographs, NFD + drop Mn (accents), then lower-case each scalar.

@_spi(_Unicode) import Swift
import TriageJSON
import TriageSystem

public struct TokenizerError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// One tokenized input: ids with their special tokens, type ids and the attention mask.
public struct Encoding: Sendable, Equatable {
    public var ids: [Int32]
    public var typeIds: [Int32]
    public var attentionMask: [Int32]
    public var count: Int { ids.count }
}

/// A batch padded to its longest member; rows are `length` ids apart.
public struct EncodedBatch: Sendable, Equatable {
    public var ids: [Int32]
    public var attentionMask: [Int32]
    public var typeIds: [Int32]
    public var batchSize: Int
    public var length: Int
    /// The unpadded length of each row.
    public var lengths: [Int]
}

public struct TokenizerOptions: Sendable, Equatable {
    public var lowercase = true
    /// `nil` follows `lowercase`, as in the reference.
    public var stripAccents: Bool? = nil
    public var cleanText = true
    public var handleChineseChars = true
    public var maxLength = 512
    public var maxInputCharsPerWord = 100
    public var continuingSubwordPrefix = "##"
    public var unkToken = "[UNK]"
    public var clsToken = "[CLS]"
    public var sepToken = "[SEP]"
    public var padToken = "[PAD]"
    public var maskToken = "[MASK]"
    public init() {}
}

public final class WordPieceTokenizer: Sendable {
    public let options: TokenizerOptions
    /// Token strings in id order.
    public let vocabulary: Vocabulary
    private let index: VocabularyIndex
    /// `continuingSubwordPrefix` as UTF-8.
    private let continuingPrefixUTF8: [UInt8]
    /// Special tokens matched verbatim in the raw text before normalization (longest first).
    private let specialTokens: [(scalars: [Unicode.Scalar], id: Int32)]
    public let unkId: Int32, clsId: Int32, sepId: Int32, padId: Int32

    public convenience init(vocabulary: [String], options: TokenizerOptions = TokenizerOptions()) throws {
        try self.init(index: VocabularyIndex(vocabulary), options: options)
    }

    init(index: VocabularyIndex, options: TokenizerOptions) throws {
        self.options = options
        self.vocabulary = Vocabulary(index: index)
        self.index = index
        continuingPrefixUTF8 = Array(options.continuingSubwordPrefix.utf8)
        func need(_ t: String) throws -> Int32 {
            guard let id = index.id(of: t) else { throw TokenizerError("the vocabulary has no \(t) token") }
            return id
        }
        unkId = try need(options.unkToken)
        clsId = try need(options.clsToken)
        sepId = try need(options.sepToken)
        padId = try need(options.padToken)
        var specials: [(scalars: [Unicode.Scalar], id: Int32)] = []
        for t in [options.unkToken, options.clsToken, options.sepToken, options.padToken, options.maskToken] {
            if let id = index.id(of: t) { specials.append((Array(t.unicodeScalars), id)) }
        }
        specials.sort { $0.scalars.count > $1.scalars.count }
        specialTokens = specials
    }

    /// Loads `vocab.txt` and, if present, `tokenizer_config.json` from a model directory.
    public static func load(directory: String) throws -> WordPieceTokenizer {
        let vocabPath = FileSystem.join(directory, "vocab.txt")
        // Mapped, not read: the index points into the file's pages (page cache), so a process
        // neither copies 231 KB nor touches as many fresh pages at every start.
        let text: TokenBytes
        do { text = TokenBytes(mapping: try MappedFile(path: vocabPath)) } catch { throw TokenizerError("\(error)") }
        guard FileSystem.isValidUTF8(UnsafeRawBufferPointer(text.buffer)) else { throw TokenizerError("\(vocabPath) is not UTF-8") }
        let index = VocabularyIndex(lines: text)
        guard index.count > 0 else { throw TokenizerError("\(vocabPath) is empty") }

        var options = TokenizerOptions()
        let configPath = FileSystem.join(directory, "tokenizer_config.json")
        if FileSystem.exists(configPath) {
            let config: JSONValue
            do { config = try JSONValue.parse(FileSystem.readText(configPath)) } catch {
                throw TokenizerError("\(configPath): \(error)")
            }
            if let b = config["do_lower_case"]?.boolValue { options.lowercase = b }
            if let b = config["strip_accents"]?.boolValue { options.stripAccents = b }
            if let b = config["tokenize_chinese_chars"]?.boolValue { options.handleChineseChars = b }
            // Hugging Face writes a huge sentinel (1e30) when there is no limit.
            if let m = config["model_max_length"]?.doubleValue, m >= 2, m < 1e9 { options.maxLength = Int(m) }
            for (key, path) in [("unk_token", \TokenizerOptions.unkToken), ("cls_token", \.clsToken),
                                ("sep_token", \.sepToken), ("pad_token", \.padToken), ("mask_token", \.maskToken)] {
                if let s = config[key]?.stringValue ?? config[key]?["content"]?.stringValue { options[keyPath: path] = s }
            }
        }
        return try WordPieceTokenizer(index: index, options: options)
    }

    public func id(of token: String) -> Int32? { index.id(of: token) }

    // MARK: Encoding

    /// Encodes one text (and optionally a second one) with `[CLS] a [SEP] (b [SEP])`,
    /// truncated longest-first to `maxLength` (default: the model's maximum length).
    public func encode(_ text: String, pair: String? = nil, maxLength: Int? = nil) -> Encoding {
        var a = wordPieceIds(text)
        var b = pair.map { wordPieceIds($0) }
        let limit = maxLength ?? options.maxLength
        let added = b == nil ? 2 : 3
        if limit > 0 {
            let budget = max(0, limit - added)
            Self.truncateLongestFirst(&a, &b, to: budget)
        }
        var ids: [Int32] = [clsId]
        ids.reserveCapacity(a.count + (b?.count ?? 0) + added)
        ids += a
        ids.append(sepId)
        var typeIds = [Int32](repeating: 0, count: ids.count)
        if let b {
            ids += b
            ids.append(sepId)
            typeIds += [Int32](repeating: 1, count: b.count + 1)
        }
        return Encoding(ids: ids, typeIds: typeIds, attentionMask: [Int32](repeating: 1, count: ids.count))
    }

    /// Encodes several texts and pads them to the longest with `[PAD]` and mask 0.
    public func encodeBatch(_ texts: [String], maxLength: Int? = nil) -> EncodedBatch {
        Self.pad(texts.map { encode($0, maxLength: maxLength) }, padId: padId)
    }

    public static func pad(_ encodings: [Encoding], padId: Int32) -> EncodedBatch {
        let length = encodings.map(\.count).max() ?? 0
        var batch = EncodedBatch(ids: [], attentionMask: [], typeIds: [], batchSize: encodings.count,
                                 length: length, lengths: encodings.map(\.count))
        batch.ids.reserveCapacity(length * encodings.count)
        for e in encodings {
            let padding = length - e.count
            batch.ids += e.ids + [Int32](repeating: padId, count: padding)
            batch.attentionMask += e.attentionMask + [Int32](repeating: 0, count: padding)
            batch.typeIds += e.typeIds + [Int32](repeating: 0, count: padding)
        }
        return batch
    }

    /// The reference's longest-first rule: when both must shrink they get half each
    /// (the second one the odd token); otherwise only the longer one is cut.
    static func truncateLongestFirst(_ a: inout [Int32], _ b: inout [Int32]?, to maxLength: Int) {
        guard var second = b else {
            if a.count > maxLength { a.removeLast(a.count - maxLength) }
            return
        }
        guard a.count + second.count > maxLength else { return }
        var n1 = a.count, n2 = second.count
        let swap = n1 > n2
        if swap { (n1, n2) = (n2, n1) }
        n2 = n1 > maxLength ? n1 : max(n1, maxLength - n1)
        if n1 + n2 > maxLength {
            n1 = maxLength / 2
            n2 = n1 + maxLength % 2
        }
        if swap { (n1, n2) = (n2, n1) }
        if a.count > n1 { a.removeLast(a.count - n1) }
        if second.count > n2 { second.removeLast(second.count - n2) }
        b = second
    }

    /// WordPiece ids of a text, without special tokens around it.
    public func wordPieceIds(_ text: String) -> [Int32] {
        var out: [Int32] = []
        for segment in splitOnSpecialTokens(text) {
            switch segment {
            case let .special(id): out.append(id)
            case let .text(scalars): appendIds(of: scalars, to: &out)
            }
        }
        return out
    }

    /// WordPiece token strings of a text, without special tokens around it.
    public func tokenize(_ text: String) -> [String] {
        wordPieceIds(text).map { vocabulary[Int($0)] }
    }

    // MARK: Pipeline

    enum Segment { case text([Unicode.Scalar]), special(Int32) }

    /// Special tokens are matched on the raw text, before normalization, as the reference's
    /// added-token pass does (so "[CLS]" typed by a user is the CLS token, "[cls]" is not).
    func splitOnSpecialTokens(_ text: String) -> [Segment] {
        let scalars = Array(text.unicodeScalars)
        var segments: [Segment] = []
        var start = 0, i = 0
        outer: while i < scalars.count {
            if scalars[i] == "[" {
                for (tok, id) in specialTokens where i + tok.count <= scalars.count {
                    if scalars[i..<(i + tok.count)].elementsEqual(tok) {
                        if start < i { segments.append(.text(Array(scalars[start..<i]))) }
                        segments.append(.special(id))
                        i += tok.count
                        start = i
                        continue outer
                    }
                }
            }
            i += 1
        }
        if start < scalars.count { segments.append(.text(Array(scalars[start...]))) }
        return segments
    }

    private func appendIds(of raw: [Unicode.Scalar], to out: inout [Int32]) {
        let normalized = normalize(raw)
        var word: [Unicode.Scalar] = []
        func flush() {
            if !word.isEmpty { wordPiece(word, into: &out); word.removeAll(keepingCapacity: true) }
        }
        for s in normalized {
            if UnicodeClass.isWhitespace(s) {
                flush()
            } else if UnicodeClass.isPunctuation(s) {
                flush()
                wordPiece([s], into: &out)
            } else {
                word.append(s)
            }
        }
        flush()
    }

    func normalize(_ raw: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var step: [Unicode.Scalar] = []
        step.reserveCapacity(raw.count + 8)
        for s in raw {
            if options.cleanText {
                if s.value == 0 || s.value == 0xFFFD || UnicodeClass.isControl(s) { continue }
                if UnicodeClass.isWhitespace(s) { step.append(" "); continue }
            }
            if options.handleChineseChars && UnicodeClass.isCJK(s) {
                step.append(" "); step.append(s); step.append(" ")
            } else {
                step.append(s)
            }
        }
        if options.stripAccents ?? options.lowercase {
            step = Self.canonicalDecomposition(step).filter { !UnicodeClass.isNonspacingMark($0) }
        }
        if options.lowercase {
            var lowered: [Unicode.Scalar] = []
            lowered.reserveCapacity(step.count)
            for s in step {
                if s.isASCII {
                    let v = s.value
                    lowered.append(v >= 0x41 && v <= 0x5A ? Unicode.Scalar(v + 32)! : s)
                } else {
                    lowered.append(contentsOf: s.properties.lowercaseMapping.unicodeScalars)
                }
            }
            step = lowered
        }
        return step
    }

    /// NFD as the reference computes it: only the scalars its Unicode version decomposes
    /// are decomposed (the standard library knows a few newer decompositions), then
    /// combining marks are put in canonical order.
    static func canonicalDecomposition(_ input: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(input.count + 4)
        var needsOrdering = false
        for s in input {
            if s.value < 0xC0 {
                out.append(s)
            } else if UnicodeClass.isDecomposable(s) {
                for d in String(Character(s))._nfd {
                    out.append(d)
                    needsOrdering = needsOrdering || d.properties.canonicalCombiningClass.rawValue != 0
                }
            } else {
                out.append(s)
                needsOrdering = needsOrdering || s.properties.canonicalCombiningClass.rawValue != 0
            }
        }
        guard needsOrdering else { return out }
        // Canonical ordering: a stable sort of each run of non-starters by combining class.
        var i = 0
        while i < out.count {
            guard out[i].properties.canonicalCombiningClass.rawValue != 0 else { i += 1; continue }
            var j = i
            while j < out.count && out[j].properties.canonicalCombiningClass.rawValue != 0 { j += 1 }
            if j - i > 1 {
                let run = out[i..<j].enumerated().sorted {
                    let a = $0.element.properties.canonicalCombiningClass.rawValue
                    let b = $1.element.properties.canonicalCombiningClass.rawValue
                    return a != b ? a < b : $0.offset < $1.offset
                }.map(\.element)
                out.replaceSubrange(i..<j, with: run)
            }
            i = j
        }
        return out
    }

    /// Greedy longest-match-first; a word with any unmatched piece, or longer than the
    /// limit, becomes a single `[UNK]`.
    func wordPiece(_ word: [Unicode.Scalar], into out: inout [Int32]) {
        if word.count > options.maxInputCharsPerWord { out.append(unkId); return }
        // The word's UTF-8 and where each scalar starts in it: a candidate piece is a byte
        // range, looked up with or without the `##` prefix and never built as a String.
        var utf8: [UInt8] = []
        utf8.reserveCapacity(word.count * 2)
        var offsets: [Int] = []
        offsets.reserveCapacity(word.count + 1)
        for s in word {
            offsets.append(utf8.count)
            UTF8.encode(s) { utf8.append($0) }
        }
        offsets.append(utf8.count)
        let mark = out.count
        utf8.withUnsafeBufferPointer { bytes in
            continuingPrefixUTF8.withUnsafeBufferPointer { continuing in
                let none = UnsafeBufferPointer<UInt8>(start: nil, count: 0)
                var start = 0
                while start < word.count {
                    var end = word.count
                    var found: Int32? = nil
                    while start < end {
                        let piece = UnsafeBufferPointer(rebasing: bytes[offsets[start]..<offsets[end]])
                        if let id = index.id(prefix: start > 0 ? continuing : none, piece: piece) { found = id; break }
                        end -= 1
                    }
                    guard let id = found else {
                        out.removeLast(out.count - mark)
                        out.append(unkId)
                        return
                    }
                    out.append(id)
                    start = end
                }
            }
        }
    }
}

/// Character classes exactly as the reference sees them. Its tables (from the Rust
/// `unicode_categories` crate) predate the Unicode version of Swift's standard library, so
/// they are probed from the reference by tools/gen_unicode_tables.py rather than taken from
/// `Unicode.Scalar.Properties`.
enum UnicodeClass {
    static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if v < 0x80 { return v == 0x20 || (0x09...0x0D).contains(v) }
        return contains(ReferenceUnicodeTables.whitespace, v)
    }

    /// Dropped by text cleaning: control, format, private-use characters.
    static func isControl(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if v >= 0x20 && v < 0x7F { return false }
        return contains(ReferenceUnicodeTables.control, v)
    }

    /// ASCII punctuation and symbols (33–47, 58–64, 91–96, 123–126) and Unicode P*.
    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if v < 0x80 {
            return (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v)
        }
        return contains(ReferenceUnicodeTables.punctuation, v)
    }

    static func isDecomposable(_ s: Unicode.Scalar) -> Bool {
        contains(ReferenceUnicodeTables.decomposable, s.value)
    }

    static func isNonspacingMark(_ s: Unicode.Scalar) -> Bool {
        s.value >= 0x300 && contains(ReferenceUnicodeTables.nonspacingMark, s.value)
    }

    /// The CJK ideograph blocks BERT splits into single characters (not Hangul or Kana), as
    /// the reference lists them.
    static func isCJK(_ s: Unicode.Scalar) -> Bool {
        s.value >= 0x3400 && contains(ReferenceUnicodeTables.cjk, s.value)
    }

    static func contains(_ table: [(UInt32, UInt32)], _ v: UInt32) -> Bool {
        var lo = 0, hi = table.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if table[mid].1 < v { lo = mid + 1 } else { hi = mid }
        }
        return lo < table.count && table[lo].0 <= v
    }
}

extension WordPieceTokenizer {
    /// The normalizer's output for one scalar (for tests).
    public func normalizedForTesting(_ s: Unicode.Scalar) -> String {
        var out = String.UnicodeScalarView()
        out.append(contentsOf: normalize([s]))
        return String(out)
    }
    public func isPunctuationForTesting(_ s: Unicode.Scalar) -> Bool { UnicodeClass.isPunctuation(s) }
}
