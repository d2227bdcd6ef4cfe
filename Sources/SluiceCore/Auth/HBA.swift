import Glibc

/// How a rule of an `auth_hba_file` makes the client prove who it is.
public enum HBAMethod: String, Sendable, Equatable {
    case trust
    case reject
    /// md5, or SCRAM when the user's secret is a SCRAM verifier (PostgreSQL's reading of `md5`).
    case md5
    /// Cleartext password.
    case password
    case scramSHA256 = "scram-sha-256"
    /// A TLS client certificate verified against `client_tls_ca_file`, whose common name is the user.
    case cert
    /// The Unix-socket peer's operating-system user name is the user.
    case peer
}

/// One connection as the rules see it.
public struct HBAConnection: Sendable {
    public var isUnixSocket: Bool
    public var isTLS: Bool
    /// The peer's numeric address (`127.0.0.1`, `::1`); ignored for Unix sockets.
    public var address: String
    public var database: String
    public var user: String

    public init(isUnixSocket: Bool, isTLS: Bool, address: String, database: String, user: String) {
        self.isUnixSocket = isUnixSocket
        self.isTLS = isTLS
        self.address = address
        self.database = database
        self.user = user
    }
}

/// One line of the file.
public struct HBARule: Sendable, Equatable {
    public enum ConnectionType: String, Sendable {
        case local, host, hostssl, hostnossl
    }

    /// An element of the database or user column.
    public enum Name: Sendable, Equatable {
        case all
        /// The database named like the user (database column only).
        case sameUser
        case name(String)
    }

    public enum Address: Sendable, Equatable {
        case any
        /// Network address bytes (4 or 16) and how many leading bits must match.
        case network([UInt8], prefix: Int)
    }

    public var type: ConnectionType
    public var databases: [Name]
    public var users: [Name]
    public var address: Address
    public var method: HBAMethod
    public var line: Int

    func matches(_ connection: HBAConnection) -> Bool {
        switch type {
        case .local: guard connection.isUnixSocket else { return false }
        case .host: guard !connection.isUnixSocket else { return false }
        case .hostssl: guard !connection.isUnixSocket, connection.isTLS else { return false }
        case .hostnossl: guard !connection.isUnixSocket, !connection.isTLS else { return false }
        }
        let databaseMatches = databases.contains { name in
            switch name {
            case .all: true
            case .sameUser: connection.database == connection.user
            case .name(let database): database == connection.database
            }
        }
        guard databaseMatches, users.contains(where: { $0 == .all || $0 == .name(connection.user) }) else {
            return false
        }
        guard type != .local, case .network(let network, let prefix) = address else { return true }
        guard let peer = HBAFile.addressBytes(connection.address) else { return false }
        return HBAFile.prefixMatches(peer, network, prefix: prefix)
    }
}

/// An `auth_hba_file` in pg_hba.conf syntax: the first rule that matches a connection decides how it
/// authenticates; no match refuses it.
///
/// What PostgreSQL's file can say and Sluice cannot act on (`+role` membership, host names, `samehost`,
/// `ident`, `ldap`, options after the method) is refused with the line, rather than skipped: a skipped
/// line could let a later, weaker one decide.
public struct HBAFile: Sendable, Equatable {
    public var rules: [HBARule]

    public init(rules: [HBARule]) {
        self.rules = rules
    }

    public func match(_ connection: HBAConnection) -> HBARule? {
        rules.first { $0.matches(connection) }
    }

