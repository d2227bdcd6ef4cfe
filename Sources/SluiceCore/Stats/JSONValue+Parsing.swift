/// Reading JSON text back into a `JSONValue`, strictly (RFC 8259) and without Foundation.
///
/// Tests read documents back to compare them with the values that were written. The statement classifier
/// does not build `JSONValue`s from libpg_query's parse trees (a String per key and an array per object cost
/// several times the parse itself); its `ParseTree` shares this reader's cursor, strings and numbers, so both
/// accept exactly the same documents.
extension JSONValue {
    /// Why a text is not the JSON document the reader accepts.
    public struct ParseError: Error, Equatable, Sendable {
        /// What is wrong, for logs and tests.
        public var reason: String
        /// Byte offset into the input where the reader gave up.
        public var offset: Int
    }

    /// Deeper documents are refused: the reader recurses once per level, and an adversarial document could
    /// otherwise exhaust the stack of the thread parsing it.
    public static let maximumDepth = 512

    /// Parses one JSON document, refusing anything RFC 8259 does not allow: trailing commas, comments,
    /// single quotes, leading zeros, unescaped control characters, invalid UTF-8, lone surrogate escapes,
    /// content after the document. Numbers without fraction or exponent that fit an `Int64` become `.int`,
    /// larger non-negative ones that fit a `UInt64` become `.uint`, the rest `.double`.
    public static func parse(_ text: String) throws(ParseError) -> JSONValue {
        var copy = text
        let result = copy.withUTF8 { bytes in Result { () throws(ParseError) in try parse(utf8: bytes) } }
        return try result.get()
    }

    /// Parses one JSON document from its UTF-8 bytes, with the same strictness as `parse(_:)`.
    public static func parse(utf8 bytes: UnsafeBufferPointer<UInt8>) throws(ParseError) -> JSONValue {
        var reader = JSONReader(bytes: bytes)
        reader.skipWhitespace()
        let value = try reader.readValue(depth: 0)
        reader.skipWhitespace()
        guard reader.offset == bytes.count else { throw reader.error("content after the document") }
        return value
    }

    /// The value of `key` when this is an object holding it (the first, if the key repeats); otherwise nil.
    /// Objects in parse trees hold a handful of keys, so a linear search beats building a dictionary.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        for (name, value) in members where name == key { return value }
        return nil
    }

    /// The text when this is a string; otherwise nil.
    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The elements when this is an array; otherwise nil.
    public var arrayValue: [JSONValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }
}

/// A cursor over the bytes of one document. Kept separate from `JSONValue` so the public surface is just
/// `parse`; it is a struct of a pointer and an offset so that reading allocates only for the values built.
struct JSONReader {
    let bytes: UnsafeBufferPointer<UInt8>
    var offset = 0

    init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    func error(_ reason: String) -> JSONValue.ParseError {
        JSONValue.ParseError(reason: reason, offset: offset)
    }

    mutating func skipWhitespace() {
        while offset < bytes.count {
            switch bytes[offset] {
            case 0x20, 0x09, 0x0A, 0x0D: offset += 1
            default: return
            }
        }
    }

