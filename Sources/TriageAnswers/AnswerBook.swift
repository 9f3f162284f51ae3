// The answer book: one answer per in-scope intent, with optional entity-aware variants, read
// strictly from `answers.json` in the model directory.
//
// Format (version 1):
//
//   {
//     "version": 1,
//     "bank_name": "the bank",                      // optional; fills {bank_name}
//     "intents": {
//       "<model label>": {
//         "answer": "Plain answer, used when no template applies.",
//         "templates": [                            // optional
//           "Text with {amount}",                   // shorthand for {"text": ...}
//           {"text": "Add your card to {wallet} ...", "when": {"wallet": ["Apple Pay"]}}
//         ]
//       }
//     },
//     "out_of_scope": "Message for queries the edge cannot answer."
//   }
//
// A template applies when every placeholder in its text, and every key of its `when`, is
// filled by an entity found in the query (with a value listed in `when`, if given). Among the
// templates that apply, the one with the most requirements wins, then the one with the most
// `when` conditions, then the earliest; when none applies, the plain answer is used.
//
// Placeholders: {amount} (first money amount, formatted "£20.00"), {currency} (first currency
// named alone, else the currency of the first amount, as an ISO code "EUR"), {country}
// ("the United States", "France"), {card_brand} ("Visa", "Mastercard", "American Express"),
// {wallet} ("Apple Pay", "Google Pay"), {date} ("yesterday", "3 days ago", "last week"), and
// {bank_name}, always available. "{{" and "}}" write literal braces. Values are the
// extractor's normalised values, never the query's raw text.
//
// Loading is strict, and every error names the file and the intent: unknown keys at any level,
// a missing or empty answer, an unknown placeholder, a malformed brace, a `when` value the
// extractor can never produce, a template with no requirement (it would always replace the
// answer), or a template that can never be chosen because another one applies whenever it does
// and is preferred (same conditions earlier, or "{currency}" before "{amount}": an amount
// always brings its currency).

import TriageJSON
import TriageSystem

public struct AnswerBookError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

public enum Placeholder: String, CaseIterable, Sendable, Comparable {
    case amount, currency, country, cardBrand = "card_brand", wallet, date, bankName = "bank_name"

    public static func < (a: Placeholder, b: Placeholder) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// The entity kind that fills the placeholder; nil for {bank_name}.
    public var entityKind: Entity.Kind? {
        switch self {
        case .amount: .money
        case .currency: .currency
        case .country: .country
        case .cardBrand: .cardBrand
        case .wallet: .wallet
        case .date: .date
        case .bankName: nil
        }
    }

    static var list: String { allCases.map { "{\($0.rawValue)}" }.joined(separator: ", ") }
}

/// A parsed template text: literal pieces and placeholders.
struct TemplateText: Sendable, Equatable {
    enum Segment: Sendable, Equatable {
        case literal(String)
        case placeholder(Placeholder)
    }
    let segments: [Segment]

    var placeholders: [Placeholder] {
        var seen: [Placeholder] = []
        for case let .placeholder(p) in segments where !seen.contains(p) { seen.append(p) }
        return seen
    }

    /// Parses "{name}" placeholders, "{{" and "}}" escapes; the error text has no location prefix.
    static func parse(_ text: String) throws(AnswerBookError) -> TemplateText {
        var segments: [Segment] = []
        var literal = ""
        var chars = text.makeIterator()
        var pending: Character? = nil
        func next() -> Character? {
            if let p = pending { pending = nil; return p }
            return chars.next()
        }
        while let c = next() {
            if c == "{" {
                guard let d = next() else { throw AnswerBookError("unclosed '{' at the end") }
                if d == "{" { literal.append("{"); continue }
                var name = String(d)
                var closed = false
                while let e = next() {
                    if e == "}" { closed = true; break }
                    name.append(e)
                }
                guard closed else { throw AnswerBookError("unclosed '{\(name)' (write '{{' for a literal brace)") }
                guard let p = Placeholder(rawValue: name) else {
                    throw AnswerBookError("unknown placeholder {\(name)}; known placeholders: \(Placeholder.list)")
                }
                if !literal.isEmpty { segments.append(.literal(literal)); literal = "" }
                segments.append(.placeholder(p))
            } else if c == "}" {
                guard let d = next(), d == "}" else { throw AnswerBookError("unmatched '}' (write '}}' for a literal brace)") }
                literal.append("}")
            } else {
                literal.append(c)
            }
        }
        if !literal.isEmpty { segments.append(.literal(literal)) }
        return TemplateText(segments: segments)
    }

