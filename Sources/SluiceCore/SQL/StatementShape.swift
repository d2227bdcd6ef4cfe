/// A statement text with its literal values masked: the key under which statements that differ only in
/// their constants share one classification (`SELECT abalance FROM pgbench_accounts WHERE aid = 12345` and
/// `… = 678` have one shape).
///
/// Sharing is sound only where no literal value can change the class, which the classifier decides from the
/// parse tree (plain SELECT and data-modifying statements: their class depends on node kinds, names and
/// clauses, never on a constant's value); this type only finds the literals. It is deliberately narrow:
/// whenever a text holds anything whose lexing depends on settings or on context it does not follow
/// (escape strings, backslashes under `standard_conforming_strings`, prefixed literals like `B'…'`,
/// numbers glued to letters), it gives no shape and the text is classified on its own.
public enum StatementShape {
    /// The byte written in place of each literal. A text that already holds it has no shape, so two texts
    /// can share a shape only through their literals.
    static let placeholder: UInt8 = 0x01

    /// Writes the shape of `text` into `shape` (cleared first) and returns true; returns false, leaving
    /// `shape` unspecified, when the text has no shape this scanner can vouch for.
    public static func mask(_ text: UnsafeRawBufferPointer, into shape: inout [UInt8]) -> Bool {
        shape.removeAll(keepingCapacity: true)
        let count = text.count
        var i = 0
        while i < count {
            let byte = text[i]
            switch byte {
            case placeholder:
                return false
            case UInt8(ascii: "-") where i + 1 < count && text[i + 1] == UInt8(ascii: "-"):
                // A line comment, kept as it is (route hints live in comments).
                let end = lineEnd(text, from: i)
                append(text, i..<end, to: &shape)
                i = end
            case UInt8(ascii: "/") where i + 1 < count && text[i + 1] == UInt8(ascii: "*"):
                guard let end = blockCommentEnd(text, from: i) else { return false }
                append(text, i..<end, to: &shape)
                i = end
            case UInt8(ascii: "\""):
                // A quoted identifier, kept: `""` inside is a quote.
                guard let end = quotedEnd(text, from: i, quote: UInt8(ascii: "\"")) else { return false }
                append(text, i..<end, to: &shape)
                i = end
            case UInt8(ascii: "'"):
                // Only a plain string: E'…', B'…', X'…', N'…', U&'…' lex differently.
                if i > 0 && (isIdentifierByte(text[i - 1]) || text[i - 1] == UInt8(ascii: "&")) { return false }
                guard let end = quotedEnd(text, from: i, quote: UInt8(ascii: "'")) else { return false }
                // A backslash means something or nothing depending on standard_conforming_strings.
                for j in i..<end where text[j] == UInt8(ascii: "\\") { return false }
                shape.append(placeholder)
                i = end
            case UInt8(ascii: "$"):
                if i > 0 && isIdentifierByte(text[i - 1]) {
                    shape.append(byte)
                    i += 1
                    continue
                }
                if i + 1 < count && isDigit(text[i + 1]) {
                    // A parameter ($1): kept.
                    var end = i + 1
                    while end < count && isDigit(text[end]) { end += 1 }
                    append(text, i..<end, to: &shape)
                    i = end
                    continue
                }
                guard let end = dollarQuotedEnd(text, from: i) else { return false }
                shape.append(placeholder)
                i = end
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."):
                if byte == UInt8(ascii: ".") && !(i + 1 < count && isDigit(text[i + 1])) {
                    shape.append(byte)
                    i += 1
                    continue
                }
                if i > 0 && (isIdentifierByte(text[i - 1]) || text[i - 1] == UInt8(ascii: ".")) {
                    // Part of a name (t1, col_2) or of a qualified reference: not a literal.
                    if byte == UInt8(ascii: ".") { return false }
                    shape.append(byte)
                    i += 1
                    continue
                }
                guard let end = numberEnd(text, from: i) else { return false }
                shape.append(placeholder)
                i = end
            default:
                shape.append(byte)
                i += 1
            }
        }
        return true
    }