    mutating func readValue(depth: Int) throws(JSONValue.ParseError) -> JSONValue {
        guard offset < bytes.count else { throw error("unexpected end of input") }
        switch bytes[offset] {
        case UInt8(ascii: "{"):
            return try readObject(depth: depth + 1)
        case UInt8(ascii: "["):
            return try readArray(depth: depth + 1)
        case UInt8(ascii: "\""):
            return .string(try readString())
        case UInt8(ascii: "t"):
            try expectWord("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectWord("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectWord("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return try readNumber()
        default:
            throw error("unexpected character")
        }
    }

    mutating func expectWord(_ word: StaticString) throws(JSONValue.ParseError) {
        let count = word.utf8CodeUnitCount
        guard bytes.count - offset >= count else { throw error("unexpected end of input") }
        for index in 0..<count where bytes[offset + index] != word.utf8Start[index] {
            throw error("invalid literal")
        }
        offset += count
    }

    private mutating func readObject(depth: Int) throws(JSONValue.ParseError) -> JSONValue {
        guard depth <= JSONValue.maximumDepth else { throw error("nested too deeply") }
        offset += 1
        var members: [(String, JSONValue)] = []
        skipWhitespace()
        if offset < bytes.count, bytes[offset] == UInt8(ascii: "}") {
            offset += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard offset < bytes.count, bytes[offset] == UInt8(ascii: "\"") else { throw error("expected a key") }
            let key = try readString()
            skipWhitespace()
            guard offset < bytes.count, bytes[offset] == UInt8(ascii: ":") else { throw error("expected ':'") }
            offset += 1
            skipWhitespace()
            members.append((key, try readValue(depth: depth)))
            skipWhitespace()
            guard offset < bytes.count else { throw error("unexpected end of input") }
            switch bytes[offset] {
            case UInt8(ascii: ","):
                offset += 1
            case UInt8(ascii: "}"):
                offset += 1
                return .object(members)
            default:
                throw error("expected ',' or '}'")
            }
        }
    }

    private mutating func readArray(depth: Int) throws(JSONValue.ParseError) -> JSONValue {
        guard depth <= JSONValue.maximumDepth else { throw error("nested too deeply") }
        offset += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if offset < bytes.count, bytes[offset] == UInt8(ascii: "]") {
            offset += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try readValue(depth: depth))
            skipWhitespace()
            guard offset < bytes.count else { throw error("unexpected end of input") }
            switch bytes[offset] {
            case UInt8(ascii: ","):
                offset += 1
            case UInt8(ascii: "]"):
                offset += 1
                return .array(elements)
            default:
                throw error("expected ',' or ']'")
            }
        }
    }

    /// Reads a string literal starting at its opening quote. The common case, no escapes, validates and
    /// copies the bytes in one go; escapes switch to building the text scalar by scalar.
    mutating func readString() throws(JSONValue.ParseError) -> String {
        offset += 1
        let start = offset
        while offset < bytes.count {
            let byte = bytes[offset]
            if byte == UInt8(ascii: "\"") {
                let text = try validated(start..<offset)
                offset += 1
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            guard byte >= 0x20 else { throw error("control character in a string") }
            offset += 1
        }
        guard offset < bytes.count else { throw error("unterminated string") }
        var text = try validated(start..<offset)
        while offset < bytes.count {
            let byte = bytes[offset]
            switch byte {
            case UInt8(ascii: "\""):
                offset += 1
                return text
            case UInt8(ascii: "\\"):
                offset += 1
                text.unicodeScalars.append(try readEscape())
            case 0..<0x20:
                throw error("control character in a string")
            default:
                let runStart = offset
                while offset < bytes.count, bytes[offset] != UInt8(ascii: "\""), bytes[offset] != UInt8(ascii: "\\"),
                    bytes[offset] >= 0x20
                {
                    offset += 1
                }
                text += try validated(runStart..<offset)
            }
        }
        throw error("unterminated string")
    }

    /// Moves past a string literal starting at its opening quote, checking it exactly as `readString` does,
    /// and says whether it holds escapes. Plain printable ASCII, nearly every string in a parse tree, is only
    /// scanned; anything else goes through `readString`, whose decoded text is dropped.
    mutating func skipString() throws(JSONValue.ParseError) -> Bool {
        let quote = offset
        offset += 1
        while offset < bytes.count {
            let byte = bytes[offset]
            if byte == UInt8(ascii: "\"") {
                offset += 1
                return false
            }
            guard byte >= 0x20, byte < 0x80, byte != UInt8(ascii: "\\") else { break }
            offset += 1
        }
        offset = quote
        _ = try readString()
        let content = UnsafeBufferPointer(rebasing: bytes[(quote + 1)..<(offset - 1)])
        return content.contains(UInt8(ascii: "\\"))
    }

    private func validated(_ range: Range<Int>) throws(JSONValue.ParseError) -> String {
        guard let text = String(validating: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self) else {
            throw JSONValue.ParseError(reason: "invalid UTF-8", offset: range.lowerBound)
        }
        return text
    }

    /// Reads the part of an escape after the backslash. A `\u` escape of a high surrogate must be followed by
    /// one of a low surrogate; together they name one scalar. Unpaired surrogates are refused, since they
    /// cannot be represented in a Swift string.
    private mutating func readEscape() throws(JSONValue.ParseError) -> Unicode.Scalar {
        guard offset < bytes.count else { throw error("unterminated escape") }
        let byte = bytes[offset]
        offset += 1
        switch byte {
        case UInt8(ascii: "\""): return "\""
        case UInt8(ascii: "\\"): return "\\"
        case UInt8(ascii: "/"): return "/"
        case UInt8(ascii: "b"): return "\u{08}"
        case UInt8(ascii: "f"): return "\u{0C}"
        case UInt8(ascii: "n"): return "\n"
        case UInt8(ascii: "r"): return "\r"
        case UInt8(ascii: "t"): return "\t"
        case UInt8(ascii: "u"):
            let unit = try readHex4()
            switch unit {
            case 0xD800..<0xDC00:
                guard bytes.count - offset >= 2, bytes[offset] == UInt8(ascii: "\\"),
                    bytes[offset + 1] == UInt8(ascii: "u")
                else { throw error("unpaired surrogate") }
                offset += 2
                let low = try readHex4()
                guard (0xDC00..<0xE000).contains(low) else { throw error("unpaired surrogate") }
                let value = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                return Unicode.Scalar(value)!
            case 0xDC00..<0xE000:
                throw error("unpaired surrogate")
            default:
                return Unicode.Scalar(unit)!
            }
        default:
            throw error("invalid escape")
        }
    }

    private mutating func readHex4() throws(JSONValue.ParseError) -> UInt32 {
        guard bytes.count - offset >= 4 else { throw error("unterminated escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[offset]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw error("invalid hex digit in escape")
            }
            value = value << 4 | UInt32(digit)
            offset += 1
        }
        return value
    }

    /// Reads a number and converts it: `.int` when integral and in range, else `.uint`, else `.double`.
    private mutating func readNumber() throws(JSONValue.ParseError) -> JSONValue {
        let start = offset
        let integral = try skipNumber()
        // The bytes are ASCII by now, so decoding cannot fail or repair anything.
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<offset]), as: UTF8.self)
        if integral {
            if let value = Int64(text) { return .int(value) }
            if let value = UInt64(text) { return .uint(value) }
        }
        guard let value = Double(text) else { throw JSONValue.ParseError(reason: "invalid number", offset: start) }
        return .double(value)
    }

    /// Moves past a number in RFC 8259's grammar, `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`,
    /// and says whether it was integral (no fraction, no exponent). Every number it accepts converts: a
    /// `Double` too large to represent becomes an infinity, not a failure.
    @discardableResult
    mutating func skipNumber() throws(JSONValue.ParseError) -> Bool {
        if bytes[offset] == UInt8(ascii: "-") { offset += 1 }
        guard offset < bytes.count, isDigit(bytes[offset]) else { throw error("expected a digit") }
        if bytes[offset] == UInt8(ascii: "0") {
            offset += 1
            if offset < bytes.count, isDigit(bytes[offset]) { throw error("leading zero") }
        } else {
            skipDigits()
        }
        var integral = true
        if offset < bytes.count, bytes[offset] == UInt8(ascii: ".") {
            integral = false
            offset += 1
            guard offset < bytes.count, isDigit(bytes[offset]) else { throw error("expected a digit") }
            skipDigits()
        }
        if offset < bytes.count, bytes[offset] == UInt8(ascii: "e") || bytes[offset] == UInt8(ascii: "E") {
            integral = false
            offset += 1
            if offset < bytes.count, bytes[offset] == UInt8(ascii: "+") || bytes[offset] == UInt8(ascii: "-") {
                offset += 1
            }
            guard offset < bytes.count, isDigit(bytes[offset]) else { throw error("expected a digit") }
            skipDigits()
        }
        return integral
    }

    private func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    private mutating func skipDigits() {
        while offset < bytes.count, isDigit(bytes[offset]) { offset += 1 }
    }
}
