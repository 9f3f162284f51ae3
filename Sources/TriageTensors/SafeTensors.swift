// The safetensors format: an 8-byte little-endian header length, a JSON header mapping each
// tensor name to {dtype, shape, data_offsets} (plus an optional "__metadata__" of strings),
// then the data section. Files are memory-mapped and validated once, strictly, so that no
// later read can leave the mapping; tensors are then read without copying.

import TriageJSON
import TriageSystem

public enum DType: String, Sendable, CaseIterable {
    case F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL

    public var byteSize: Int {
        switch self {
        case .F64, .I64: return 8
        case .F32, .I32: return 4
        case .F16, .BF16, .I16: return 2
        case .I8, .U8, .BOOL: return 1
        }
    }
}

public struct TensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// Byte range inside the data section.
    public let dataRange: Range<Int>
    public var elementCount: Int { shape.reduce(1, *) }
}

public enum SafeTensorsError: Error, CustomStringConvertible, Equatable {
    case cannotRead(String)
    case fileTooSmall(size: Int)
    case headerTooLarge(length: UInt64, limit: Int)
    case headerBeyondFile(length: UInt64, fileSize: Int)
    case invalidHeader(String)
    case invalidEntry(tensor: String, reason: String)
    case unknownDType(tensor: String, dtype: String)
    case offsetsOutOfBounds(tensor: String, begin: Int, end: Int, dataSize: Int)
    case overlappingOrUnordered(tensor: String, begin: Int, expected: Int)
    case sizeMismatch(tensor: String, dtype: DType, shape: [Int], bytes: Int)
    case trailingData(used: Int, dataSize: Int)
    case missingTensor(String)
    case unsupportedDType(tensor: String, dtype: DType, wanted: String)

    public var description: String {
        switch self {
        case let .cannotRead(m): return m
        case let .fileTooSmall(size):
            return "truncated safetensors file: \(size) bytes, fewer than the 8-byte header length"
        case let .headerTooLarge(length, limit):
            return "safetensors header length \(length) exceeds the limit of \(limit) bytes"
        case let .headerBeyondFile(length, fileSize):
            return "safetensors header length \(length) runs past the end of the \(fileSize)-byte file (truncated file?)"
        case let .invalidHeader(m): return "invalid safetensors header: \(m)"
        case let .invalidEntry(t, r): return "invalid safetensors entry for tensor '\(t)': \(r)"
        case let .unknownDType(t, d): return "tensor '\(t)' has unknown dtype '\(d)'"
        case let .offsetsOutOfBounds(t, b, e, n):
            return "tensor '\(t)' data offsets [\(b), \(e)] are outside the \(n)-byte data section"
        case let .overlappingOrUnordered(t, b, expected):
            return "tensor '\(t)' starts at byte \(b) of the data section, expected \(expected): data overlaps, is out of order or has a gap"
        case let .sizeMismatch(t, d, s, bytes):
            let need = s.reduce(1, *) * d.byteSize
            return "tensor '\(t)' holds \(bytes) bytes but dtype \(d.rawValue) × shape \(s) needs \(need)"
        case let .trailingData(used, size):
            return "safetensors data section is \(size) bytes but the tensors use \(used)"
        case let .missingTensor(t): return "no tensor named '\(t)'"
        case let .unsupportedDType(t, d, w): return "tensor '\(t)' has dtype \(d.rawValue), expected \(w)"
        }
    }
}

public final class SafeTensorsFile: @unchecked Sendable {
    /// Headers over 100 MB are refused, as in the reference implementation.
    public static let maxHeaderLength = 100_000_000

    public let path: String
    public let metadata: [(String, String)]
    /// Tensors in file order.
    public let tensors: [TensorInfo]
    private let index: [String: Int]
    private let mapping: MappedFile?
    private let owned: UnsafeMutableRawBufferPointer?
    /// The whole file and where its data section starts.
    private let fileBytes: UnsafeRawBufferPointer
    private let dataStart: Int

    public convenience init(path: String) throws {
        let m: MappedFile
        do { m = try MappedFile(path: path) } catch { throw SafeTensorsError.cannotRead("\(error)") }
        try self.init(path: path, mapping: m, owned: nil)
    }

    /// Parses an in-memory file (used by tests and by the writer's round trip).
    public convenience init(bytes: [UInt8], name: String = "<memory>") throws {
        try self.init(path: name, mapping: nil, owned: bytes)
    }

