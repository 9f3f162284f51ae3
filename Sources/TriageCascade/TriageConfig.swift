import TriageClassifier
import TriageCloud
import TriageJSON
import TriageSystem

/// The operator's settings, from a JSON file: `--config FILE`, else
/// `$XDG_CONFIG_HOME/triage/config.json` (`~/.config/triage/config.json`) when it exists,
/// else the seed defaults. Every key is optional; an unknown key is an error, so a typo never
/// silently leaves a default in place. The API key is never read from the file: only from
/// `ANTHROPIC_API_KEY` (or `OPENAI_API_KEY` for an OpenAI-compatible tier).
public struct TriageConfig: Sendable {
    public var policy = CloudPolicy()
    public var small = CloudTierConfig.small
    public var large = CloudTierConfig.large
    public var router = RouterPolicy()
    /// The config file's own "router" keys, applied over a model's tuned routing
    /// (`routerPolicy(for:)`): what the operator sets wins, what it leaves out comes from the model.
    public var routerOverrides: JSONValue? = nil
    /// Overrides the default base URL; `ANTHROPIC_BASE_URL` overrides this.
    public var baseURL: String? = nil
    /// Certificate authorities (PEM) to trust instead of the system's store.
    public var caFile: String? = nil
    public var cacheTTL = 300.0
    public var cacheCapacity = 1000
    /// Conversation turns that go to the cloud with the query, and into the cache key.
    public var cacheHistoryTurns = 3
    /// The response cache file; "memory" for this process only; nil for the default file.
    public var cachePath: String? = nil
    public var recordPath: String? = nil
    /// Share of plain edge answers queued for review at random, and whether queued queries
    /// keep their text (review.sample_rate, review.keep_text).
    public var reviewSampleRate = 0.02
    public var reviewKeepText = true
    /// Seeds the review sample's draws (reproducible audits and tests); nil: a fresh draw each run.
    public var reviewSampleSeed: UInt64? = nil
    /// A candidate edge model (candidate.model) and the share of queries it answers
    /// (candidate.share; 0 = shadow).
    public var candidateModel: String? = nil
    public var candidateShare = 0.0
    /// The share of wrong answers each tier may give (error_budget.edge, error_budget.small).
    public var edgeErrorBudget = 0.05
    public var smallErrorBudget = 0.10
    public var edgeCostUSD = 0.0
    /// The fleet database, a postgres:// URL (its password may instead come from
    /// TRIAGE_PG_PASSWORD); nil: this box ships nowhere.
    public var postgresURL: String? = nil
    /// Bound on unshipped decisions kept locally; nil: no bound.
    public var maxPending: Int? = nil
    /// This box's name in the fleet; nil: the host name.
    public var node: String? = nil
    public var systemPrompt: String? = nil
    /// Where the settings came from, for messages.
    public var source = "defaults"

    public init() {}

    public static func defaultPath(environment: (String) -> String? = Environment.get) -> String? {
        if let x = environment("XDG_CONFIG_HOME"), !x.isEmpty { return x + "/triage/config.json" }
        if let h = environment("HOME"), !h.isEmpty { return h + "/.config/triage/config.json" }
        return nil
    }

    public static func load(path explicit: String?, environment: (String) -> String? = Environment.get) throws -> TriageConfig {
        let path: String
        if let explicit {
            guard FileSystem.exists(explicit) else { throw CascadeError("config file \(explicit) does not exist") }
            path = explicit
        } else if let p = defaultPath(environment: environment), FileSystem.exists(p) {
            path = p
        } else {
            return TriageConfig()
        }
        let json: JSONValue
        do { json = try JSONValue.parse(FileSystem.readText(path)) } catch { throw CascadeError("\(path): \(error)") }
        do { return try parse(json, source: path) } catch { throw CascadeError("\(path): \(error)") }
    }

