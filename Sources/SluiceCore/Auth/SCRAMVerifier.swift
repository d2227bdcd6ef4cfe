/// A SCRAM-SHA-256 secret in the form PostgreSQL stores in `pg_authid` and PgBouncer reads from
/// its auth_file (RFC 5803): `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, with the
/// salt and both keys in base64.
///
/// A verifier lets Sluice check a client's SCRAM proof but not compute one: logging in to a server
/// with it needs the ClientKey recovered from a client's proof (see ``SCRAMServer``).
/// Its `description` hides the keys, so a log line that prints a config does not leak them.
public struct SCRAMVerifier: Sendable, Equatable, CustomStringConvertible {
    /// The scheme tag that opens every stored SCRAM-SHA-256 secret.
    public static let prefix = "SCRAM-SHA-256$"

    /// PostgreSQL's default and RFC 7677's minimum iteration count.
    public static let defaultIterations = 4096

    /// Largest iteration count Sluice accepts anywhere: beyond this one login costs seconds of
    /// CPU, which is a denial of service rather than a security setting.
    public static let maximumIterations = 10_000_000

    /// PBKDF2 iteration count.
    public var iterations: Int
    /// The salt, any non-empty length (PostgreSQL uses 16 bytes).
    public var salt: [UInt8]
    /// `SHA-256(ClientKey)`: checks a client proof without revealing ClientKey.
    public var storedKey: [UInt8]
    /// `HMAC(SaltedPassword, "Server Key")`: signs the server-final message.
    public var serverKey: [UInt8]

    /// A verifier from its parts, as found in a parsed secret.
    public init(iterations: Int, salt: [UInt8], storedKey: [UInt8], serverKey: [UInt8]) {
        self.iterations = iterations
        self.salt = salt
        self.storedKey = storedKey
        self.serverKey = serverKey
    }

    /// Parses the RFC 5803 text form; nil when any part is missing, not base64, or out of range.
    public static func parse(_ text: String) -> SCRAMVerifier? {
        guard text.hasPrefix(prefix) else { return nil }
        let body = text.dropFirst(prefix.count)
        let halves = body.split(separator: "$", omittingEmptySubsequences: false)
        guard halves.count == 2 else { return nil }
        let parameters = halves[0].split(separator: ":", omittingEmptySubsequences: false)
        let keys = halves[1].split(separator: ":", omittingEmptySubsequences: false)
        guard parameters.count == 2, keys.count == 2 else { return nil }
        guard parameters[0].allSatisfy({ $0.isASCII && $0.isNumber }),
            let iterations = Int(parameters[0]), iterations >= 1, iterations <= maximumIterations,
            let salt = Crypto.base64Decode(String(parameters[1])), !salt.isEmpty,
            let storedKey = Crypto.base64Decode(String(keys[0])), storedKey.count == Crypto.sha256Length,
            let serverKey = Crypto.base64Decode(String(keys[1])), serverKey.count == Crypto.sha256Length
        else { return nil }
        return SCRAMVerifier(iterations: iterations, salt: salt, storedKey: storedKey, serverKey: serverKey)
    }

    /// Names the iteration count only; the salt and keys stay out of logs.
    public var description: String { "SCRAMVerifier(iterations: \(iterations), keys redacted)" }

    /// The RFC 5803 text form, suitable for an auth_file or `ALTER ROLE … PASSWORD`.
    public func render() -> String {
        Self.prefix + "\(iterations):\(Crypto.base64Encode(salt))$"
            + "\(Crypto.base64Encode(storedKey)):\(Crypto.base64Encode(serverKey))"
    }

    /// Derives the verifier PostgreSQL would store for `password` with this salt and iteration count.
    ///
    /// The password goes through ``SASLprep/prepare(_:)`` first, as PostgreSQL does.
    public static func make(password: String, salt: [UInt8], iterations: Int) -> SCRAMVerifier {
        let keys = SCRAMKeys.derive(password: password, salt: salt, iterations: iterations)
        return SCRAMVerifier(
            iterations: iterations, salt: salt, storedKey: Crypto.sha256(keys.clientKey), serverKey: keys.serverKey)
    }

    /// A verifier for `password` with a fresh random 16-byte salt.
    public static func make(password: String, iterations: Int = defaultIterations) -> SCRAMVerifier {
        make(password: password, salt: Crypto.randomBytes(count: 16), iterations: iterations)
    }
}

/// The client-side keys of a SCRAM-SHA-256 secret, together with the salt and iteration count
/// they were derived with.
///
/// Holding these is equivalent to holding the password for any server whose verifier has the same
/// salt and iteration count, which is what makes pass-through login possible: Sluice recovers
/// ClientKey from a client's proof and replays the exchange towards PostgreSQL.
public struct SCRAMKeys: Sendable, Equatable, CustomStringConvertible {
    /// `HMAC(SaltedPassword, "Client Key")`.
    public var clientKey: [UInt8]
    /// `HMAC(SaltedPassword, "Server Key")`.
    public var serverKey: [UInt8]
    /// The salt the keys were derived with.
    public var salt: [UInt8]
    /// The iteration count the keys were derived with.
    public var iterations: Int

    /// Keys from their parts.
    public init(clientKey: [UInt8], serverKey: [UInt8], salt: [UInt8], iterations: Int) {
        self.clientKey = clientKey
        self.serverKey = serverKey
        self.salt = salt
        self.iterations = iterations
    }

    /// Keeps the keys, which are password equivalents, out of logs.
    public var description: String { "SCRAMKeys(iterations: \(iterations), keys redacted)" }

    /// Runs PBKDF2 over the SASLprep'd password and splits the result into the two keys.
    public static func derive(password: String, salt: [UInt8], iterations: Int) -> SCRAMKeys {
        let salted = Crypto.pbkdf2SHA256(password: SASLprep.prepare(password), salt: salt, iterations: iterations)
        return SCRAMKeys(
            clientKey: Crypto.hmacSHA256(key: salted, data: Array("Client Key".utf8)),
            serverKey: Crypto.hmacSHA256(key: salted, data: Array("Server Key".utf8)),
            salt: salt,
            iterations: iterations)
    }
}
