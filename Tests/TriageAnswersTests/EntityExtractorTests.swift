// Entity extraction: real queries from the training data (RealQueryFixture.swift), then edge
// cases one at a time.

import Testing
import TriageJSON
@testable import TriageAnswers

struct EntityCase: Sendable, CustomTestStringConvertible {
    let query: String
    let expected: [[String]]   // [kind, value, text]
    var testDescription: String { query }
}

let realQueryCases: [EntityCase] = realQueryFixture.split(separator: "\n").map { line in
    let v = try! JSONValue.parse(String(line))
    let ents = v["entities"]!.arrayValue!.map { $0.arrayValue!.map { $0.stringValue! } }
    return EntityCase(query: v["q"]!.stringValue!, expected: ents)
}

let extractor = EntityExtractor()

/// [kind, value, text] for each entity, checking on the way that the span holds the text.
func triples(_ query: String) -> [[String]] {
    let chars = Array(query)
    return extractor.extract(query).map { e in
        #expect(String(chars[e.span]) == e.text, "span \(e.span) of \(query) is not \"\(e.text)\"")
        return [e.kind.rawValue, e.value, e.text]
    }
}

func money(_ query: String) -> [String] {
    extractor.extract(query).filter { $0.kind == .money }.map(\.value)
}

@Suite struct RealQueries {
    @Test(arguments: realQueryCases)
    func extractsWhatTheQuerySays(_ c: EntityCase) {
        #expect(triples(c.query) == c.expected)
    }

    @Test func fixtureIsBroad() {
        #expect(realQueryCases.count >= 40)
        let kinds = Set(realQueryCases.flatMap { $0.expected.map { $0[0] } })
        #expect(kinds == Set(Entity.Kind.allCases.map(\.rawValue)))
        #expect(realQueryCases.filter { $0.expected.isEmpty }.count >= 8, "queries whose numbers are not money")
    }

    @Test func spansAreOrderedAndDisjoint() {
        for c in realQueryCases {
            let es = extractor.extract(c.query)
            for (a, b) in zip(es, es.dropFirst()) {
                #expect(a.span.upperBound <= b.span.lowerBound, "\(c.query): \(a) overlaps \(b)")
            }
            #expect(extractor.extract(c.query) == es, "deterministic")
        }
    }
}

@Suite struct MoneyFormats {
    @Test(arguments: [
        ("£20", "£20.00"), ("i was charged 20 GBP", "£20.00"), ("€15.50 fee", "€15.50"), ("1,200 dollars", "$1,200.00"),
        ("$ 5", "$5.00"), ("1,000.50 euros", "€1,000.50"), ("15,50 €", "€15.50"), ("1.000.000,50 EUR", "€1,000,000.50"),
        ("£1.5k", "£1,500.00"), ("£5k", "£5,000.00"), ("$2m", "$2,000,000.00"), ("5 thousand dollars", "$5,000.00"),
        ("¥3000", "¥3,000"), ("3000 yen", "¥3,000"), ("CHF 250", "250.00 CHF"), ("250 swiss francs", "250.00 CHF"),
        ("usd100", "$100.00"), ("US$40", "$40.00"), ("A$30", "30.00 AUD"), ("C$ 20", "20.00 CAD"), ("50p", "£0.50"),
        ("50 pence", "£0.50"), ("twenty-five pounds", "£25.00"), ("two hundred and fifty euros", "€250.00"),
        ("a hundred dollars", "$100.00"), ("an extra pound", "£1.00"), ("100 won", "100 KRW"), ("1.5 pounds", "£1.50"),
        ("$1.999", "$2.00"), ("1.500 euros", "€1.50"), ("₹500", "₹500.00"), ("₩1000", "1,000 KRW"), ("￡20", "£20.00"),
        ("20\u{00A0}€", "€20.00"), ("$20 usd", "$20.00"), ("5 extra pounds", "£5.00"), ("1$", "$1.00"),
    ])
    func formats(_ query: String, _ expected: String) {
        #expect(money(query) == [expected])
    }