    /// Parses `text`, the file at `file`; `@name` lists are read through `readFile`, relative to `file`.
    public static func parse(
        _ text: String, file: String, readFile: (String) throws -> String
    ) throws(ConfigError) -> HBAFile {
        var rules: [HBARule] = []
        for (line, fields) in try records(text, file: file) {
            func fail(_ message: String) -> ConfigError { ConfigError(file: file, line: line, message: message) }
            guard let type = HBARule.ConnectionType(rawValue: fields[0].text.lowercased()), !fields[0].quoted else {
                throw fail(
                    "'\(fields[0].text)' is not a connection type Sluice knows (local, host, hostssl, hostnossl)")
            }
            let needed = type == .local ? 4 : 5
            guard fields.count >= needed else { throw fail("too few fields: a \(type.rawValue) line has \(needed)") }
            let databases = try names(fields[1], sameUser: true, file: file, line: line, readFile: readFile)
            let users = try names(fields[2], sameUser: false, file: file, line: line, readFile: readFile)
            var next = 3
            var address = HBARule.Address.any
            if type != .local {
                (address, next) = try parseAddress(fields, at: 3, fail: fail)
            }
            guard next < fields.count, let method = HBAMethod(rawValue: fields[next].text.lowercased()) else {
                let word = next < fields.count ? fields[next].text : ""
                throw fail(
                    "'\(word)' is not an authentication method Sluice implements "
                        + "(trust, reject, md5, password, scram-sha-256, cert, peer)")
            }
            guard next + 1 == fields.count else {
                throw fail("options after the method ('\(fields[next + 1].text)') are not supported")
            }
            if method == .peer && type != .local { throw fail("peer authentication is only for local connections") }
            if method == .cert && type != .hostssl { throw fail("cert authentication is only for hostssl connections") }
            rules.append(
                HBARule(type: type, databases: databases, users: users, address: address, method: method, line: line))
        }
        return HBAFile(rules: rules)
    }

    struct Field {
        var text: String
        var quoted: Bool
        /// The comma-separated elements, each with whether it was quoted.
        var elements: [(text: String, quoted: Bool)]
    }

