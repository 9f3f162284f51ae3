import HTTPTypes
import Hummingbird
#if canImport(Glibc)
import Glibc
#endif
import Logging
import ServiceLifecycle
import Synchronization
import TriageClassifier
import TriageJSON
import TriageService
import TriageSystem
import UnixSignals

/// `triage serve`: TEI's endpoints and triage's own over one `EdgeService`. This layer is
/// routing, auth, parsing, status codes, metrics and lifecycle; the work is the service's.
public final class TriageServer: Sendable {
    public let service: EdgeService
    public let options: ServerOptions
    let logger: Logger
    let metrics = ServerMetrics()
    private let key: BearerKey?
    private let draining = Atomic<Bool>(false)
    private let group = Mutex<ServiceGroup?>(nil)

    struct Endpoint: Sendable {
        let name: String
        /// Public endpoints answer without the API key.
        let isPublic: Bool
    }

    static let routes: [String: [String: Endpoint]] = [
        "/predict": ["POST": Endpoint(name: "predict", isPublic: false)],
        "/": ["POST": Endpoint(name: "predict", isPublic: false)],
        "/invocations": ["POST": Endpoint(name: "predict", isPublic: false)],
        "/tokenize": ["POST": Endpoint(name: "tokenize", isPublic: false)],
        "/info": ["GET": Endpoint(name: "info", isPublic: false)],
        "/metrics": ["GET": Endpoint(name: "metrics", isPublic: false)],
        "/openapi.json": ["GET": Endpoint(name: "openapi", isPublic: false)],
        "/v1/classify": ["POST": Endpoint(name: "v1_classify", isPublic: false)],
        "/v1/ask": ["POST": Endpoint(name: "v1_ask", isPublic: false)],
        "/health": ["GET": Endpoint(name: "health", isPublic: true)],
        "/livez": ["GET": Endpoint(name: "livez", isPublic: true)],
        "/readyz": ["GET": Endpoint(name: "readyz", isPublic: true)],
    ]

    public init(service: EdgeService, options: ServerOptions, logger: Logger = Logger(label: "triage")) {
        self.service = service
        self.options = options
        self.logger = logger
        key = options.apiKey.flatMap { $0.isEmpty ? nil : BearerKey($0) }
        service.queue.observeBatches { [metrics] in metrics.batch(sequences: $0, tokens: $1) }
    }

    /// Serves until SIGTERM/SIGINT (with `handleSignals`) or `shutdown()`: then stops
    /// accepting, finishes what was accepted within `shutdownTimeout`, stops the engine's
    /// threads and returns. `onRunning` receives the bound port.
    /// `background`: work that lives as long as the server and stops with it (the fleet
    /// shipper), cancelled when the drain begins.
    public func run(background: [@Sendable () async -> Void] = [],
                    onRunning: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        let app = Application(
            responder: CallbackResponder<BasicRequestContext> { [self] request, _ in await respond(request) },
            configuration: ApplicationConfiguration(address: .hostname(options.host, port: options.port), serverName: "triage"),
            onServerRunning: { [logger, options] channel in
                let port = channel.localAddress?.port ?? options.port
                logger.info("listening", metadata: ["address": "\(options.host):\(port)"])
                onRunning(port)
            },
            logger: logger)
        var config = ServiceGroupConfiguration(
            services: [.init(service: app), .init(service: DrainWatcher(server: self)),
                       .init(service: HangupReloader(server: self, enabled: options.handleSignals))]
                + background.map { .init(service: BackgroundWork(body: $0)) },
            gracefulShutdownSignals: options.handleSignals ? [.sigterm, .sigint] : [],
            logger: logger)
        config.maximumGracefulShutdownDuration = .milliseconds(Int64(options.shutdownTimeout * 1000))
        let serviceGroup = ServiceGroup(configuration: config)
        group.withLock { $0 = serviceGroup }
        defer { service.shutdown() }
        try await serviceGroup.run()
        logger.info("stopped")
    }