    public static func parse(_ json: JSONValue, source: String = "config") throws -> TriageConfig {
        guard let pairs = json.objectPairs else { throw CascadeError("the config must be a JSON object") }
        var c = TriageConfig()
        c.source = source
        for (key, value) in pairs {
            switch key {
            case "cloud":
                // base_url and ca_file say where requests go; the rest is the retry policy.
                guard case var .object(p) = value else { throw CascadeError("cloud: expected a JSON object") }
                if let i = p.firstIndex(where: { $0.0 == "base_url" }) {
                    guard let url = p[i].1.stringValue else { throw CascadeError("cloud.base_url must be a string") }
                    c.baseURL = url
                    p.remove(at: i)
                }
                if let i = p.firstIndex(where: { $0.0 == "ca_file" }) {
                    guard let file = p[i].1.stringValue, !file.isEmpty else {
                        throw CascadeError("cloud.ca_file must be the path of a PEM file")
                    }
                    guard FileSystem.isReadableFile(file) else { throw CascadeError("cloud.ca_file \(file) is not a readable file") }
                    c.caFile = file
                    p.remove(at: i)
                }
                c.policy = try c.policy.overriding(with: .object(p))
            case "small": c.small = try c.small.overriding(with: value)
            case "large": c.large = try c.large.overriding(with: value)
            case "router":
                c.router = try c.router.overriding(with: value)
                c.routerOverrides = value
            case "cache":
                for (k, v) in value.objectPairs ?? [] {
                    switch k {
                    case "ttl_seconds": c.cacheTTL = try positive(v, "cache.ttl_seconds")
                    case "max_entries": c.cacheCapacity = Int(try positive(v, "cache.max_entries"))
                    case "history_turns": c.cacheHistoryTurns = Int(try positive(v, "cache.history_turns", allowZero: true))
                    case "path":
                        guard let s = v.stringValue, !s.isEmpty else { throw CascadeError("cache.path must be a file path or \"memory\"") }
                        c.cachePath = s
                    default: throw CascadeError("unknown key cache.\(k)")
                    }
                }
            case "record":
                for (k, v) in value.objectPairs ?? [] {
                    switch k {
                    case "path":
                        guard let s = v.stringValue else { throw CascadeError("record.path must be a string") }
                        c.recordPath = s
                    case "edge_cost_usd": c.edgeCostUSD = try positive(v, "record.edge_cost_usd", allowZero: true)
                    case "postgres":
                        guard let s = v.stringValue, s.hasPrefix("postgres://") || s.hasPrefix("postgresql://") else {
                            throw CascadeError("record.postgres must be a postgres:// URL")
                        }
                        c.postgresURL = s
                    case "max_pending":
                        guard let n = v.intValue, n >= 1 else { throw CascadeError("record.max_pending must be a positive integer") }
                        c.maxPending = n
                    default: throw CascadeError("unknown key record.\(k)")
                    }
                }
            case "review":
                for (k, v) in value.objectPairs ?? [] {
                    switch k {
                    case "sample_rate":
                        let r = try positive(v, "review.sample_rate", allowZero: true)
                        guard r <= 1 else { throw CascadeError("review.sample_rate must be between 0 and 1") }
                        c.reviewSampleRate = r
                    case "sample_seed":
                        guard let n = v.intValue, n >= 0 else { throw CascadeError("review.sample_seed must be a non-negative integer") }
                        c.reviewSampleSeed = UInt64(n)
                    case "keep_text":
                        guard let b = v.boolValue else { throw CascadeError("review.keep_text must be true or false") }
                        c.reviewKeepText = b
                    default: throw CascadeError("unknown key review.\(k)")
                    }
                }
            case "candidate":
                for (k, v) in value.objectPairs ?? [] {
                    switch k {
                    case "model":
                        guard let m = v.stringValue, !m.isEmpty else { throw CascadeError("candidate.model must be a model directory") }
                        c.candidateModel = m
                    case "share":
                        let r = try positive(v, "candidate.share", allowZero: true)
                        guard r <= 1 else { throw CascadeError("candidate.share must be between 0 and 1") }
                        c.candidateShare = r
                    default: throw CascadeError("unknown key candidate.\(k)")
                    }
                }
            case "error_budget":
                for (k, v) in value.objectPairs ?? [] {
                    let b = try positive(v, "error_budget.\(k)")
                    guard b < 1 else { throw CascadeError("error_budget.\(k) must be below 1") }
                    switch k {
                    case "edge": c.edgeErrorBudget = b
                    case "small": c.smallErrorBudget = b
                    default: throw CascadeError("unknown key error_budget.\(k)")
                    }
                }
            case "node":
                guard let s = value.stringValue, !s.isEmpty, s.count <= 200 else {
                    throw CascadeError("node must be a non-empty string of at most 200 characters")
                }
                c.node = s
            case "system_prompt":
                guard let s = value.stringValue else { throw CascadeError("system_prompt must be a string") }
                c.systemPrompt = s
            default:
                throw CascadeError("unknown key \"\(key)\" (expected cloud, small, large, router, cache, record, review, error_budget, candidate, node, system_prompt)")
            }
        }
        c.small.name = "small"
        c.large.name = "large"
        return c
    }

    /// The router policy for a model: seed defaults < the model's tuned routing < this config's keys.
    public func routerPolicy(tuned: TunedRouting?) throws -> RouterPolicy {
        try RouterPolicy.resolved(tuned: tuned, config: routerOverrides)
    }

    static func positive(_ v: JSONValue, _ name: String, allowZero: Bool = false) throws -> Double {
        guard let d = v.doubleValue, d.isFinite, allowZero ? d >= 0 : d > 0 else {
            throw CascadeError("\(name) must be a \(allowZero ? "non-negative" : "positive") number")
        }
        return d
    }

    /// The endpoint of a tier: base URL from the environment, else this file, else the
    /// public API; the key from the environment only.
    public func endpoint(for tier: CloudTierConfig, environment: @escaping (String) -> String? = Environment.get) -> CloudEndpoint {
        var e = CloudEndpoint.fromEnvironment(api: tier.api, get: environment)
        let envName = tier.api == .anthropicMessages ? "ANTHROPIC_BASE_URL" : "OPENAI_BASE_URL"
        if (environment(envName) ?? "").isEmpty, let baseURL {
            var url = baseURL
            while url.hasSuffix("/") { url.removeLast() }
            e.baseURL = url
        }
        e.caFile = caFile
        return e
    }
}