    @Test func amountAndCodeAreExact() {
        let e = extractor.extract("I sent 1,234.56 EUR").first!
        #expect(e.money == Money(currency: "EUR", hundredths: 123_456))
        #expect(e.money?.decimalString == "1234.56")
        #expect(e.text == "1,234.56 EUR")
        #expect(Money(currency: "JPY", hundredths: 300_000).decimalString == "3000")
    }

    @Test func prefixAndSameSuffixAreOneAmount() {
        #expect(triples("$20 usd please") == [["money", "$20.00", "$20 usd"]])
        // A different currency after the amount stays a currency of its own.
        #expect(triples("€20 in gbp") == [["money", "€20.00", "€20"], ["currency", "GBP", "gbp"]])
    }

    @Test func multipleAmountsInOrderWithPunctuation() {
        #expect(triples("I paid £20, then €30!") == [["money", "£20.00", "£20"], ["money", "€30.00", "€30"]])
        #expect(triples("£20.") == [["money", "£20.00", "£20"]])
        #expect(triples("was it £20?") == [["money", "£20.00", "£20"]])
        #expect(triples("(£1,000)") == [["money", "£1,000.00", "£1,000"]])
    }

    @Test(arguments: [
        "card ending 1234", "my PIN is 1234", "card ending in 4821", "5k transfer", "a 5% fee", "i tried 5 times",
        "top up 20 please", "i won 5 games", "at 10:30 yesterday", "since 2019", "i asked for 100 only got 80",
        "reference 123456", "the 3d secure check", "send us money", "1l charge",
    ])
    func numbersThatAreNotMoney(_ query: String) {
        #expect(money(query) == [])
    }

    @Test func noEntitiesAtAll() {
        #expect(extractor.extract("") == [])
        #expect(extractor.extract("   ") == [])
        #expect(extractor.extract("how do i activate my card?") == [])
        #expect(extractor.extract("card ending 1234") == [])
    }

    @Test func articleIsOneOnlyBeforeASingularCurrency() {
        #expect(triples("do you offer a euro account?") == [["currency", "EUR", "euro"]])
        #expect(triples("a small dollar amount") == [["currency", "USD", "dollar"]])
        #expect(money("a pounds") == [])
        #expect(money("a dollar was taken") == ["$1.00"])
    }

    @Test func malformedNumbersAreSkipped() {
        #expect(triples("1,2,3 euros") == [["currency", "EUR", "euros"]])
        #expect(money("99999999999999 pounds") == [], "more than 13 digits")
    }
}

@Suite struct OtherEntities {
    @Test func currencies() {
        #expect(triples("exchange USD to EUR") == [["currency", "USD", "USD"], ["currency", "EUR", "EUR"]])
        #expect(triples("swap hong kong dollars") == [["currency", "HKD", "hong kong dollars"]])
        #expect(triples("i won the lottery") == [], "currency words that are English words need an amount")
        #expect(triples("rub it in") == [])
        #expect(triples("what is the $ rate") == [["currency", "USD", "$"]])
    }

    @Test func countries() {
        #expect(triples("I'm in the United States") == [["country", "the United States", "United States"]])
        #expect(triples("moving to the netherlands") == [["country", "the Netherlands", "netherlands"]])
        #expect(triples("cards from america") == [["country", "the United States", "america"]])
        #expect(triples("travelling in south america") == [])
        #expect(triples("i live in new mexico") == [])
        #expect(triples("my american express card") == [["card_brand", "American Express", "american express"]])
        #expect(triples("uk pounds") == [["currency", "GBP", "uk pounds"]])
        #expect(triples("papua new guinea") == [["country", "Papua New Guinea", "papua new guinea"]])
    }

