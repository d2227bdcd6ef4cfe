/// A user's secret as Sluice holds it: read from the auth_file or taken from `DATABASE_URL`.
///
/// The kind decides which client authentication methods can be checked and how Sluice can log in
/// to PostgreSQL on the user's behalf: a plain password works everywhere, an md5 hash only for md5
/// and cleartext methods, a SCRAM verifier only for SCRAM (and for the server login only through
/// pass-through of the client's proof).
public enum StoredSecret: Sendable, Equatable, CustomStringConvertible {
    /// A cleartext password.
    case plain(String)
    /// `md5` followed by 32 hex digits: `md5(password + user)`.
    case md5(String)
    /// An RFC 5803 SCRAM-SHA-256 verifier.
    case scram(SCRAMVerifier)

    /// Classifies an auth_file secret the way PgBouncer does: `md5` + 32 hex digits is an md5 hash,
    /// `SCRAM-SHA-256$…` a verifier, anything else a cleartext password.
    ///
    /// Returns nil for text that starts like a SCRAM verifier but does not parse; PgBouncer would
    /// quietly take it as a cleartext password, which is never what the operator meant.
    public static func parse(_ text: String) -> StoredSecret? {
        if text.hasPrefix(SCRAMVerifier.prefix) {
            return SCRAMVerifier.parse(text).map { .scram($0) }
        }
        if MD5Password.isStoredHash(text) {
            // Clients always hash to lowercase hex, so an uppercase file entry could never match.
            return .md5(text.lowercased())
        }
        return .plain(text)
    }

    /// Names the kind only; the secret itself never reaches a log.
    public var description: String {
        switch self {
        case .plain: return "plain(redacted)"
        case .md5: return "md5(redacted)"
        case .scram(let verifier): return "scram(\(verifier))"
        }
    }

    /// Whether this secret can check a SCRAM exchange (an md5 hash cannot).
    public var supportsSCRAM: Bool {
        switch self {
        case .plain, .scram: return true
        case .md5: return false
        }
    }

    /// Checks a cleartext password sent by a client (auth_type `plain`) against this secret.
    ///
    /// An md5 secret is compared by hashing the candidate with `user`; a SCRAM secret by deriving
    /// keys with the verifier's own salt and iteration count. Empty passwords never match.
    public func verifyCleartext(password: String, user: String) -> Bool {
        if password.isEmpty { return false }
        switch self {
        case .plain(let stored):
            if stored.isEmpty { return false }
            return Crypto.constantTimeEquals(Array(stored.utf8), Array(password.utf8))
        case .md5(let hash):
            let candidate = MD5Password.storedHash(password: password, user: user)
            return Crypto.constantTimeEquals(Array(candidate.utf8), Array(hash.utf8))
        case .scram(let verifier):
            let candidate = SCRAMVerifier.make(
                password: password, salt: verifier.salt, iterations: verifier.iterations)
            return Crypto.constantTimeEquals(candidate.storedKey, verifier.storedKey)
                && Crypto.constantTimeEquals(candidate.serverKey, verifier.serverKey)
        }
    }
}
