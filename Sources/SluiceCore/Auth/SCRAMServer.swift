/// The server side of SCRAM-SHA-256 (RFC 5802, RFC 7677): Sluice checking a client's password.
///
/// A value-type state machine. The driver feeds it the client-first message (the data of
/// SASLInitialResponse), sends back the returned server-first message in AuthenticationSASLContinue,
/// feeds it the client-final message (SASLResponse), and on success sends the server-final message
/// in AuthenticationSASLFinal. Any thrown error ends the exchange; the driver then answers with an
/// ErrorResponse (SQLSTATE 28P01 for ``SCRAMError/invalidProof``, 08P01 for protocol errors).
///
/// On success the recovered ClientKey and the ServerKey are returned so the proxy can log in to
/// PostgreSQL by pass-through when the server holds the same verifier.
///
/// As in PostgreSQL, the username inside the client-first message is ignored: the startup packet
/// already named the user. Channel binding (`p=`) is refused because the client's TLS ends at Sluice
/// and no binding could hold across it, so only `SCRAM-SHA-256` (never `-PLUS`) is advertised, which
/// makes the `y` flag harmless.
public struct SCRAMServer: Sendable {
    /// The SASL mechanism name to advertise in AuthenticationSASL.
    public static let mechanism = "SCRAM-SHA-256"

    /// What a successful exchange yields.
    public struct Success: Sendable, Equatable {
        /// `v=<ServerSignature>`, for AuthenticationSASLFinal.
        public var serverFinalMessage: [UInt8]
        /// ClientKey recovered from the proof, the verifier's ServerKey, salt and iteration count.
        ///
        /// These match PostgreSQL's only when the server stores the same verifier; for a plain
        /// auth_file password the salt is random and the password itself should be used instead.
        public var keys: SCRAMKeys
    }

    enum State: Sendable {
        case awaitingClientFirst
        case awaitingClientFinal(Exchange)
        case succeeded
        case failed
    }

    struct Exchange: Sendable {
        var gs2Header: [UInt8]
        var clientFirstBare: [UInt8]
        var serverFirst: [UInt8]
        var combinedNonce: [UInt8]
    }

    private(set) var state: State = .awaitingClientFirst
    private let verifier: SCRAMVerifier
    private let serverNonce: String

    /// Prepares an exchange for a user whose secret is `secret`.
    ///
    /// Returns nil for an md5 secret, which cannot check a SCRAM proof (the caller falls back to md5
    /// authentication), and for an empty password, which must never authenticate anyone.
    ///
    /// A plain password gets a verifier with a fresh random salt, costing one PBKDF2 run of
    /// `iterations` rounds per login. `serverNonce` and `salt` exist for test vectors only.
    public init?(
        secret: StoredSecret, iterations: Int = SCRAMVerifier.defaultIterations, serverNonce: String? = nil,
        salt: [UInt8]? = nil
    ) {
        switch secret {
        case .plain(let password):
            // An empty password would make every client with an empty password a valid one.
            if password.isEmpty { return nil }
            let salt = salt ?? Crypto.randomBytes(count: 16)
            verifier = SCRAMVerifier.make(password: password, salt: salt, iterations: iterations)
        case .scram(let stored):
            verifier = stored
        case .md5:
            return nil
        }
        self.serverNonce = serverNonce ?? SCRAMAttributeReader.makeNonce()
    }

    /// An exchange that always fails at the proof, for users that do not exist.
    ///
    /// Like PostgreSQL's mock authentication, it presents a salt derived from `user` and
    /// `systemSecret` (a per-process random value), so that probing reveals nothing: the same
    /// unknown user always sees the same salt, just as a real one would.
    public static func mock(user: String, systemSecret: [UInt8]) -> SCRAMServer {
        let salt = Array(Crypto.hmacSHA256(key: systemSecret, data: Array(user.utf8)).prefix(16))
        // Random keys: no proof can hash to a StoredKey nobody knows the preimage of.
        let verifier = SCRAMVerifier(
            iterations: SCRAMVerifier.defaultIterations, salt: salt,
            storedKey: Crypto.randomBytes(count: Crypto.sha256Length),
            serverKey: Crypto.randomBytes(count: Crypto.sha256Length))
        return SCRAMServer(secret: .scram(verifier))!
    }

    /// Handles the client-first message and returns the server-first message to send.
    public mutating func clientFirstMessageReceived(_ message: [UInt8]) throws(SCRAMError) -> [UInt8] {
        switch state {
        case .awaitingClientFirst:
            do {
                let exchange = try makeExchange(clientFirst: message)
                state = .awaitingClientFinal(exchange)
                return exchange.serverFirst
            } catch {
                state = .failed
                throw error
            }
        case .awaitingClientFinal, .succeeded, .failed:
            throw .unexpectedMessage(state: stateName)
        }
    }

