import TriageJSON
import TriageSystem

/// Builds a safetensors file: tensors are laid out in the order they are added, the header
/// is padded with spaces so that the data section starts at a multiple of `alignment` bytes
/// (8 by default; 64 for weights read in place by the SIMD kernels).
public struct SafeTensorsWriter {
    private var entries: [(name: String, dtype: DType, shape: [Int], bytes: [UInt8])] = []
    public var metadata: [(String, String)] = []
    public var alignment = 8

    public init() {}

    public mutating func add(_ name: String, dtype: DType, shape: [Int], bytes: [UInt8]) {
        precondition(shape.reduce(1, *) * dtype.byteSize == bytes.count, "\(name): byte count does not match shape")
        precondition(!entries.contains { $0.name == name }, "duplicate tensor \(name)")
        entries.append((name, dtype, shape, bytes))
    }

    public mutating func add(_ name: String, shape: [Int], floats: [Float]) {
        add(name, dtype: .F32, shape: shape, bytes: floats.withUnsafeBytes { Array($0) })
    }

    public mutating func add(_ name: String, shape: [Int], halves floats: [Float]) {
        var out = [UInt8](); out.reserveCapacity(floats.count * 2)
        for f in floats { let h = FloatConversion.floatToHalf(f); out.append(UInt8(h & 0xFF)); out.append(UInt8(h >> 8)) }
        add(name, dtype: .F16, shape: shape, bytes: out)
    }

    public mutating func add(_ name: String, shape: [Int], int8s: [Int8]) {
        add(name, dtype: .I8, shape: shape, bytes: int8s.map { UInt8(bitPattern: $0) })
    }

    public mutating func add(_ name: String, shape: [Int], int32s: [Int32]) {
        add(name, dtype: .I32, shape: shape, bytes: int32s.withUnsafeBytes { Array($0) })
    }

    public func serialize() -> [UInt8] {
        var header: [(String, JSONValue)] = []
        if !metadata.isEmpty { header.append(("__metadata__", .object(metadata.map { ($0.0, .string($0.1)) }))) }
        var offset = 0
        for e in entries {
            header.append((e.name, [
                "dtype": .string(e.dtype.rawValue),
                "shape": .array(e.shape.map { .int($0) }),
                "data_offsets": [.int(offset), .int(offset + e.bytes.count)],
            ]))
            offset += e.bytes.count
        }
        var text = Array(JSONValue.object(header).serialized.utf8)
        while (8 + text.count) % max(8, alignment) != 0 { text.append(0x20) }
        var out = [UInt8](); out.reserveCapacity(8 + text.count + offset)
        let n = UInt64(text.count)
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: n >> (8 * UInt64(i)))) }
        out += text
        for e in entries { out += e.bytes }
        return out
    }

    public func write(to path: String) throws {
        try FileSystem.writeAtomically(path, bytes: serialize())
    }
}
