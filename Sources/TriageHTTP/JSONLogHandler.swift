import Logging
import TriageJSON
import TriageSystem

/// One JSON object per line on standard error (`--json-logs`), for log shippers:
/// `{"ts":…,"level":…,"logger":…,"msg":…, metadata…}`.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    public let label: String

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let level = event.level, message = event.message, extra = event.metadata
        var pairs: [(String, JSONValue)] = [
            ("ts", .number((Clock.unixTime() * 1000).rounded() / 1000)), ("level", .string(level.rawValue)),
            ("logger", .string(label)), ("msg", .string(message.description)),
        ]
        let merged = metadata.merging(extra ?? [:]) { $1 }
        for key in merged.keys.sorted() { pairs.append((key, Self.json(merged[key]!))) }
        StandardError.write(JSONValue.object(pairs).serialized + "\n")
    }

    static func json(_ v: Logger.MetadataValue) -> JSONValue {
        switch v {
        case .string(let s): return .string(s)
        case .stringConvertible(let c): return .string(c.description)
        case .array(let a): return .array(a.map(json))
        case .dictionary(let d): return .object(d.keys.sorted().map { ($0, json(d[$0]!)) })
        }
    }
}
