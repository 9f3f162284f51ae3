// swift-tools-version:6.0
import PackageDescription

// TRIAGE_CLI_ONLY=1 builds the command-line tool without `serve`, and so without SwiftNIO
// and Hummingbird (the binary is several times smaller; see README, "triage serve").
let cliOnly = Context.environment["TRIAGE_CLI_ONLY"] == "1"

// Data flows tokenizer → tensors → kernels → model → classifier → cascade → record →
// service → HTTP → CLI; each module
// depends only on modules earlier in that chain.
let package = Package(
    name: "triage",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "triage", targets: ["TriageCLI"]),
        .library(name: "Triage", targets: [
            "TriageSystem", "TriageJSON", "TriageTokenizer", "TriageTensors", "TriageKernels",
            "TriageKernelsSSE4", "TriageKernelsAVX2", "TriageKernelsAVX512", "TriageKernelSelect",
            "TriageModel", "TriageClassifier", "TriageCloud", "TriageAnswers", "TriageCascade", "TriageRecord", "TriageFleet",
            "TriageService",
        ]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ] + (cliOnly ? [] : [
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ]),
    targets: [
        // System libraries. An edge box needs only two besides the binary, OpenBLAS (for FP32)
        // and libcurl (for the cloud tier); both are loaded with dlopen when first used.
        .systemLibrary(name: "CCurl", path: "Sources/CCurl",
                       providers: [.apt(["libcurl4-openssl-dev"])]),
        // SQLite is linked statically from libsqlite3-dev's archive (see its module map).
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite", providers: [.apt(["libsqlite3-dev"])]),

        .target(name: "TriageSystem"),
        .target(name: "TriageJSON"),
        .target(name: "TriageTokenizer", dependencies: ["TriageJSON", "TriageSystem"]),
        .target(name: "TriageTensors", dependencies: ["TriageJSON", "TriageSystem"]),
        .target(name: "TriageKernels", dependencies: ["TriageSystem"]),
        // One module per instruction set, each compiled for its CPU level and called only
        // when the running CPU reports it: the same binary runs on any x86-64.
        .target(name: "TriageKernelsSSE4", dependencies: ["TriageKernels"],
                swiftSettings: [.unsafeFlags(["-target-cpu", "nehalem", "-Xcc", "-march=nehalem"])]),
        // A header-only module: the prefetch instruction, which Swift cannot name itself.
        .systemLibrary(name: "CPrefetch", path: "Sources/CPrefetch"),
        .target(name: "TriageKernelsAVX2", dependencies: ["TriageKernels", "CPrefetch"],
                swiftSettings: [.unsafeFlags(["-target-cpu", "haswell", "-Xcc", "-mavx2", "-Xcc", "-mfma",
                                              "-Xcc", "-mbmi2", "-Xcc", "-mf16c"])]),
        .target(name: "TriageKernelsAVX512", dependencies: ["TriageKernels"],
                swiftSettings: [.unsafeFlags(["-target-cpu", "cascadelake", "-Xcc", "-mavx512f", "-Xcc", "-mavx512bw",
                                              "-Xcc", "-mavx512dq", "-Xcc", "-mavx512vl", "-Xcc", "-mavx512vnni",
                                              "-Xcc", "-mavx2", "-Xcc", "-mfma"])]),
        .target(name: "TriageKernelSelect", dependencies: ["TriageKernels", "TriageKernelsSSE4", "TriageKernelsAVX2", "TriageKernelsAVX512", "TriageSystem"]),
        .target(name: "TriageModel", dependencies: ["TriageJSON", "TriageSystem", "TriageTensors", "TriageKernels"]),
        .target(name: "TriageClassifier", dependencies: [
            "TriageJSON", "TriageSystem", "TriageTokenizer", "TriageTensors", "TriageKernels", "TriageKernelSelect", "TriageModel",
        ]),
        // The cloud tiers: the Anthropic Messages API over libcurl, retries, circuit breakers.
        .target(name: "TriageCloud", dependencies: ["CCurl", "TriageJSON", "TriageSystem"]),
        // The offline answers for in-scope intents, with small entity extraction.
        .target(name: "TriageAnswers", dependencies: ["TriageJSON", "TriageSystem"]),
        // The router and the cascade: signals, rules, cache, edge and cloud answers.
        .target(name: "TriageCascade", dependencies: [
            "TriageJSON", "TriageSystem", "TriageClassifier", "TriageCloud", "TriageAnswers",
        ]),
        // The durable decision record (SQLite) and the operator's report.
        .target(name: "TriageRecord", dependencies: ["CSQLite", "TriageJSON", "TriageSystem", "TriageCloud", "TriageCascade"]),
        // The fleet: ships each box's record to one PostgreSQL database and reads it back.
        .target(name: "TriageFleet", dependencies: [
            "TriageJSON", "TriageSystem", "TriageCascade", "TriageRecord",
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The assembled engine shared by the CLI and the server: configuration, model, answer
        // book, tiers, cache, record; the wire JSON; error kinds; the batching queue.
        .target(name: "TriageService", dependencies: [
            "TriageJSON", "TriageSystem", "TriageTokenizer", "TriageKernels", "TriageModel", "TriageClassifier", "TriageCloud",
            "TriageAnswers", "TriageCascade", "TriageRecord",
        ]),
        .executableTarget(name: "TriageCLI", dependencies: [
            "TriageSystem", "TriageJSON", "TriageTokenizer", "TriageTensors", "TriageKernels", "TriageModel",
            "TriageClassifier", "TriageKernelSelect", "TriageCloud", "TriageAnswers", "TriageCascade", "TriageRecord", "TriageFleet",
            "TriageService",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ] + (cliOnly ? [] : ["TriageHTTP"]),
        swiftSettings: cliOnly ? [] : [.define("TRIAGE_SERVE")]),

        .testTarget(name: "TriageTests", dependencies: [
            "TriageSystem", "TriageJSON", "TriageTokenizer", "TriageTensors", "TriageKernels", "TriageModel",
            "TriageClassifier", "TriageKernelsSSE4", "TriageKernelsAVX2", "TriageKernelsAVX512", "TriageKernelSelect",
            "TriageCloud", "TriageAnswers", "TriageCascade", "TriageRecord", "TriageTestSupport",
        ]),
        // A real HTTP server on 127.0.0.1 speaking the Messages API, shared by the test targets.
        .target(name: "TriageTestSupport", path: "Tests/TriageTestSupport"),
        .testTarget(name: "TriageCloudTests", dependencies: ["TriageCloud", "TriageJSON", "TriageSystem", "TriageTestSupport"]),
        .testTarget(name: "TriageAnswersTests", dependencies: ["TriageAnswers", "TriageJSON", "TriageSystem"]),
        .testTarget(name: "TriageRecordTests", dependencies: ["TriageRecord", "TriageCascade", "TriageJSON", "TriageSystem"]),
        .testTarget(name: "TriageFleetTests", dependencies: [
            "TriageFleet", "TriageRecord", "TriageCascade", "TriageJSON", "TriageSystem", "TriageTestSupport",
            .product(name: "PostgresNIO", package: "postgres-nio"),
        ]),
    ] + (cliOnly ? [] : [
        // `triage serve`: handlers, status mapping, metrics and lifecycle over TriageService.
        .target(name: "TriageHTTP", dependencies: [
            "TriageJSON", "TriageSystem", "TriageClassifier", "TriageCascade", "TriageService",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        ]),
        .testTarget(name: "TriageHTTPTests", dependencies: [
            "TriageHTTP", "TriageService", "TriageClassifier", "TriageCascade", "TriageCloud", "TriageJSON",
            "TriageModel", "TriageRecord", "TriageSystem", "TriageTestSupport",
        ]),
    ]),
    swiftLanguageModes: [.v6]
)
