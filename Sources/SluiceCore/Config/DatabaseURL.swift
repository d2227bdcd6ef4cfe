/// A `postgres://user:password@host:port/dbname?param=value` URL, as platforms put in `DATABASE_URL`.
///
/// Parsed by hand rather than with Foundation's URL so that percent-decoding is exact and no
/// error message can echo the password.
public struct DatabaseURL: Sendable, Equatable, CustomStringConvertible {
    /// The user, percent-decoded.
    public var user: String
    /// The password, percent-decoded; nil when the URL has none.
    public var password: String?
    /// The host name or address, percent-decoded, without IPv6 brackets.
    public var host: String
    /// The port; 5432 when the URL has none.
    public var port: Int
    /// The database name; the user name when the URL has no path, as libpq does.
    public var dbname: String
    /// `application_name` from the query string, if any.
    public var applicationName: String?
    /// `sslmode` from the query string, if any: it becomes `server_tls_sslmode`.
    public var sslmode: SSLMode?

    /// The query parameters Sluice understands.
    public static let supportedParameters = ["sslmode", "application_name"]

    /// Shows the target without the password.
    public var description: String {
        "postgres://\(user)\(password == nil ? "" : ":<redacted>")@\(host):\(port)/\(dbname)"
    }

    /// Parses `text`; errors say what is wrong without quoting the URL.
    public static func parse(_ text: String, variable: String = "DATABASE_URL") throws(ConfigError) -> DatabaseURL {
        func fail(_ message: String) -> ConfigError {
            ConfigError(file: ConfigError.environmentFile, line: nil, message: "\(variable): \(message)")
        }
        let lowered = text.lowercased()
        let rest: Substring
        if lowered.hasPrefix("postgres://") {
            rest = text.dropFirst("postgres://".count)
        } else if lowered.hasPrefix("postgresql://") {
            rest = text.dropFirst("postgresql://".count)
        } else {
            throw fail("must start with postgres:// or postgresql://")
        }

        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        var afterAuthority = rest[authorityEnd...]

        guard let at = authority.lastIndex(of: "@") else {
            throw fail("has no user (expected postgres://user:password@host/db)")
        }
        let userInfo = authority[..<at]
        let hostPort = authority[authority.index(after: at)...]
        let userPart: Substring
        var password: String?
        if let colon = userInfo.firstIndex(of: ":") {
            userPart = userInfo[..<colon]
            password = try decode(userInfo[userInfo.index(after: colon)...], what: "password", fail: fail)
        } else {
            userPart = userInfo
        }
        let user = try decode(userPart, what: "user", fail: fail)
        guard !user.isEmpty else { throw fail("has an empty user") }

        var hostText: Substring
        var portText: Substring?
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { throw fail("has an unterminated [IPv6] host") }
            hostText = hostPort[hostPort.index(after: hostPort.startIndex)..<close]
            let after = hostPort[hostPort.index(after: close)...]
            if after.hasPrefix(":") {
                portText = after.dropFirst()
            } else if !after.isEmpty {
                throw fail("has text after the [IPv6] host")
            }
        } else if let colon = hostPort.lastIndex(of: ":") {
            hostText = hostPort[..<colon]
            portText = hostPort[hostPort.index(after: colon)...]
        } else {
            hostText = hostPort
        }
        let host = try decode(hostText, what: "host", fail: fail)
        guard !host.isEmpty else { throw fail("has no host") }
        guard !host.contains(",") else { throw fail("lists several hosts, which Sluice does not support here") }
        var port = 5432
        if let portText {
            guard let number = Int(portText), (1...65535).contains(number) else {
                throw fail("port '\(portText)' is not a number in 1...65535")
            }
            port = number
        }

        var dbname = user
        if afterAuthority.hasPrefix("/") {
            afterAuthority = afterAuthority.dropFirst()
            let pathEnd = afterAuthority.firstIndex(of: "?") ?? afterAuthority.endIndex
            let path = try decode(afterAuthority[..<pathEnd], what: "database name", fail: fail)
            if !path.isEmpty { dbname = path }
            afterAuthority = afterAuthority[pathEnd...]
        }

        var url = DatabaseURL(user: user, password: password, host: host, port: port, dbname: dbname)
        if afterAuthority.hasPrefix("?") {
            for pair in afterAuthority.dropFirst().split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let name = try decode(parts[0], what: "parameter name", fail: fail)
                let value = parts.count > 1 ? try decode(parts[1], what: "parameter \(name)", fail: fail) : ""
                switch name {
                case "sslmode":
                    guard let mode = SSLMode(rawValue: value) else {
                        throw fail(
                            "sslmode=\(value) is not an sslmode (disable, allow, prefer, require, verify-ca, "
                                + "verify-full)")
                    }
                    url.sslmode = mode
                case "application_name":
                    url.applicationName = value
                default:
                    throw fail(
                        "parameter '\(name)' is not supported (supported: "
                            + supportedParameters.joined(separator: ", ") + ")")
                }
            }
        }
        return url
    }

    init(user: String, password: String?, host: String, port: Int, dbname: String) {
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        self.dbname = dbname
    }

    /// The `[databases]` entry this URL stands for: named after the database, forcing the user.
    public var databaseConfig: DatabaseConfig {
        var database = DatabaseConfig(name: dbname)
        database.host = host
        database.port = port
        database.dbname = dbname
        database.user = user
        database.password = password
        database.applicationName = applicationName
        return database
    }

    /// Percent-decodes a URL component; the result must be UTF-8.
    private static func decode(
        _ text: Substring, what: String, fail: (String) -> ConfigError
    ) throws(ConfigError) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                throw fail("the \(what) has a malformed %-escape")
            }
            bytes.append(high << 4 | low)
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else {
            throw fail("the \(what) is not UTF-8 after %-decoding")
        }
        return decoded
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
