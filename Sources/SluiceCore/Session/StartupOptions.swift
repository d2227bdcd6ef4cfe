/// The `options` startup parameter: command-line switches for the backend, as libpq's `options`
/// connection keyword and `PGOPTIONS` send them.
///
/// Only settings can be carried from server to server, so only `-c name=value`, `-cname=value` and
/// `--name=value` are accepted; other backend switches (`-B`, `-d`, …) are refused rather than dropped.
public enum StartupOptions {
    /// Splits `text` the way PostgreSQL does (whitespace separates, a backslash makes the next character
    /// literal) and returns the settings in order.
    public static func parse(_ text: String) throws(ProtocolViolation) -> [(name: String, value: String)] {
        var words: [String] = []
        var current = ""
        var inWord = false
        var escaped = false
        for ch in text {
            if escaped {
                current.append(ch)
                escaped = false
                inWord = true
            } else if ch == "\\" {
                escaped = true
            } else if ch == " " || ch == "\t" || ch == "\n" || ch == "\r" {
                if inWord { words.append(current) }
                current = ""
                inWord = false
            } else {
                current.append(ch)
                inWord = true
            }
        }
        if inWord || escaped { words.append(current) }

        var settings: [(name: String, value: String)] = []
        var index = 0
        while index < words.count {
            let word = words[index]
            let assignment: String
            if word == "-c" {
                index += 1
                guard index < words.count else { throw ProtocolViolation("-c without name=value") }
                assignment = words[index]
            } else if word.hasPrefix("-c") {
                assignment = String(word.dropFirst(2))
            } else if word.hasPrefix("--") {
                assignment = String(word.dropFirst(2))
            } else {
                throw ProtocolViolation("unsupported backend option \"\(word)\"; only -c name=value is supported")
            }
            guard let equals = assignment.firstIndex(of: "="), equals != assignment.startIndex else {
                throw ProtocolViolation("\"\(assignment)\" is not name=value")
            }
            // PostgreSQL accepts dashes for underscores in option names given on the command line.
            let name = assignment[..<equals].replacingDashes()
            settings.append((name, String(assignment[assignment.index(after: equals)...])))
            index += 1
        }
        return settings
    }
}

extension Substring {
    fileprivate func replacingDashes() -> String {
        String(map { $0 == "-" ? "_" : $0 })
    }
}
