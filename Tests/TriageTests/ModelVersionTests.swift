import Foundation
import Testing
import TriageClassifier
import TriageSystem

/// The version recorded with every decision changes whenever the weights do, even when a
/// retrained model keeps every tensor's name and shape, and stays put when nothing changed.
@Suite struct ModelVersionTests {
    @Test func versionFollowsTheWeightBytes() throws {
        let root = NSTemporaryDirectory() + "triage-version-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let original = try CascadeTests.modelDirectory()
        defer { try? FileManager.default.removeItem(atPath: original) }
        let name = String(original.split(separator: "/").last!)
        for copy in ["a", "b"] {
            try FileManager.default.createDirectory(atPath: root + "/" + copy, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: original, toPath: root + "/" + copy + "/" + name)
        }
        func version(_ dir: String) throws -> String { try Classifier.load(directory: dir).modelVersion }
        let base = try version(original)
        #expect(try version(root + "/a/" + name) == base)
        #expect(base.hasPrefix(name + "@"))

        // One weight byte of the last tensor changed: same names, shapes and size.
        let path = root + "/b/" + name + "/model.safetensors"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[bytes.count - 3] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: path))
        #expect(try version(root + "/b/" + name) != base)

        // The fingerprint itself: every byte counts, including a tail shorter than a word.
        let data: [UInt8] = Array(0..<99)
        let reference = data.withUnsafeBytes { Fingerprint.of($0) }
        for i in data.indices {
            var changed = data
            changed[i] ^= 0x80
            #expect(changed.withUnsafeBytes { Fingerprint.of($0) } != reference, "byte \(i)")
        }
    }
}
