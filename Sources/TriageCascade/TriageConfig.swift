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
    public var cacheHistoryTurns = 2
    public var recordPath: String? = nil
    public var edgeCostUSD = 0.0
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
                    default: throw CascadeError("unknown key record.\(k)")
                    }
                }
            case "system_prompt":
                guard let s = value.stringValue else { throw CascadeError("system_prompt must be a string") }
                c.systemPrompt = s
            default:
                throw CascadeError("unknown key \"\(key)\" (expected cloud, small, large, router, cache, record, system_prompt)")
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