    /// Begins the same drain as SIGTERM.
    public func shutdown() async {
        draining.store(true, ordering: .relaxed)
        await group.withLock { $0 }?.triggerGracefulShutdown()
    }

    func beginDraining() {
        draining.store(true, ordering: .relaxed)
        logger.info("draining: finishing accepted requests", metadata: ["timeout_s": "\(options.shutdownTimeout)"])
        guard options.handleSignals else { return }
        // The bound on the drain: a handler waiting on the model cannot be cancelled, so
        // past the timeout the process ends itself (the record is written per decision).
        let (timeout, logger, queue) = (options.shutdownTimeout, logger, service.queue)
        Task.detached {
            try? await Task.sleep(for: .milliseconds(Int64(timeout * 1000) + 1000))
            logger.warning("shutdown timeout: exiting with requests unfinished", metadata: ["in_flight": "\(queue.inFlight)"])
            exit(0)
        }
    }

    /// Loads the model directory and config again (SIGHUP); a broken one is refused and
    /// the running model keeps serving.
    @discardableResult
    public func reload() async -> Bool {
        let service = self.service
        do {
            let engine = try await service.cloud.run { () throws -> Engine in
                do { return try service.reload(warn: { _ in }) } catch { throw error }
            }
            metrics.modelReloads["ok"]?.increment()
            logger.info("reloaded", metadata: ["model": "\(engine.modelVersion)"])
            return true
        } catch {
            metrics.modelReloads["refused"]?.increment()
            logger.error("reload refused, the running model keeps serving", metadata: ["error": "\(error)"])
            return false
        }
    }

    // MARK: Requests

    func respond(_ request: Request) async -> Response {
        let start = Clock.seconds()
        let path = request.uri.path
        let method = request.method.rawValue
        var endpointName = "not_found"
        let reply: Reply
        if let byMethod = Self.routes[path] {
            if let endpoint = byMethod[method] {
                endpointName = endpoint.name
                if !endpoint.isPublic, let key, !key.accepts(request.headers[.authorization]) {
                    reply = .json(WireJSON.error("a valid `Authorization: Bearer <key>` header is required", type: "unauthorized"),
                                  status: 401, headers: [("www-authenticate", "Bearer")])
                } else {
                    var request = request
                    reply = await handle(endpoint.name, request: &request, start: start)
                }
            } else {
                reply = .json(WireJSON.error("\(method) is not allowed on \(path)", type: "validation"), status: 405,
                              headers: [("allow", byMethod.keys.sorted().joined(separator: ", "))])
            }
        } else {
            reply = .json(WireJSON.error("no such endpoint: \(path)", type: "validation"), status: 404)
        }
        let seconds = Clock.seconds() - start
        metrics.requestCounter(endpoint: endpointName, status: reply.status).increment()
        metrics.requestDuration[endpointName]?.recordSeconds(seconds)
        if reply.status >= 500 || (reply.status >= 400 && reply.status != 401 && reply.status != 429) {
            logger.warning("request failed", metadata: ["method": "\(method)", "path": "\(path)", "status": "\(reply.status)",
                                                        "ms": "\(Int(seconds * 1e3))"])
        } else {
            logger.debug("request", metadata: ["method": "\(method)", "path": "\(path)", "status": "\(reply.status)",
                                               "ms": "\(Int(seconds * 1e3))"])
        }
        var headers = HTTPFields()
        headers[.contentType] = reply.contentType
        for (name, value) in reply.headers {
            if let field = HTTPField.Name(name) { headers[field] = value }
        }
        return Response(status: .init(code: reply.status), headers: headers,
                        body: .init(byteBuffer: ByteBuffer(string: reply.body)))
    }

