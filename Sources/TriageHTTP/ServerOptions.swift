/// How `triage serve` listens and what it accepts (the engine's own limits are in
/// `ServiceLimits`).
public struct ServerOptions: Sendable {
    /// 127.0.0.1 unless told otherwise: an edge box should not expose the model by accident.
    public var host = "127.0.0.1"
    /// 0 lets the kernel pick a free port (tests).
    public var port = 3000
    /// With a key, every API endpoint needs `Authorization: Bearer <key>`; health,
    /// liveness and readiness stay public.
    public var apiKey: String? = nil
    /// Largest request body, bytes (413 past it).
    public var payloadLimit = 2 * 1024 * 1024
    /// Seconds to finish accepted requests after SIGTERM/SIGINT.
    public var shutdownTimeout = 30.0
    /// Trap SIGTERM/SIGINT (drain) and SIGHUP (reload): the binary does, tests of the library do not.
    public var handleSignals = false
    /// The model id reported by /info.
    public var modelId: String? = nil
    public init() {}
}

/// triage's version, reported by /info and /openapi.json.
public let triageVersion = "0.1.0"
