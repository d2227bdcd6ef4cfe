/// One meaningful line of a config file, with where it came from.
struct IniLine: Sendable, Equatable {
    enum Content: Sendable, Equatable {
        /// `[name]`; the name is lowercased and trimmed.
        case section(String)
        /// `key = value`; the key unquoted, the value trimmed but otherwise verbatim.
        case setting(key: String, value: String)
    }

    var content: Content
    var file: String
    var line: Int
}

/// Splits PgBouncer's ini dialect into lines, following `%include` directives.
///
/// The dialect, as PgBouncer's parser has it: comments are whole lines starting with `;` or `#`
/// (the characters mean nothing later in a line); a key is made of letters, digits and `_ . - *`,
/// or is double-quoted with `""` standing for one quote; the value is the rest of the line with
/// surrounding blanks removed, and quotes in it are part of the value.
///
/// An included file continues the section it was included from, and the includer's section
/// continues after it. Sluice resolves a relative include path against the including file's
/// directory, where PgBouncer uses the working directory; an absolute path behaves the same.
enum IniReader {
    /// Deep enough for any real layout, shallow enough to stop an include cycle quickly.
    static let maximumIncludeDepth = 10

    static func read(
        text: String, file: String, readFile: (String) throws -> String, depth: Int = 0
    ) throws(ConfigError) -> [IniLine] {
        var lines: [IniLine] = []
        var number = 0
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            number += 1
            var line = Substring(rawLine)
            if number == 1, line.hasPrefix("\u{FEFF}") { line = line.dropFirst() }
            let trimmed = line.configTrimmed()
            if trimmed.isEmpty || trimmed.hasPrefix(";") || trimmed.hasPrefix("#") { continue }

            if trimmed.hasPrefix("[") {
                guard trimmed.hasSuffix("]"), trimmed.count >= 2 else {
                    throw ConfigError(file: file, line: number, message: "section header must end with ']'")
                }
                let name = trimmed.dropFirst().dropLast().configTrimmed().lowercased()
                lines.append(IniLine(content: .section(name), file: file, line: number))
                continue
            }

            if trimmed.hasPrefix("%") {
                let parts = trimmed.split(maxSplits: 1, whereSeparator: { $0 == " " || $0 == "\t" })
                guard parts.first?.lowercased() == "%include", parts.count == 2 else {
                    throw ConfigError(
                        file: file, line: number, message: "unknown directive; only '%include file' exists")
                }
                let target = resolve(String(parts[1]).configTrimmed(), relativeTo: file)
                guard depth < maximumIncludeDepth else {
                    throw ConfigError(
                        file: file, line: number,
                        message: "%include nested more than \(maximumIncludeDepth) deep (an include cycle?)")
                }
                let included: String
                do {
                    included = try readFile(target)
                } catch {
                    throw ConfigError(
                        file: file, line: number, message: "cannot read included file \(target): \(error)")
                }
                lines += try read(text: included, file: target, readFile: readFile, depth: depth + 1)
                continue
            }

            let (key, rest) = try splitKey(trimmed, file: file, line: number)
            let afterKey = rest.drop { $0 == " " || $0 == "\t" }
            guard afterKey.first == "=" else {
                throw ConfigError(file: file, line: number, message: "expected '=' after '\(key)'")
            }
            let value = afterKey.dropFirst().configTrimmed()
            lines.append(IniLine(content: .setting(key: key, value: value), file: file, line: number))
        }
        return lines
    }

    /// `path` as given when absolute, else relative to the directory holding `file`.
    static func resolve(_ path: String, relativeTo file: String) -> String {
        if path.hasPrefix("/") { return path }
        guard let slash = file.lastIndex(of: "/") else { return path }
        return String(file[...slash]) + path
    }

    private static func splitKey(_ text: String, file: String, line: Int) throws(ConfigError) -> (String, Substring) {
        if text.hasPrefix("\"") {
            var key = ""
            var index = text.index(after: text.startIndex)
            while index < text.endIndex {
                let character = text[index]
                index = text.index(after: index)
                if character == "\"" {
                    if index < text.endIndex, text[index] == "\"" {
                        key.append("\"")
                        index = text.index(after: index)
                    } else {
                        return (key, text[index...])
                    }
                } else {
                    key.append(character)
                }
            }
            throw ConfigError(file: file, line: line, message: "unterminated quoted name")
        }
        let end = text.firstIndex { !isKeyCharacter($0) } ?? text.endIndex
        guard end > text.startIndex else {
            throw ConfigError(
                file: file, line: line,
                message: "expected 'name = value'; names other than letters, digits and _.-* need double quotes")
        }
        return (String(text[..<end]), text[end...])
    }

    private static func isKeyCharacter(_ character: Character) -> Bool {
        (character.isASCII && (character.isLetter || character.isNumber)) || "_.-*".contains(character)
    }
}
