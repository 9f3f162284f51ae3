#if TRIAGE_SERVE
import ArgumentParser
import Logging
import TriageClassifier
import TriageFleet
import TriageHTTP
import TriageService
import TriageSystem

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve classify and ask over HTTP: TEI's /predict and triage's /v1/classify and /v1/ask.",
        discussion: """
            Loads the model (and its INT8 twin with --int8), the answer book, the config, the \
            cloud tiers and the record once, and answers until SIGTERM or SIGINT, which stop \
            accepting, finish the accepted requests (at most --shutdown-timeout seconds) and exit 0. \
            SIGHUP loads the model directory and the config again; a broken one is refused and \
            the running one keeps serving.

            Endpoints: POST /predict, POST /, POST /tokenize, GET /info, GET /health, GET /metrics \
            (as Hugging Face text-embeddings-inference), POST /v1/classify, POST /v1/ask, GET /livez, \
            GET /readyz, GET /openapi.json. With --api-key (or TRIAGE_API_KEY) every endpoint but \
            /health, /livez and /readyz needs `Authorization: Bearer <key>`.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var runtimeOptions: RuntimeOptions
    @Option(help: "Address to listen on (127.0.0.1: this machine only).") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0: any free port).") var port = 3000
    @Option(help: ArgumentHelp("Config file (JSON).", valueName: "FILE")) var config: String?
    @Option(help: ArgumentHelp("API key clients must send as `Authorization: Bearer <key>` (default: $TRIAGE_API_KEY).", valueName: "KEY"))
    var apiKey: String?
    @Option(help: "Tokens in one forward pass.") var maxBatchTokens = 16_384
    @Option(help: "Sequences in one forward pass.") var maxBatchRequests = 64
    @Option(help: "Sequences admitted at once; past it the server answers 429.") var maxConcurrentRequests = 512
    @Option(help: "Largest request body in bytes (413 past it).") var payloadLimit = 2 * 1024 * 1024
    @Option(help: "Inputs in one request (422 past it).") var maxClientBatchSize = 32
    @Option(help: "Seconds a request may wait for the model (503 past it; 0: no limit).") var requestTimeout = 30.0
    @Option(help: "Seconds to finish accepted requests after SIGTERM/SIGINT.") var shutdownTimeout = 30.0
    @Option(help: "Threads for /v1/ask's blocking cloud calls.") var cloudThreads = 8
    @Flag(help: "Log one JSON object per line (default: plain text), on standard error.") var jsonLogs = false
    @OptionGroup var recordOptions: RecordOptions

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535") }
        guard maxBatchTokens >= 1, maxBatchRequests >= 1, maxConcurrentRequests >= 1, maxClientBatchSize >= 1 else {
            throw ValidationError("--max-batch-tokens, --max-batch-requests, --max-concurrent-requests and --max-client-batch-size must be at least 1")
        }
        guard payloadLimit >= 1 else { throw ValidationError("--payload-limit must be at least 1 byte") }
        guard requestTimeout >= 0, shutdownTimeout >= 0 else { throw ValidationError("timeouts cannot be negative") }
        guard (1...256).contains(cloudThreads) else { throw ValidationError("--cloud-threads must be between 1 and 256") }
    }

    func run() async throws {
        let json = jsonLogs
        LoggingSystem.bootstrap { label in
            if json { return JSONLogHandler(label: label) }
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = .info
            return h
        }
        let logger = Logger(label: "triage")
        let service: EdgeService
        var options = ServerOptions()
        var shipping: [@Sendable () async -> Void] = []
        do {
            var settings = EngineSettings(modelDirectory: try modelOptions.resolve(),
                                          classifier: runtimeOptions.classifierOptions, configPath: config)
            recordOptions.apply(to: &settings)
            let engine = try Engine.load(settings, warn: { logger.warning("\($0)") })
            // With record.postgres set, the record ships to the fleet database for as long as
            // the server runs (an answer never waits on it).
            if let url = engine.config.postgresURL, let store = engine.store {
                let replicator = Replicator(store: store, url: try FleetURL(url))
                shipping.append({ await replicator.run(onRound: { round in
                    if case .failure(let e) = round { logger.warning("fleet shipping: \(e)") }
                }) })
                logger.info("shipping the record", metadata: ["to": "\(replicator.url)", "node": "\(store.node)"])
            }
            // One forward pass before listening: ready means warmed, not just loaded.
            _ = try engine.classifier.classify("warm up")
            var limits = ServiceLimits()
            limits.queue.maxBatchTokens = maxBatchTokens
            limits.queue.maxBatchRequests = maxBatchRequests
            limits.queue.maxConcurrentRequests = maxConcurrentRequests
            limits.queue.requestTimeout = requestTimeout
            limits.maxClientBatchSize = maxClientBatchSize
            limits.cloudThreads = cloudThreads
            service = EdgeService(engine: engine, limits: limits)
            options.host = host
            options.port = port
            options.apiKey = apiKey ?? Environment.get("TRIAGE_API_KEY")
            options.payloadLimit = payloadLimit
            options.shutdownTimeout = shutdownTimeout
            options.handleSignals = true
            logger.info("model loaded", metadata: ["model": "\(engine.modelVersion)",
                                                   "kernels": "\(engine.classifier.model.runtime.kernels.name)",
                                                   "fp32_product": "\(engine.classifier.model.fp32Product ?? "none")",
                                                   "threads": "\(engine.classifier.model.runtime.threads)",
                                                   "api_key": "\(options.apiKey == nil ? "none" : "required")"])
        } catch {
            StandardError.write("triage: error: \(error)\n")
            throw ExitCode.failure
        }
        let server = TriageServer(service: service, options: options, logger: logger)
        do {
            try await server.run(background: shipping)
        } catch {
            StandardError.write("triage: error: \(error)\n")
            throw ExitCode.failure
        }
    }
}
#endif