    /// The non-empty lines, continuations joined, split into whitespace-separated fields.
    static func records(_ text: String, file: String) throws(ConfigError) -> [(Int, [Field])] {
        var result: [(Int, [Field])] = []
        var pending = ""
        var startLine = 0
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = String(raw)
            if line.hasSuffix("\r") { line.removeLast() }
            if pending.isEmpty { startLine = index + 1 }
            if line.hasSuffix("\\") {
                pending += line.dropLast() + " "
                continue
            }
            let whole = pending + line
            pending = ""
            let fields = try split(whole, file: file, line: startLine)
            if !fields.isEmpty { result.append((startLine, fields)) }
        }
        if !pending.isEmpty {
            let fields = try split(pending, file: file, line: startLine)
            if !fields.isEmpty { result.append((startLine, fields)) }
        }
        return result
    }

    /// One line into fields: whitespace separates, `#` outside quotes ends the line, quotes keep spaces,
    /// commas and `#`, and a quoted keyword is just a name.
    private static func split(_ line: String, file: String, line number: Int) throws(ConfigError) -> [Field] {
        var fields: [Field] = []
        var elements: [(text: String, quoted: Bool)] = []
        var current = ""
        var currentQuoted = false
        var inQuotes = false
        var inField = false
        func endElement() {
            elements.append((current, currentQuoted))
            current = ""
            currentQuoted = false
        }
        func endField() {
            guard inField else { return }
            endElement()
            let text = elements.map(\.text).joined(separator: ",")
            fields.append(Field(text: text, quoted: elements.count == 1 && elements[0].quoted, elements: elements))
            elements = []
            inField = false
        }
        for character in line {
            if inQuotes {
                if character == "\"" { inQuotes = false } else { current.append(character) }
                continue
            }
            switch character {
            case "#":
                endField()
                return fields
            case " ", "\t":
                endField()
            case "\"":
                inField = true
                inQuotes = true
                currentQuoted = true
            case ",":
                inField = true
                endElement()
            default:
                inField = true
                current.append(character)
            }
        }
        guard !inQuotes else { throw ConfigError(file: file, line: number, message: "unterminated quoted field") }
        endField()
        return fields
    }

    private static func names(
        _ field: Field, sameUser: Bool, file: String, line: Int, readFile: (String) throws -> String
    ) throws(ConfigError) -> [HBARule.Name] {
        try names(field.elements, sameUser: sameUser, file: file, line: line, depth: 0, readFile: readFile)
    }

    /// The names of a database or user column. A `@file` list is read as more elements of the same column,
    /// judged by the same rules (a keyword or `+role` in it is refused as on the line), nested up to ten deep.
    private static func names(
        _ elements: [(text: String, quoted: Bool)], sameUser: Bool, file: String, line: Int, depth: Int,
        readFile: (String) throws -> String
    ) throws(ConfigError) -> [HBARule.Name] {
        var result: [HBARule.Name] = []
        for element in elements {
            func fail(_ message: String) -> ConfigError { ConfigError(file: file, line: line, message: message) }
            if element.quoted {
                result.append(.name(element.text))
                continue
            }
            switch element.text {
            case "all": result.append(.all)
            case "sameuser" where sameUser: result.append(.sameUser)
            case "samerole", "samegroup", "replication":
                throw fail("'\(element.text)' is not supported: Sluice does not know role membership or replication")
            case let text where text.hasPrefix("+"):
                throw fail("'\(text)': role membership (+role) is not supported; list the users")
            case let text where text.hasPrefix("/"):
                throw fail("'\(text)': regular expressions (PostgreSQL 16) are not supported; list the names")
            case let text where text.hasPrefix("@"):
                guard depth < 10 else { throw fail("'\(text)': @ lists nested more than ten deep") }
                let path = IniReader.resolve(String(text.dropFirst()), relativeTo: file)
                let listed: String
                do {
                    listed = try readFile(path)
                } catch {
                    throw fail("cannot read \(path): \(error)")
                }
                let inner = try records(listed, file: path).flatMap { $0.1.flatMap(\.elements) }.filter {
                    !$0.text.isEmpty || $0.quoted
                }
                result += try names(
                    inner, sameUser: sameUser, file: file, line: line, depth: depth + 1, readFile: readFile)
            case "":
                throw fail("empty name in a list")
            default:
                result.append(.name(element.text))
            }
        }
        return result
    }

    private static func parseAddress(
        _ fields: [Field], at index: Int, fail: (String) -> ConfigError
    ) throws(ConfigError) -> (HBARule.Address, Int) {
        let text = fields[index].text
        if text == "all" { return (.any, index + 1) }
        if let slash = text.firstIndex(of: "/") {
            let address = String(text[..<slash])
            guard let bytes = addressBytes(address), var prefix = Int(text[text.index(after: slash)...]) else {
                throw fail("'\(text)' is not an address with a CIDR mask")
            }
            // An IPv4-mapped IPv6 network (::ffff:10.0.0.0/104) is held as its IPv4 part.
            if bytes.count == 4 && address.contains(":") { prefix -= 96 }
            guard (0...bytes.count * 8).contains(prefix) else {
                throw fail("'\(text)' is not an address with a CIDR mask")
            }
            return (.network(bytes, prefix: prefix), index + 1)
        }
        if let bytes = addressBytes(text), index + 1 < fields.count, let mask = addressBytes(fields[index + 1].text),
            mask.count == bytes.count
        {
            guard let prefix = prefixLength(mask) else { throw fail("'\(fields[index + 1].text)' is not a netmask") }
            return (.network(bytes, prefix: prefix), index + 2)
        }
        if addressBytes(text) != nil { throw fail("'\(text)' needs a CIDR mask or a netmask") }
        throw fail("'\(text)': only addresses with a mask and 'all' are supported (no host names, samehost, samenet)")
    }

    /// The bytes of a numeric IPv4 or IPv6 address; an IPv4-mapped IPv6 address gives its IPv4 bytes.
    static func addressBytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: v4) { Array($0) }
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: v6) { Array($0) }
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
            return Array(bytes[12...])
        }
        return bytes
    }

    static func prefixMatches(_ address: [UInt8], _ network: [UInt8], prefix: Int) -> Bool {
        guard address.count == network.count else { return false }
        var remaining = prefix
        for (a, n) in zip(address, network) where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
            if a & mask != n & mask { return false }
            remaining -= bits
        }
        return true
    }

    /// The prefix length of a netmask such as 255.255.255.0; nil when its ones are not contiguous.
    static func prefixLength(_ mask: [UInt8]) -> Int? {
        var length = 0
        var ended = false
        for byte in mask {
            for bit in (0..<8).reversed() {
                if byte & (1 << bit) != 0 {
                    if ended { return nil }
                    length += 1
                } else {
                    ended = true
                }
            }
        }
        return length
    }
}
