/// What Sluice presents to PostgreSQL when it logs in on behalf of a pool.
public enum ServerCredential: Sendable, Equatable {
    /// No secret known: only works against `trust`.
    case none
    case password(String)
    /// PgBouncer-style `md5…` hash: enough for md5 authentication, not for SCRAM or cleartext.
    case md5Hash(String)
    /// Keys a client proved to Sluice by SCRAM: enough for SCRAM when the server's salt and iteration
    /// count match the verifier the keys came from.
    case scramKeys(SCRAMKeys)
}

/// Logs in to a PostgreSQL server: Startup, then whatever authentication the server asks for, then
/// ParameterStatus and BackendKeyData until the first ReadyForQuery. A value type driven by the bytes of
/// each message; the driver sends what it returns.
public struct ServerLogin {
    public enum Action: Equatable {
        case send([UInt8])
        case none
        case loggedIn
        case failed(ErrorFields)
    }

    private enum State {
        case awaitingAuthentication
        case scram(SCRAMClient)
        case awaitingReady
        case done
        case failed
    }

    public let user: String
    public let credential: ServerCredential
    private var state: State = .awaitingAuthentication
    /// ParameterStatus values in the order the server sent them.
    public private(set) var parameters: [(name: String, value: String)] = []
    public private(set) var backendKey: (processID: Int32, secretKey: Int32)?

    public init(user: String, credential: ServerCredential) {
        self.user = user
        self.credential = credential
    }

    /// The StartupMessage to send once connected.
    public static func startupMessage(user: String, database: String, parameters: [(String, String)]) -> [UInt8] {
        var buffer = ByteBuffer(capacity: 128)
        buffer.writeStartupMessage(parameters: [("user", user), ("database", database)] + parameters)
        return Array(buffer.readableView)
    }

    public mutating func messageReceived(code: UInt8, body: ArraySlice<UInt8>) -> Action {
        do {
            return try handle(code: code, body: body)
        } catch let violation as ProtocolViolation {
            state = .failed
            return .failed(.fatal(.protocolViolation, "server sent a malformed login message: \(violation)"))
        } catch let error as SCRAMError {
            state = .failed
            return .failed(.fatal(.invalidPassword, "SCRAM authentication with the server failed: \(error)"))
        } catch {
            state = .failed
            return .failed(.fatal(.internalError, "server login failed: \(error)"))
        }
    }

    private mutating func handle(code: UInt8, body: ArraySlice<UInt8>) throws -> Action {
        switch BackendMessageCode(rawValue: code) {
        case .errorResponse:
            state = .failed
            return .failed(try ErrorFields(decoding: body))
        case .noticeResponse:
            return .none
        case .authentication:
            return try authenticationReceived(body)
        case .parameterStatus:
            var reader = PayloadReader(body)
            let name = try reader.readCString()
            let value = try reader.readCString()
            try reader.finish()
            if let i = parameters.firstIndex(where: { $0.name == name }) {
                parameters[i].value = value
            } else {
                parameters.append((name, value))
            }
            return .none
        case .backendKeyData:
            var reader = PayloadReader(body)
            let pid = try reader.readInt32()
            let key = try reader.readInt32()
            try reader.finish()
            backendKey = (pid, key)
            return .none
        case .negotiateProtocolVersion:
            // Sluice asks for 3.0 and no protocol options, so a server has nothing to negotiate down.
            return .none
        case .readyForQuery:
            guard case .awaitingReady = state else { throw ProtocolViolation("ReadyForQuery before authentication") }
            state = .done
            return .loggedIn
        default:
            throw ProtocolViolation("unexpected message '\(Character(UnicodeScalar(code)))' during login")
        }
    }

    private mutating func authenticationReceived(_ body: ArraySlice<UInt8>) throws -> Action {
        var reader = PayloadReader(body)
        let request = try reader.readUInt32()
        switch request {
        case 0:  // AuthenticationOk
            try reader.finish()
            if case .scram(let client) = state, !client.isComplete {
                throw ProtocolViolation("server accepted SCRAM login before proving it knows the password")
            }
            state = .awaitingReady
            return .none
        case 3:  // AuthenticationCleartextPassword
            guard case .password(let password) = credential else {
                return .failed(missingSecret("cleartext password"))
            }
            var out = ByteBuffer(capacity: 64)
            out.writePasswordMessage(password)
            return .send(Array(out.readableView))
        case 5:  // AuthenticationMD5Password
            let salt = Array(try reader.readBytes(4))
            try reader.finish()
            let stored: String
            switch credential {
            case .password(let password): stored = MD5Password.storedHash(password: password, user: user)
            case .md5Hash(let hash): stored = hash
            case .none, .scramKeys: return .failed(missingSecret("md5"))
            }
            var out = ByteBuffer(capacity: 64)
            out.writePasswordMessage(MD5Password.response(storedHash: stored, salt: salt))
            return .send(Array(out.readableView))
        case 10:  // AuthenticationSASL: a list of mechanisms
            var mechanisms: [String] = []
            while true {
                let name = try reader.readCString()
                if name.isEmpty { break }
                mechanisms.append(name)
            }
            guard mechanisms.contains("SCRAM-SHA-256") else {
                return .failed(.fatal(.featureNotSupported, "server offers no supported SASL mechanism: \(mechanisms)"))
            }
            let client: SCRAMClient
            switch credential {
            case .password(let password): client = SCRAMClient(credentials: .password(password))
            case .scramKeys(let keys): client = SCRAMClient(credentials: .passThrough(keys))
            case .none, .md5Hash: return .failed(missingSecret("SCRAM-SHA-256"))
            }
            let first = client.clientFirstMessage
            state = .scram(client)
            var out = ByteBuffer(capacity: 96)
            out.writeSASLInitialResponse(mechanism: "SCRAM-SHA-256", data: first)
            return .send(Array(out.readableView))
        case 11:  // AuthenticationSASLContinue
            guard case .scram(var client) = state else { throw ProtocolViolation("SASLContinue without SASL") }
            let reply = try client.serverFirstMessageReceived(Array(reader.readRest()))
            state = .scram(client)
            var out = ByteBuffer(capacity: 160)
            out.writeSASLResponse(reply)
            return .send(Array(out.readableView))
        case 12:  // AuthenticationSASLFinal
            guard case .scram(var client) = state else { throw ProtocolViolation("SASLFinal without SASL") }
            try client.serverFinalMessageReceived(Array(reader.readRest()))
            state = .scram(client)
            return .none
        default:
            return .failed(
                .fatal(
                    .featureNotSupported,
                    "server asks for an authentication method Sluice does not support (\(request))"))
        }
    }

    private func missingSecret(_ method: String) -> ErrorFields {
        .fatal(
            .invalidPassword,
            "server requests \(method) authentication for user \"\(user)\" but Sluice holds no usable secret",
            hint: "put the user's password in auth_file or the database entry")
    }
}
