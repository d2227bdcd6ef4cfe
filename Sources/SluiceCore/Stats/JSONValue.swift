/// A JSON document for the stats port's replies, built as a value and serialized without Foundation, so
/// SluiceCore's output does not depend on `JSONEncoder`'s key order or number formatting.
///
/// Objects keep their keys in the order given: operators read the replies with `curl`, and a stable order
/// (pool, then its counters) reads better than a hash order that changes from one request to the next.
public enum JSONValue: Sendable {
    /// `null`: a value that is not known, such as an average over no transactions.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// A signed integer, written exactly: JSON puts no limit on digits, though some readers parse numbers
    /// as doubles and lose precision above 2^53.
    case int(Int64)
    /// An unsigned integer, such as the running totals of `PoolStats`, written exactly.
    case uint(UInt64)
    /// Serialized with Swift's shortest round-trip form; infinities and NaN, which JSON cannot express,
    /// become `null`.
    case double(Double)
    /// Text, escaped as a JSON string on output.
    case string(String)
    /// Elements in output order.
    case array([JSONValue])
    /// Key-value pairs in output order. Keys are not checked for duplicates.
    case object([(String, JSONValue)])

    /// The document as compact JSON text (RFC 8259), without insignificant whitespace.
    public func serialized() -> String {
        var output = ""
        write(into: &output)
        return output
    }

    /// Appends the compact JSON text of this value to `output`, for writers that build one larger reply.
    public func write(into output: inout String) {
        switch self {
        case .null:
            output += "null"
        case .bool(let value):
            output += value ? "true" : "false"
        case .int(let value):
            output += String(value)
        case .uint(let value):
            output += String(value)
        case .double(let value):
            output += value.isFinite ? value.description : "null"
        case .string(let value):
            Self.writeString(value, into: &output)
        case .array(let elements):
            output += "["
            for (index, element) in elements.enumerated() {
                if index > 0 { output += "," }
                element.write(into: &output)
            }
            output += "]"
        case .object(let members):
            output += "{"
            for (index, (key, value)) in members.enumerated() {
                if index > 0 { output += "," }
                Self.writeString(key, into: &output)
                output += ":"
                value.write(into: &output)
            }
            output += "}"
        }
    }

    /// Writes `string` as a JSON string literal. Only the characters RFC 8259 requires are escaped; the rest,
    /// non-ASCII included, pass through as UTF-8. Every control character takes the `\u00XX` form, the
    /// short escapes (`\n`, `\t`) being optional in JSON.
    static func writeString(_ string: String, into output: inout String) {
        output += "\""
        for scalar in string.unicodeScalars {
            switch scalar.value {
            case 0x22:
                output += "\\\""
            case 0x5C:
                output += "\\\\"
            case 0x00..<0x20:
                output += "\\u00"
                output.unicodeScalars.append(hexDigits[Int(scalar.value >> 4)])
                output.unicodeScalars.append(hexDigits[Int(scalar.value & 0xF)])
            default:
                output.unicodeScalars.append(scalar)
            }
        }
        output += "\""
    }

    private static let hexDigits = Array("0123456789abcdef".unicodeScalars)
}

/// Literals spell fixed parts of a reply the way they will read: `["ok": true, "pools": .array(pools)]`.
extension JSONValue: ExpressibleByNilLiteral {
    public init(nilLiteral: ()) { self = .null }
}

extension JSONValue: ExpressibleByBooleanLiteral {
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}

extension JSONValue: ExpressibleByIntegerLiteral {
    public init(integerLiteral value: Int64) { self = .int(value) }
}

extension JSONValue: ExpressibleByFloatLiteral {
    public init(floatLiteral value: Double) { self = .double(value) }
}

extension JSONValue: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
}

extension JSONValue: ExpressibleByArrayLiteral {
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
}

/// A dictionary literal becomes an object with its keys in the order written.
extension JSONValue: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self = .object(elements) }
}

/// Structural equality, objects compared member by member in order (so `{"a":1,"b":2}` and
/// `{"b":2,"a":1}` differ, as their serializations do). Doubles compare as doubles: NaN is unequal to itself.
extension JSONValue: Equatable {
    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.int(let a), .int(let b)): return a == b
        case (.uint(let a), .uint(let b)): return a == b
        case (.double(let a), .double(let b)): return a == b
        case (.string(let a), .string(let b)): return a == b
        case (.array(let a), .array(let b)): return a == b
        case (.object(let a), .object(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        case (.null, _), (.bool, _), (.int, _), (.uint, _), (.double, _), (.string, _), (.array, _), (.object, _):
            return false
        }
    }
}
