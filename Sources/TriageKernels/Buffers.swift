/// A fixed-size, 64-byte aligned FP32 buffer that owns its memory. Weights and scratch
/// space live in these so that kernels get raw pointers with no copy-on-write checks.
public final class FloatBuffer: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>

    public init(count: Int) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, count) * 4, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(1, count))
        pointer.initialize(repeating: 0, count: max(1, count))
    }

    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { if let b = $0.baseAddress { pointer.update(from: b, count: values.count) } }
    }

    deinit { pointer.deallocate() }

    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
    public subscript(i: Int) -> Float {
        get { pointer[i] }
        set { pointer[i] = newValue }
    }
}

/// Scratch space that grows to the largest request and is then reused, so a steady stream
/// of queries allocates nothing in the forward pass.
public struct ScratchBuffer {
    public private(set) var buffer = FloatBuffer(count: 0)
    public init() {}
    public mutating func pointer(count: Int) -> UnsafeMutablePointer<Float> {
        if buffer.count < count { buffer = FloatBuffer(count: max(count, buffer.count * 3 / 2)) }
        return buffer.pointer
    }
}
