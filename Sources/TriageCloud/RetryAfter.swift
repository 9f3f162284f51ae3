import TriageSystem

// `retry-after` parsing (RFC 9110 §10.2.3): either delay-seconds or an HTTP-date.
//
// Written here rather than with Foundation's DateFormatter because library modules stay
// Foundation-free (static binary size), and because only three fixed formats exist.

/// The delay a `retry-after` value asks for, in seconds from `now` (Unix time); nil when the
/// value is neither form. A date in the past means "retry now" (0).
public func parseRetryAfter(_ value: String, now: Double) -> Double? {
    let v = value[...].trimmingSpaces()
    guard !v.isEmpty else { return nil }
    if v.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }) {
        // RFC says integer seconds; a decimal costs nothing to accept and some proxies send one.
        guard let d = Double(v), d.isFinite, d >= 0 else { return nil }
        return d
    }
    guard let date = HTTPDate.parse(v) else { return nil }
    return max(0, date - now)
}

public enum HTTPDate {
    private static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    private static let weekdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

    /// Unix time of an HTTP-date. Recipients must accept all three historical forms
    /// (RFC 9110 §5.6.7), so all three are parsed:
    ///   IMF-fixdate  "Sun, 06 Nov 1994 08:49:37 GMT"   (what servers send today)
    ///   RFC 850      "Sunday, 06-Nov-94 08:49:37 GMT"
    ///   asctime      "Sun Nov  6 08:49:37 1994"
    public static func parse(_ text: String) -> Double? {
        let tokens = text.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "-" || $0 == "\t" }).map(String.init)
        let day: Int, month: Int, year: Int, time: String
        if tokens.count == 6, tokens[5] == "GMT" {
            guard isWeekday(tokens[0]), let d = Int(tokens[1]), let m = monthIndex(tokens[2]),
                  tokens[3].count == 4 || tokens[3].count == 2, var y = Int(tokens[3]) else { return nil }
            if tokens[3].count == 2 {
                // RFC 850's two-digit year: pick the century that is not far in the future.
                y += y < 70 ? 2000 : 1900
            }
            (day, month, year, time) = (d, m, y, tokens[4])
        } else if tokens.count == 5 {
            guard isWeekday(tokens[0]), let m = monthIndex(tokens[1]), let d = Int(tokens[2]),
                  tokens[4].count == 4, let y = Int(tokens[4]) else { return nil }
            (day, month, year, time) = (d, m, y, tokens[3])
        } else {
            return nil
        }
        let hms = time.split(separator: ":", omittingEmptySubsequences: false)
        guard hms.count == 3, hms.allSatisfy({ $0.count == 2 }),
              let hh = Int(hms[0]), let mm = Int(hms[1]), let ss = Int(hms[2]),
              (0...23).contains(hh), (0...59).contains(mm), (0...60).contains(ss),
              (1...31).contains(day), day <= daysIn(month: month, year: year) else { return nil }
        let days = CivilDate.days(year: year, month: month, day: day)
        return Double(days * 86_400 + hh * 3600 + mm * 60 + ss)
    }

    /// Formats Unix time as an IMF-fixdate; used by tests and by anything that echoes dates.
    public static func format(_ unixTime: Double) -> String {
        let (days, secs) = CivilDate.split(unixSeconds: Int(unixTime.rounded(.down)))
        let (y, m, d) = CivilDate.date(days: days)
        // 1970-01-01 was a Thursday (index 3 in `weekdays`).
        let wd = weekdays[((days % 7) + 7 + 3) % 7].capitalizedASCII
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(wd), \(two(d)) \(months[m - 1].capitalizedASCII) \(y) \(two(secs / 3600)):\(two(secs / 60 % 60)):\(two(secs % 60)) GMT"
    }

    private static func isWeekday(_ s: String) -> Bool {
        let l = s.lowercased()
        return l.count >= 3 && weekdays.contains(String(l.prefix(3)))
    }

    private static func monthIndex(_ s: String) -> Int? {
        guard s.count == 3, let i = months.firstIndex(of: s.lowercased()) else { return nil }
        return i + 1
    }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}

extension String {
    var capitalizedASCII: String { prefix(1).uppercased() + dropFirst() }
}
