import Metrics
import Prometheus
import Synchronization
import TriageCascade
import TriageCloud
import TriageService

/// The server's metrics, through swift-metrics into a Prometheus registry of its own (so
/// several servers in one process, as in the tests, do not share counters). Conventional
/// names: base units (seconds, bytes, USD), `_total` for counters. Every series an operator
/// alerts on exists from the first scrape, at zero.
final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private let requestCounters = Mutex<[String: Metrics.Counter]>([:])
    private let lazyCounters = Mutex<[String: Metrics.Counter]>([:])
    private let costCounters = Mutex<[String: Metrics.FloatingPointCounter]>([:])

    let requestDuration: [String: Metrics.Timer]
    let tokenizeDuration: Metrics.Timer
    let queueDuration: Metrics.Timer
    let inferenceDuration: Metrics.Timer
    let cloudDuration: Metrics.Timer
    let queueSize: Metrics.Gauge
    let inFlight: Metrics.Gauge
    let batchSize: Metrics.Recorder
    let batchTokens: Metrics.Recorder
    let cacheHits: Metrics.Counter
    let breakerOpen: [String: Metrics.Gauge]
    let modelReloads: [String: Metrics.Counter]

    static let endpoints = ["predict", "tokenize", "info", "health", "metrics", "v1_classify", "v1_ask",
                            "livez", "readyz", "openapi", "not_found"]

    init() {
        var f = PrometheusMetricsFactory(registry: registry)
        let latency: [Duration] = [.microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
                                   .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
                                   .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30)]
        f.defaultDurationHistogramBuckets = latency
        f.defaultValueHistogramBuckets = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384]
        factory = f
        var durations: [String: Metrics.Timer] = [:]
        for e in Self.endpoints {
            durations[e] = Metrics.Timer(label: "triage_http_request_duration_seconds", dimensions: [("endpoint", e)], factory: f)
        }
        requestDuration = durations
        tokenizeDuration = Metrics.Timer(label: "triage_tokenize_duration_seconds", factory: f)
        queueDuration = Metrics.Timer(label: "triage_queue_duration_seconds", factory: f)
        inferenceDuration = Metrics.Timer(label: "triage_inference_duration_seconds", factory: f)
        cloudDuration = Metrics.Timer(label: "triage_cloud_duration_seconds", factory: f)
        queueSize = Metrics.Gauge(label: "triage_queue_size", factory: f)
        inFlight = Metrics.Gauge(label: "triage_queue_in_flight", factory: f)
        batchSize = Metrics.Recorder(label: "triage_batch_size", factory: f)
        batchTokens = Metrics.Recorder(label: "triage_batch_tokens", factory: f)
        cacheHits = Metrics.Counter(label: "triage_cache_hits_total", factory: f)
        var breakers: [String: Metrics.Gauge] = [:]
        for tier in ["small", "large"] {
            breakers[tier] = Metrics.Gauge(label: "triage_breaker_open", dimensions: [("tier", tier)], factory: f)
        }
        breakerOpen = breakers
        var reloads: [String: Metrics.Counter] = [:]
        for result in ["ok", "refused"] {
            reloads[result] = Metrics.Counter(label: "triage_model_reloads_total", dimensions: [("result", result)], factory: f)
        }
        modelReloads = reloads
        // Zero series for what a dashboard reads before the first request.
        for e in Self.endpoints { _ = requestCounter(endpoint: e, status: 200) }
        for route in Route.allCases { _ = counter("triage_routes_total", [("route", route.rawValue)]) }
        for tier in ["small", "large"] {
            _ = counter("triage_cloud_attempts_total", [("tier", tier), ("status", "200")])
            _ = cost(tier: tier)
        }
    }

    func requestCounter(endpoint: String, status: Int) -> Metrics.Counter {
        let key = endpoint + "|" + String(status)
        return requestCounters.withLock { counters in
            if let c = counters[key] { return c }
            let c = Metrics.Counter(label: "triage_http_requests_total", dimensions: [("endpoint", endpoint), ("status", String(status))],
                            factory: factory)
            counters[key] = c
            return c
        }
    }

    func counter(_ name: String, _ dimensions: [(String, String)]) -> Metrics.Counter {
        let key = name + "|" + dimensions.map { $0.0 + "=" + $0.1 }.joined(separator: ",")
        return lazyCounters.withLock { counters in
            if let c = counters[key] { return c }
            let c = Metrics.Counter(label: name, dimensions: dimensions, factory: factory)
            counters[key] = c
            return c
        }
    }

    func cost(tier: String) -> Metrics.FloatingPointCounter {
        costCounters.withLock { counters in
            if let c = counters[tier] { return c }
            let c = Metrics.FloatingPointCounter(label: "triage_cloud_cost_usd_total", dimensions: [("tier", tier)], factory: factory)
            counters[tier] = c
            return c
        }
    }

    func batch(sequences: Int, tokens: Int) {
        batchSize.record(sequences)
        batchTokens.record(tokens)
    }

    func stages(tokenize: Double, timing: BatchTiming) {
        tokenizeDuration.recordSeconds(tokenize)
        queueDuration.recordSeconds(timing.queueSeconds)
        inferenceDuration.recordSeconds(timing.inferenceSeconds)
    }

    func decision(_ d: Decision) {
        counter("triage_routes_total", [("route", d.route.rawValue)]).increment()
        counter("triage_route_reasons_total", [("reason", d.reason)]).increment()
        if d.cached { cacheHits.increment() }
        if d.latency.cloudMs > 0 { cloudDuration.recordSeconds(d.latency.cloudMs / 1e3) }
        for t in d.tiers {
            for s in t.statuses { counter("triage_cloud_attempts_total", [("tier", t.tier), ("status", String(s))]).increment() }
            if t.costUSD > 0 { cost(tier: t.tier).increment(by: t.costUSD) }
        }
    }

    /// Values read at scrape time.
    func refresh(service: EdgeService) {
        queueSize.record(service.queue.waiting)
        inFlight.record(service.queue.inFlight)
        var open: [String: Bool] = ["small": false, "large": false]
        for tier in service.engine.tiers { open[tier.config.name] = tier.breaker.state != .closed }
        for (tier, gauge) in breakerOpen { gauge.record(open[tier] == true ? 1 : 0) }
    }

    func scrape(service: EdgeService) -> String {
        refresh(service: service)
        return registry.emitToString()
    }
}
