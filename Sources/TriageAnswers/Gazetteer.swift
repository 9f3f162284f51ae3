// The fixed vocabularies the entity extractor recognises: currencies (codes, names, symbols),
// countries, card networks, phone wallets and relative-date phrases.
//
// Choices, so the behaviour is predictable:
// - Country names only, no demonyms ("French" is not France). A few country names that are
//   also common English words or first names are left out (Chad, Jordan, Georgia, Guinea).
//   "us" is a pronoun, so it is the United States only after "the" or "a" ("a us card"),
//   before a word that only a country fits ("us card", "us-issued", "us resident"), or written
//   "US" in a query that is not all capitals. "America" is the United States; "South America" is nothing.
// - Currency words that are also English words or names ("won", "real", "rand", "rub", "ron")
//   count only right after an amount ("5000 won"), never alone.
// - "$" alone is the US dollar; "A$", "C$", "NZ$", "HK$", "S$" and "US$" are read as written.
// - Bare "discover" (a verb) and "visa" both look like card words; "visa" is kept because in a
//   bank's app it nearly always means the card network, "discover" only as "Discover card".

struct PhraseToken: Sendable, Equatable {
    let text: String          // lower-cased
    let attached: Bool        // no whitespace between this token and the one before it
}

enum GazetteerPayload: Sendable {
    /// `standalone`: may be an entity without an amount; `prefix`: may come before an amount
    /// ("USD 20", "£20"); `singular`: "a/an/one" + this phrase means one unit ("an extra pound").
    case currency(code: String, standalone: Bool, prefix: Bool, singular: Bool)
    case country(String)
    case cardBrand(String)
    case wallet(String)
    /// A relative date; the value is the phrase as normalised.
    case date(String)
    /// Recognised so that a shorter phrase inside it is not ("south america" hides "america").
    case block
}

struct GazetteerEntry: Sendable {
    let tokens: [PhraseToken]
    let payload: GazetteerPayload
    /// "us" is the United States only in a context a pronoun cannot have (see the file header).
    let pronounRule: Bool
}

enum Currencies {
    /// Currencies written without minor units in answers.
    static let zeroDecimal: Set<String> = ["JPY", "KRW", "VND", "ISK", "CLP"]
    /// Currencies formatted with a leading symbol; every other currency is "250.00 CHF".
    static let displaySymbol: [String: String] = ["GBP": "£", "EUR": "€", "USD": "$", "JPY": "¥", "INR": "₹"]

    /// Every ISO code the extractor can produce (used to check `when` conditions in the book).
    static var allCodes: Set<String> {
        var s = Set<String>()
        for e in Gazetteer.entries { if case let .currency(code, _, _, _) = e.payload { s.insert(code) } }
        return s
    }
}

enum Gazetteer {
    static let entries: [GazetteerEntry] = build()

    /// Entries by their first token, longest phrase first.
    static let byFirstToken: [String: [GazetteerEntry]] = {
        var d: [String: [GazetteerEntry]] = [:]
        for e in entries { d[e.tokens[0].text, default: []].append(e) }
        for k in d.keys { d[k]!.sort { $0.tokens.count > $1.tokens.count } }
        return d
    }()

    static func values(of kind: Entity.Kind) -> Set<String> {
        var s = Set<String>()
        for e in entries {
            switch (kind, e.payload) {
            case let (.country, .country(v)), let (.cardBrand, .cardBrand(v)), let (.wallet, .wallet(v)): s.insert(v)
            case let (.currency, .currency(code, _, _, _)): s.insert(code)
            default: break
            }
        }
        return s
    }

    /// Splits a phrase with the query tokenizer, so "u.s." or "a$" match exactly as typed.
    static func phrase(_ text: String) -> [PhraseToken] {
        let toks = Tokenizer.tokenize(text)
        return toks.enumerated().map { i, t in PhraseToken(text: t.lower, attached: i > 0 && t.start == toks[i - 1].end) }
    }

    // MARK: Tables

