/// The client side of SCRAM-SHA-256: Sluice logging in to PostgreSQL.
///
/// A value-type state machine. The driver sends ``clientFirstMessage`` in SASLInitialResponse
/// (mechanism ``SCRAMServer/mechanism``), passes the data of AuthenticationSASLContinue to
/// ``serverFirstMessageReceived(_:)`` and sends the result in SASLResponse, then passes the data of
/// AuthenticationSASLFinal to ``serverFinalMessageReceived(_:)``. A thrown error ends the login.
///
/// Checking the server's signature matters: without it, anything that answers on the server's
/// address could accept the login and receive the client's queries.
public struct SCRAMClient: Sendable {
    /// What Sluice proves knowledge of.
    public enum Credentials: Sendable, Equatable {
        /// A cleartext password, from the auth_file, a `[databases]` entry or `DATABASE_URL`.
        case password(String)
        /// Keys recovered from a client's SCRAM proof; valid only against a server whose verifier
        /// has the same salt and iteration count.
        case passThrough(SCRAMKeys)
    }

    enum State: Sendable {
        case awaitingServerFirst
        case awaitingServerFinal(expectedServerSignature: [UInt8])
        case succeeded
        case failed
    }

    private(set) var state: State = .awaitingServerFirst
    private let credentials: Credentials
    private let clientNonce: String
    private let clientFirstBare: [UInt8]

    /// Prepares a login with `credentials`.
    ///
    /// `username` stays empty in normal use: PostgreSQL takes the user from the startup packet and
    /// libpq sends `n=` empty too. It and `clientNonce` are settable for test vectors.
    public init(credentials: Credentials, username: String = "", clientNonce: String? = nil) {
        let nonce = clientNonce ?? SCRAMAttributeReader.makeNonce()
        self.credentials = credentials
        self.clientNonce = nonce
        self.clientFirstBare = Array("n=\(Self.escapeSASLName(username)),r=\(nonce)".utf8)
    }

    /// The client-first message, `n,,n=<user>,r=<nonce>`, to send in SASLInitialResponse.
    ///
    /// `n,,`: Sluice does not bind its SCRAM exchange to its TLS session with the server (PostgreSQL
    /// accepts that; `server_tls_sslmode = verify-full` is what authenticates the server).
    public var clientFirstMessage: [UInt8] {
        Array("n,,".utf8) + clientFirstBare
    }

    /// Whether the server has proved it knows the password; AuthenticationOk before this is a
    /// server skipping the proof, and the login must be abandoned.
    public var isComplete: Bool {
        switch state {
        case .succeeded: return true
        case .awaitingServerFirst, .awaitingServerFinal, .failed: return false
        }
    }

    /// Handles the server-first message and returns the client-final message with the proof.
    public mutating func serverFirstMessageReceived(_ message: [UInt8]) throws(SCRAMError) -> [UInt8] {
        switch state {
        case .awaitingServerFirst:
            do {
                let (finalMessage, signature) = try answer(serverFirst: message)
                state = .awaitingServerFinal(expectedServerSignature: signature)
                return finalMessage
            } catch {
                state = .failed
                throw error
            }
        case .awaitingServerFinal, .succeeded, .failed:
            throw .unexpectedMessage(state: stateName)
        }
    }

    /// Handles the server-final message: succeeds only if the server proved it knows the verifier.
    public mutating func serverFinalMessageReceived(_ message: [UInt8]) throws(SCRAMError) {
        switch state {
        case .awaitingServerFinal(let expected):
            do {
                try check(serverFinal: message, expected: expected)
                state = .succeeded
            } catch {
                state = .failed
                throw error
            }
        case .awaitingServerFirst, .succeeded, .failed:
            throw .unexpectedMessage(state: stateName)
        }
    }

    private var stateName: String {
        switch state {
        case .awaitingServerFirst: return "awaitingServerFirst"
        case .awaitingServerFinal: return "awaitingServerFinal"
        case .succeeded: return "succeeded"
        case .failed: return "failed"
        }
    }

    private func answer(serverFirst message: [UInt8]) throws(SCRAMError) -> ([UInt8], [UInt8]) {
        var reader = SCRAMAttributeReader(message)
        if reader.peekName == UInt8(ascii: "m") { throw .mandatoryExtensionNotSupported }
        let nonce = try reader.expect("r", "nonce")
        guard SCRAMAttributeReader.isValidNonce(nonce) else { throw .malformedMessage("invalid nonce") }
        let ours = Array(clientNonce.utf8)
        // The server must extend our nonce; a replayed or foreign nonce means a confused peer.
        guard nonce.count > ours.count, nonce.starts(with: ours) else { throw .nonceMismatch }
        let saltText = try reader.expect("s", "salt")
        guard let salt = SCRAMAttributeReader.decodeBase64(saltText), !salt.isEmpty else {
            throw .malformedMessage("salt is not base64")
        }
        let iterationText = try reader.expect("i", "iteration count")
        guard !iterationText.isEmpty, iterationText.count <= 10,
            iterationText.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            let iterations = Int(String(decoding: iterationText, as: UTF8.self))
        else { throw .malformedMessage("iteration count is not a number") }
        guard iterations >= 1, iterations <= SCRAMVerifier.maximumIterations else { throw .iterationCountOutOfRange }
        while !reader.isAtEnd { _ = try reader.next() }

        let keys: SCRAMKeys
        switch credentials {
        case .password(let password):
            keys = SCRAMKeys.derive(password: password, salt: salt, iterations: iterations)
        case .passThrough(let recovered):
            guard recovered.salt == salt, recovered.iterations == iterations else {
                throw .passThroughParametersMismatch
            }
            keys = recovered
        }

        let withoutProof = Array("c=biws,r=".utf8) + Array(nonce)
        let authMessage = clientFirstBare + [UInt8(ascii: ",")] + message + [UInt8(ascii: ",")] + withoutProof
        let storedKey = Crypto.sha256(keys.clientKey)
        let clientSignature = Crypto.hmacSHA256(key: storedKey, data: authMessage)
        let proof = zip(keys.clientKey, clientSignature).map { $0 ^ $1 }
        let serverSignature = Crypto.hmacSHA256(key: keys.serverKey, data: authMessage)
        return (withoutProof + Array(",p=\(Crypto.base64Encode(proof))".utf8), serverSignature)
    }

    private func check(serverFinal message: [UInt8], expected: [UInt8]) throws(SCRAMError) {
        var reader = SCRAMAttributeReader(message)
        let attribute = try reader.next()
        switch attribute.name {
        case UInt8(ascii: "e"):
            throw .serverError(Self.sanitise(attribute.value))
        case UInt8(ascii: "v"):
            guard let signature = SCRAMAttributeReader.decodeBase64(attribute.value) else {
                throw .malformedMessage("server signature is not base64")
            }
            guard Crypto.constantTimeEquals(signature, expected) else { throw .serverSignatureMismatch }
        default:
            throw .malformedMessage("expected server signature")
        }
    }

    /// RFC 5802 `saslname`: `=` and `,` are escaped as `=3D` and `=2C`.
    static func escapeSASLName(_ name: String) -> String {
        var escaped = ""
        for character in name {
            switch character {
            case "=": escaped += "=3D"
            case ",": escaped += "=2C"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    private static func sanitise(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes.prefix(64).filter { $0 >= 0x20 && $0 < 0x7F }, as: UTF8.self)
    }
}
