import Testing

@testable import SluiceCore

/// Reads `json` into a fresh tree and passes its root to `body`; nil when the reader refuses the document.
func withParseTree<Result>(_ json: String, _ body: (ParseTree.Node) -> Result) -> Result? {
    var tree = ParseTree()
    var copy = json
    return copy.withUTF8 { bytes in try? tree.read(json: bytes, body) }
}

@Suite("Parse tree reader")
struct ParseTreeTests {
    @Test(
        "accepts and refuses exactly the documents the JSON reader does",
        arguments: [
            "", " ", "{", "[1,]", "{\"a\":1,}", "{'a':1}", "01", "-", "1.", "1e", ".5", "+1", "tru", "nul",
            "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud83d\"", "\"\\ude00\"", "\"\\ud83d\\u0041\"", "\"a\tb\"",
            "[1] 2", "{\"a\" 1}", "{1:2}", "[1 2]", "// x\n1", "NaN", "[", "[1", "[1,", "{\"a\"", "{\"a\":",
            "{\"a\":1", "{\"a\":1]", "[1}", "{}}", "[]]", "\"\u{01}\"",
            "1", "-0", "1.5e+3", "true", "null", " [ ] ", "{}", "[[], {}, [{}]]", "\"é\\u00e9\\ud83d\\ude00\"",
            #"{"a": [1, -2, 3.5, 1e3, true, false, null], "b": {"x": ""}}"#,
        ])
    func strictness(json: String) {
        let accepted = withParseTree(json) { _ in true } ?? false
        #expect(accepted == ((try? JSONValue.parse(json)) != nil))
    }

    @Test("refuses invalid UTF-8 in strings and keys, as the JSON reader does")
    func invalidUTF8() {
        for bytes: [UInt8] in [[0x22, 0xC3, 0x28, 0x22], [0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D]] {
            var tree = ParseTree()
            let accepted = bytes.withUnsafeBufferPointer { buffer in (try? tree.read(json: buffer) { _ in true }) }
            #expect(accepted == nil)
        }
    }

    @Test("nesting beyond the JSON reader's depth limit is refused without recursion")
    func depth() {
        let limit = JSONValue.maximumDepth
        let fine = String(repeating: "[", count: limit) + String(repeating: "]", count: limit)
        #expect(withParseTree(fine) { $0.end } == limit)
        let deep = String(repeating: "[", count: limit + 1) + String(repeating: "]", count: limit + 1)
        #expect(withParseTree(deep) { _ in true } == nil)
        let deeper = String(repeating: "{\"a\":", count: 100_000) + "1" + String(repeating: "}", count: 100_000)
        #expect(withParseTree(deeper) { _ in true } == nil)
    }

    @Test("looks up members, elements and strings as JSONValue does, decoding escapes only when read")
    func lookups() {
        let json = #"{"a":{"k":"v","k":"second"},"l":[1,{"String":{"sval":"x"}},"s"],"e":"\u003e\"","n":0,"m":-0}"#
        let checked = withParseTree(json) { root -> Bool in
            #expect(root["a"]?["k"]?.stringValue == "v")
            #expect(root["missing"] == nil)
            #expect(root["l"]?["a"] == nil)
            #expect(root["a"]?["k"]?["k"] == nil)
            #expect(root["l"].map { $0.elements.map(\.kind) } == [.number, .object, .string])
            #expect(root["a"].map { $0.elements.map(\.kind) } == [])
            #expect(root["e"]?.stringValue == ">\"")
            #expect(root["e"]?.equals(">\"") == true)
            #expect(root["e"]?.utf8Count == 2)
            #expect(root["n"]?.isIntegerZero == true && root["m"]?.isIntegerZero == true)
            #expect(root["l"]?.elements.first { _ in true }?.isIntegerZero == false)
            // Every member at every depth, in document order.
            let keys = root.allMembers.map { $0.key.stringValue ?? "" }
            #expect(keys == ["a", "k", "k", "l", "String", "sval", "e", "n", "m"])
            #expect(root["l"]!.end == root["e"]!.index - 1)
            return true
        }
        #expect(checked == true)
    }

    @Test("an escaped key matches like its decoded text")
    func escapedKeys() {
        let matched = withParseTree(#"{"F\u0075ncCall":1}"#) { root in
            root.allMembers.map { StatementAnalyzer.RelevantKey($0.key) == .funcCall }
        }
        #expect(matched == [true])
    }

    @Test("a tree reads after one larger than the storage it keeps")
    func storage() {
        var tree = ParseTree()
        let large = "[" + Array(repeating: "1", count: ParseTree.retainedCapacity * 2).joined(separator: ",") + "]"
        var copy = large
        let count = copy.withUTF8 { bytes in try? tree.read(json: bytes) { $0.end } }
        #expect(count == ParseTree.retainedCapacity * 2 + 1)
        var small = "[1]"
        #expect(small.withUTF8 { bytes in try? tree.read(json: bytes) { $0.end } } == 2)
    }
}
