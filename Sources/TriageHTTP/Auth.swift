/// Checks `Authorization: Bearer <key>` in time that does not depend on where the first
/// wrong byte is (only on the lengths), so the key cannot be guessed byte by byte.
struct BearerKey: Sendable {
    private let expected: [UInt8]

    init(_ key: String) { expected = Array("Bearer \(key)".utf8) }

    func accepts(_ header: String?) -> Bool {
        guard let header else { return false }
        let given = Array(header.utf8)
        var difference = UInt8(given.count == expected.count ? 0 : 1)
        for i in 0..<expected.count {
            difference |= expected[i] ^ (i < given.count ? given[i] : 0)
        }
        return difference == 0
    }
}
