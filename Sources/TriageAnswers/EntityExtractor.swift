// Hand-written entity extraction: no regular expressions, no Foundation.
//
// The query is split into tokens of Characters (words of letters, runs of ASCII digits with
// inner ',' or '.', and single other characters), phrases from the gazetteer are matched on
// lower-cased tokens with the longest phrase winning, and then numbers are joined to an
// adjacent currency to make money. A number is money only when a currency is written next to
// it: "£20", "20 GBP", "$ 5", "1,200 dollars", "an extra pound". A bare number ("card ending
// 1234", "3 times", "5%") never is, and neither is "5k" without a currency ("£5k" is £5,000.00).
//
// Number formats: "1200", "1,200", "1,200.50", "15.50", "15,50" (decimal comma, one or two
// digits after it), "1.200.000" and "1.200,50" (European grouping). A single '.' is always a
// decimal point ("1.500" is 1.50). Multipliers: k, m, bn attached ("£5k") or thousand,
// million, billion as words. Word numbers: "twenty pounds", "two hundred and fifty euros",
// "one pound", and "a"/"an" before a singular currency word ("an extra pound" is £1.00).
// "50p" and "50 pence" are £0.50.

public struct EntityExtractor: Sendable {
    public init() {}

    /// Every entity in the query, in the order they appear.
    public func extract(_ query: String) -> [Entity] {
        let chars = Array(query)
        let toks = Tokenizer.tokenize(chars)
        let hasLowercase = chars.contains { $0.isLowercase }
        var consumed = [Bool](repeating: false, count: toks.count)
        var out: [Entity] = []

        func entity(_ kind: Entity.Kind, _ from: Int, _ to: Int, _ value: String, _ money: Money? = nil) -> Entity {
            let start = toks[from].start, end = toks[to - 1].end
            return Entity(kind: kind, text: String(chars[start..<end]), span: start..<end, value: value, money: money)
        }

        // 1. Gazetteer phrases, longest first, left to right.
        var matches: [Match] = []
        var i = 0
        while i < toks.count {
            if let m = longestMatch(toks, at: i, hasLowercase: hasLowercase) {
                matches.append(m)
                i = m.end
            } else {
                i += 1
            }
        }
        var currencyEndingAt: [Int: Int] = [:]    // token index → index in matches
        var currencyStartingAt: [Int: Int] = [:]
        var inMatch = [Bool](repeating: false, count: toks.count)
        for (k, m) in matches.enumerated() {
            for t in m.start..<m.end { inMatch[t] = true }
            if case .currency = m.entry.payload {
                currencyEndingAt[m.end - 1] = k
                currencyStartingAt[m.start] = k
            }
        }
        var matchUsed = [Bool](repeating: false, count: matches.count)

        // 2. Money: a number (digits or words) with a currency before or after it.
        i = 0
        while i < toks.count {
            if consumed[i] || inMatch[i] { i += 1; continue }
            var first = i                 // first token of the money phrase
            var value: Int? = nil         // hundredths
            var next = i + 1              // token after the number (and multiplier)
            var prefix: Int? = nil        // index into matches
            var viaArticle = false

            if toks[i].kind == .number {
                if i + 1 < toks.count, toks[i + 1].lower == "%", toks[i + 1].start == toks[i].end { i += 1; continue }
                guard let v = Self.parseDigits(toks[i].text) else { i += 1; continue }
                var mult = 1
                if i + 1 < toks.count, toks[i + 1].kind == .word {
                    let w = toks[i + 1]
                    if w.start == toks[i].end, let m = Self.attachedMultipliers[w.lower] { mult = m; next = i + 2 }
                    else if w.start > toks[i].end, let m = Self.wordMultipliers[w.lower] { mult = m; next = i + 2 }
                }
                let (r, o) = v.multipliedReportingOverflow(by: mult)
                if o { i += 1; continue }
                value = r
                if i > 0, let k = currencyEndingAt[i - 1], case let .currency(_, _, allowed, _) = matches[k].entry.payload,
                   allowed, !matchUsed[k] {
                    prefix = k
                    first = matches[k].start
                }
                // "card ending 1234", "PIN 1234": numbers that name things are not amounts.
                if prefix == nil, i > 0, Self.identifierWords.contains(toks[i - 1].lower) { i += 1; continue }
            } else if toks[i].kind == .word, case let (v, end)? = Self.parseNumberWords(toks, from: i, inMatch: inMatch) {
                value = v
                next = end
            } else if toks[i].kind == .word, toks[i].lower == "a" || toks[i].lower == "an" {
                value = 100
                viaArticle = true
            } else {
                i += 1
                continue
            }

            // Up to two adjectives between the number and a following currency: "an extra pound".
            var j = next
            var skipped = 0
            while j < toks.count, skipped < 2, Self.amountAdjectives.contains(toks[j].lower) { j += 1; skipped += 1 }
            var suffix: Int? = nil
            if let k = currencyStartingAt[j], !matchUsed[k] { suffix = k }
            if suffix == nil, j < toks.count, toks[j].kind == .word, prefix == nil, !viaArticle,
               toks[j].lower == "pence" || (toks[j].lower == "p" && toks[j].start == toks[j - 1].end && toks[i].kind == .number) {
                // 50p, 50 pence: the number counts pence.
                let money = Money(currency: "GBP", hundredths: value! / 100)
                out.append(entity(.money, first, j + 1, money.formatted, money))
                for t in first...j { consumed[t] = true }
                i = j + 1
                continue
            }
            if viaArticle {
                // "a"/"an" means one only before a singular currency word, and "a euro account"
                // is not an amount.
                guard let k = suffix, case let .currency(_, _, _, singular) = matches[k].entry.payload, singular,
                      !(matches[k].end < toks.count && Self.notAmountFollowers.contains(toks[matches[k].end].lower))
                else { i += 1; continue }
            } else if toks[i].kind == .word, suffix == nil {
                i += 1
                continue
            }
            // A suffix after adjectives only for word amounts and articles; "20 extra" + "usd" is
            // too loose for digits with a currency already in front.
            if prefix != nil, skipped > 0 { suffix = nil }

            var code: String
            var last: Int
            if let p = prefix {
                guard case let .currency(c, _, _, _) = matches[p].entry.payload else { i += 1; continue }
                code = c
                matchUsed[p] = true
                last = next
                if let s = suffix, skipped == 0, case let .currency(c2, _, _, _) = matches[s].entry.payload, c2 == code {
                    matchUsed[s] = true
                    last = matches[s].end
                }
            } else if let s = suffix, case let .currency(c, _, _, _) = matches[s].entry.payload {
                code = c
                matchUsed[s] = true
                last = matches[s].end
            } else {
                i += 1
                continue
            }
            let money = Money(currency: code, hundredths: value!)
            out.append(entity(.money, first, last, money.formatted, money))
            for t in first..<last { consumed[t] = true }
            i = last
        }

        // 3. Relative dates built from a count: "3 days ago", "two weeks ago", "a few days ago".
        i = 0
        while i < toks.count {
            if consumed[i] || inMatch[i] { i += 1; continue }
            if case let (value, end)? = Self.parseAgo(toks, from: i, consumed: consumed) {
                out.append(entity(.date, i, end, value))
                for t in i..<end { consumed[t] = true }
                i = end
            } else {
                i += 1
            }
        }

        // 4. The gazetteer phrases not used by money.
        for (k, m) in matches.enumerated() where !matchUsed[k] {
            switch m.entry.payload {
            case let .currency(code, standalone, _, _): if standalone { out.append(entity(.currency, m.start, m.end, code)) }
            case let .country(v): out.append(entity(.country, m.start, m.end, v))
            case let .cardBrand(v): out.append(entity(.cardBrand, m.start, m.end, v))
            case let .wallet(v): out.append(entity(.wallet, m.start, m.end, v))
            case let .date(v): out.append(entity(.date, m.start, m.end, v))
            case .block: break
            }
        }
        out.sort { $0.span.lowerBound < $1.span.lowerBound }
        return out
    }