    @Test func usIsAPronounUnlessContextSaysCountry() {
        #expect(triples("can you send us a new card") == [])
        #expect(triples("tell us what happened") == [])
        #expect(triples("transfers from the us") == [["country", "the United States", "us"]])
        #expect(triples("i have a us credit card") == [["country", "the United States", "us"]])
        #expect(triples("a us-issued card") == [["country", "the United States", "us"]])
        #expect(triples("Is the card accepted in the US?") == [["country", "the United States", "US"]])
        #expect(triples("Does it work in US shops?") == [["country", "the United States", "US"]])
        #expect(triples("PLEASE SEND US A CARD") == [], "in an all-capitals query US may be the pronoun")
        #expect(triples("send it to the u.s.") == [["country", "the United States", "u.s."]])
    }

    @Test func brandsAndWallets() {
        #expect(triples("Visa or MasterCard?") == [["card_brand", "Visa", "Visa"], ["card_brand", "Mastercard", "MasterCard"]])
        #expect(triples("my AMEX") == [["card_brand", "American Express", "AMEX"]])
        #expect(triples("i discovered a charge") == [], "bare 'discover' is a verb")
        #expect(triples("GPay and Samsung Pay") == [["wallet", "Google Pay", "GPay"], ["wallet", "Samsung Pay", "Samsung Pay"]])
        #expect(triples("android pay") == [["wallet", "Google Pay", "android pay"]])
        #expect(triples("china unionpay") == [["card_brand", "UnionPay", "china unionpay"]])
    }

    @Test(arguments: [
        ("3 days ago", "3 days ago"), ("two weeks ago", "2 weeks ago"), ("an hour ago", "an hour ago"),
        ("a few days ago", "a few days ago"), ("a couple days ago", "a couple of days ago"), ("yesterday morning", "yesterday morning"),
        ("last Saturday", "last saturday"), ("the day before yesterday", "the day before yesterday"), ("days ago", "days ago"),
        ("TODAY", "today"), ("a while ago", "a while ago"), ("twenty-one days ago", "21 days ago"),
    ])
    func dates(_ query: String, _ value: String) {
        let ds = extractor.extract("it happened " + query + ".").filter { $0.kind == .date }
        #expect(ds.map(\.value) == [value])
        #expect(ds.first?.text == query)
    }

    @Test func durationsAreNotDates() {
        #expect(triples("i've been waiting for 3 days") == [])
        #expect(triples("it should arrive in 2 weeks") == [])
    }

    @Test func uppercaseInput() {
        #expect(triples("I WAS CHARGED 20 GBP IN FRANCE") == [["money", "£20.00", "20 GBP"], ["country", "France", "FRANCE"]])
        #expect(triples("WHY AN EXTRA POUND?") == [["money", "£1.00", "AN EXTRA POUND"]])
    }

    @Test func unicodeSpansAreCharacters() {
        // One Character each: an emoji, a flag, a decomposed ô.
        #expect(triples("💳 £20") == [["money", "£20.00", "£20"]])
        #expect(extractor.extract("💳 £20").first?.span == 2..<5)
        #expect(extractor.extract("🇫🇷 France").first?.span == 2..<8)
        #expect(triples("Türkiye and Côte d'Ivoire") == [["country", "Turkey", "Türkiye"], ["country", "Ivory Coast", "Côte d'Ivoire"]])
        let decomposed = "Co\u{0302}te d'Ivoire"
        #expect(triples(decomposed).map { $0[1] } == ["Ivory Coast"])
        #expect(triples("über 20€ in Österreich") == [["money", "€20.00", "20€"]])
        #expect(triples("złoty") == [["currency", "PLN", "złoty"]])
    }

    @Test func gazetteerHasNoConflictingPhrases() {
        var seen: [String: String] = [:]
        for e in Gazetteer.entries {
            let key = e.tokens.map { ($0.attached ? "" : " ") + $0.text }.joined()
            let payload = "\(e.payload)"
            if let earlier = seen[key] { #expect(earlier == payload, "phrase '\(key)' has two meanings") }
            seen[key] = payload
        }
    }

    @Test func entityJSON() {
        let e = extractor.extract("£20")[0]
        #expect(e.jsonValue.serialized == #"{"kind":"money","text":"£20","value":"£20.00","start":0,"end":3,"currency":"GBP","amount":"20.00"}"#)
    }
}
