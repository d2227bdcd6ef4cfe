/// The users Sluice can authenticate and the secrets it holds for them: PgBouncer's auth_file.
///
/// The file has one user per line, `"name" "secret"`, both double-quoted with `""` standing for
/// one quote inside a field. Anything after the second field is ignored, as are blank lines and
/// lines starting with `;` or `#`. The secret is classified by ``StoredSecret/parse(_:)``.
/// When a name appears twice the later line wins, as in PgBouncer.
public struct UserList: Sendable, Equatable, CustomStringConvertible {
    /// Secrets by user name (case-sensitive, like PostgreSQL role names).
    public var users: [String: StoredSecret]

    /// A list holding `users`.
    public init(users: [String: StoredSecret] = [:]) {
        self.users = users
    }

    /// The secret for `user`, if listed.
    public subscript(user: String) -> StoredSecret? {
        get { users[user] }
        set { users[user] = newValue }
    }

    /// Counts users without naming secrets.
    public var description: String { "UserList(\(users.count) users)" }

    /// Parses auth_file `text`; errors name `file` and the line.
    public static func parse(_ text: String, file: String) throws(ConfigError) -> UserList {
        var list = UserList()
        var number = 0
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            number += 1
            var line = Substring(rawLine)
            if number == 1, line.hasPrefix("\u{FEFF}") { line = line.dropFirst() }
            line = line.drop { $0 == " " || $0 == "\t" || $0 == "\r" }
            if line.isEmpty || line.hasPrefix(";") || line.hasPrefix("#") { continue }

            func failure(_ message: String) -> ConfigError {
                ConfigError(file: file, line: number, message: message)
            }
            guard line.first == "\"" else { throw failure("expected a double-quoted user name") }
            guard let (user, afterUser) = readQuoted(line.dropFirst()) else {
                throw failure("user name has no closing double quote")
            }
            guard !user.isEmpty else { throw failure("empty user name") }
            let secretStart = afterUser.drop { $0 == " " || $0 == "\t" }
            guard secretStart.first == "\"" else {
                throw failure("expected a double-quoted secret after user \"\(user)\"")
            }
            guard let (secretText, _) = readQuoted(secretStart.dropFirst()) else {
                throw failure("secret of user \"\(user)\" has no closing double quote")
            }
            guard let secret = StoredSecret.parse(secretText) else {
                throw failure(
                    "secret of user \"\(user)\" starts with SCRAM-SHA-256$ but is not a valid "
                        + "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey> verifier")
            }
            list.users[user] = secret
        }
        return list
    }

    /// Reads up to the closing quote of a field whose opening quote is already consumed.
    private static func readQuoted(_ text: Substring) -> (String, Substring)? {
        var value = ""
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            index = text.index(after: index)
            if character == "\"" {
                if index < text.endIndex, text[index] == "\"" {
                    value.append("\"")
                    index = text.index(after: index)
                } else {
                    return (value, text[index...])
                }
            } else if character == "\r" {
                return nil
            } else {
                value.append(character)
            }
        }
        return nil
    }
}