    private func handle(_ name: String, request: inout Request, start: Double) async -> Reply {
        do throws(ServiceError) {
            switch name {
            case "predict": return try await predict(body(&request), start: start)
            case "tokenize": return try tokenize(await body(&request))
            case "v1_classify": return try await classify(body(&request))
            case "v1_ask": return try await ask(body(&request))
            case "info": return .json(info())
            case "metrics":
                return Reply(status: 200, body: metrics.scrape(service: service), contentType: "text/plain; version=0.0.4; charset=utf-8")
            case "openapi": return .json(OpenAPIDocument.document(labels: service.engine.classifier.labels))
            case "health", "readyz":
                if draining.load(ordering: .relaxed) {
                    return .json(WireJSON.error("draining: the server is shutting down", type: "unhealthy"), status: 503)
                }
                return name == "health" ? Reply(status: 200, body: "", contentType: "text/plain")
                    : .json(.object([("status", .string("ready")), ("model", .string(service.engine.modelVersion))]))
            case "livez": return .json(.object([("status", .string("alive"))]))
            default: return .error(ServiceError(.internal, "no handler for \(name)"))
            }
        } catch {
            return .error(error)
        }
    }

    private func body(_ request: inout Request) async throws(ServiceError) -> JSONValue {
        // Read to the end even past the limit (keeping nothing of the excess): a response
        // sent while the client is still sending would leave both sides waiting.
        var bytes: [UInt8] = []
        var total = 0
        do {
            for try await chunk in request.body {
                total += chunk.readableBytes
                if total <= options.payloadLimit { bytes += chunk.readableBytesView }
            }
        } catch {
            throw ServiceError(.invalidInput, "the request body could not be read: \(error)")
        }
        if total > options.payloadLimit {
            throw ServiceError(.payloadTooLarge, "payload of \(total) bytes is over the limit of \(options.payloadLimit) bytes")
        }
        return try RequestParsing.object(bytes)
    }

    // MARK: Handlers

    private func predict(_ json: JSONValue, start: Double) async throws(ServiceError) -> Reply {
        let (inputs, isBatch) = try RequestParsing.predictInputs(json)
        let truncate = try RequestParsing.bool(json, "truncate") ?? false
        let raw = try RequestParsing.bool(json, "raw_scores") ?? false
        let batch = try await service.classify(inputs, truncate: truncate)
        metrics.stages(tokenize: batch.tokenizeSeconds, timing: batch.timing)
        let labels = batch.engine.classifier.labels
        let lists = batch.results.map { WireJSON.predictions($0, labels: labels, rawScores: raw) }
        let headers = timingHeaders(start: start, tokenize: batch.tokenizeSeconds, timing: batch.timing, tokens: batch.tokens,
                                    characters: inputs.reduce(0) { $0 + $1.characterCount })
        return .json(isBatch ? .array(lists) : lists[0], headers: headers)
    }

    private func tokenize(_ json: JSONValue) throws(ServiceError) -> Reply {
        let texts = try RequestParsing.texts(json)
        if texts.count > service.limits.maxClientBatchSize {
            throw ServiceError(.tooManyInputs, "batch size \(texts.count) > maximum allowed batch size \(service.limits.maxClientBatchSize)")
        }
        let add = try RequestParsing.bool(json, "add_special_tokens") ?? true
        let tokens = service.tokenize(texts, addSpecialTokens: add)
        // TEI reports character offsets; this tokenizer does not keep them, so they are null
        // (TEI's schema allows null).
        return .json(.array(tokens.map { list in
            .array(list.map { t in
                .object([("id", .int(t.id)), ("text", .string(t.text)), ("special", .bool(t.special)),
                         ("start", .null), ("stop", .null)])
            })
        }))
    }

