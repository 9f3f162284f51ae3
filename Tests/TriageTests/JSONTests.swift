import Testing
import TriageJSON

@Suite struct JSONTests {
    @Test func parsesAndSerializesRoundTrip() throws {
        let text = #"{"a":[1,-2.5,1e-05,true,false,null],"b":{"c":"x\"y\\z\n\t\u00e9\ud83d\ude00"},"d":""}"#
        let v = try JSONValue.parse(text)
        #expect(v["b"]?["c"]?.stringValue == "x\"y\\z\n\té😀")
        #expect(v["a"]?.arrayValue?[2].doubleValue == 1e-05)
        #expect(try JSONValue.parse(v.serialized) == v)
        #expect(JSONValue.float(0.1).serialized == "0.1")
        #expect(JSONValue.int(42).serialized == "42")
        #expect(JSONValue.string("\u{2028}\u{1}").serialized == #""\u2028\u0001""#)
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\" 1}", "01", "1.", "-", "\"abc", "\"\\x\"", "tru", "[1] 2",
                      "{\"a\":1,}", "\"\u{1}\"", String(repeating: "[", count: 600) + String(repeating: "]", count: 600)])
    func rejectsMalformed(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue.parse(text) }
    }

    @Test func intValueIsStrict() throws {
        #expect(try JSONValue.parse("3").intValue == 3)
        #expect(try JSONValue.parse("3.5").intValue == nil)
        #expect(try JSONValue.parse("1e300").intValue == nil)
    }
}
