#if canImport(Glibc)
import Glibc
#endif
import TriageSystem

/// Token → id lookup over the vocabulary's UTF-8 bytes: one byte array, one offset array and
/// an open-addressing table of ids, hashed with FNV-1a.
///
/// Why not `[String: Int32]`: building it hashed 30,522 Strings with a freshly seeded SipHash
/// each, about an eighth of a whole one-query `triage classify` process; this index is
/// built in one pass over the bytes. It also lets WordPiece look up a candidate piece as a
/// byte range of the word, with or without the `##` prefix, without building a String.
struct VocabularyIndex: Sendable {
    /// The tokens' UTF-8: token `i` is `bytes[starts[i] ..< ends[i]]` (for a vocab.txt, the
    /// file's own bytes in its memory map, so nothing is copied).
    private let bytes: TokenBytes
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
        String(decoding: UnsafeBufferPointer(rebasing: bytes.buffer[Int(starts[id])..<Int(ends[id])]), as: UTF8.self)
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
        self.init(bytes: TokenBytes(bytes), starts: starts, ends: ends)
    }

    /// The lines of a `vocab.txt` (UTF-8, one token per line, a trailing CR dropped from each
    /// line, the empty line after a final newline not a token), in place in its bytes.
    init(lines text: TokenBytes) {
        var starts: [Int32] = [], ends: [Int32] = []
        let t = text.buffer
        // Room for more lines than a BERT vocabulary has (7.6 bytes a line); pages of it never
        // written are never touched.
        starts.reserveCapacity(t.count / 6 + 1)
        ends.reserveCapacity(t.count / 6 + 1)
        if let base = t.baseAddress {
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

    private init(bytes: TokenBytes, starts: [Int32], ends: [Int32]) {
        let tokens = starts.count
        var capacity = 16
        while capacity < 2 * tokens { capacity <<= 1 }
        var slots = [Int32](repeating: -1, count: capacity)
        let mask = capacity - 1
        do {
            let all = bytes.buffer
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
        let all = bytes.buffer
        do {
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

/// The vocabulary's bytes: a vocab.txt's memory map (no 231 KB copy, no fresh pages at every
/// start), or an array for a vocabulary given as Strings. Immutable once made.
final class TokenBytes: @unchecked Sendable {
    let buffer: UnsafeBufferPointer<UInt8>
    /// The mapping the buffer points into; nil when the buffer is this object's own copy.
    private let mapping: MappedFile?

    init(_ bytes: [UInt8]) {
        let copy = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: max(1, bytes.count))
        _ = copy.initialize(from: bytes)
        buffer = UnsafeBufferPointer(rebasing: UnsafeBufferPointer(copy)[0..<bytes.count])
        mapping = nil
    }

    init(mapping: MappedFile) {
        self.mapping = mapping
        buffer = mapping.bytes.assumingMemoryBound(to: UInt8.self)
    }

    deinit {
        if mapping == nil { UnsafeMutableRawPointer(mutating: buffer.baseAddress)?.deallocate() }
    }
}