    /// The end of a decimal number (digits, an optional fraction, an optional exponent); nil when letters or
    /// another dot follow, which PostgreSQL's lexer reads in ways this scanner does not follow.
    private static func numberEnd(_ text: UnsafeRawBufferPointer, from start: Int) -> Int? {
        var i = start
        while i < text.count && isDigit(text[i]) { i += 1 }
        if i < text.count && text[i] == UInt8(ascii: ".") {
            i += 1
            while i < text.count && isDigit(text[i]) { i += 1 }
        }
        if i < text.count && (text[i] == UInt8(ascii: "e") || text[i] == UInt8(ascii: "E")) {
            var j = i + 1
            if j < text.count && (text[j] == UInt8(ascii: "+") || text[j] == UInt8(ascii: "-")) { j += 1 }
            guard j < text.count && isDigit(text[j]) else { return nil }
            while j < text.count && isDigit(text[j]) { j += 1 }
            i = j
        }
        if i < text.count && (isIdentifierByte(text[i]) || text[i] == UInt8(ascii: ".")) { return nil }
        return i
    }

    private static func lineEnd(_ text: UnsafeRawBufferPointer, from start: Int) -> Int {
        var i = start
        while i < text.count && text[i] != UInt8(ascii: "\n") && text[i] != UInt8(ascii: "\r") { i += 1 }
        return i
    }

    /// The end of a block comment, which nests in PostgreSQL; nil when it does not end.
    private static func blockCommentEnd(_ text: UnsafeRawBufferPointer, from start: Int) -> Int? {
        var depth = 0
        var i = start
        while i + 1 < text.count {
            if text[i] == UInt8(ascii: "/") && text[i + 1] == UInt8(ascii: "*") {
                depth += 1
                i += 2
            } else if text[i] == UInt8(ascii: "*") && text[i + 1] == UInt8(ascii: "/") {
                depth -= 1
                i += 2
                if depth == 0 { return i }
            } else {
                i += 1
            }
        }
        return nil
    }

    /// The end of a text quoted with `quote`, where a doubled quote stands for one; nil when unterminated.
    private static func quotedEnd(_ text: UnsafeRawBufferPointer, from start: Int, quote: UInt8) -> Int? {
        var i = start + 1
        while i < text.count {
            if text[i] == quote {
                if i + 1 < text.count && text[i + 1] == quote {
                    i += 2
                    continue
                }
                return i + 1
            }
            i += 1
        }
        return nil
    }

    /// The end of `$tag$…$tag$`; nil when the tag is not an identifier or the string does not end.
    private static func dollarQuotedEnd(_ text: UnsafeRawBufferPointer, from start: Int) -> Int? {
        var i = start + 1
        while i < text.count && text[i] != UInt8(ascii: "$") {
            guard isIdentifierByte(text[i]), !(i == start + 1 && isDigit(text[i])) else { return nil }
            i += 1
        }
        guard i < text.count else { return nil }
        let tag = start...i
        var j = i + 1
        while j + tag.count <= text.count {
            if text[j] == UInt8(ascii: "$") && (0..<tag.count).allSatisfy({ text[j + $0] == text[tag.lowerBound + $0] })
            {
                return j + tag.count
            }
            j += 1
        }
        return nil
    }

    private static func append(_ text: UnsafeRawBufferPointer, _ range: Range<Int>, to shape: inout [UInt8]) {
        shape.append(contentsOf: UnsafeRawBufferPointer(rebasing: text[range]))
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    /// Letters, digits, `_`, `$` and every byte of a multibyte UTF-8 character: what identifiers are made of.
    private static func isIdentifierByte(_ byte: UInt8) -> Bool {
        isDigit(byte) || (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "z"))
            || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "$") || byte >= 0x80
    }
}
