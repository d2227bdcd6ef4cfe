/// PostgreSQL's legacy md5 password scheme, on both sides of the pooler.
///
/// The stored form is `"md5" + hex(md5(password + user))`. For `AuthenticationMD5Password` the
/// client answers with `"md5" + hex(md5(hex-part-of-stored-form + salt))`, so knowing the stored
/// hash is enough to log in: treat md5 secrets as password equivalents.
public enum MD5Password {
    /// The prefix PostgreSQL puts in front of every md5 hash and md5 response.
    public static let prefix = "md5"

    /// The `pg_authid`/auth_file form of `password` for `user`.
    public static func storedHash(password: String, user: String) -> String {
        prefix + Crypto.md5Hex(Array(password.utf8) + Array(user.utf8))
    }

    /// What a client puts in its PasswordMessage after `AuthenticationMD5Password` with `salt`.
    ///
    /// `storedHash` is the `md5…` form; its hex digits are hashed as text, exactly as stored.
    public static func response(storedHash: String, salt: [UInt8]) -> String {
        let hexPart = storedHash.hasPrefix(prefix) ? String(storedHash.dropFirst(prefix.count)) : storedHash
        return prefix + Crypto.md5Hex(Array(hexPart.utf8) + salt)
    }

    /// Whether `text` has the shape of a stored md5 hash: `md5` followed by 32 hex digits.
    public static func isStoredHash(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count == 35, text.hasPrefix(prefix) else { return false }
        return bytes.dropFirst(3).allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x66) || (byte >= 0x41 && byte <= 0x46)
        }
    }

    /// Checks a client's md5 `response` against the secret Sluice holds for `user`.
    ///
    /// A plain secret is hashed on the fly; an md5 secret is used as is. A SCRAM verifier cannot
    /// answer an md5 challenge (it does not contain the md5 hash), so it never matches, and neither
    /// does an empty password, which PostgreSQL also refuses.
    public static func verify(response: String, secret: StoredSecret, user: String, salt: [UInt8]) -> Bool {
        let stored: String
        switch secret {
        case .plain(let password):
            if password.isEmpty { return false }
            stored = Self.storedHash(password: password, user: user)
        case .md5(let hash):
            stored = hash
        case .scram:
            return false
        }
        let expected = Self.response(storedHash: stored, salt: salt)
        return Crypto.constantTimeEquals(Array(expected.utf8), Array(response.utf8))
    }
}
