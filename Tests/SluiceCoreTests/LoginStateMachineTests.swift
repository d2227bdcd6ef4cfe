import Testing

@testable import SluiceCore

/// Drives Sluice's client-side and server-side login machines against each other, as a PostgreSQL
/// server and a libpq client would.
@Suite("Login state machines")
struct LoginStateMachineTests {
    /// Splits the messages an encoder wrote into (type byte, body) pairs.
    func messages(_ buffer: ByteBuffer) -> [(UInt8, ArraySlice<UInt8>)] {
        var copy = buffer
        var out: [(UInt8, ArraySlice<UInt8>)] = []
        while let header = try? MessageHeader.peek(copy, maximumLength: 1 << 20),
            copy.readableBytes >= header.totalLength
        {
            out.append((header.code, copy.bytes(at: 5, count: header.bodyLength)))
            copy.moveReaderIndex(forwardBy: header.totalLength)
        }
        return out
    }

    /// Plays the server: asks for SCRAM with `verifier`, then sends ParameterStatus, BackendKeyData and ReadyForQuery.
    func serverScram(login: inout ServerLogin, verifier: SCRAMVerifier) throws -> ServerLogin.Action {
        var server = try #require(SCRAMServer(secret: .scram(verifier)))
        var out = ByteBuffer()
        out.writeAuthenticationSASL(mechanisms: ["SCRAM-SHA-256"])
        var action = login.messageReceived(code: 0x52, body: messages(out)[0].1)
        guard case .send(let initial) = action else { return action }
        let initialBody = messages(ByteBuffer(bytes: initial))[0].1
        var reader = PayloadReader(initialBody)
        _ = try reader.readCString()
        let length = try reader.readInt32()
        let first = try server.clientFirstMessageReceived(Array(try reader.readBytes(Int(length))))
        out = ByteBuffer()
        out.writeAuthenticationSASLContinue(first)
        action = login.messageReceived(code: 0x52, body: messages(out)[0].1)
        guard case .send(let final) = action else { return action }
        let success = try server.clientFinalMessageReceived(Array(messages(ByteBuffer(bytes: final))[0].1))
        out = ByteBuffer()
        out.writeAuthenticationSASLFinal(success.serverFinalMessage)
        out.writeAuthenticationOk()
        out.writeParameterStatus(name: "server_version", value: "15.18")
        out.writeBackendKeyData(processID: 99, secretKey: 1234)
        out.writeReadyForQuery(.idle)
        for (code, body) in messages(out) {
            action = login.messageReceived(code: code, body: body)
            if case .failed = action { return action }
        }
        return action
    }

    @Test("logs in to a SCRAM server with a password")
    func scramPassword() throws {
        let verifier = SCRAMVerifier.make(password: "s3cret", salt: Array("0123456789abcdef".utf8), iterations: 4096)
        var login = ServerLogin(user: "app", credential: .password("s3cret"))
        #expect(try serverScram(login: &login, verifier: verifier) == .loggedIn)
        #expect(login.parameters.first?.name == "server_version")
        #expect(login.backendKey?.processID == 99)
    }

    @Test("logs in by pass-through with the keys a client proved to Sluice")
    func scramPassThrough() throws {
        let verifier = SCRAMVerifier.make(password: "pw", salt: Array("saltsaltsaltsalt".utf8), iterations: 4096)
        // A client proves the password to Sluice, which holds only the verifier.
        var auth = ClientAuthentication(user: "app", method: .scram, secret: .scram(verifier), mockSecret: [1])
        var toClient = ByteBuffer()
        #expect(auth.start(output: &toClient) == .continue)
        var client = SCRAMClient(credentials: .password("pw"))
        var initial = ByteBuffer()
        initial.writeSASLInitialResponse(mechanism: "SCRAM-SHA-256", data: client.clientFirstMessage)
        toClient = ByteBuffer()
        #expect(auth.messageReceived(messages(initial)[0].1, output: &toClient) == .continue)
        var reader = PayloadReader(messages(toClient)[0].1)
        _ = try reader.readUInt32()
        let proof = try client.serverFirstMessageReceived(Array(reader.readRest()))
        var response = ByteBuffer()
        response.writeSASLResponse(proof)
        toClient = ByteBuffer()
        #expect(auth.messageReceived(messages(response)[0].1, output: &toClient) == .accepted)
        let keys = try #require(auth.provenKeys)
        var login = ServerLogin(user: "app", credential: .scramKeys(keys))
        #expect(try serverScram(login: &login, verifier: verifier) == .loggedIn)
    }

