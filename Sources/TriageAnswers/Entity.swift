// Entities found in a customer's query: the typed values an answer template can quote back.
//
// Spans are Character offsets into the query (extended grapheme clusters), never byte or
// scalar offsets, so a span can never split an accented letter or a flag emoji.

import TriageJSON

public struct Entity: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, CaseIterable {
        /// An amount with its currency: "£20", "20 GBP", "an extra pound", "$1.5k".
        case money
        /// A currency named without an amount: "EUR", "euros", "uk pounds", "$".
        case currency
        /// A country: "France", "the US", "United Kingdom".
        case country
        /// A card network: Visa, Mastercard, American Express, Maestro, ...
        case cardBrand = "card_brand"
        /// A phone wallet: Apple Pay, Google Pay, Samsung Pay.
        case wallet
        /// A relative time in the past: "today", "yesterday", "last week", "3 days ago".
        case date
    }

    public let kind: Kind
    /// The query's own characters that produced the entity, as written.
    public let text: String
    /// Character offsets of `text` in the query.
    public let span: Range<Int>
    /// The normalised value: money "£20.00", currency "EUR", country "the United States",
    /// card brand "Mastercard", wallet "Apple Pay", date "3 days ago".
    public let value: String
    /// For `.money`: the amount and its ISO 4217 currency.
    public let money: Money?

    public init(kind: Kind, text: String, span: Range<Int>, value: String, money: Money? = nil) {
        self.kind = kind
        self.text = text
        self.span = span
        self.value = value
        self.money = money
    }

    public var description: String { "\(kind.rawValue)(\(value)) \"\(text)\" @\(span.lowerBound)..<\(span.upperBound)" }

    public var jsonValue: JSONValue {
        var pairs: [(String, JSONValue)] = [
            ("kind", .string(kind.rawValue)), ("text", .string(text)), ("value", .string(value)),
            ("start", .int(span.lowerBound)), ("end", .int(span.upperBound)),
        ]
        if let m = money {
            pairs.append(("currency", .string(m.currency)))
            pairs.append(("amount", .string(m.decimalString)))
        }
        return .object(pairs)
    }
}

/// An amount of money, held exactly in hundredths of the currency's main unit.
public struct Money: Sendable, Equatable, CustomStringConvertible {
    /// ISO 4217 code: "GBP", "EUR", "USD", ...
    public let currency: String
    /// The amount in hundredths of the main unit (pence, cents), rounded half up.
    public let hundredths: Int

    public init(currency: String, hundredths: Int) {
        self.currency = currency
        self.hundredths = hundredths
    }

    /// "1200.50": plain decimal with two places (none for zero-decimal currencies like JPY).
    public var decimalString: String {
        let whole = hundredths / 100, frac = hundredths % 100
        if Currencies.zeroDecimal.contains(currency) && frac == 0 { return String(whole) }
        return "\(whole)." + (frac < 10 ? "0" : "") + String(frac)
    }

    /// "£1,200.50", "$5.00", "¥3,000", "250.00 CHF": the form placed into answers.
    public var formatted: String {
        let whole = hundredths / 100, frac = hundredths % 100
        var digits = String(whole)
        var grouped = ""
        while digits.count > 3 {
            grouped = "," + String(digits.suffix(3)) + grouped
            digits.removeLast(3)
        }
        grouped = digits + grouped
        if !(Currencies.zeroDecimal.contains(currency) && frac == 0) {
            grouped += "." + (frac < 10 ? "0" : "") + String(frac)
        }
        if let symbol = Currencies.displaySymbol[currency] { return symbol + grouped }
        return grouped + " " + currency
    }

    public var description: String { formatted }
}
