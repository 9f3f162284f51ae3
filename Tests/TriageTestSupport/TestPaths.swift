import Foundation

/// Where the test targets find the repository, its fixtures, the shipped model and the
/// `triage` executable built alongside the test bundle: one copy for every test target.
public enum TestPaths {
    public static let repository: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()
    public static let fixtures = repository + "/Tests/Fixtures"
    public static let shippedModel = repository + "/weights/banking77"

    public static let triage: String = {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("triage").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir.deleteLastPathComponent()
        }
        return repository + "/.build/debug/triage"
    }()
}
