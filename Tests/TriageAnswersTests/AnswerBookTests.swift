// The answer book: the shipped draft, template selection, and strict loading.

import Foundation
import Testing
import TriageJSON
import TriageSystem
@testable import TriageAnswers

enum Repo {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// The shipped answer book: in the model directory once it has moved there, else the draft.
    static var shippedBook: String {
        let shipped = root + "/weights/banking77/answers.json"
        return shipped
    }
}

/// A small book for selection tests, with the given templates for `card_arrival`.
func book(_ templates: String, answer: String = "Plain answer.", extra: String = "") throws -> AnswerBook {
    try AnswerBook(jsonText: """
    {"version": 1, "bank_name": "Acme Bank", "intents": {
      "card_arrival": {"answer": "\(answer)", "templates": [\(templates)]}\(extra)
    }, "out_of_scope": "Ask {bank_name} support."}
    """)
}

/// The error message from building a book out of `json`, or nil if it loaded.
func loadError(_ json: String) -> String? {
    do { _ = try AnswerBook(jsonText: json, source: "answers.json"); return nil } catch { return error.message }
}

let minimalIntents = #""card_arrival": {"answer": "Track it in Cards."}"#

@Suite struct ShippedBook {
    let book: AnswerBook
    init() throws { book = try AnswerBook.load(path: Repo.shippedBook) }

    @Test func coversEveryInScopeLabelExactly() {
        #expect(book.labels.count == 50)
        #expect(Set(book.labels) == Set(inScopeLabelsFixture))
        #expect(!book.labels.contains("oos"))
        #expect(book.validate(against: inScopeLabelsFixture + ["oos"]) == [])
        #expect(!book.outOfScopeMessage.isEmpty)
        #expect(book.version == 1)
    }

    @Test func answersAreSubstantial() {
        for e in book.entries {
            let sentences = e.answer.filter { $0 == "." || $0 == "?" || $0 == "!" }.count
            #expect(sentences >= 2, "\(e.intent): answer too short")
            #expect(e.answer.count <= 700, "\(e.intent): answer too long for an app message")
            #expect(!e.answer.contains("{"), "\(e.intent): the plain answer needs no entity")
        }
    }

    @Test func templatesWhereEntitiesHelp() {
        let withTemplates = book.entries.filter { !$0.templates.isEmpty }
        #expect(withTemplates.count >= 12)
        let used = Set(book.entries.flatMap { $0.templates.flatMap(\.requires) })
        #expect(used.isSuperset(of: [.amount, .currency, .country, .cardBrand, .wallet, .date]))
    }

    /// Every template is chosen by a query that mentions exactly its requirements, and renders
    /// with the normalised values and no leftover braces.
    @Test func everyTemplateIsReachableAndRenders() throws {
        for e in book.entries {
            for (n, t) in e.templates.enumerated() {
                var parts: [String] = []
                var expected: [String] = []
                for p in t.requires {
                    switch p {
                    case .amount: parts.append("1,200 dollars"); expected.append("$1,200.00")
                    case .currency: parts.append("euros"); expected.append("EUR")
                    case .country: parts.append("in France"); expected.append("France")
                    case .cardBrand:
                        let v = t.when[p]?.sorted().first ?? "American Express"
                        parts.append(v.lowercased()); expected.append(v)
                    case .wallet:
                        let v = t.when[p]?.sorted().first ?? "Samsung Pay"
                        parts.append(v.lowercased()); expected.append(v)
                    case .date: parts.append("3 days ago"); expected.append("3 days ago")
                    case .bankName: break
                    }
                }
                let query = parts.joined(separator: " and ")
                let a = try #require(book.answer(for: e.intent, query: query))
                #expect(a.template && a.templateIndex == n, "\(e.intent) template \(n + 1) not chosen for \"\(query)\"")
                for (p, v) in zip(t.requires, expected) where t.parsed.placeholders.contains(p) {
                    #expect(a.text.contains(v), "\(e.intent) template \(n + 1): \(p) not filled")
                }
                #expect(!a.text.contains("{") && !a.text.contains("}"), "\(e.intent) template \(n + 1)")
            }
        }
    }

