import Testing

@testable import SluiceCore

@Suite("JSON writer")
struct JSONWriterTests {
    @Test("scalars serialize as JSON literals")
    func scalars() {
        #expect(JSONValue.null.serialized() == "null")
        #expect(JSONValue.bool(true).serialized() == "true")
        #expect(JSONValue.bool(false).serialized() == "false")
        #expect(JSONValue.int(-42).serialized() == "-42")
        #expect(JSONValue.int(.min).serialized() == "-9223372036854775808")
        #expect(JSONValue.uint(.max).serialized() == "18446744073709551615")
    }

    @Test("doubles use the shortest round-trip form; infinities and NaN become null")
    func doubles() {
        #expect(JSONValue.double(1.5).serialized() == "1.5")
        #expect(JSONValue.double(0.1).serialized() == "0.1")
        #expect(JSONValue.double(3).serialized() == "3.0")
        #expect(JSONValue.double(1e-7).serialized() == "1e-07")
        #expect(JSONValue.double(1e300).serialized() == "1e+300")
        #expect(JSONValue.double(.infinity).serialized() == "null")
        #expect(JSONValue.double(-.infinity).serialized() == "null")
        #expect(JSONValue.double(.nan).serialized() == "null")
    }

    @Test("strings escape quote, backslash and control characters, and keep other characters as they are")
    func strings() {
        #expect(JSONValue.string("a\"b\\c").serialized() == #""a\"b\\c""#)
        #expect(JSONValue.string("\n\t\r\u{0}\u{1F}").serialized() == #""\u000a\u0009\u000d\u0000\u001f""#)
        #expect(JSONValue.string("é/ü😀\u{7F}").serialized() == "\"é/ü😀\u{7F}\"")
        #expect(JSONValue.string("").serialized() == "\"\"")
    }

    @Test("objects keep their keys in the order given, and keys are escaped like strings")
    func objects() {
        let value: JSONValue = [
            "zeta": 1, "alpha": [true, nil, "x"], "mid\"dle": ["nested": 2.5], "empty": [], "none": .object([]),
        ]
        #expect(
            value.serialized()
                == #"{"zeta":1,"alpha":[true,null,"x"],"mid\"dle":{"nested":2.5},"empty":[],"none":{}}"#)
    }

    @Test("a value writes into an existing string")
    func writeInto() {
        var output = "prefix "
        JSONValue.array([.uint(1), .int(2)]).write(into: &output)
        #expect(output == "prefix [1,2]")
    }
}