    func render(_ values: [Placeholder: String]) -> String {
        var out = ""
        for s in segments {
            switch s {
            case let .literal(l): out += l
            case let .placeholder(p): out += values[p] ?? ""
            }
        }
        return out
    }
}

public struct AnswerTemplate: Sendable {
    /// The template text as written in the book.
    public let text: String
    /// Entity placeholders the query must fill (those in the text and the `when` keys).
    public let requires: [Placeholder]
    /// Allowed values per conditioned placeholder, e.g. wallet ∈ {"Apple Pay"}.
    public let when: [Placeholder: Set<String>]
    let parsed: TemplateText
}

public struct AnswerEntry: Sendable {
    public let intent: String
    public let answer: String
    public let templates: [AnswerTemplate]
    let parsedAnswer: TemplateText
}

public struct Answer: Sendable, Equatable {
    /// The text to show the customer.
    public let text: String
    public let intent: String
    /// Every entity found in the query, whether or not the answer used it.
    public let entities: [Entity]
    /// True when an entity-aware template produced the text.
    public let template: Bool
    /// Which template (0-based, in book order), when `template` is true.
    public let templateIndex: Int?

    public var jsonValue: JSONValue {
        .object([
            ("intent", .string(intent)), ("text", .string(text)), ("template", .bool(template)),
            ("entities", .array(entities.map(\.jsonValue))),
        ])
    }
}

public struct AnswerBook: Sendable {
    public static let formatVersion = 1
    public static let defaultBankName = "the bank"

    public let version: Int
    public let bankName: String
    /// Intents in book order.
    public let entries: [AnswerEntry]
    /// The message for queries the edge cannot answer, with {bank_name} filled.
    public let outOfScopeMessage: String
    public let extractor = EntityExtractor()
    private let index: [String: Int]

    /// The intents that have an answer, in book order.
    public var labels: [String] { entries.map(\.intent) }

    /// Reads and checks an answer book; every problem is an `AnswerBookError` naming the file.
    public static func load(path: String) throws(AnswerBookError) -> AnswerBook {
        let text: String
        do { text = try FileSystem.readText(path) } catch {
            throw AnswerBookError("answer book \(path): cannot read: \(error)")
        }
        return try AnswerBook(jsonText: text, source: "answer book \(path)")
    }

    public init(jsonText: String, source: String = "answer book") throws(AnswerBookError) {
        let value: JSONValue
        do { value = try JSONValue.parse(jsonText) } catch {
            throw AnswerBookError("\(source): \(error)")
        }
        try self.init(json: value, source: source)
    }

