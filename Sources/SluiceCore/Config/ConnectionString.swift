/// The `key=value key='quoted value'` lists of `[databases]` and `[users]` entries.
///
/// PgBouncer's rules, which look like libpq's but are not: pairs are separated by blanks; a value
/// is either unquoted up to the next blank or single-quoted with `''` standing for one quote;
/// backslashes mean nothing; empty values are an error. Keys are compared case-insensitively here
/// (PgBouncer is case-sensitive, so every key it accepts is still accepted).
enum ConnectionString {
    /// The pairs in order, keys lowercased. Failure messages never quote values, which may be passwords.
    static func parse(_ text: String) throws(ParseFailure) -> [(key: String, value: String)] {
        var pairs: [(key: String, value: String)] = []
        var index = text.startIndex
        func skipBlanks() {
            while index < text.endIndex, text[index] == " " || text[index] == "\t" { index = text.index(after: index) }
        }
        while true {
            skipBlanks()
            if index == text.endIndex { return pairs }
            let keyStart = index
            while index < text.endIndex, text[index] != "=", text[index] != " ", text[index] != "\t" {
                index = text.index(after: index)
            }
            let key = String(text[keyStart..<index]).lowercased()
            skipBlanks()
            guard !key.isEmpty, index < text.endIndex, text[index] == "=" else {
                let offset = text.distance(from: text.startIndex, to: keyStart) + 1
                throw ParseFailure(message: "expected 'key=value' at character \(offset)")
            }
            index = text.index(after: index)
            skipBlanks()
            var value = ""
            if index < text.endIndex, text[index] == "'" {
                index = text.index(after: index)
                var closed = false
                while index < text.endIndex {
                    let character = text[index]
                    index = text.index(after: index)
                    if character == "'" {
                        if index < text.endIndex, text[index] == "'" {
                            value.append("'")
                            index = text.index(after: index)
                        } else {
                            closed = true
                            break
                        }
                    } else {
                        value.append(character)
                    }
                }
                guard closed else { throw ParseFailure(message: "unterminated quoted value for '\(key)'") }
            } else {
                let valueStart = index
                while index < text.endIndex, text[index] != " ", text[index] != "\t" {
                    index = text.index(after: index)
                }
                value = String(text[valueStart..<index])
            }
            guard !value.isEmpty else { throw ParseFailure(message: "empty value for '\(key)'") }
            pairs.append((key, value))
        }
    }

    struct ParseFailure: Error {
        var message: String
    }
}
