import Testing
import TriageTensors

/// A file with the given header text and data bytes, laid out as the format says.
func safetensorsBytes(header: String, data: [UInt8], declaredLength: UInt64? = nil) -> [UInt8] {
    let h = Array(header.utf8)
    let n = declaredLength ?? UInt64(h.count)
    return (0..<8).map { UInt8(truncatingIfNeeded: n >> (8 * UInt64($0))) } + h + data
}

@Suite struct SafeTensorsTests {
    func expectError(_ bytes: [UInt8], _ check: (SafeTensorsError) -> Bool, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try SafeTensorsFile(bytes: bytes)
            Issue.record("expected an error", sourceLocation: sourceLocation)
        } catch let e as SafeTensorsError {
            #expect(check(e), "got \(e)", sourceLocation: sourceLocation)
            #expect(!e.description.isEmpty)
        } catch {
            Issue.record("unexpected error type \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func truncatedFile() {
        expectError([1, 2, 3]) { if case .fileTooSmall(3) = $0 { true } else { false } }
    }

    @Test func headerLengthBeyondFile() {
        expectError(safetensorsBytes(header: "{}", data: [], declaredLength: 500)) {
            if case .headerBeyondFile(500, 10) = $0 { true } else { false }
        }
    }

    @Test func headerOverSaneCap() {
        expectError(safetensorsBytes(header: "{}", data: [], declaredLength: 1 << 40)) {
            if case .headerTooLarge = $0 { true } else { false }
        }
    }

    @Test func invalidJSON() {
        expectError(safetensorsBytes(header: "{\"a\": [1, 2", data: [])) {
            if case .invalidHeader(let m) = $0 { m.contains("JSON") } else { false }
        }
        expectError(safetensorsBytes(header: "[1, 2]", data: [])) {
            if case .invalidHeader = $0 { true } else { false }
        }
    }

    @Test func unknownDType() {
        let h = #"{"w": {"dtype": "F8_E9M0", "shape": [2], "data_offsets": [0, 2]}}"#
        expectError(safetensorsBytes(header: h, data: [0, 0])) {
            if case .unknownDType("w", "F8_E9M0") = $0 { true } else { false }
        }
    }

    @Test func offsetsOutOfBounds() {
        let h = #"{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}"#
        expectError(safetensorsBytes(header: h, data: [UInt8](repeating: 0, count: 8))) {
            if case .offsetsOutOfBounds("w", 0, 16, 8) = $0 { true } else { false }
        }
        let reversed = #"{"w": {"dtype": "F32", "shape": [0], "data_offsets": [4, 0]}}"#
        expectError(safetensorsBytes(header: reversed, data: [UInt8](repeating: 0, count: 4))) {
            if case .offsetsOutOfBounds = $0 { true } else { false }
        }
        let negative = #"{"w": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}}"#
        expectError(safetensorsBytes(header: negative, data: [UInt8](repeating: 0, count: 4))) {
            if case .offsetsOutOfBounds = $0 { true } else { false }
        }
    }

    @Test func overlappingOffsets() {
        let h = #"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}"#
        expectError(safetensorsBytes(header: h, data: [UInt8](repeating: 0, count: 12))) {
            if case .overlappingOrUnordered("b", 4, 8) = $0 { true } else { false }
        }
    }

    @Test func gapInData() {
        let h = #"{"a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}, "b": {"dtype": "U8", "shape": [2], "data_offsets": [3, 5]}}"#
        expectError(safetensorsBytes(header: h, data: [UInt8](repeating: 0, count: 5))) {
            if case .overlappingOrUnordered("b", 3, 2) = $0 { true } else { false }
        }
    }

    @Test func shapeSizeMismatch() {
        let h = #"{"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}"#
        expectError(safetensorsBytes(header: h, data: [UInt8](repeating: 0, count: 8))) {
            if case .sizeMismatch("w", .F32, [3], 8) = $0 { true } else { false }
        }
    }

    @Test func unusedTrailingData() {
        let h = #"{"w": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}}"#
        expectError(safetensorsBytes(header: h, data: [1, 2, 3])) {
            if case .trailingData(2, 3) = $0 { true } else { false }
        }
    }

    @Test func malformedEntries() {
        for h in [#"{"w": 3}"#, #"{"w": {"shape": [1], "data_offsets": [0, 1]}}"#,
                  #"{"w": {"dtype": "U8", "shape": [1.5], "data_offsets": [0, 1]}}"#,
                  #"{"w": {"dtype": "U8", "shape": [1], "data_offsets": [0]}}"#,
                  #"{"__metadata__": {"a": 1}}"#, #"{"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, "w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}"#] {
            expectError(safetensorsBytes(header: h, data: [7])) { _ in true }
        }
    }

    @Test func writerRoundTripsEveryDType() throws {
        var w = SafeTensorsWriter()
        w.metadata = [("format", "pt"), ("quantization", "test")]
        let floats: [Float] = [0, -1.5, 3.25, .greatestFiniteMagnitude, -.leastNonzeroMagnitude]
        w.add("f32", shape: [5], floats: floats)
        w.add("f16", shape: [5], halves: [0, -1.5, 3.25, 65504, 6e-8])
        w.add("i8", shape: [2, 2], int8s: [-128, 127, 0, -1])
        w.add("bf16", dtype: .BF16, shape: [2], bytes: [0x80, 0x3F, 0x00, 0xC0])  // 1.0, -2.0
        w.add("empty", dtype: .I64, shape: [0, 3], bytes: [])
        let bytes = w.serialize()
        let headerLength = (0..<8).reduce(0) { $0 | Int(bytes[$1]) << (8 * $1) }
        #expect((8 + headerLength) % 8 == 0, "data section must stay 8-byte aligned")
        let f = try SafeTensorsFile(bytes: bytes)
        #expect(f.metadata("quantization") == "test")
        #expect(try f.floats("f32") == floats)
        #expect(try f.floats("f16") == [0, -1.5, 3.25, 65504, Float(Float16(6e-8))])
        #expect(try f.int8s("i8") == [-128, 127, 0, -1])
        #expect(try f.floats("bf16") == [1, -2])
        #expect(f.info("empty")?.shape == [0, 3])
        #expect(throws: SafeTensorsError.self) { try f.floats("i8") }
        #expect(throws: SafeTensorsError.self) { try f.floats("nope") }
    }

    @Test func halfConversionIsExactForAllBitPatterns() {
        for bits in UInt16.min...UInt16.max {
            let expected = Float(Float16(bitPattern: bits))
            let got = FloatConversion.halfToFloat(bits)
            if expected.isNaN { #expect(got.isNaN) } else if got != expected || got.sign != expected.sign {
                Issue.record("half \(bits) → \(got), expected \(expected)"); return
            }
        }
    }

    /// The widening loop (what a model load runs) gives every half bit pattern exactly as the
    /// standard library's Float16 conversion does, NaN payloads and signed zeros included.
    @Test func widenIsExactForAllBitPatterns() {
        let halves = (0...UInt16.max).map { $0 }
        var out = [Float](repeating: 0, count: halves.count)
        halves.withUnsafeBytes { src in
            out.withUnsafeMutableBufferPointer { FloatConversion.widen(src, dtype: .F16, into: $0) }
        }
        var wrong = 0
        for (bits, got) in zip(halves, out) {
            let expected = Float(Float16(bitPattern: bits))
            if expected.isNaN ? !got.isNaN : got.bitPattern != expected.bitPattern { wrong += 1 }
        }
        #expect(wrong == 0, "\(wrong) half bit patterns widen wrongly")
        // The same bytes one byte off alignment take the unaligned loop, with the same result.
        var shifted = [UInt8](repeating: 0, count: 2 * halves.count + 1)
        halves.withUnsafeBytes { shifted.replaceSubrange(1..., with: $0) }
        var outShifted = [Float](repeating: 0, count: halves.count)
        shifted.withUnsafeBytes { raw in
            outShifted.withUnsafeMutableBufferPointer {
                FloatConversion.widen(UnsafeRawBufferPointer(rebasing: raw[1...]), dtype: .F16, into: $0)
            }
        }
        #expect(zip(out, outShifted).allSatisfy { $0.bitPattern == $1.bitPattern })
    }

    @Test func realHuggingFaceFileAndItsTruncations() throws {
        let path = Paths.fixtures + "/parity/tiny72/model.safetensors"
        let f = try SafeTensorsFile(path: path)
        #expect(f.tensors.count > 10)
        let whole = try [UInt8](FileSystemBytes.read(path))
        // Cut anywhere: always a clean error, never a crash or a read past the end.
        for cut in [0, 4, 8, 20, whole.count / 2, whole.count - 1] {
            #expect(throws: SafeTensorsError.self) { try SafeTensorsFile(bytes: Array(whole.prefix(cut))) }
        }
        // Flip bytes in the header: an error or a valid file, never a crash.
        var rng = SplitMix(seed: 7)
        let headerEnd = 8 + (0..<8).reduce(0) { $0 | Int(whole[$1]) << (8 * $1) }
        for _ in 0..<2000 {
            var m = whole
            let i = Int(rng.next() % UInt64(headerEnd))
            m[i] = UInt8(truncatingIfNeeded: rng.next())
            _ = try? SafeTensorsFile(bytes: m)
        }
    }
}

import TriageSystem
enum FileSystemBytes {
    static func read(_ path: String) throws -> [UInt8] { try FileSystem.readBytes(path) }
}

/// A small seeded generator, so that fuzz tests are repeatable.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