    private static func build() -> [GazetteerEntry] {
        var out: [GazetteerEntry] = []
        func add(_ phrases: [String], _ payload: GazetteerPayload, pronounRule: Bool = false) {
            for p in phrases { out.append(GazetteerEntry(tokens: phrase(p), payload: payload, pronounRule: pronounRule)) }
        }
        func currency(_ code: String, codeIsWord: Bool = false, singular: [String] = [], plural: [String] = [],
                      amountOnly: [String] = [], symbols: [String] = []) {
            add([code.lowercased()], .currency(code: code, standalone: !codeIsWord, prefix: !codeIsWord, singular: false))
            add(singular, .currency(code: code, standalone: true, prefix: false, singular: true))
            add(plural, .currency(code: code, standalone: true, prefix: false, singular: false))
            add(amountOnly, .currency(code: code, standalone: false, prefix: false, singular: true))
            add(symbols, .currency(code: code, standalone: true, prefix: true, singular: false))
        }

        currency("USD", singular: ["dollar", "us dollar", "u.s. dollar", "american dollar", "buck"],
                 plural: ["dollars", "us dollars", "u.s. dollars", "american dollars", "bucks", "us currency"],
                 symbols: ["$", "us$", "＄"])
        currency("EUR", singular: ["euro"], plural: ["euros"], symbols: ["€"])
        currency("GBP", singular: ["pound", "pound sterling", "british pound", "uk pound", "sterling", "quid"],
                 plural: ["pounds", "pounds sterling", "british pounds", "uk pounds", "gb pounds", "english pounds",
                          "uk currency", "british currency"],
                 symbols: ["£", "￡"])
        currency("JPY", singular: ["yen", "japanese yen"], symbols: ["¥", "￥"])
        currency("CHF", singular: ["franc", "swiss franc"], plural: ["francs", "swiss francs"])
        currency("CAD", singular: ["canadian dollar"], plural: ["canadian dollars"], symbols: ["c$", "ca$"])
        currency("AUD", singular: ["australian dollar", "aussie dollar"], plural: ["australian dollars", "aussie dollars"],
                 symbols: ["a$", "au$"])
        currency("NZD", singular: ["new zealand dollar"], plural: ["new zealand dollars"], symbols: ["nz$"])
        currency("CNY", singular: ["yuan", "renminbi", "rmb", "chinese yuan"])
        currency("HKD", singular: ["hong kong dollar"], plural: ["hong kong dollars"], symbols: ["hk$"])
        currency("SGD", singular: ["singapore dollar"], plural: ["singapore dollars"], symbols: ["s$"])
        currency("INR", singular: ["rupee", "indian rupee"], plural: ["rupees", "indian rupees"], symbols: ["₹"])
        currency("SEK", singular: ["krona", "swedish krona"], plural: ["kronor", "swedish kronor"])
        currency("NOK", singular: ["norwegian krone"], plural: ["norwegian kroner"])
        currency("DKK", singular: ["danish krone"], plural: ["danish kroner"])
        currency("PLN", singular: ["zloty", "złoty", "polish zloty"], plural: ["zlotys", "zlotych"])
        currency("CZK", singular: ["koruna", "czech koruna"], plural: ["korunas", "czech crowns"])
        currency("HUF", singular: ["forint", "hungarian forint"], plural: ["forints"])
        currency("RON", codeIsWord: true, singular: ["romanian leu"], plural: ["romanian lei"], amountOnly: ["leu", "lei"])
        currency("BGN", singular: ["bulgarian lev"], amountOnly: ["lev", "leva"])
        currency("RUB", codeIsWord: true, singular: ["ruble", "rouble", "russian ruble", "russian rouble"],
                 plural: ["rubles", "roubles", "russian rubles", "russian roubles"], symbols: ["₽"])
        currency("TRY", codeIsWord: true, singular: ["lira", "turkish lira"], plural: ["liras", "turkish liras"],
                 symbols: ["₺"])
        currency("ZAR", singular: ["south african rand"], amountOnly: ["rand"])
        currency("MXN", singular: ["mexican peso"], plural: ["mexican pesos"])
        currency("BRL", singular: ["brazilian real"], plural: ["reais", "brazilian reais"], amountOnly: ["real"])
        currency("KRW", singular: ["korean won", "south korean won"], amountOnly: ["won"], symbols: ["₩"])
        currency("THB", singular: ["baht", "thai baht"], symbols: ["฿"])
        currency("AED", singular: ["dirham", "uae dirham"], plural: ["dirhams", "uae dirhams"])
        currency("ILS", codeIsWord: true, singular: ["shekel", "israeli shekel"], plural: ["shekels", "israeli shekels"],
                 symbols: ["₪"])
        currency("PHP", codeIsWord: true, singular: ["philippine peso"], plural: ["philippine pesos"], symbols: ["₱"])
        currency("IDR", singular: ["rupiah", "indonesian rupiah"])
        currency("MYR", singular: ["ringgit", "malaysian ringgit"])
        currency("UAH", singular: ["hryvnia", "ukrainian hryvnia"], symbols: ["₴"])
        currency("NGN", singular: ["naira", "nigerian naira"], symbols: ["₦"])
        currency("VND", singular: ["vietnamese dong"], amountOnly: ["dong"], symbols: ["₫"])
        currency("ISK", singular: ["icelandic krona"], plural: ["icelandic kronur"])
        currency("ARS", codeIsWord: true, singular: ["argentine peso"], plural: ["argentine pesos"])
        currency("EGP", singular: ["egyptian pound"], plural: ["egyptian pounds"])
        currency("SAR", singular: ["riyal", "saudi riyal"], plural: ["riyals", "saudi riyals"])
        currency("CLP", singular: ["chilean peso"], plural: ["chilean pesos"])
        currency("COP", codeIsWord: true, singular: ["colombian peso"], plural: ["colombian pesos"])

        // Countries: display value (with "the" where English uses it) and the names matched.
        let countries: [(String, [String])] = [
            ("the United States", ["united states", "united states of america", "usa", "u.s.a.", "u.s.a", "u.s.", "america"]),
            ("the United Kingdom", ["united kingdom", "uk", "u.k.", "u.k", "great britain", "britain", "england",
                                     "scotland", "wales", "northern ireland"]),
            ("Ireland", ["ireland", "republic of ireland", "eire"]),
            ("France", ["france"]), ("Germany", ["germany"]), ("Spain", ["spain"]), ("Portugal", ["portugal"]),
            ("Italy", ["italy"]), ("the Netherlands", ["netherlands", "holland"]), ("Belgium", ["belgium"]),
            ("Luxembourg", ["luxembourg"]), ("Switzerland", ["switzerland"]), ("Austria", ["austria"]),
            ("Liechtenstein", ["liechtenstein"]), ("Monaco", ["monaco"]), ("Andorra", ["andorra"]),
            ("San Marino", ["san marino"]), ("Malta", ["malta"]), ("Cyprus", ["cyprus"]), ("Greece", ["greece"]),
            ("Denmark", ["denmark"]), ("Norway", ["norway"]), ("Sweden", ["sweden"]), ("Finland", ["finland"]),
            ("Iceland", ["iceland"]), ("Estonia", ["estonia"]), ("Latvia", ["latvia"]), ("Lithuania", ["lithuania"]),
            ("Poland", ["poland"]), ("the Czech Republic", ["czech republic", "czechia"]), ("Slovakia", ["slovakia"]),
            ("Hungary", ["hungary"]), ("Slovenia", ["slovenia"]), ("Croatia", ["croatia"]), ("Romania", ["romania"]),
            ("Bulgaria", ["bulgaria"]), ("Serbia", ["serbia"]), ("Bosnia and Herzegovina", ["bosnia and herzegovina", "bosnia"]),
            ("Montenegro", ["montenegro"]), ("North Macedonia", ["north macedonia", "macedonia"]), ("Albania", ["albania"]),
            ("Kosovo", ["kosovo"]), ("Moldova", ["moldova"]), ("Ukraine", ["ukraine"]), ("Belarus", ["belarus"]),
            ("Russia", ["russia", "russian federation"]), ("Turkey", ["turkey", "türkiye", "turkiye"]),
            ("Armenia", ["armenia"]), ("Azerbaijan", ["azerbaijan"]), ("Kazakhstan", ["kazakhstan"]),
            ("Uzbekistan", ["uzbekistan"]), ("Canada", ["canada"]), ("Mexico", ["mexico"]), ("Brazil", ["brazil"]),
            ("Argentina", ["argentina"]), ("Chile", ["chile"]), ("Peru", ["peru"]), ("Colombia", ["colombia"]),
            ("Venezuela", ["venezuela"]), ("Ecuador", ["ecuador"]), ("Bolivia", ["bolivia"]), ("Paraguay", ["paraguay"]),
            ("Uruguay", ["uruguay"]), ("Cuba", ["cuba"]), ("the Dominican Republic", ["dominican republic"]),
            ("Jamaica", ["jamaica"]), ("Puerto Rico", ["puerto rico"]), ("Costa Rica", ["costa rica"]),
            ("Panama", ["panama"]), ("Guatemala", ["guatemala"]), ("Honduras", ["honduras"]),
            ("El Salvador", ["el salvador"]), ("Nicaragua", ["nicaragua"]), ("the Bahamas", ["bahamas"]),
            ("Barbados", ["barbados"]), ("Trinidad and Tobago", ["trinidad and tobago", "trinidad"]),
            ("China", ["china", "mainland china"]), ("Hong Kong", ["hong kong"]), ("Taiwan", ["taiwan"]),
            ("Japan", ["japan"]), ("South Korea", ["south korea", "korea"]), ("North Korea", ["north korea"]),
            ("India", ["india"]), ("Pakistan", ["pakistan"]), ("Bangladesh", ["bangladesh"]), ("Sri Lanka", ["sri lanka"]),
            ("Nepal", ["nepal"]), ("Thailand", ["thailand"]), ("Vietnam", ["vietnam", "viet nam"]),
            ("Cambodia", ["cambodia"]), ("Laos", ["laos"]), ("Myanmar", ["myanmar", "burma"]),
            ("Malaysia", ["malaysia"]), ("Singapore", ["singapore"]), ("Indonesia", ["indonesia"]),
            ("the Philippines", ["philippines"]), ("Australia", ["australia"]), ("New Zealand", ["new zealand"]),
            ("Fiji", ["fiji"]), ("the United Arab Emirates", ["united arab emirates", "uae", "u.a.e."]),
            ("Saudi Arabia", ["saudi arabia"]), ("Qatar", ["qatar"]), ("Kuwait", ["kuwait"]), ("Bahrain", ["bahrain"]),
            ("Oman", ["oman"]), ("Israel", ["israel"]), ("Lebanon", ["lebanon"]), ("Syria", ["syria"]),
            ("Iraq", ["iraq"]), ("Iran", ["iran"]), ("Afghanistan", ["afghanistan"]), ("Egypt", ["egypt"]),
            ("Morocco", ["morocco"]), ("Algeria", ["algeria"]), ("Tunisia", ["tunisia"]), ("Libya", ["libya"]),
            ("Nigeria", ["nigeria"]), ("Ghana", ["ghana"]), ("Kenya", ["kenya"]), ("Ethiopia", ["ethiopia"]),
            ("Tanzania", ["tanzania"]), ("Uganda", ["uganda"]), ("Rwanda", ["rwanda"]), ("Senegal", ["senegal"]),
            ("Ivory Coast", ["ivory coast", "cote d'ivoire", "côte d'ivoire"]), ("Cameroon", ["cameroon"]),
            ("South Africa", ["south africa"]), ("Namibia", ["namibia"]), ("Botswana", ["botswana"]),
            ("Zimbabwe", ["zimbabwe"]), ("Zambia", ["zambia"]), ("Mozambique", ["mozambique"]),
            ("Madagascar", ["madagascar"]), ("Mauritius", ["mauritius"]), ("Angola", ["angola"]),
            ("Sudan", ["sudan"]), ("Somalia", ["somalia"]), ("Mali", ["mali"]), ("Niger", ["niger"]),
        ]
        for (value, names) in countries { add(names, .country(value)) }
        add(["us"], .country("the United States"), pronounRule: true)
        // Longer names that contain a country name but are not that country.
        add(["papua new guinea"], .country("Papua New Guinea"))
        add(["south america", "north america", "latin america", "central america", "new mexico", "new south wales"], .block)

        add(["visa"], .cardBrand("Visa"))
        add(["mastercard", "master card", "master-card", "mastercards", "mastecard"], .cardBrand("Mastercard"))
        add(["american express", "americanexpress", "amex"], .cardBrand("American Express"))
        add(["maestro"], .cardBrand("Maestro"))
        add(["discover card"], .cardBrand("Discover"))
        add(["diners club"], .cardBrand("Diners Club"))
        add(["jcb"], .cardBrand("JCB"))
        add(["unionpay", "union pay", "china unionpay"], .cardBrand("UnionPay"))

        add(["apple pay", "applepay", "apple wallet"], .wallet("Apple Pay"))
        add(["google pay", "googlepay", "gpay", "g pay", "android pay", "google wallet"], .wallet("Google Pay"))
        add(["samsung pay", "samsungpay"], .wallet("Samsung Pay"))

        let fixedDates = ["today", "yesterday", "tonight", "last night", "this morning", "this afternoon",
                          "this evening", "earlier today", "yesterday morning", "yesterday afternoon",
                          "yesterday evening", "the day before yesterday", "this week", "last week", "last weekend",
                          "last month", "last year", "earlier this week", "earlier this month",
                          "a while ago", "a while back", "some time ago", "a long time ago", "not long ago"]
        for d in fixedDates { add([d], .date(d)) }
        for day in ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"] {
            add(["last " + day], .date("last " + day))
        }
        return out
    }
}
