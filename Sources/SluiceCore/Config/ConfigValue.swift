/// Parsers for setting values, following PgBouncer's readers so that an unchanged pgbouncer.ini
/// means the same thing to Sluice.
enum ConfigValue {
    /// C `strtol(text, &end, 0)` that must consume the whole text: optional sign, then `0x` hex,
    /// leading-zero octal, or decimal. So `0777` is 511, as in PgBouncer's `unix_socket_mode`.
    static func integer(_ text: String) -> Int? {
        var digits = Substring(text)
        var negative = false
        if let sign = digits.first, sign == "+" || sign == "-" {
            negative = sign == "-"
            digits = digits.dropFirst()
        }
        var radix = 10
        if digits.count > 2, digits.hasPrefix("0x") || digits.hasPrefix("0X") {
            radix = 16
            digits = digits.dropFirst(2)
        } else if digits.count > 1, digits.hasPrefix("0") {
            radix = 8
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isHexDigit }),
            let magnitude = Int(digits, radix: radix)
        else { return nil }
        return negative ? -magnitude : magnitude
    }

    /// A non-negative, finite number of seconds (PgBouncer reads these with `strtod`).
    static func seconds(_ text: String) -> Double? {
        guard let value = Double(text), value.isFinite, value >= 0 else { return nil }
        return value
    }

    /// PgBouncer booleans are integers (non-zero is true); common words are accepted as well.
    static func boolean(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "on", "true", "yes": return true
        case "off", "false", "no": return false
        default: return integer(text).map { $0 != 0 }
        }
    }

    /// A comma-separated list with blanks around items and empty items dropped.
    static func list(_ text: String) -> [String] {
        text.split(separator: ",").map { $0.configTrimmed() }.filter { !$0.isEmpty }
    }

    /// Whether `value` means the same as `other` for a key of type `type`.
    static func equivalent(_ value: String, _ other: String, as type: ConfigKey.ValueType) -> Bool {
        switch type {
        case .integer:
            return integer(value) != nil && integer(value) == integer(other)
        case .seconds:
            return seconds(value) != nil && seconds(value) == seconds(other)
        case .boolean:
            return boolean(value) != nil && boolean(value) == boolean(other)
        case .text:
            return value == other
        case .list:
            return list(value).map { $0.lowercased() } == list(other).map { $0.lowercased() }
        case .choice:
            return value.lowercased() == other.lowercased()
        }
    }

    /// Why `value` is not a valid `type`, or nil when it is.
    static func problem(with value: String, as type: ConfigKey.ValueType) -> String? {
        switch type {
        case .integer:
            return integer(value) == nil ? "is not an integer" : nil
        case .seconds:
            return seconds(value) == nil ? "is not a non-negative number of seconds" : nil
        case .boolean:
            return boolean(value) == nil ? "is not a boolean (0 or 1)" : nil
        case .text, .list:
            return nil
        case .choice(let choices):
            if choices.contains(value.lowercased()) { return nil }
            return "is not one of " + choices.joined(separator: ", ")
        }
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces, tabs and line-ending characters.
    func configTrimmed() -> String {
        let isBlank: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }
        guard let first = firstIndex(where: { !isBlank($0) }), let last = lastIndex(where: { !isBlank($0) }) else {
            return ""
        }
        return String(self[first...last])
    }
}
