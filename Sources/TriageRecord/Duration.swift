// `--since DURATION`: a positive number and one unit — s, m, h, d (or w) — as in "90s",
// "30m", "24h", "7d", "1.5h". Anything else is an error naming the accepted form.

public struct DurationParseError: Error, CustomStringConvertible, Equatable {
    public let text: String
    public let reason: String
    public var description: String {
        "invalid duration '\(text)': \(reason) (expected a positive number and a unit s, m, h, d or w, e.g. 90s, 30m, 24h, 7d)"
    }
}

/// Seconds in a `--since` duration such as "30m", "24h", "7d" or "90s".
public func parseDuration(_ text: String) throws(DurationParseError) -> Double {
    let s = text.trimmingSpaces()
    guard let unit = s.last else { throw DurationParseError(text: text, reason: "empty") }
    let scale: Double
    switch unit {
    case "s": scale = 1
    case "m": scale = 60
    case "h": scale = 3600
    case "d": scale = 86_400
    case "w": scale = 604_800
    default: throw DurationParseError(text: text, reason: "missing or unknown unit")
    }
    let number = s.dropLast()
    // Digits with at most one decimal point: no sign, exponent, inf or nan.
    var dots = 0, digits = 0
    for c in number {
        if c == "." { dots += 1 } else if c.isASCII && c.isNumber { digits += 1 } else {
            throw DurationParseError(text: text, reason: "'\(number)' is not a number")
        }
    }
    guard digits > 0, dots <= 1, let value = Double(number) else {
        throw DurationParseError(text: text, reason: "'\(number)' is not a number")
    }
    guard value > 0 else { throw DurationParseError(text: text, reason: "must be positive") }
    return value * scale
}

extension String {
    func trimmingSpaces() -> String {
        var sub = Substring(self)
        while let f = sub.first, f.isWhitespace { sub.removeFirst() }
        while let l = sub.last, l.isWhitespace { sub.removeLast() }
        return String(sub)
    }
}
