/// How Sluice checks a client's identity, chosen from `auth_type` and the user's stored secret.
public enum ClientAuthMethod: Equatable, Sendable {
    case trust
    case cleartext
    case md5
    case scram
}

/// One client's authentication exchange, from the first request Sluice sends to the verdict.
/// A value type: the connection feeds it the body of each PasswordMessage / SASL message.
public struct ClientAuthentication: Sendable {
    public enum Step: Equatable, Sendable {
        /// Wait for the client's next message.
        case `continue`
        case accepted
        case rejected(ErrorFields)
    }

    private enum Phase: Sendable {
        case notStarted
        case cleartext
        case md5(salt: [UInt8])
        case scramInitial(SCRAMServer)
        case scramFinal(SCRAMServer)
        case done
    }

    public let user: String
    public let method: ClientAuthMethod
    /// Nil for a user Sluice does not know: the exchange runs to the end and then fails, so that
    /// probing cannot tell unknown users from wrong passwords.
    public let secret: StoredSecret?
    private var phase = Phase.notStarted
    private let mockSecret: [UInt8]
    /// The keys a successful SCRAM client proved, usable to log in to PostgreSQL by pass-through.
    public private(set) var provenKeys: SCRAMKeys?

    public init(user: String, method: ClientAuthMethod, secret: StoredSecret?, mockSecret: [UInt8]) {
        self.user = user
        self.method = method
        self.secret = secret
        self.mockSecret = mockSecret
    }

    /// Writes the first authentication request, or decides at once (trust).
    public mutating func start(output: inout ByteBuffer) -> Step {
        switch method {
        case .trust:
            phase = .done
            return .accepted
        case .cleartext:
            phase = .cleartext
            output.writeAuthenticationCleartextPassword()
        case .md5:
            let salt = Crypto.randomBytes(count: 4)
            phase = .md5(salt: salt)
            output.writeAuthenticationMD5Password(salt: salt)
        case .scram:
            let server: SCRAMServer
            if let secret, let s = SCRAMServer(secret: secret) {
                server = s
            } else {
                server = SCRAMServer.mock(user: user, systemSecret: mockSecret)
            }
            phase = .scramInitial(server)
            output.writeAuthenticationSASL(mechanisms: [SCRAMServer.mechanism])
        }
        return .continue
    }

    public mutating func messageReceived(_ body: ArraySlice<UInt8>, output: inout ByteBuffer) -> Step {
        do {
            return try handle(body, output: &output)
        } catch let violation as ProtocolViolation {
            phase = .done
            return .rejected(.fatal(.protocolViolation, "invalid authentication message: \(violation)"))
        } catch let error as SCRAMError {
            phase = .done
            if case .invalidProof = error { return .rejected(passwordFailed) }
            return .rejected(.fatal(.protocolViolation, "SCRAM authentication failed: \(error)"))
        } catch {
            phase = .done
            return .rejected(passwordFailed)
        }
    }

    private mutating func handle(_ body: ArraySlice<UInt8>, output: inout ByteBuffer) throws -> Step {
        var reader = PayloadReader(body)
        switch phase {
        case .notStarted, .done:
            throw ProtocolViolation("unexpected authentication message")
        case .cleartext:
            let password = try reader.readCString()
            try reader.finish()
            phase = .done
            guard let secret, !password.isEmpty, secret.verifyCleartext(password: password, user: user) else {
                return .rejected(passwordFailed)
            }
            return .accepted
        case .md5(let salt):
            let response = try reader.readCString()
            try reader.finish()
            phase = .done
            guard let secret, MD5Password.verify(response: response, secret: secret, user: user, salt: salt) else {
                return .rejected(passwordFailed)
            }
            return .accepted
        case .scramInitial(var server):
            let mechanism = try reader.readCString()
            guard mechanism == SCRAMServer.mechanism else {
                throw ProtocolViolation("client selected an invalid SASL authentication mechanism")
            }
            let length = try reader.readInt32()
            guard length >= 0 else { throw ProtocolViolation("SASLInitialResponse without data") }
            let data = Array(try reader.readBytes(Int(length)))
            try reader.finish()
            let serverFirst = try server.clientFirstMessageReceived(data)
            phase = .scramFinal(server)
            output.writeAuthenticationSASLContinue(serverFirst)
            return .continue
        case .scramFinal(var server):
            let data = Array(reader.readRest())
            let success = try server.clientFinalMessageReceived(data)
            phase = .done
            guard secret != nil else { return .rejected(passwordFailed) }
            output.writeAuthenticationSASLFinal(success.serverFinalMessage)
            if case .scram = secret { provenKeys = success.keys }
            return .accepted
        }
    }

    private var passwordFailed: ErrorFields {
        .fatal(.invalidPassword, "password authentication failed for user \"\(user)\"")
    }
}