    private init(path: String, mapping: MappedFile?, owned bytes: [UInt8]?) throws {
        self.path = path
        self.mapping = mapping
        if let mapping {
            owned = nil
            fileBytes = mapping.bytes
        } else {
            let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, bytes!.count), alignment: 64)
            bytes!.withUnsafeBytes { if $0.count > 0 { copy.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: $0.count) } }
            owned = copy
            fileBytes = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(copy)[0..<bytes!.count])
        }
        let parsed: (metadata: [(String, String)], tensors: [TensorInfo], dataStart: Int)
        do { parsed = try Self.parseHeader(fileBytes) } catch { owned?.deallocate(); throw error }
        metadata = parsed.metadata
        tensors = parsed.tensors
        dataStart = parsed.dataStart
        var index: [String: Int] = [:]
        for (i, t) in tensors.enumerated() { index[t.name] = i }
        self.index = index
    }

    deinit { owned?.deallocate() }

    static func parseHeader(_ raw: UnsafeRawBufferPointer) throws
        -> (metadata: [(String, String)], tensors: [TensorInfo], dataStart: Int)
    {
        guard raw.count >= 8 else { throw SafeTensorsError.fileTooSmall(size: raw.count) }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(raw[i]) << (8 * UInt64(i)) }
        if n > UInt64(maxHeaderLength) { throw SafeTensorsError.headerTooLarge(length: n, limit: maxHeaderLength) }
        guard 8 + Int(n) <= raw.count else { throw SafeTensorsError.headerBeyondFile(length: n, fileSize: raw.count) }
        let headerBytes = UnsafeRawBufferPointer(rebasing: raw[8..<(8 + Int(n))])
        let header: JSONValue
        do { header = try JSONValue.parse(bytes: headerBytes) } catch { throw SafeTensorsError.invalidHeader("\(error)") }
        guard let pairs = header.objectPairs else { throw SafeTensorsError.invalidHeader("the header is not a JSON object") }

        let dataStart = 8 + Int(n)
        let dataSize = raw.count - dataStart
        var metadata: [(String, String)] = []
        var tensors: [TensorInfo] = []
        var seen = Set<String>()
        for (name, entry) in pairs {
            guard seen.insert(name).inserted else { throw SafeTensorsError.invalidHeader("duplicate key '\(name)'") }
            if name == "__metadata__" {
                guard let m = entry.objectPairs else { throw SafeTensorsError.invalidHeader("__metadata__ is not an object") }
                for (k, v) in m {
                    guard let s = v.stringValue else { throw SafeTensorsError.invalidHeader("__metadata__ value for '\(k)' is not a string") }
                    metadata.append((k, s))
                }
                continue
            }
            guard entry.objectPairs != nil else { throw SafeTensorsError.invalidEntry(tensor: name, reason: "not an object") }
            guard let dtypeName = entry["dtype"]?.stringValue else { throw SafeTensorsError.invalidEntry(tensor: name, reason: "missing dtype") }
            guard let dtype = DType(rawValue: dtypeName) else { throw SafeTensorsError.unknownDType(tensor: name, dtype: dtypeName) }
            guard let shapeValues = entry["shape"]?.arrayValue else { throw SafeTensorsError.invalidEntry(tensor: name, reason: "missing shape") }
            var shape: [Int] = []
            var elements = 1
            for d in shapeValues {
                guard let v = d.intValue, v >= 0 else { throw SafeTensorsError.invalidEntry(tensor: name, reason: "shape has a non-integer or negative dimension") }
                let (p, overflow) = elements.multipliedReportingOverflow(by: v)
                guard !overflow, p <= Int(Int32.max) * 64 else { throw SafeTensorsError.invalidEntry(tensor: name, reason: "shape \(shapeValues.map { $0.serialized }) is too large") }
                elements = p
                shape.append(v)
            }
            guard let offsets = entry["data_offsets"]?.arrayValue, offsets.count == 2,
                  let begin = offsets[0].intValue, let end = offsets[1].intValue
            else { throw SafeTensorsError.invalidEntry(tensor: name, reason: "data_offsets must be two integers") }
            guard begin >= 0, end >= begin, end <= dataSize else {
                throw SafeTensorsError.offsetsOutOfBounds(tensor: name, begin: begin, end: end, dataSize: dataSize)
            }
            let bytes = end - begin
            guard bytes == elements * dtype.byteSize else {
                throw SafeTensorsError.sizeMismatch(tensor: name, dtype: dtype, shape: shape, bytes: bytes)
            }
            tensors.append(TensorInfo(name: name, dtype: dtype, shape: shape, dataRange: begin..<end))
        }
        // Data must be contiguous: sorted by offset, each tensor starting where the last ended.
        let sorted = tensors.sorted { ($0.dataRange.lowerBound, $0.dataRange.upperBound) < ($1.dataRange.lowerBound, $1.dataRange.upperBound) }
        var expected = 0
        for t in sorted {
            guard t.dataRange.lowerBound == expected else {
                throw SafeTensorsError.overlappingOrUnordered(tensor: t.name, begin: t.dataRange.lowerBound, expected: expected)
            }
            expected = t.dataRange.upperBound
        }
        guard expected == dataSize else { throw SafeTensorsError.trailingData(used: expected, dataSize: dataSize) }
        return (metadata, tensors, dataStart)
    }

    public func info(_ name: String) -> TensorInfo? { index[name].map { tensors[$0] } }

    public func metadata(_ key: String) -> String? { metadata.first { $0.0 == key }?.1 }

    /// The whole data section (every tensor's bytes), inside the mapping.
    public var dataSection: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: fileBytes[dataStart...]) }

    /// Advises the kernel that `tensor` is read a few rows at a time in no order (an embedding
    /// table): on a cold page cache a row's page fault then reads that page, not a readahead
    /// window around it. Nothing for an in-memory file.
    public func adviseRandomAccess(_ tensor: TensorInfo) {
        mapping?.adviseRandomAccess((dataStart + tensor.dataRange.lowerBound)..<(dataStart + tensor.dataRange.upperBound))
    }

    /// The raw little-endian bytes of a tensor, inside the mapping (no copy).
    public func bytes(of tensor: TensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: fileBytes[(dataStart + tensor.dataRange.lowerBound)..<(dataStart + tensor.dataRange.upperBound)])
    }

    public func bytes(_ name: String) throws -> UnsafeRawBufferPointer {
        guard let t = info(name) else { throw SafeTensorsError.missingTensor(name) }
        return bytes(of: t)
    }

    /// A float tensor as FP32: F32 is copied as is, F16 and BF16 are widened exactly.
    public func floats(_ name: String) throws -> [Float] {
        guard let t = info(name) else { throw SafeTensorsError.missingTensor(name) }
        guard [.F32, .F16, .BF16].contains(t.dtype) else {
            throw SafeTensorsError.unsupportedDType(tensor: name, dtype: t.dtype, wanted: "F32, F16 or BF16")
        }
        let src = bytes(of: t)
        // Written once by the widening, not zero-filled first.
        return [Float](unsafeUninitializedCapacity: t.elementCount) { dst, count in
            FloatConversion.widen(src, dtype: t.dtype, into: dst)
            count = t.elementCount
        }
    }

    /// An I8 tensor, copied.
    public func int8s(_ name: String) throws -> [Int8] {
        guard let t = info(name) else { throw SafeTensorsError.missingTensor(name) }
        guard t.dtype == .I8 else { throw SafeTensorsError.unsupportedDType(tensor: name, dtype: t.dtype, wanted: "I8") }
        return Array(bytes(of: t).bindMemory(to: Int8.self))
    }

    /// An I32 tensor (little-endian), copied.
    public func int32s(_ name: String) throws -> [Int32] {
        guard let t = info(name) else { throw SafeTensorsError.missingTensor(name) }
        guard t.dtype == .I32 else { throw SafeTensorsError.unsupportedDType(tensor: name, dtype: t.dtype, wanted: "I32") }
        let src = bytes(of: t)
        return (0..<t.elementCount).map { Int32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) }
    }
}

