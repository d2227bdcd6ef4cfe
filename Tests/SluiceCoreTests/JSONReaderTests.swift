import Testing

@testable import SluiceCore

@Suite("JSON reader")
struct JSONReaderTests {
    @Test("reads objects, arrays, strings, numbers, booleans and null, keeping member order")
    func documents() throws {
        let value = try JSONValue.parse(#" {"b": [1, -2, 3.5, 1e3, true, false, null], "a": {"x": ""}} "#)
        let expected: JSONValue = ["b": [1, -2, 3.5, 1000.0, true, false, nil], "a": ["x": ""]]
        #expect(value == expected)
        #expect(try JSONValue.parse("18446744073709551615") == .uint(.max))
        #expect(try JSONValue.parse("-9223372036854775808") == .int(.min))
        #expect(try JSONValue.parse("[]") == [])
        #expect(try JSONValue.parse("{}") == .object([]))
    }

    @Test("decodes every escape, including \\u escapes and surrogate pairs")
    func escapes() throws {
        #expect(try JSONValue.parse(#""a\"b\\c\/d\b\f\n\r\t""#) == .string("a\"b\\c/d\u{08}\u{0C}\n\r\t"))
        #expect(try JSONValue.parse(#""\u00e9\u0001\u20AC""#) == .string("é\u{01}€"))
        #expect(try JSONValue.parse(#""x\ud83d\ude00y""#) == .string("x😀y"))
        #expect(try JSONValue.parse(#""é😀""#) == .string("é😀"))
    }

    @Test(
        "rejects malformed documents",
        arguments: [
            "", " ", "{", "[1,]", "{\"a\":1,}", "{'a':1}", "01", "-", "1.", "1e", ".5", "+1", "tru", "nul",
            "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud83d\"", "\"\\ude00\"", "\"\\ud83d\\u0041\"", "\"a\tb\"",
            "[1] 2", "{\"a\" 1}", "{1:2}", "[1 2]", "// x\n1", "NaN",
        ])
    func malformed(text: String) {
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(text) }
    }

    @Test("rejects invalid UTF-8 inside strings")
    func invalidUTF8() {
        let bytes: [UInt8] = [0x22, 0xC3, 0x28, 0x22]
        #expect(throws: JSONValue.ParseError.self) {
            try bytes.withUnsafeBufferPointer { buffer in try JSONValue.parse(utf8: buffer) }
        }
    }

    @Test("rejects documents nested deeper than the limit instead of exhausting the stack")
    func depth() throws {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(deep) }
        let fine = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        _ = try JSONValue.parse(fine)
    }

    @Test("what the writer writes, the reader reads back")
    func roundTrip() throws {
        let value: JSONValue = ["s": "q\"\\\n\u{01}é", "n": -7, "d": 0.25, "l": [nil, true]]
        #expect(try JSONValue.parse(value.serialized()) == value)
    }
}