    public init(json: JSONValue, source: String = "answer book") throws(AnswerBookError) {
        func fail(_ m: String) -> AnswerBookError { AnswerBookError("\(source): \(m)") }
        guard let root = json.objectPairs else { throw fail("the top level must be a JSON object") }
        let topKeys = ["version", "bank_name", "intents", "out_of_scope"]
        try Self.checkKeys(root, allowed: topKeys, what: "top-level key", fail: fail)

        guard let v = json["version"] else { throw fail("missing \"version\" (this build reads version \(Self.formatVersion))") }
        guard let vi = v.intValue, vi == Self.formatVersion else {
            throw fail("unsupported version \(v.serialized) (this build reads version \(Self.formatVersion))")
        }
        version = vi

        if let b = json["bank_name"] {
            guard let s = b.stringValue, !Self.isBlank(s) else { throw fail("\"bank_name\" must be a non-empty string") }
            bankName = s
        } else {
            bankName = Self.defaultBankName
        }

        guard let oos = json["out_of_scope"] else { throw fail("missing \"out_of_scope\" message") }
        guard let oosText = oos.stringValue, !Self.isBlank(oosText) else {
            throw fail("\"out_of_scope\" must be a non-empty string")
        }
        let oosParsed: TemplateText
        do { oosParsed = try TemplateText.parse(oosText) } catch { throw fail("\"out_of_scope\": \(error.message)") }
        if let p = oosParsed.placeholders.first(where: { $0 != .bankName }) {
            throw fail("\"out_of_scope\" cannot use {\(p.rawValue)}: there is no query entity for it")
        }
        outOfScopeMessage = oosParsed.render([.bankName: bankName])

        guard let intentsValue = json["intents"] else { throw fail("missing \"intents\"") }
        guard let intents = intentsValue.objectPairs else { throw fail("\"intents\" must be an object of label → entry") }
        guard !intents.isEmpty else { throw fail("\"intents\" is empty") }
        var entries: [AnswerEntry] = []
        var index: [String: Int] = [:]
        for (label, value) in intents {
            func failIntent(_ m: String) -> AnswerBookError { fail("intent '\(label)': \(m)") }
            guard !Self.isBlank(label) else { throw fail("an intent label is empty") }
            guard index[label] == nil else { throw failIntent("appears twice") }
            if label == "oos" {
                throw failIntent("the out-of-scope message belongs in \"out_of_scope\", not in \"intents\"")
            }
            guard let pairs = value.objectPairs else { throw failIntent("must be an object with \"answer\"") }
            try Self.checkKeys(pairs, allowed: ["answer", "templates"], what: "key", fail: failIntent)
            guard let a = value["answer"] else { throw failIntent("missing \"answer\"") }
            guard let answer = a.stringValue else { throw failIntent("\"answer\" must be a string") }
            guard !Self.isBlank(answer) else { throw failIntent("\"answer\" is empty") }
            let parsedAnswer: TemplateText
            do { parsedAnswer = try TemplateText.parse(answer) } catch { throw failIntent("answer: \(error.message)") }
            if let p = parsedAnswer.placeholders.first(where: { $0 != .bankName }) {
                throw failIntent("the plain answer cannot use {\(p.rawValue)}: put entity placeholders in a template")
            }
            var templates: [AnswerTemplate] = []
            if let t = value["templates"] {
                guard let list = t.arrayValue else { throw failIntent("\"templates\" must be an array") }
                for (n, item) in list.enumerated() {
                    templates.append(try Self.parseTemplate(item) { m in failIntent("template \(n + 1): \(m)") })
                }
                for (b, tb) in templates.enumerated() {
                    for (a, ta) in templates.enumerated() where a != b && Self.shadows(ta, a, tb, b) {
                        throw failIntent("template \(b + 1) can never be chosen: template \(a + 1) applies whenever it does and is preferred")
                    }
                }
            }
            index[label] = entries.count
            entries.append(AnswerEntry(intent: label, answer: answer, templates: templates, parsedAnswer: parsedAnswer))
        }
        self.entries = entries
        self.index = index
    }

    private static func parseTemplate(_ item: JSONValue, fail: (String) -> AnswerBookError) throws(AnswerBookError) -> AnswerTemplate {
        let text: String
        var when: [Placeholder: Set<String>] = [:]
        if let s = item.stringValue {
            text = s
        } else if let pairs = item.objectPairs {
            try checkKeys(pairs, allowed: ["text", "when"], what: "key", fail: fail)
            guard let s = item["text"]?.stringValue else { throw fail("missing \"text\" string") }
            text = s
            if let w = item["when"] {
                guard let conds = w.objectPairs, !conds.isEmpty else {
                    throw fail("\"when\" must be a non-empty object of placeholder → value(s)")
                }
                for (key, v) in conds {
                    guard let p = Placeholder(rawValue: key), let kind = p.entityKind else {
                        throw fail("\"when\" has unknown placeholder '\(key)'; known placeholders: \(Placeholder.list)")
                    }
                    guard p != .amount, p != .date else {
                        throw fail("\"when\" cannot test {\(key)}: its values are not a fixed list")
                    }
                    guard when[p] == nil else { throw fail("\"when\" lists '\(key)' twice") }
                    var values: [String] = []
                    if let s = v.stringValue { values = [s] }
                    else if let arr = v.arrayValue, !arr.isEmpty, arr.allSatisfy({ $0.stringValue != nil }) {
                        values = arr.map { $0.stringValue! }
                    } else {
                        throw fail("\"when\".\(key) must be a string or a non-empty array of strings")
                    }
                    let known = Gazetteer.values(of: kind)
                    for value in values where !known.contains(value) {
                        let examples = known.sorted().prefix(8).joined(separator: ", ")
                        throw fail("\"when\".\(key) value '\(value)' is never produced by the entity extractor (values look like: \(examples))")
                    }
                    when[p] = Set(values)
                }
            }
        } else {
            throw fail("must be a string or an object with \"text\"")
        }
        guard !isBlank(text) else { throw fail("text is empty") }
        let parsed: TemplateText
        do { parsed = try TemplateText.parse(text) } catch { throw fail(error.message) }
        var requires = parsed.placeholders.filter { $0 != .bankName }
        for p in when.keys where !requires.contains(p) { requires.append(p) }
        requires.sort()
        guard !requires.isEmpty else {
            throw fail("uses no entity placeholder and no \"when\": it would always replace the answer")
        }
        return AnswerTemplate(text: text, requires: requires, when: when, parsed: parsed)
    }