/// Exact widening of half-precision formats to FP32.
public enum FloatConversion {
    public static func widen(_ src: UnsafeRawBufferPointer, dtype: DType, into dst: UnsafeMutableBufferPointer<Float>) {
        switch dtype {
        case .F32:
            precondition(src.count == dst.count * 4)
            if src.count > 0 { UnsafeMutableRawPointer(dst.baseAddress!).copyMemory(from: src.baseAddress!, byteCount: src.count) }
        case .F16:
            precondition(src.count == dst.count * 2)
            guard let base = src.baseAddress, let out = dst.baseAddress else { return }
            if Int(bitPattern: base) % 2 == 0 {
                // Aligned (every tensor a safetensors writer puts at an even offset): a plain
                // loop over UInt16 that the compiler vectorises.
                let halves = base.assumingMemoryBound(to: UInt16.self)
                for i in 0..<dst.count { out[i] = halfToFloat(UInt16(littleEndian: halves[i])) }
            } else {
                for i in 0..<dst.count { out[i] = halfToFloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
            }
        case .BF16:
            precondition(src.count == dst.count * 2)
            for i in 0..<dst.count {
                dst[i] = Float(bitPattern: UInt32(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16)
            }
        default:
            break
        }
    }

    /// IEEE binary16 → binary32 by bit manipulation (exact, handles subnormals, inf, NaN).
    /// Written with selects rather than early returns so the widening loop vectorises: an
    /// INT8 model widens its ~230,000 F16 biases and position embeddings at every start,
    /// which cost ~7 M instructions, 7 % of a one-query process, with the branchy version.
    @inline(__always)
    public static func halfToFloat(_ h: UInt16) -> Float {
        let bits = UInt32(h)
        let sign = (bits & 0x8000) << 16
        let magnitude = bits & 0x7FFF
        // A normal number: the exponent rebiased from 15 to 127 (+112 << 23), the mantissa shifted.
        var f = (magnitude << 13) &+ 0x3800_0000
        // Inf and NaN: the exponent all ones (another +112 << 23 reaches 255), the payload kept.
        f = magnitude >= 0x7C00 ? f &+ 0x3800_0000 : f
        // Zero and subnormals: mantissa × 2^-24, exactly representable in FP32.
        f = magnitude < 0x0400 ? (Float(Int32(bitPattern: magnitude)) * 5.9604644775390625e-08).bitPattern : f
        return Float(bitPattern: sign | f)
    }

    /// FP32 → binary16, round to nearest even (used by the writer and by tests).
    public static func floatToHalf(_ f: Float) -> UInt16 {
        Float16(f).bitPattern
    }
}
