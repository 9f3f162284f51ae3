// Where the fleet database is: a postgres:// URL, parsed by hand (user, password, host,
// port, database, sslmode). The password may come from the URL or, preferably, from
// TRIAGE_PG_PASSWORD, which wins; it is never printed: every message about the database
// goes through `redact`, and `description` shows the URL with the password masked.

import TriageSystem

public struct FleetError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

public struct FleetURL: Sendable, CustomStringConvertible {
    public enum SSLMode: String, Sendable { case disable, prefer, require }

    public var user: String
    public var password: String?
    public var host: String
    public var port: Int
    public var database: String
    public var sslMode: SSLMode

    public static let passwordVariable = "TRIAGE_PG_PASSWORD"

    public static func isPostgresURL(_ text: String) -> Bool {
        text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")
    }

    /// Parses `postgres://[user[:password]@]host[:port][/database][?sslmode=…]`.
    public init(_ text: String, environment: (String) -> String? = { Environment.get($0) }) throws {
        guard let schemeEnd = text.firstRange(ofText: "://"), FleetURL.isPostgresURL(text) else {
            throw FleetError("the fleet database must be a postgres:// URL")
        }
        var rest = Substring(text[schemeEnd.upperBound...])
        var query = ""
        if let q = rest.firstIndex(of: "?") { query = String(rest[rest.index(after: q)...]); rest = rest[..<q] }
        var path = ""
        if let slash = rest.firstIndex(of: "/") { path = String(rest[rest.index(after: slash)...]); rest = rest[..<slash] }
        var userInfo = ""
        if let at = rest.lastIndex(of: "@") { userInfo = String(rest[..<at]); rest = rest[rest.index(after: at)...] }
        var hostPart = String(rest)
        var portValue = 5432
        if let colon = hostPart.lastIndex(of: ":"), !hostPart.hasSuffix("]") {
            guard let p = Int(hostPart[hostPart.index(after: colon)...]), (1...65535).contains(p) else {
                throw FleetError("the fleet database URL has a bad port")
            }
            portValue = p
            hostPart = String(hostPart[..<colon])
        }
        if hostPart.hasPrefix("["), hostPart.hasSuffix("]") { hostPart = String(hostPart.dropFirst().dropLast()) }
        guard !hostPart.isEmpty else { throw FleetError("the fleet database URL names no host") }
        var userValue = "postgres"
        var passwordValue: String?
        if !userInfo.isEmpty {
            if let colon = userInfo.firstIndex(of: ":") {
                userValue = try FleetURL.percentDecode(String(userInfo[..<colon]))
                passwordValue = try FleetURL.percentDecode(String(userInfo[userInfo.index(after: colon)...]))
            } else {
                userValue = try FleetURL.percentDecode(userInfo)
            }
        }
        if let env = environment(FleetURL.passwordVariable), !env.isEmpty { passwordValue = env }
        var mode = SSLMode.prefer
        for pair in query.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2 else { continue }
            if kv[0] == "sslmode" {
                switch kv[1] {
                case "disable": mode = .disable
                case "allow", "prefer": mode = .prefer
                case "require", "verify-ca", "verify-full": mode = .require
                default: throw FleetError("the fleet database URL has an unknown sslmode '\(kv[1])'")
                }
            }
        }
        user = userValue
        password = passwordValue
        host = hostPart
        port = portValue
        database = path.isEmpty ? userValue : try FleetURL.percentDecode(path)
        sslMode = mode
    }

    /// The URL with the password masked.
    public var description: String {
        "postgres://\(user)\(password == nil ? "" : ":***")@\(host):\(port)/\(database)"
    }

    /// `text` with every occurrence of the password (and of its percent-encoded form) masked.
    public func redact(_ text: String) -> String {
        guard let password, !password.isEmpty else { return text }
        var out = text.replacingAll(password, with: "***")
        let encoded = FleetURL.percentEncode(password)
        if encoded != password { out = out.replacingAll(encoded, with: "***") }
        return out
    }

    static func percentDecode(_ s: String) throws -> String {
        var bytes: [UInt8] = []
        var u = Array(s.utf8)[...]
        while let c = u.first {
            u = u.dropFirst()
            if c == UInt8(ascii: "%") {
                guard u.count >= 2, let v = UInt8(String(decoding: u.prefix(2), as: UTF8.self), radix: 16) else {
                    throw FleetError("the fleet database URL has a bad %-escape")
                }
                bytes.append(v)
                u = u.dropFirst(2)
            } else {
                bytes.append(c)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func percentEncode(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(Character(Unicode.Scalar(b)))
            default:
                let hex = String(b, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return out
    }
}

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var out = ""
        var rest = Substring(self)
        while let r = rest.firstRange(ofText: target) {
            out += rest[..<r.lowerBound]
            out += replacement
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}

extension Substring {
    func firstRange(ofText target: String) -> Range<Substring.Index>? {
        let t = Array(target.utf8)
        guard !t.isEmpty else { return nil }
        var i = startIndex
        while i < endIndex {
            if self[i...].utf8.starts(with: t) {
                let end = self.utf8.index(i, offsetBy: t.count)
                return i..<end
            }
            i = index(after: i)
        }
        return nil
    }
}

extension String {
    func firstRange(ofText target: String) -> Range<String.Index>? {
        Substring(self).firstRange(ofText: target)
    }
}
