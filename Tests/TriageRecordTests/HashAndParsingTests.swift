import Testing
import TriageSystem
@testable import TriageRecord

@Suite struct SHA256Tests {
    // FIPS 180-2, appendix B.
    @Test func fipsAbc() {
        #expect(SHA256.hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func empty() {
        #expect(SHA256.hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hash([]).count == 32)
    }

    @Test func fips448BitMessage() {
        #expect(SHA256.hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    @Test func fips896BitMessage() {
        #expect(SHA256.hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu")
                == "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
    }

    @Test func fipsOneMillionA() {
        #expect(SHA256.hex([UInt8](repeating: 0x61, count: 1_000_000))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// Padding boundaries (55/56/57, 63/64/65, 119/120 bytes), against Python's hashlib.
    @Test(arguments: [
        (55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"),
        (56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"),
        (57, "f13b2d724659eb3bf47f2dd6af1accc87b81f09f59f2b75e5c0bed6589dfe8c6"),
        (63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"),
        (64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"),
        (65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"),
        (119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"),
        (120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"),
    ])
    func paddingBoundaries(length: Int, expected: String) {
        #expect(SHA256.hex(String(repeating: "a", count: length)) == expected)
    }

    @Test func saltedQueryHash() {
        // SHA-256(32 zero bytes ‖ UTF-8 "¿Dónde está mi pedido?"), from Python's hashlib.
        let hasher = QueryHasher(salt: [UInt8](repeating: 0, count: 32))
        #expect(hasher.hash("¿Dónde está mi pedido?") == "a6d609c0959a490fae489ef1cfa43eb2511b4f7f8d5fc0980c55d3a9b7208c5b")
        let other = QueryHasher(salt: [UInt8](repeating: 1, count: 32))
        #expect(other.hash("¿Dónde está mi pedido?") != hasher.hash("¿Dónde está mi pedido?"))
        let a = QueryHasher.randomSalt(), b = QueryHasher.randomSalt()
        #expect(a.count == 32 && a != b)
    }

    @Test func hexHelpers() {
        #expect(encodeHex([0x00, 0x0f, 0xa5, 0xff]) == "000fa5ff")
        #expect(decodeHex("000fA5ff") == [0x00, 0x0f, 0xa5, 0xff])
        #expect(decodeHex("abc") == nil)
        #expect(decodeHex("zz") == nil)
    }
}

@Suite struct DurationTests {
    @Test(arguments: [
        ("90s", 90.0), ("30m", 1800.0), ("24h", 86_400.0), ("7d", 604_800.0), ("2w", 1_209_600.0),
        ("1.5h", 5400.0), (" 15m ", 900.0), ("0.5d", 43_200.0),
    ])
    func valid(text: String, seconds: Double) throws {
        #expect(try parseDuration(text) == seconds)
    }

    @Test(arguments: ["", "30", "m", "-5m", "0s", "0.0h", "5x", "1e3s", "infs", "nans", "1..5h", ".h", "5 m", "+5m", "5M", "٣h"])
    func invalid(text: String) {
        #expect(throws: DurationParseError.self) { try parseDuration(text) }
    }

    @Test func errorNamesTheInputAndTheForm() {
        do {
            _ = try parseDuration("30")
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("'30'"))
            #expect(error.description.contains("24h"))
        }
    }
}

@Suite struct PercentileTests {
    // Nearest rank: rank = ⌈p·n/100⌉, value = sorted[rank − 1].
    @Test func wikipediaExample() {
        let v: [Double] = [50, 15, 40, 35, 20]          // sorted: 15 20 35 40 50
        #expect(Report.percentile(v, 5) == 15)         // ⌈0.25⌉ = 1
        #expect(Report.percentile(v, 30) == 20)        // ⌈1.5⌉ = 2
        #expect(Report.percentile(v, 40) == 20)        // ⌈2.0⌉ = 2
        #expect(Report.percentile(v, 50) == 35)        // ⌈2.5⌉ = 3
        #expect(Report.percentile(v, 100) == 50)       // ⌈5⌉ = 5
        #expect(Report.percentile(v, 0) == 15)         // rank clamped to 1
    }

    @Test func oneToHundred() {
        let v = (1...100).map(Double.init).shuffled()
        #expect(Report.percentile(v, 50) == 50)
        #expect(Report.percentile(v, 95) == 95)
        #expect(Report.percentile(v, 99) == 99)
    }

    @Test func exactRanksWithoutFloatingPointDrift() {
        // 95 % of 20 is rank 19 exactly; 99 % of 20 is ⌈19.8⌉ = 20; 95 % of 60 is rank 57.
        let twenty = (1...20).map(Double.init)
        #expect(Report.percentile(twenty, 95) == 19)
        #expect(Report.percentile(twenty, 99) == 20)
        #expect(Report.percentile((1...60).map(Double.init), 95) == 57)
    }

    @Test func emptyAndSingle() {
        #expect(Report.percentile([], 50) == nil)
        #expect(Report.percentile([7], 50) == 7)
        #expect(Report.percentile([7], 99) == 7)
    }
}