    /// Whether template `a` (at index ia) is chosen over `b` (at ib) for every query `b` fits:
    /// `a` needs nothing `b` does not guarantee (an amount guarantees a currency), its `when`
    /// values include `b`'s, and it ranks higher or equal and earlier.
    static func shadows(_ a: AnswerTemplate, _ ia: Int, _ b: AnswerTemplate, _ ib: Int) -> Bool {
        var guaranteed = Set(b.requires)
        if guaranteed.contains(.amount) { guaranteed.insert(.currency) }
        guard a.requires.allSatisfy({ guaranteed.contains($0) }) else { return false }
        for (p, allowed) in a.when {
            guard let bAllowed = b.when[p], bAllowed.isSubset(of: allowed) else { return false }
        }
        let sa = (a.requires.count, a.when.count), sb = (b.requires.count, b.when.count)
        return sa > sb || (sa == sb && ia < ib)
    }

    private static func checkKeys(_ pairs: [(String, JSONValue)], allowed: [String], what: String,
                                  fail: (String) -> AnswerBookError) throws(AnswerBookError) {
        var seen = Set<String>()
        for (k, _) in pairs {
            guard allowed.contains(k) else {
                throw fail("unknown \(what) '\(k)' (expected \(allowed.map { "\"\($0)\"" }.joined(separator: ", ")))")
            }
            guard seen.insert(k).inserted else { throw fail("\(what) '\(k)' appears twice") }
        }
    }

    private static func isBlank(_ s: String) -> Bool { s.allSatisfy(\.isWhitespace) }

    // MARK: Answering

    public func entry(for label: String) -> AnswerEntry? {
        index[label].map { entries[$0] }
    }

    /// The answer for a classified query: the most specific template its entities fill, else
    /// the plain answer. nil when the book has no entry for the label (including `oos`).
    public func answer(for label: String, query: String) -> Answer? {
        answer(for: label, entities: extractor.extract(query))
    }

    /// As `answer(for:query:)`, with entities already extracted.
    public func answer(for label: String, entities: [Entity]) -> Answer? {
        guard let entry = entry(for: label) else { return nil }
        var best: (index: Int, score: (Int, Int), values: [Placeholder: String])? = nil
        for (n, t) in entry.templates.enumerated() {
            guard let values = Self.bind(t, entities) else { continue }
            let score = (t.requires.count, t.when.count)
            if best == nil || score > best!.score { best = (n, score, values) }
        }
        if let b = best {
            var values = b.values
            values[.bankName] = bankName
            return Answer(text: entry.templates[b.index].parsed.render(values), intent: label, entities: entities,
                          template: true, templateIndex: b.index)
        }
        return Answer(text: entry.parsedAnswer.render([.bankName: bankName]), intent: label, entities: entities,
                      template: false, templateIndex: nil)
    }

    /// The value for each requirement, or nil when the entities do not fill them all.
    static func bind(_ t: AnswerTemplate, _ entities: [Entity]) -> [Placeholder: String]? {
        var values: [Placeholder: String] = [:]
        for p in t.requires {
            var candidates: [String]
            switch p {
            case .amount: candidates = entities.filter { $0.kind == .money }.map(\.value)
            case .currency:
                candidates = entities.filter { $0.kind == .currency }.map(\.value)
                    + entities.compactMap { $0.money?.currency }
            case .bankName: continue
            default: candidates = entities.filter { $0.kind == p.entityKind }.map(\.value)
            }
            if let allowed = t.when[p] { candidates = candidates.filter { allowed.contains($0) } }
            guard let v = candidates.first else { return nil }
            values[p] = v
        }
        return values
    }

    /// Problems between the book and a model's labels: model labels with no answer (the
    /// out-of-scope label excepted) and book intents the model cannot produce. Empty when they
    /// match.
    public func validate(against modelLabels: [String], outOfScopeLabel: String = "oos") -> [String] {
        var problems: [String] = []
        let model = Set(modelLabels)
        for l in modelLabels where l != outOfScopeLabel && index[l] == nil {
            problems.append("model label '\(l)' has no answer in the answer book")
        }
        for e in entries where !model.contains(e.intent) {
            problems.append("answer book intent '\(e.intent)' is not a label of the model")
        }
        return problems
    }
}