    @Test func examplesFromCustomers() throws {
        let twice = try #require(book.answer(for: "transaction_charged_twice", query: "i was charged £45.20 twice at the restaurant"))
        #expect(twice.template)
        #expect(twice.text.hasPrefix("If you were charged £45.20 twice"))

        let apple = try #require(book.answer(for: "apple_pay_or_google_pay", query: "how do i add my card to apple pay?"))
        #expect(apple.text.contains("Wallet app on your iPhone"))
        let google = try #require(book.answer(for: "apple_pay_or_google_pay", query: "does it work with gpay"))
        #expect(google.text.contains("Google Wallet"))

        let plain = try #require(book.answer(for: "card_arrival", query: "where is my card?"))
        #expect(!plain.template && plain.text == book.entry(for: "card_arrival")!.answer)

        let stolen = try #require(book.answer(for: "lost_or_stolen_phone", query: "my phone was stolen yesterday"))
        #expect(stolen.text.contains("freeze your cards"))

        let visa = try #require(book.answer(for: "visa_or_mastercard", query: "can i get a mastercard?"))
        #expect(visa.text.hasPrefix("We can't issue a Mastercard card on request"))
    }

    @Test func outOfScopeIsNotAnIntent() {
        #expect(book.answer(for: "oos", query: "what's the weather") == nil)
        #expect(book.answer(for: "no_such_intent", query: "hi") == nil)
    }
}