    private func classify(_ json: JSONValue) async throws(ServiceError) -> Reply {
        let texts = try RequestParsing.texts(json)
        let truncate = try RequestParsing.bool(json, "truncate") ?? true
        let start = Clock.seconds()
        let batch = try await service.classify(texts.map { .single($0) }, truncate: truncate)
        metrics.stages(tokenize: batch.tokenizeSeconds, timing: batch.timing)
        let labels = batch.engine.classifier.labels
        let headers = timingHeaders(start: start, tokenize: batch.tokenizeSeconds, timing: batch.timing, tokens: batch.tokens,
                                    characters: texts.reduce(0) { $0 + $1.count })
        return .json(.array(zip(texts, batch.results).map { WireJSON.classification(text: $0, $1, labels: labels) }), headers: headers)
    }

    private func ask(_ json: JSONValue) async throws(ServiceError) -> Reply {
        guard let query = json["query"]?.stringValue else { throw ServiceError(.invalidInput, "missing field `query` (a string)") }
        let history = try RequestParsing.history(json)
        let offline = try RequestParsing.bool(json, "offline") ?? false
        let start = Clock.seconds()
        let outcome = try await service.ask(query, history: history, offline: offline)
        metrics.stages(tokenize: outcome.tokenizeSeconds, timing: outcome.timing)
        metrics.decision(outcome.decision)
        let headers = timingHeaders(start: start, tokenize: outcome.tokenizeSeconds, timing: outcome.timing,
                                    tokens: outcome.tokens, characters: query.count)
        return .json(WireJSON.decision(query: query, outcome.decision), headers: headers)
    }

    func info() -> JSONValue {
        let engine = service.engine
        let c = engine.classifier
        let limits = service.limits
        return .object([
            ("model_id", .string(options.modelId ?? c.directory)),
            ("model_sha", .null),
            ("model_version", .string(engine.modelVersion)),
            ("model_dtype", .string(c.model.weights.isInt8 ? "int8" : "float32")),
            ("served_model_name", .string(options.modelId ?? c.directory)),
            ("model_type", .object([("classifier", .object([
                ("id2label", .object(c.labels.enumerated().map { (String($0.offset), .string($0.element)) })),
                ("label2id", .object(c.labels.enumerated().map { ($0.element, .int($0.offset)) })),
            ]))])),
            ("max_concurrent_requests", .int(limits.queue.maxConcurrentRequests)),
            ("max_input_length", .int(c.maxTokens)),
            ("max_batch_tokens", .int(limits.queue.maxBatchTokens)),
            ("max_batch_requests", .int(limits.queue.maxBatchRequests)),
            ("max_client_batch_size", .int(limits.maxClientBatchSize)),
            ("auto_truncate", .bool(false)),
            ("tokenization_workers", .int(0)),
            ("version", .string(triageVersion)),
            ("sha", .null),
            ("docker_label", .null),
            ("labels", .array(c.labels.map { .string($0) })),
            ("out_of_scope_label", c.calibration.outOfScopeLabel.map { .string($0) } ?? .null),
            ("kernels", .string(c.model.runtime.kernels.name)),
            ("fp32_product", c.model.fp32Product.map { .string($0) } ?? .null),
            ("threads", .int(c.model.runtime.threads)),
            ("payload_limit", .int(options.payloadLimit)),
            ("request_timeout_s", .number(limits.queue.requestTimeout)),
            ("triage_version", .string(triageVersion)),
        ])
    }
}

/// Marks the server as draining (readiness 503) as soon as graceful shutdown begins.
struct DrainWatcher: Service {
    let server: TriageServer
    func run() async throws {
        try? await gracefulShutdown()
        server.beginDraining()
    }
}

/// Reloads on SIGHUP until shutdown.
struct HangupReloader: Service {
    let server: TriageServer
    let enabled: Bool
    func run() async throws {
        guard enabled else {
            try? await gracefulShutdown()
            return
        }
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            server.logger.info("SIGHUP: reloading the model and config")
            await server.reload()
        }
    }
}

/// A background loop run beside the server, cancelled at graceful shutdown.
struct BackgroundWork: Service {
    let body: @Sendable () async -> Void
    func run() async throws {
        try await cancelWhenGracefulShutdown { await body() }
    }
}