    /// Handles the client-final message: checks the nonce and the proof.
    public mutating func clientFinalMessageReceived(_ message: [UInt8]) throws(SCRAMError) -> Success {
        switch state {
        case .awaitingClientFinal(let exchange):
            do {
                let success = try verify(clientFinal: message, exchange: exchange)
                state = .succeeded
                return success
            } catch {
                state = .failed
                throw error
            }
        case .awaitingClientFirst, .succeeded, .failed:
            throw .unexpectedMessage(state: stateName)
        }
    }

    private var stateName: String {
        switch state {
        case .awaitingClientFirst: return "awaitingClientFirst"
        case .awaitingClientFinal: return "awaitingClientFinal"
        case .succeeded: return "succeeded"
        case .failed: return "failed"
        }
    }

    private func makeExchange(clientFirst message: [UInt8]) throws(SCRAMError) -> Exchange {
        // gs2-header: cbind-flag "," [authzid] ","
        guard let flag = message.first else { throw .malformedMessage("empty client-first-message") }
        var index = 1
        switch flag {
        case UInt8(ascii: "n"), UInt8(ascii: "y"):
            break
        case UInt8(ascii: "p"):
            throw .channelBindingNotSupported
        default:
            throw .malformedMessage("unexpected channel binding flag")
        }
        guard index < message.count, message[index] == UInt8(ascii: ",") else {
            throw .malformedMessage("comma expected after channel binding flag")
        }
        index += 1
        if index + 1 < message.count, message[index] == UInt8(ascii: "a"), message[index + 1] == UInt8(ascii: "=") {
            throw .authorizationIdentityNotSupported
        }
        guard index < message.count, message[index] == UInt8(ascii: ",") else {
            throw .malformedMessage("comma expected after authorization identity")
        }
        index += 1
        let gs2Header = Array(message[0..<index])

        var reader = SCRAMAttributeReader(message, from: index)
        if reader.peekName == UInt8(ascii: "m") { throw .mandatoryExtensionNotSupported }
        // The username is ignored, as PostgreSQL does: the startup packet is authoritative.
        _ = try reader.expect("n", "username")
        let clientNonce = try reader.expect("r", "nonce")
        guard SCRAMAttributeReader.isValidNonce(clientNonce) else { throw .malformedMessage("invalid nonce") }
        // Optional extensions may follow; none is understood, and RFC 5802 says to ignore them.
        while !reader.isAtEnd { _ = try reader.next() }

        let combinedNonce = Array(clientNonce) + Array(serverNonce.utf8)
        let serverFirst =
            Array("r=".utf8) + combinedNonce
            + Array(",s=\(Crypto.base64Encode(verifier.salt)),i=\(verifier.iterations)".utf8)
        return Exchange(
            gs2Header: gs2Header, clientFirstBare: Array(message[index...]), serverFirst: serverFirst,
            combinedNonce: combinedNonce)
    }

    private func verify(clientFinal message: [UInt8], exchange: Exchange) throws(SCRAMError) -> Success {
        var reader = SCRAMAttributeReader(message)
        let binding = try reader.expect("c", "channel binding")
        // Without channel binding the attribute is just the gs2 header again ("biws" for "n,,").
        guard let decoded = SCRAMAttributeReader.decodeBase64(binding), decoded == exchange.gs2Header else {
            throw .malformedMessage("channel binding does not match the client-first-message")
        }
        let nonce = try reader.expect("r", "nonce")
        guard Array(nonce) == exchange.combinedNonce else { throw .nonceMismatch }

        var proofStart = 0
        var proof: [UInt8]?
        while !reader.isAtEnd {
            let attributeStart = reader.position
            let attribute = try reader.next()
            if attribute.name == UInt8(ascii: "p") {
                guard reader.isAtEnd else { throw .malformedMessage("proof must be the last attribute") }
                proofStart = attributeStart
                proof = SCRAMAttributeReader.decodeBase64(attribute.value)
                guard proof != nil else { throw .malformedMessage("proof is not base64") }
            }
        }
        guard let proof, proof.count == Crypto.sha256Length else { throw .malformedMessage("missing or short proof") }
        // proofStart points at "p=", so the comma before it is excluded from the signed part.
        let withoutProof = message[0..<(proofStart - 1)]

        let authMessage =
            exchange.clientFirstBare + [UInt8(ascii: ",")] + exchange.serverFirst + [UInt8(ascii: ",")]
            + withoutProof
        let clientSignature = Crypto.hmacSHA256(key: verifier.storedKey, data: authMessage)
        let clientKey = zip(proof, clientSignature).map { $0 ^ $1 }
        guard Crypto.constantTimeEquals(Crypto.sha256(clientKey), verifier.storedKey) else { throw .invalidProof }

        let serverSignature = Crypto.hmacSHA256(key: verifier.serverKey, data: authMessage)
        return Success(
            serverFinalMessage: Array("v=\(Crypto.base64Encode(serverSignature))".utf8),
            keys: SCRAMKeys(
                clientKey: clientKey, serverKey: verifier.serverKey, salt: verifier.salt,
                iterations: verifier.iterations))
    }
}