    // MARK: Gazetteer matching

    struct Match {
        let start: Int
        let end: Int
        let entry: GazetteerEntry
    }

    func longestMatch(_ toks: [Token], at i: Int, hasLowercase: Bool) -> Match? {
        guard let candidates = Gazetteer.byFirstToken[toks[i].lower] else { return nil }
        // Words are whole tokens, so "eur" is never matched inside "europe" and "a$" never
        // inside "usa$".
        for e in candidates {
            let n = e.tokens.count
            guard i + n <= toks.count else { continue }
            var ok = true
            for k in 0..<n {
                let t = toks[i + k]
                if t.lower != e.tokens[k].text { ok = false; break }
                if k > 0 && (t.start == toks[i + k - 1].end) != e.tokens[k].attached { ok = false; break }
            }
            guard ok else { continue }
            if e.pronounRule && !Self.usIsCountry(toks, at: i, hasLowercase: hasLowercase) { continue }
            return Match(start: i, end: i + n, entry: e)
        }
        return nil
    }

    static let countryNounsAfterUS: Set<String> = [
        "card", "cards", "credit", "debit", "bank", "banks", "account", "accounts", "transfer", "transfers",
        "resident", "residents", "citizen", "citizens", "customer", "customers", "address", "addresses",
        "based", "issued", "phone", "number", "government", "tax",
    ]