    @Test("a wrong server password fails the login instead of hanging")
    func wrongPassword() throws {
        let verifier = SCRAMVerifier.make(password: "right", salt: Array("0123456789abcdef".utf8), iterations: 4096)
        var login = ServerLogin(user: "app", credential: .password("wrong"))
        #expect(throws: SCRAMError.self) { _ = try serverScram(login: &login, verifier: verifier) }
    }

    @Test("answers an md5 request from a stored md5 hash")
    func md5FromHash() {
        let hash = MD5Password.storedHash(password: "pw", user: "app")
        var login = ServerLogin(user: "app", credential: .md5Hash(hash))
        var out = ByteBuffer()
        out.writeAuthenticationMD5Password(salt: [1, 2, 3, 4])
        let action = login.messageReceived(code: 0x52, body: messages(out)[0].1)
        var expected = ByteBuffer()
        expected.writePasswordMessage(MD5Password.response(storedHash: hash, salt: [1, 2, 3, 4]))
        #expect(action == .send(Array(expected.readableView)))
    }

    @Test("a server error during login is passed on with its SQLSTATE")
    func serverError() {
        var login = ServerLogin(user: "app", credential: .password("x"))
        var out = ByteBuffer()
        out.writeErrorResponse(.fatal(.invalidCatalogName, "database \"nope\" does not exist"))
        let action = login.messageReceived(code: 0x45, body: messages(out)[0].1)
        guard case .failed(let error) = action else { Issue.record("expected failure"); return }
        #expect(error.sqlState == "3D000")
    }

    @Test("an unknown user's SCRAM exchange runs to the end and then fails with 28P01")
    func unknownUserMock() throws {
        var auth = ClientAuthentication(user: "ghost", method: .scram, secret: nil, mockSecret: [9, 9])
        var toClient = ByteBuffer()
        _ = auth.start(output: &toClient)
        var client = SCRAMClient(credentials: .password("guess"))
        var initial = ByteBuffer()
        initial.writeSASLInitialResponse(mechanism: "SCRAM-SHA-256", data: client.clientFirstMessage)
        toClient = ByteBuffer()
        #expect(auth.messageReceived(messages(initial)[0].1, output: &toClient) == .continue)
        var reader = PayloadReader(messages(toClient)[0].1)
        _ = try reader.readUInt32()
        let proof = try client.serverFirstMessageReceived(Array(reader.readRest()))
        var response = ByteBuffer()
        response.writeSASLResponse(proof)
        let step = auth.messageReceived(messages(response)[0].1, output: &toClient)
        guard case .rejected(let error) = step else { Issue.record("expected rejection"); return }
        #expect(error.sqlState == "28P01")
    }

    @Test("md5 client authentication accepts the right password and rejects a wrong one")
    func md5Client() {
        for (password, expected) in [("pw", true), ("nope", false)] {
            var auth = ClientAuthentication(user: "app", method: .md5, secret: .plain("pw"), mockSecret: [])
            var toClient = ByteBuffer()
            _ = auth.start(output: &toClient)
            let body = messages(toClient)[0].1
            let salt = Array(body.dropFirst(4))
            var reply = ByteBuffer()
            reply.writePasswordMessage(
                MD5Password.response(storedHash: MD5Password.storedHash(password: password, user: "app"), salt: salt))
            let step = auth.messageReceived(messages(reply)[0].1, output: &toClient)
            #expect((step == .accepted) == expected)
        }
    }
}
