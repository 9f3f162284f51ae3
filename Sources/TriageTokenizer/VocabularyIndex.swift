#if canImport(Glibc)
import Glibc
#endif

/// Token → id lookup over the vocabulary's UTF-8 bytes: one byte array, one offset array and
/// an open-addressing table of ids, hashed with FNV-1a.
///
/// Why not `[String: Int32]`: building it hashed 30,522 Strings with a freshly seeded SipHash
/// each, about an eighth of a whole one-query `triage classify` process; this index is
/// built in one pass over the bytes. It also lets WordPiece look up a candidate piece as a
/// byte range of the word, with or without the `##` prefix, without building a String.
struct VocabularyIndex: Sendable {
    /// The tokens' UTF-8: token `i` is `bytes[starts[i] ..< ends[i]]` (for a vocab.txt, the
    /// file's own bytes, so nothing is copied).
    private let bytes: [UInt8]
    private let starts: [Int32]
    private let ends: [Int32]
    /// Token ids, -1 where empty; the count is a power of two at least twice the tokens'.
    private let slots: [Int32]
    private let mask: Int

    private static let fnvBasis: UInt64 = 0xcbf2_9ce4_8422_2325
    private static let fnvPrime: UInt64 = 0x0000_0100_0000_01b3

    var count: Int { starts.count }

    /// Token `id` as a String (decoded on demand: nothing on the hot path needs the Strings).
    func token(_ id: Int) -> String {
        bytes.withUnsafeBufferPointer {
            String(decoding: UnsafeBufferPointer(rebasing: $0[Int(starts[id])..<Int(ends[id])]), as: UTF8.self)
        }
    }

    init(_ vocabulary: [String]) {
        var bytes: [UInt8] = [], starts: [Int32] = [], ends: [Int32] = []
        bytes.reserveCapacity(vocabulary.count * 8)
        starts.reserveCapacity(vocabulary.count)
        ends.reserveCapacity(vocabulary.count)
        for token in vocabulary {
            starts.append(Int32(bytes.count))
            bytes.append(contentsOf: token.utf8)
            ends.append(Int32(bytes.count))
        }
        self.init(bytes: bytes, starts: starts, ends: ends)
    }

    /// The lines of a `vocab.txt` (UTF-8, one token per line, a trailing CR dropped from each
    /// line, the empty line after a final newline not a token), in place in its bytes.
    init(lines text: [UInt8]) {
        var starts: [Int32] = [], ends: [Int32] = []
        starts.reserveCapacity(text.count / 6)
        ends.reserveCapacity(text.count / 6)
        text.withUnsafeBufferPointer { t in
            guard let base = t.baseAddress else { return }
            var start = 0
            while start < t.count {
                // memchr finds each newline with vector compares: a byte-by-byte loop cost
                // ~3.4 M instructions over BERT's 231 KB vocab.txt at every start.
                let i = memchr(base + start, 0x0A, t.count - start).map { UnsafePointer($0.assumingMemoryBound(to: UInt8.self)) - base } ?? t.count
                starts.append(Int32(start))
                ends.append(Int32(i > start && t[i - 1] == UInt8(ascii: "\r") ? i - 1 : i))
                start = i + 1
            }
        }
        self.init(bytes: text, starts: starts, ends: ends)
    }

    private init(bytes: [UInt8], starts: [Int32], ends: [Int32]) {
        let tokens = starts.count
        var capacity = 16
        while capacity < 2 * tokens { capacity <<= 1 }
        var slots = [Int32](repeating: -1, count: capacity)
        let mask = capacity - 1
        bytes.withUnsafeBufferPointer { all in
            slots.withUnsafeMutableBufferPointer { slots in
                for id in 0..<tokens {
                    let token = UnsafeBufferPointer(rebasing: all[Int(starts[id])..<Int(ends[id])])
                    var h = Self.fnvBasis
                    for b in token { h = (h ^ UInt64(b)) &* Self.fnvPrime }
                    var slot = Int(truncatingIfNeeded: h) & mask
                    var duplicate = false
                    while slots[slot] >= 0 {
                        let other = Int(slots[slot])
                        if token.elementsEqual(all[Int(starts[other])..<Int(ends[other])]) { duplicate = true; break }
                        slot = (slot + 1) & mask
                    }
                    // The first of two equal tokens keeps the id, as the reference's vocabulary map does.
                    if !duplicate { slots[slot] = Int32(id) }
                }
            }
        }
        self.bytes = bytes
        self.starts = starts
        self.ends = ends
        self.slots = slots
        self.mask = mask
    }

    func id(of token: String) -> Int32? {
        var token = token
        return token.withUTF8 { id(prefix: UnsafeBufferPointer(start: nil, count: 0), piece: $0) }
    }

    /// The id of `prefix` followed by `piece` (both UTF-8), if the vocabulary has it.
    func id(prefix: UnsafeBufferPointer<UInt8>, piece: UnsafeBufferPointer<UInt8>) -> Int32? {
        var h = Self.fnvBasis
        for b in prefix { h = (h ^ UInt64(b)) &* Self.fnvPrime }
        for b in piece { h = (h ^ UInt64(b)) &* Self.fnvPrime }
        let length = prefix.count + piece.count
        return bytes.withUnsafeBufferPointer { all in
            var slot = Int(truncatingIfNeeded: h) & mask
            while true {
                let id = slots[slot]
                if id < 0 { return nil }
                let start = Int(starts[Int(id)]), end = Int(ends[Int(id)])
                if end - start == length
                    && prefix.elementsEqual(all[start..<(start + prefix.count)])
                    && piece.elementsEqual(all[(start + prefix.count)..<end]) {
                    return id
                }
                slot = (slot + 1) & mask
            }
        }
    }
}

/// The vocabulary's tokens in id order, as Strings decoded when read.
public struct Vocabulary: RandomAccessCollection, Sendable {
    let index: VocabularyIndex
    public var startIndex: Int { 0 }
    public var endIndex: Int { index.count }
    public subscript(id: Int) -> String { index.token(id) }
}