    /// Whether the token "us" at `i` names the country rather than being the pronoun.
    static func usIsCountry(_ toks: [Token], at i: Int, hasLowercase: Bool) -> Bool {
        if toks[i].text == "US" && hasLowercase { return true }
        if i > 0, toks[i - 1].lower == "the" || toks[i - 1].lower == "a", toks[i].start > toks[i - 1].end { return true }
        var j = i + 1
        if j < toks.count, toks[j].lower == "-", toks[j].start == toks[i].end { j += 1 }
        return j < toks.count && countryNounsAfterUS.contains(toks[j].lower)
    }

    // MARK: Numbers

    static let attachedMultipliers: [String: Int] = ["k": 1000, "m": 1_000_000, "mn": 1_000_000, "bn": 1_000_000_000]
    static let wordMultipliers: [String: Int] = ["thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000]
    static let amountAdjectives: Set<String> = [
        "extra", "additional", "more", "whole", "entire", "single", "full", "measly", "pending", "odd", "strange",
        "random", "unexplained", "mysterious",
    ]
    static let identifierWords: Set<String> = ["ending", "end", "pin", "code", "number", "no", "#", "digits", "cvv", "cvc", "id", "ref", "reference"]
    static let notAmountFollowers: Set<String> = [
        "account", "accounts", "card", "cards", "iban", "balance", "wallet", "currency", "area", "zone",
        "country", "countries", "bank", "rate", "rates", "exchange", "transfer", "transfers", "payment",
        "payments", "price", "prices", "version", "note", "notes", "coin", "coins", "amount", "amounts", "sum",
        "sums", "value", "values", "figure",
    ]

    /// A digit run as hundredths, or nil when its separators do not form a number.
    static func parseDigits(_ s: String) -> Int? {
        var groups: [[UInt8]] = [[]]
        var seps: [UInt8] = []
        for b in s.utf8 {
            if b == UInt8(ascii: ",") || b == UInt8(ascii: ".") { seps.append(b); groups.append([]) }
            else { groups[groups.count - 1].append(b - UInt8(ascii: "0")) }
        }
        let comma = UInt8(ascii: ","), dot = UInt8(ascii: ".")
        var intGroups = groups
        var fraction: [UInt8] = []
        func grouped(_ gs: ArraySlice<[UInt8]>) -> Bool {
            guard let f = gs.first, (1...3).contains(f.count) else { return false }
            return gs.dropFirst().allSatisfy { $0.count == 3 }
        }
        if seps.isEmpty {
        } else if seps.allSatisfy({ $0 == comma }) {
            if grouped(groups[...]) {
            } else if seps.count == 1, (1...2).contains(groups[1].count) {
                intGroups = [groups[0]]; fraction = groups[1]
            } else { return nil }
        } else if seps.allSatisfy({ $0 == dot }) {
            if seps.count == 1 {
                intGroups = [groups[0]]; fraction = groups[1]
            } else if !grouped(groups[...]) { return nil }
        } else {
            // Mixed: the last separator is the decimal mark, the others group thousands.
            let decimal = seps.last!, thousands = seps[0]
            guard decimal != thousands, seps.dropLast().allSatisfy({ $0 == thousands }),
                  grouped(groups.dropLast()) else { return nil }
            intGroups = Array(groups.dropLast()); fraction = groups.last!
        }
        let digits = intGroups.flatMap { $0 }
        guard !digits.isEmpty, digits.count <= 13 else { return nil }
        var whole = 0
        for d in digits { whole = whole * 10 + Int(d) }
        var frac = 0
        for k in 0..<2 { frac = frac * 10 + (k < fraction.count ? Int(fraction[k]) : 0) }
        if fraction.count > 2 && fraction[2] >= 5 { frac += 1 }
        return whole * 100 + frac
    }

    static let ones: [String: Int] = [
        "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
        "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
        "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
    ]
    static let tens: [String: Int] = [
        "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
    ]

    /// "two hundred and fifty", "twenty-five", "a thousand": the value in hundredths and the
    /// index after the last word used. nil when the words are not a number.
    static func parseNumberWords(_ toks: [Token], from start: Int, inMatch: [Bool]) -> (Int, Int)? {
        var total = 0, current = 0
        var i = start
        var used = 0
        var lastWasNumber = false
        if toks[i].lower == "a" || toks[i].lower == "an" {
            guard i + 1 < toks.count, toks[i + 1].lower == "hundred" || wordMultipliers[toks[i + 1].lower] != nil else { return nil }
            current = 1
            i += 1
        }
        while i < toks.count, !inMatch[i] {
            let w = toks[i].lower
            if let v = ones[w] {
                current += v; lastWasNumber = true
            } else if let v = tens[w] {
                current += v; lastWasNumber = true
                // twenty-five
                if i + 2 < toks.count, toks[i + 1].lower == "-", let o = ones[toks[i + 2].lower], o < 10, o > 0 {
                    current += o
                    i += 2
                }
            } else if w == "hundred", used > 0 || current > 0 {
                current = max(current, 1) * 100; lastWasNumber = true
            } else if let m = wordMultipliers[w], used > 0 || current > 0 {
                total += max(current, 1) * m; current = 0; lastWasNumber = true
            } else if w == "and", lastWasNumber, i + 1 < toks.count, ones[toks[i + 1].lower] != nil || tens[toks[i + 1].lower] != nil {
                lastWasNumber = false
            } else {
                break
            }
            used += 1
            i += 1
        }
        guard used > 0 else { return nil }
        return ((total + current) * 100, i)
    }

    static let timeUnits: Set<String> = ["minute", "minutes", "hour", "hours", "day", "days", "week", "weeks",
                                         "month", "months", "year", "years"]

    /// "<count> <unit> ago" → ("3 days ago", end index).
    static func parseAgo(_ toks: [Token], from start: Int, consumed: [Bool]) -> (String, Int)? {
        var i = start
        var count: String
        let w = toks[i].lower
        if toks[i].kind == .number {
            guard toks[i].text.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
            count = toks[i].text; i += 1
        } else if w == "a" || w == "an" {
            // "a few", "a couple of", or a single unit: "a week ago".
            if i + 1 < toks.count, toks[i + 1].lower == "few" { count = "a few"; i += 2 }
            else if i + 1 < toks.count, toks[i + 1].lower == "couple" {
                count = "a couple of"; i += 2
                if i < toks.count, toks[i].lower == "of" { i += 1 }
            } else { count = w; i += 1 }
        } else if w == "few" || w == "several" || w == "many" || w == "some" { count = w; i += 1 }
        else if timeUnits.contains(w), w.hasSuffix("s") { count = "" }   // "days ago", "weeks ago"
        else if w == "couple" {
            count = "a couple of"; i += 1
            if i < toks.count, toks[i].lower == "of" { i += 1 }
        } else if case let (v, end)? = parseNumberWords(toks, from: i, inMatch: consumed) {
            count = String(v / 100); i = end
        } else { return nil }
        guard i + 1 < toks.count, timeUnits.contains(toks[i].lower), toks[i + 1].lower == "ago",
              !consumed[i], !consumed[i + 1] else { return nil }
        return (count.isEmpty ? "\(toks[i].lower) ago" : "\(count) \(toks[i].lower) ago", i + 2)
    }
}

// MARK: - Tokens

struct Token: Sendable {
    enum Kind: Sendable { case word, number, other }
    let kind: Kind
    let text: String
    let lower: String
    /// Character offsets.
    let start: Int
    let end: Int
}

enum Tokenizer {
    static func isDigit(_ c: Character) -> Bool {
        guard let a = c.asciiValue else { return false }
        return a >= 48 && a <= 57
    }

    static func tokenize(_ text: String) -> [Token] { tokenize(Array(text)) }

    /// Words are runs of letters (with their combining marks, since a Character carries them),
    /// numbers are runs of ASCII digits with single ',' or '.' between digits, and every other
    /// non-space Character is a token of its own.
    static func tokenize(_ chars: [Character]) -> [Token] {
        var out: [Token] = []
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c.isWhitespace { i += 1; continue }
            let start = i
            let kind: Token.Kind
            if c.isLetter {
                while i < chars.count, chars[i].isLetter { i += 1 }
                kind = .word
            } else if isDigit(c) {
                i += 1
                while i < chars.count {
                    if isDigit(chars[i]) { i += 1 }
                    else if (chars[i] == "," || chars[i] == "."), i + 1 < chars.count, isDigit(chars[i + 1]) { i += 2 }
                    else { break }
                }
                kind = .number
            } else {
                i += 1
                kind = .other
            }
            let text = String(chars[start..<i])
            out.append(Token(kind: kind, text: text, lower: text.lowercased(), start: start, end: i))
        }
        return out
    }
}
