import Foundation
import TriageTestSupport
import Testing
import TriageJSON
import TriageSystem

/// Paths to the committed fixtures and to the built `triage` binary.
enum Paths {
    static let repository = TestPaths.repository
    static let fixtures = TestPaths.fixtures
    static let shippedModel = TestPaths.shippedModel
    /// The `triage` executable built alongside the test bundle.
    static let triage = TestPaths.triage

    /// QEMU's x86-64 user-mode emulator, from the PATH.
    static let qemu: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { $0 + "/qemu-x86_64" }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }()
}

func readJSONLines(_ path: String) throws -> [JSONValue] {
    try FileSystem.readText(path).split(separator: "\n").map { try JSONValue.parse(String($0)) }
}

func readJSON(_ path: String) throws -> JSONValue { try JSONValue.parse(FileSystem.readText(path)) }

extension JSONValue {
    var floats: [Float] { (arrayValue ?? []).map { Float($0.doubleValue ?? .nan) } }
    var int32s: [Int32] { (arrayValue ?? []).map { Int32($0.intValue ?? -1) } }
}

struct ProcessResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs the real `triage` binary with arguments and optional standard input; with
/// `emulatedCPU`, under `qemu-x86_64 -cpu MODEL` (user-mode emulation of that CPU).
func runTriage(_ arguments: [String], stdin: String? = nil, environment: [String: String] = [:],
               emulatedCPU: String? = nil) throws -> ProcessResult {
    let process = Process()
    if let emulatedCPU {
        process.executableURL = URL(fileURLWithPath: try #require(Paths.qemu, "qemu-x86_64 not found; `make test` installs qemu-user"))
        process.arguments = ["-cpu", emulatedCPU, Paths.triage] + arguments
    } else {
        process.executableURL = URL(fileURLWithPath: Paths.triage)
        process.arguments = arguments
    }
    // Output goes to files, so neither pipe can fill up and block the child.
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("triage-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    var env = ProcessInfo.processInfo.environment
    // Each run gets its own response cache unless the test shares one on purpose.
    env["XDG_CACHE_HOME"] = dir.path
    for (k, v) in environment { env[k] = v }
    process.environment = env
    let outURL = dir.appendingPathComponent("out"), errURL = dir.appendingPathComponent("err")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
    let input = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = input
    try process.run()
    if let stdin { input.fileHandleForWriting.write(stdin.data(using: .utf8)!) }
    try input.fileHandleForWriting.close()
    process.waitUntilExit()
    try out.close(); try err.close()
    let outData = try Data(contentsOf: outURL), errData = try Data(contentsOf: errURL)
    return ProcessResult(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
}
