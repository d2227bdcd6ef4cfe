/// One statement sent to the admin console (the virtual database `pgbouncer`, alias `sluice`), read the way
/// PgBouncer reads them: a command word, an optional argument, case-insensitive, an optional trailing
/// semicolon. `SELECT` is taken as `SHOW`, as PgBouncer takes it.
public enum AdminCommand: Equatable, Sendable {
    /// `SHOW name`: a view, named in lower case.
    case show(String)
    /// `SET name = value` (also `TO`): a configuration key, or one of the session settings drivers set on
    /// connect, which the console accepts and ignores.
    case set(key: String, value: String)
    case reload
    /// `PAUSE [db]`, `RESUME [db]`, `RECONNECT [db]`, `KILL [db]`, `WAIT_CLOSE [db]`: nil for every database.
    case pause(database: String?)
    case resume(database: String?)
    case reconnect(database: String?)
    case kill(database: String?)
    case waitClose(database: String?)
    case disable(database: String)
    case enable(database: String)
    case killClient(id: Int)
    case suspend
    case shutdown(ShutdownWait)
    /// Nothing but whitespace and semicolons: PostgreSQL answers EmptyQueryResponse.
    case empty

    /// How `SHUTDOWN` lets Sluice stop.
    public enum ShutdownWait: Equatable, Sendable {
        /// Plain `SHUTDOWN`: at once.
        case immediately
        /// `SHUTDOWN WAIT_FOR_SERVERS`: once every server is released, as on SIGINT.
        case forServers
        /// `SHUTDOWN WAIT_FOR_CLIENTS`: once every client has left, as on SIGTERM.
        case forClients
    }

    /// Whether the command only reads: `stats_users` may run these and nothing else.
    public var isReadOnly: Bool {
        switch self {
        case .show, .empty: true
        // A driver's connect-time SET changes nothing in Sluice; a configuration key does.
        case .set(let key, _): Self.sessionSettings.contains(key)
        default: false
        }
    }

    /// Settings drivers send on connect (psycopg2's DateStyle, JDBC's extra_float_digits, …). The console
    /// has no session to set them in; it says SET and moves on, as PgBouncer does.
    public static let sessionSettings: Set<String> = [
        "client_encoding", "datestyle", "timezone", "standard_conforming_strings", "default_transaction_isolation",
        "extra_float_digits", "application_name", "intervalstyle", "search_path", "statement_timeout",
    ]

    /// Reads one statement. Throws a message for the client when the text is not a console command.
    public static func parse(_ text: String) throws(AdminCommandError) -> AdminCommand {
        var words = AdminWords(text)
        guard let first = words.next() else { return .empty }
        let command = first.lowercased()
        let result: AdminCommand
        switch command {
        case "show", "select":
            guard let name = words.next() else { throw AdminCommandError("\(command.uppercased()) needs a name") }
            result = .show(name.lowercased())
        case "set":
            guard let key = words.next() else { throw AdminCommandError("SET needs a key and a value") }
            guard let equals = words.next(), equals == "=" || equals.lowercased() == "to" else {
                throw AdminCommandError("SET syntax: SET key = value")
            }
            var value = words.remainder
            if value.count >= 2, value.first == "'", value.last == "'" {
                value = String(value.dropFirst().dropLast()).replacingOccurrences(of: "''", with: "'")
            }
            guard !value.isEmpty else { throw AdminCommandError("SET \(key) needs a value") }
            return .set(key: key.lowercased(), value: value)
        case "reload": result = .reload
        case "pause": result = .pause(database: words.next())
        case "resume": result = .resume(database: words.next())
        case "reconnect": result = .reconnect(database: words.next())
        case "kill": result = .kill(database: words.next())
        case "wait_close": result = .waitClose(database: words.next())
        case "disable", "enable":
            guard let name = words.next() else { throw AdminCommandError("\(command.uppercased()) needs a database") }
            result = command == "disable" ? .disable(database: name) : .enable(database: name)
        case "kill_client":
            guard let word = words.next(), let id = Int(word), id > 0 else {
                throw AdminCommandError("KILL_CLIENT needs a client id (the id column of SHOW CLIENTS)")
            }
            result = .killClient(id: id)
        case "suspend": result = .suspend
        case "shutdown":
            switch words.next()?.lowercased() {
            case nil: result = .shutdown(.immediately)
            case "wait_for_servers": result = .shutdown(.forServers)
            case "wait_for_clients": result = .shutdown(.forClients)
            case let other?: throw AdminCommandError("unknown SHUTDOWN mode \(other)")
            }
        default:
            throw AdminCommandError("unknown command: \(first)")
        }
        if let extra = words.next() { throw AdminCommandError("unexpected \(extra) after \(command.uppercased())") }
        return result
    }

    /// The words of a console command: bare words (letters, digits, `_`, `.`, `-`, `*`), double-quoted
    /// identifiers, and `=`; trailing semicolons and whitespace end the text.
    struct AdminWords {
        private let scalars: [Unicode.Scalar]
        private var position = 0

        init(_ text: String) {
            var scalars = Array(text.unicodeScalars)
            while let last = scalars.last, last == ";" || last.properties.isWhitespace { scalars.removeLast() }
            self.scalars = scalars
        }

        /// Everything after the current position, trimmed.
        var remainder: String {
            var view = String.UnicodeScalarView(scalars[min(position, scalars.count)...])
            while let first = view.first, first.properties.isWhitespace { view.removeFirst() }
            return String(view)
        }

        mutating func next() -> String? {
            while position < scalars.count, scalars[position].properties.isWhitespace { position += 1 }
            guard position < scalars.count else { return nil }
            let start = position
            if scalars[position] == "\"" {
                var word = String.UnicodeScalarView()
                position += 1
                while position < scalars.count {
                    if scalars[position] == "\"" {
                        if position + 1 < scalars.count && scalars[position + 1] == "\"" {
                            word.append("\"")
                            position += 2
                            continue
                        }
                        position += 1
                        return String(word)
                    }
                    word.append(scalars[position])
                    position += 1
                }
                return String(word)
            }
            if scalars[position] == "=" {
                position += 1
                return "="
            }
            while position < scalars.count, !scalars[position].properties.isWhitespace, scalars[position] != "=" {
                position += 1
            }
            return String(String.UnicodeScalarView(scalars[start..<position]))
        }
    }
}

/// Why a console statement was not understood, worded for the operator.
public struct AdminCommandError: Error, Equatable, Sendable {
    public var message: String

    public init(_ message: String) { self.message = message }
}
