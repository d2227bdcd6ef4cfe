/// Looking up users the auth_file does not list in PostgreSQL itself (`auth_user`, `auth_query`).
public enum AuthQuery {
    /// `query` with every `$1` (not followed by another digit) replaced by `user` as an escaped string
    /// literal. An `E''` literal means the same whatever the session's `standard_conforming_strings`.
    public static func text(_ query: String, user: String) -> String {
        var literal = "E'"
        for character in user {
            switch character {
            case "'": literal += "''"
            case "\\": literal += "\\\\"
            default: literal.append(character)
            }
        }
        literal += "'"
        var result = ""
        var characters = Array(query)[...]
        while let character = characters.popFirst() {
            if character == "$", characters.first == "1", !(characters.dropFirst().first?.isNumber ?? false) {
                characters = characters.dropFirst()
                result += literal
            } else {
                result.append(character)
            }
        }
        return result
    }

    /// The user's secret from the query's rows (user name, secret): nil when no row came (no such user),
    /// or the secret is NULL or empty (PgBouncer's query gives NULL for a role past `rolvaliduntil`).
    public static func secret(from rows: [[String?]]) -> StoredSecret? {
        guard let row = rows.first, row.count >= 2, let text = row[1], !text.isEmpty else { return nil }
        return StoredSecret.parse(text)
    }
}

/// Answers of `auth_query`, kept for `auth_query_cache_ttl` seconds so that a storm of logins does not
/// become a storm of queries. Unknown users are remembered too, so that guessing names costs no query
/// each. Bounded: past `capacity`, stale answers go first, then the oldest (`Dictionary.evict`).
public struct AuthQueryCache: Sendable {
    public struct Key: Hashable, Sendable {
        /// The database the query runs in (auth_dbname, or the client's).
        public var database: String
        public var user: String

        public init(database: String, user: String) {
            self.database = database
            self.user = user
        }
    }

    struct Entry: Sendable {
        var secret: StoredSecret?
        var fetchedAt: Double
    }

    public var ttl: Double
    public var capacity: Int
    private(set) var entries: [Key: Entry] = [:]

    public init(ttl: Double, capacity: Int = 10_000) {
        self.ttl = ttl
        self.capacity = capacity
    }

    /// The fresh answer for `key`: `.some(nil)` for a user the query did not find, nil when none is fresh.
    public func lookup(_ key: Key, now: Double) -> StoredSecret?? {
        guard let entry = entries[key], now - entry.fetchedAt < ttl else { return nil }
        return .some(entry.secret)
    }

    public mutating func store(_ secret: StoredSecret?, for key: Key, now: Double) {
        guard ttl > 0 else { return }
        entries[key] = Entry(secret: secret, fetchedAt: now)
        let ttl = ttl
        entries.evict(beyond: capacity, isStale: { now - $0.fetchedAt >= ttl }, since: \.fetchedAt)
    }

    public mutating func removeAll() {
        entries = [:]
    }
}

extension AuthQuery {
    /// PgBouncer's default `auth_query`: a role that may not log in, or is past `rolvaliduntil`, has no secret.
    public static let pgbouncerDefault =
        "SELECT rolname, CASE WHEN rolvaliduntil < now() THEN NULL ELSE rolpassword END FROM pg_authid "
        + "WHERE rolname=$1 AND rolcanlogin"
}
