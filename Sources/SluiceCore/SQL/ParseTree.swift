/// libpg_query's JSON parse tree of one text, read in one pass into a flat array of tokens in document order.
///
/// Building a `JSONValue` tree cost several times the parse that produced the JSON: a String per key, an
/// array per object and list. Here keys and strings stay byte ranges in the JSON text until the analyzer asks
/// for one, each object and array records where it ends (skipping a subtree is one jump), and the token
/// storage is kept from one text to the next, so reading a tree allocates nothing once warm. Document order
/// is the tree's pre-order, so a walk over every node is a loop over the tokens, not a recursion.
///
/// The reader is as strict as `JSONValue.parse`, whose cursor, strings and numbers it shares, and refuses the
/// same documents, including those nested deeper than `JSONValue.maximumDepth`.
struct ParseTree {
    enum Kind: UInt8 {
        case object, array, key, string, number, `true`, `false`, null
    }

    /// One key or value, 12 bytes.
    struct Token {
        var kind: Kind
        /// Keys and strings only: the text holds escapes, so it must be decoded before it is compared.
        var escaped = false
        /// Keys, strings and numbers: the range of their bytes in the JSON text, inside the quotes for keys and
        /// strings. Objects and arrays: `end` is the index of the first token after the container's last one.
        var start: Int32
        var end: Int32
    }

    /// Storage beyond this many tokens (about 200 KiB) is released after use, so that one huge statement does
    /// not pin its tree's memory for the life of the event loop. The 30-line reporting query of
    /// bench/classifier takes about 1,500 tokens.
    static let retainedCapacity = 16 * 1024

    private var tokens: [Token] = []

    /// Reads `json` and passes its root to `body`. The nodes are valid only inside `body`: they point into the
    /// token storage, which the next read reuses, and into `json`.
    mutating func read<Result>(
        json: UnsafeBufferPointer<UInt8>, _ body: (Node) -> Result
    ) throws(JSONValue.ParseError) -> Result {
        defer {
            if tokens.capacity > Self.retainedCapacity { tokens = [] }
        }
        try tokenize(json)
        return tokens.withUnsafeBufferPointer { body(Node(tokens: $0, text: json, index: 0)) }
    }

    /// Fills `tokens` without recursion. While an object or array is open, its token's `end` holds the index
    /// of the container around it (-1 at the top), so the stack of open containers needs no storage of its
    /// own; closing one pops that link and writes the real end in its place.
    private mutating func tokenize(_ json: UnsafeBufferPointer<UInt8>) throws(JSONValue.ParseError) {
        tokens.removeAll(keepingCapacity: true)
        var reader = JSONReader(bytes: json)
        guard json.count < Int32.max else { throw reader.error("document too large") }
        var open = -1
        var depth = 0
        values: while true {
            reader.skipWhitespace()
            guard reader.offset < json.count else { throw reader.error("unexpected end of input") }
            let byte = json[reader.offset]
            if byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") {
                depth += 1
                guard depth <= JSONValue.maximumDepth else { throw reader.error("nested too deeply") }
                let isObject = byte == UInt8(ascii: "{")
                tokens.append(Token(kind: isObject ? .object : .array, start: Int32(reader.offset), end: Int32(open)))
                open = tokens.count - 1
                reader.offset += 1
                reader.skipWhitespace()
                let closer = isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")
                if reader.offset < json.count, json[reader.offset] == closer {
                    reader.offset += 1
                    close(&open, &depth)
                } else {
                    if isObject { try readKey(&reader) }
                    continue values
                }
            } else {
                try readScalar(&reader)
            }
            // A value has ended: close the containers that end here, until a comma asks for another value.
            while open >= 0 {
                reader.skipWhitespace()
                guard reader.offset < json.count else { throw reader.error("unexpected end of input") }
                let isObject = tokens[open].kind == .object
                switch json[reader.offset] {
                case UInt8(ascii: ","):
                    reader.offset += 1
                    if isObject { try readKey(&reader) }
                    continue values
                case UInt8(ascii: "}") where isObject, UInt8(ascii: "]") where !isObject:
                    reader.offset += 1
                    close(&open, &depth)
                default:
                    throw reader.error(isObject ? "expected ',' or '}'" : "expected ',' or ']'")
                }
            }
            break
        }
        reader.skipWhitespace()
        guard reader.offset == json.count else { throw reader.error("content after the document") }
    }

    private mutating func close(_ open: inout Int, _ depth: inout Int) {
        let enclosing = Int(tokens[open].end)
        tokens[open].end = Int32(tokens.count)
        open = enclosing
        depth -= 1
    }

    /// Reads `"key":`, leaving the reader at the value.
    private mutating func readKey(_ reader: inout JSONReader) throws(JSONValue.ParseError) {
        reader.skipWhitespace()
        guard reader.offset < reader.bytes.count, reader.bytes[reader.offset] == UInt8(ascii: "\"") else {
            throw reader.error("expected a key")
        }
        try readString(&reader, kind: .key)
        reader.skipWhitespace()
        guard reader.offset < reader.bytes.count, reader.bytes[reader.offset] == UInt8(ascii: ":") else {
            throw reader.error("expected ':'")
        }
        reader.offset += 1
    }

    private mutating func readString(_ reader: inout JSONReader, kind: Kind) throws(JSONValue.ParseError) {
        let quote = reader.offset
        let escaped = try reader.skipString()
        tokens.append(Token(kind: kind, escaped: escaped, start: Int32(quote + 1), end: Int32(reader.offset - 1)))
    }

    private mutating func readScalar(_ reader: inout JSONReader) throws(JSONValue.ParseError) {
        let start = reader.offset
        switch reader.bytes[start] {
        case UInt8(ascii: "\""):
            try readString(&reader, kind: .string)
            return
        case UInt8(ascii: "t"):
            try reader.expectWord("true")
            tokens.append(Token(kind: .true, start: Int32(start), end: Int32(reader.offset)))
        case UInt8(ascii: "f"):
            try reader.expectWord("false")
            tokens.append(Token(kind: .false, start: Int32(start), end: Int32(reader.offset)))
        case UInt8(ascii: "n"):
            try reader.expectWord("null")
            tokens.append(Token(kind: .null, start: Int32(start), end: Int32(reader.offset)))
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            try reader.skipNumber()
            tokens.append(Token(kind: .number, start: Int32(start), end: Int32(reader.offset)))
        default:
            throw reader.error("unexpected character")
        }
    }
}
