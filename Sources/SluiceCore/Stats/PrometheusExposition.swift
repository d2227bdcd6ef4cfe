/// A scrape in the Prometheus text exposition format, version 0.0.4.
///
/// The format wants each metric family's `# HELP` and `# TYPE` once, before its samples, and all samples of a
/// family together. Samples are therefore written to the family most recently named with `family(_:type:help:)`
/// and carry no name of their own, and the families are kept apart until `rendered()`: a loop over pools that
/// returns to a family already started still produces one block per family.
///
/// Metric and label names come from Sluice's code, never from a client, so a bad one is a programming error
/// and stops the process; label values and help texts are escaped.
public struct PrometheusExposition: Sendable {
    /// The `# TYPE` of a family.
    public enum MetricType: String, Sendable {
        /// A running total. Its name ends in `_total`, which the 0.0.4 format keeps on both the `# TYPE`
        /// line and the samples, and which `promtool check metrics` asks for.
        case counter
        /// A value that goes up and down, such as connections in a state.
        case gauge
        /// Written with `histogram(labels:buckets:sum:count:)` as `_bucket`, `_sum` and `_count` samples.
        case histogram
        /// A value of unknown kind; Prometheus treats it like a gauge.
        case untyped
    }

    private struct Family: Sendable {
        let name: String
        let type: MetricType
        let help: String
        var samples = ""
    }

    private var families: [Family] = []
    private var familyIndex: [String: Int] = [:]
    private var current: Int?

    /// An exposition without families.
    public init() {}

    /// Makes `name` the family the next samples belong to, declaring it the first time. Naming a family again
    /// returns to it; its type and help must then be the same.
    public mutating func family(_ name: String, type: MetricType, help: String) {
        precondition(Self.isMetricName(name), "invalid Prometheus metric name \(name)")
        precondition(type != .counter || name.hasSuffix("_total"), "counter \(name) must end in _total")
        if let index = familyIndex[name] {
            precondition(
                families[index].type == type && families[index].help == help,
                "metric family \(name) declared twice with different type or help")
            current = index
        } else {
            familyIndex[name] = families.count
            current = families.count
            families.append(Family(name: name, type: type, help: help))
        }
    }

    /// Adds a sample to the current family, which must not be a histogram.
    public mutating func sample(labels: [(String, String)] = [], value: Double) {
        appendSample(labels: labels, value: Self.formatted(value))
    }

    /// Adds a sample to the current family, which must not be a histogram.
    public mutating func sample(labels: [(String, String)] = [], value: Int) {
        appendSample(labels: labels, value: String(value))
    }

    /// Adds a sample to the current family, which must not be a histogram.
    public mutating func sample(labels: [(String, String)] = [], value: Int64) {
        appendSample(labels: labels, value: String(value))
    }

    /// Adds a sample to the current family, which must not be a histogram.
    public mutating func sample(labels: [(String, String)] = [], value: UInt64) {
        appendSample(labels: labels, value: String(value))
    }

    /// Adds one histogram to the current family, which must be a histogram: a `_bucket` sample per bucket in
    /// the order given, the `le="+Inf"` bucket holding `count` (a bucket with an infinite bound among
    /// `buckets` is left out for it), then `_sum` and `_count`.
    ///
    /// `buckets` are cumulative, as Prometheus expects: each count includes those of the buckets below it.
    public mutating func histogram(
        labels: [(String, String)] = [], buckets: [(upperBound: Double, cumulativeCount: UInt64)], sum: Double,
        count: UInt64
    ) {
        let index = currentFamily()
        precondition(families[index].type == .histogram, "\(families[index].name) is not a histogram family")
        precondition(!labels.contains { $0.0 == "le" }, "the label le is reserved for histogram buckets")
        let name = families[index].name
        var lines = ""
        for bucket in buckets where bucket.upperBound.isFinite {
            Self.writeSample(
                name + "_bucket", labels: labels + [("le", Self.formatted(bucket.upperBound))],
                value: String(bucket.cumulativeCount), into: &lines)
        }
        Self.writeSample(name + "_bucket", labels: labels + [("le", "+Inf")], value: String(count), into: &lines)
        Self.writeSample(name + "_sum", labels: labels, value: Self.formatted(sum), into: &lines)
        Self.writeSample(name + "_count", labels: labels, value: String(count), into: &lines)
        families[index].samples += lines
    }

    /// The exposition: every family's `# HELP`, `# TYPE` and samples, families in the order first named.
    /// Ends with a newline, which the format requires of the last line.
    public func rendered() -> String {
        var output = ""
        for family in families {
            output += "# HELP \(family.name) \(Self.escapedHelp(family.help))\n"
            output += "# TYPE \(family.name) \(family.type.rawValue)\n"
            output += family.samples
        }
        return output
    }

    /// A float as Prometheus parses it: `+Inf`, `-Inf`, `NaN`, integral values up to 2^53 without a fraction
    /// (`10`, not `10.0`, as the `le` labels of client libraries read), others in Swift's shortest
    /// round-trip form (`0.0005`, `2.5e-05`, `1e+16`).
    static func formatted(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value < 0 ? "-Inf" : "+Inf" }
        if value == value.rounded(), value.magnitude < 0x1p53 { return String(Int64(value)) }
        return value.description
    }

    /// Backslash, double quote and newline are the escapes of a label value.
    static func escapedLabelValue(_ value: String) -> String {
        var escaped = ""
        for character in value.unicodeScalars {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.unicodeScalars.append(character)
            }
        }
        return escaped
    }

    /// Backslash and newline are the escapes of a help text; a double quote stands as it is.
    static func escapedHelp(_ help: String) -> String {
        var escaped = ""
        for character in help.unicodeScalars {
            switch character {
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            default: escaped.unicodeScalars.append(character)
            }
        }
        return escaped
    }

    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    static func isMetricName(_ name: String) -> Bool {
        isName(name, extra: ":")
    }

    /// `[a-zA-Z_][a-zA-Z0-9_]*`, without the `__` prefix Prometheus reserves for itself.
    static func isLabelName(_ name: String) -> Bool {
        isName(name, extra: "") && !name.hasPrefix("__")
    }

    private static func isName(_ name: String, extra: String) -> Bool {
        guard let first = name.utf8.first else { return false }
        func isLetter(_ byte: UInt8) -> Bool {
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || byte == UInt8(ascii: "_") || extra.utf8.contains(byte)
        }
        return isLetter(first)
            && name.utf8.allSatisfy { isLetter($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
    }

    private mutating func appendSample(labels: [(String, String)], value: String) {
        let index = currentFamily()
        precondition(families[index].type != .histogram, "write histogram \(families[index].name) with histogram()")
        Self.writeSample(families[index].name, labels: labels, value: value, into: &families[index].samples)
    }

    private func currentFamily() -> Int {
        guard let current else { preconditionFailure("a Prometheus sample before any family(_:type:help:)") }
        return current
    }

    private static func writeSample(
        _ name: String, labels: [(String, String)], value: String, into output: inout String
    ) {
        output += name
        if !labels.isEmpty {
            output += "{"
            for (index, (label, labelValue)) in labels.enumerated() {
                precondition(isLabelName(label), "invalid Prometheus label name \(label)")
                if index > 0 { output += "," }
                output += "\(label)=\"\(escapedLabelValue(labelValue))\""
            }
            output += "}"
        }
        output += " \(value)\n"
    }
}