@Suite struct TemplateSelection {
    @Test func mostSpecificTemplateWins() throws {
        let b = try book(#""Amount {amount}.", "Both {amount} in {country}.", "Country {country}.""#)
        #expect(b.answer(for: "card_arrival", query: "£5 in Spain")?.text == "Both £5.00 in Spain.")
        #expect(b.answer(for: "card_arrival", query: "£5")?.text == "Amount £5.00.")
        #expect(b.answer(for: "card_arrival", query: "in Spain")?.text == "Country Spain.")
        let plain = try #require(b.answer(for: "card_arrival", query: "hello"))
        #expect(plain.text == "Plain answer." && !plain.template && plain.templateIndex == nil)
    }

    @Test func equallySpecificTemplatesGoInBookOrder() throws {
        let b = try book(#""Country {country}.", "Amount {amount}.""#)
        let a = try #require(b.answer(for: "card_arrival", query: "£5 in Spain"))
        #expect(a.text == "Country Spain." && a.templateIndex == 0)
    }

    @Test func whenConditionsBeatGenericTemplates() throws {
        let b = try book(#"""
        "Generic {wallet}.", {"text": "Apple: {wallet}.", "when": {"wallet": ["Apple Pay"]}}
        """#)
        #expect(b.answer(for: "card_arrival", query: "samsung pay")?.text == "Generic Samsung Pay.")
        #expect(b.answer(for: "card_arrival", query: "apple pay")?.text == "Apple: Apple Pay.")
        // The condition picks the matching entity, not merely the first one.
        #expect(b.answer(for: "card_arrival", query: "google pay or apple pay")?.text == "Apple: Apple Pay.")
    }

    @Test func whenWithoutPlaceholderStillRequiresTheEntity() throws {
        let b = try book(#"{"text": "For Visa cards.", "when": {"card_brand": "Visa"}}"#)
        #expect(b.answer(for: "card_arrival", query: "my visa")?.text == "For Visa cards.")
        #expect(b.answer(for: "card_arrival", query: "my mastercard")?.text == "Plain answer.")
    }

    @Test func currencyFallsBackToTheAmountsCurrency() throws {
        let b = try book(#""In {currency}.""#)
        #expect(b.answer(for: "card_arrival", query: "I paid ¥3000")?.text == "In JPY.")
        #expect(b.answer(for: "card_arrival", query: "I paid ¥3000 in euros")?.text == "In EUR.")
    }

    @Test func valuesAreNormalisedNeverRawQuery() throws {
        let b = try book(#""Charged {amount} on {date} in {country}.""#)
        let a = try #require(b.answer(for: "card_arrival", query: "CHARGED 1,200 DOLLARS TWO DAYS AGO IN THE UNITED KINGDOM!!"))
        #expect(a.text == "Charged $1,200.00 on 2 days ago in the United Kingdom.")
        #expect(a.entities.count == 3)
    }

    @Test func bankNameAndEscapes() throws {
        let b = try book(#""{{{amount}}} from {bank_name}.""#, answer: "Welcome to {bank_name}.")
        #expect(b.answer(for: "card_arrival", query: "€2")?.text == "{€2.00} from Acme Bank.")
        #expect(b.answer(for: "card_arrival", query: "hi")?.text == "Welcome to Acme Bank.")
        #expect(b.outOfScopeMessage == "Ask Acme Bank support.")
        #expect(b.bankName == "Acme Bank")
    }

    @Test func answerJSON() throws {
        let b = try book(#""Amount {amount}.""#)
        let a = try #require(b.answer(for: "card_arrival", query: "£5"))
        #expect(a.jsonValue["template"] == .bool(true))
        #expect(a.jsonValue["text"] == .string("Amount £5.00."))
        #expect(a.jsonValue["entities"]?.arrayValue?.count == 1)
    }

    @Test func defaultsAndLabels() throws {
        let b = try AnswerBook(jsonText: #"{"version": 1, "intents": {"b": {"answer": "B."}, "a": {"answer": "A."}}, "out_of_scope": "No."}"#)
        #expect(b.bankName == "the bank")
        #expect(b.labels == ["b", "a"])
    }

    @Test func validateListsBothDirections() throws {
        let b = try AnswerBook(jsonText: #"{"version": 1, "intents": {"a": {"answer": "A."}, "extra": {"answer": "E."}}, "out_of_scope": "No."}"#)
        #expect(b.validate(against: ["a", "missing", "oos"]) == [
            "model label 'missing' has no answer in the answer book",
            "answer book intent 'extra' is not a label of the model",
        ])
        #expect(b.validate(against: ["a", "extra", "out_of_scope"], outOfScopeLabel: "out_of_scope") == [])
        #expect(b.validate(against: ["a", "extra", "out_of_scope"]).count == 1)
    }
}

@Suite struct StrictLoading {
    @Test(arguments: [
        // (JSON, phrases the message must contain)
        (#"{"version": 1, "intents": {"#, ["answers.json", "invalid JSON at byte"]),
        (#"[1, 2]"#, ["top level must be a JSON object"]),
        (#"{"version": 1, "intents": {\#(minimalIntents)}, "out_of_scope": "No.", "intent": {}}"#, ["unknown top-level key 'intent'"]),
        (#"{"intents": {\#(minimalIntents)}, "out_of_scope": "No."}"#, ["missing \"version\""]),
        (#"{"version": 2, "intents": {\#(minimalIntents)}, "out_of_scope": "No."}"#, ["unsupported version 2"]),
        (#"{"version": 1, "intents": {\#(minimalIntents)}}"#, ["missing \"out_of_scope\""]),
        (#"{"version": 1, "intents": {\#(minimalIntents)}, "out_of_scope": " "}"#, ["\"out_of_scope\" must be a non-empty string"]),
        (#"{"version": 1, "intents": {\#(minimalIntents)}, "out_of_scope": "Sorry {amount}"}"#, ["\"out_of_scope\" cannot use {amount}"]),
        (#"{"version": 1, "bank_name": "", "intents": {\#(minimalIntents)}, "out_of_scope": "No."}"#, ["\"bank_name\" must be a non-empty string"]),
        (#"{"version": 1, "intents": {}, "out_of_scope": "No."}"#, ["\"intents\" is empty"]),
        (#"{"version": 1, "intents": {"card_arrival": {"templates": []}}, "out_of_scope": "No."}"#, ["intent 'card_arrival': missing \"answer\""]),
        (#"{"version": 1, "intents": {"card_arrival": {"answer": "  "}}, "out_of_scope": "No."}"#, ["intent 'card_arrival': \"answer\" is empty"]),
        (#"{"version": 1, "intents": {"card_arrival": {"answer": 3}}, "out_of_scope": "No."}"#, ["intent 'card_arrival': \"answer\" must be a string"]),
        (#"{"version": 1, "intents": {"card_arrival": {"answer": "A.", "anwser": "B."}}, "out_of_scope": "No."}"#, ["intent 'card_arrival': unknown key 'anwser'"]),
        (#"{"version": 1, "intents": {"card_arrival": "Track it."}, "out_of_scope": "No."}"#, ["intent 'card_arrival': must be an object"]),
        (#"{"version": 1, "intents": {\#(minimalIntents), "card_arrival": {"answer": "Again."}}, "out_of_scope": "No."}"#, ["intent 'card_arrival': appears twice"]),
        (#"{"version": 1, "intents": {"oos": {"answer": "No."}}, "out_of_scope": "No."}"#, ["intent 'oos'", "belongs in \"out_of_scope\""]),
        (#"{"version": 1, "intents": {"transaction_charged_twice": {"answer": "A.", "templates": ["Charged at {merchant}."]}}, "out_of_scope": "No."}"#,
         ["intent 'transaction_charged_twice'", "template 1", "unknown placeholder {merchant}", "{amount}"]),
        (#"{"version": 1, "intents": {"card_arrival": {"answer": "You paid {amount}."}}, "out_of_scope": "No."}"#, ["intent 'card_arrival'", "plain answer cannot use {amount}"]),
        (#"{"version": 1, "intents": {"card_arrival": {"answer": "A.", "templates": ["Paid {amount"]}}, "out_of_scope": "No."}"#, ["template 1", "unclosed '{amount'"]),
        (#"{"version": 1, "intents": {"card_arrival": {"answer": "A.", "templates": ["Paid {amount} }"]}}, "out_of_scope": "No."}"#, ["template 1", "unmatched '}'"]),
        (#"{"version": 1, "intents": {"card_arrival": {"answer": "A.", "templates": ["No entities here."]}}, "out_of_scope": "No."}"#, ["template 1", "would always replace the answer"]),
        (#"{"version": 1, "intents": {"card_arrival": {"answer": "A.", "templates": ["{amount} one.", "{amount} two."]}}, "out_of_scope": "No."}"#, ["template 2 can never be chosen", "template 1"]),
        (#"{"version": 1, "intents": {"card_arrival": {"answer": "A.", "templates": ["In {currency}.", "Exchange {amount}."]}}, "out_of_scope": "No."}"#, ["template 2 can never be chosen", "template 1 applies whenever it does"]),
        (#"{"version": 1, "intents": {"card_arrival": {"answer": "A.", "templates": [{"text": "Wallet {amount}.", "when": {"wallet": ["Apple Pay", "Google Pay"]}}, {"text": "Apple {amount}.", "when": {"wallet": "Apple Pay"}}]}}, "out_of_scope": "No."}"#, ["template 2 can never be chosen", "template 1 applies"]),
        (#"{"version": 1, "intents": {"card_arrival": {"answer": "A.", "templates": [{"text": "X {wallet}.", "when": {"wallet": "apple pay"}}]}}, "out_of_scope": "No."}"#, ["'apple pay' is never produced", "Apple Pay"]),
        (#"{"version": 1, "intents": {"card_arrival": {"answer": "A.", "templates": [{"text": "X {amount}.", "when": {"amount": "£5.00"}}]}}, "out_of_scope": "No."}"#, ["cannot test {amount}"]),
        (#"{"version": 1, "intents": {"card_arrival": {"answer": "A.", "templates": [{"text": "X {wallet}.", "when": {"merchant": "Tesco"}}]}}, "out_of_scope": "No."}"#, ["unknown placeholder 'merchant'"]),
        (#"{"version": 1, "intents": {"card_arrival": {"answer": "A.", "templates": [{"text": "X {wallet}.", "if": {}}]}}, "out_of_scope": "No."}"#, ["template 1", "unknown key 'if'"]),
        (#"{"version": 1, "intents": {"card_arrival": {"answer": "A.", "templates": [{"when": {"wallet": "Apple Pay"}}]}}, "out_of_scope": "No."}"#, ["template 1", "missing \"text\""]),
        (#"{"version": 1, "intents": {"card_arrival": {"answer": "A.", "templates": "X {amount}"}}, "out_of_scope": "No."}"#, ["\"templates\" must be an array"]),
    ])
    func rejects(_ json: String, _ phrases: [String]) {
        let message = loadError(json)
        #expect(message != nil, "loaded: \(json)")
        for p in phrases { #expect(message?.contains(p) == true, "\(message ?? "nil") lacks \(p)") }
    }

    @Test func acceptsTemplatesThatCanEachBeChosen() {
        // Amount before currency is fine: a currency alone picks the second.
        #expect(loadError(#"{"version": 1, "intents": {"a": {"answer": "A.", "templates": ["Exchange {amount}.", "In {currency}.", "{wallet}.", {"text": "Apple.", "when": {"wallet": "Apple Pay"}}, "Both {wallet} {amount}.", {"text": "Wallet {amount}.", "when": {"wallet": ["Apple Pay", "Google Pay"]}}]}}, "out_of_scope": "No."}"#) == nil)
    }

    @Test func acceptsTheSmallestBook() {
        #expect(loadError(#"{"version": 1, "intents": {\#(minimalIntents)}, "out_of_scope": "No."}"#) == nil)
    }

    @Test func loadNamesTheFile() throws {
        let missing = "/nonexistent/triage/answers.json"
        do {
            _ = try AnswerBook.load(path: missing)
            Issue.record("loaded a missing file")
        } catch {
            #expect(error.message.contains(missing) && error.message.contains("cannot read"))
        }

        let path = NSTemporaryDirectory() + "triage-answers-\(UInt64.random(in: 0...UInt64.max)).json"
        try FileSystem.writeAtomically(path, text: #"{"version": 1, "intents": {"x": {"answer": ""}}, "out_of_scope": "No."}"#)
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            _ = try AnswerBook.load(path: path)
            Issue.record("loaded an empty answer")
        } catch {
            #expect(error.message == "answer book \(path): intent 'x': \"answer\" is empty")
        }
    }
}
