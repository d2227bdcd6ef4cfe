import Testing

@testable import SluiceCore

/// RFC 7677 section 3's example exchange.
enum RFC7677 {
    static let clientNonce = "rOprNGfwEbeRWgbNEkqO"
    static let serverNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    static let salt = Crypto.base64Decode("W22ZaJ0SNY7soEsUEjb6gQ==")!
    static let clientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    static let serverFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    static let clientFinal =
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    static let serverFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
}

func scramMessage(_ text: String) -> [UInt8] { Array(text.utf8) }

/// Runs a full exchange between the two state machines and returns the server's result.
func runExchange(client: inout SCRAMClient, server: inout SCRAMServer) throws -> SCRAMServer.Success {
    let serverFirst = try server.clientFirstMessageReceived(client.clientFirstMessage)
    let clientFinal = try client.serverFirstMessageReceived(serverFirst)
    let success = try server.clientFinalMessageReceived(clientFinal)
    try client.serverFinalMessageReceived(success.serverFinalMessage)
    return success
}

@Suite("SCRAM-SHA-256")
struct AuthSCRAMTests {
    @Test("client reproduces the RFC 7677 exchange")
    func clientVector() throws {
        var client = SCRAMClient(credentials: .password("pencil"), username: "user", clientNonce: RFC7677.clientNonce)
        #expect(client.clientFirstMessage == scramMessage(RFC7677.clientFirst))
        let final = try client.serverFirstMessageReceived(scramMessage(RFC7677.serverFirst))
        #expect(String(decoding: final, as: UTF8.self) == RFC7677.clientFinal)
        #expect(!client.isComplete)
        try client.serverFinalMessageReceived(scramMessage(RFC7677.serverFinal))
        #expect(client.isComplete)
    }

    @Test("server reproduces the RFC 7677 exchange from a plain password")
    func serverVector() throws {
        var server = try #require(
            SCRAMServer(secret: .plain("pencil"), serverNonce: RFC7677.serverNonce, salt: RFC7677.salt))
        let serverFirst = try server.clientFirstMessageReceived(scramMessage(RFC7677.clientFirst))
        #expect(String(decoding: serverFirst, as: UTF8.self) == RFC7677.serverFirst)
        let success = try server.clientFinalMessageReceived(scramMessage(RFC7677.clientFinal))
        #expect(String(decoding: success.serverFinalMessage, as: UTF8.self) == RFC7677.serverFinal)
        let expected = SCRAMKeys.derive(password: "pencil", salt: RFC7677.salt, iterations: 4096)
        #expect(success.keys == expected)
    }

    @Test("server reproduces the RFC 7677 exchange from a stored verifier")
    func serverVectorFromVerifier() throws {
        let verifier = SCRAMVerifier.make(password: "pencil", salt: RFC7677.salt, iterations: 4096)
        var server = try #require(SCRAMServer(secret: .scram(verifier), serverNonce: RFC7677.serverNonce))
        _ = try server.clientFirstMessageReceived(scramMessage(RFC7677.clientFirst))
        let success = try server.clientFinalMessageReceived(scramMessage(RFC7677.clientFinal))
        #expect(String(decoding: success.serverFinalMessage, as: UTF8.self) == RFC7677.serverFinal)
    }

    @Test("client and server agree with a plain password and random nonces")
    func plainRoundTrip() throws {
        var client = SCRAMClient(credentials: .password("correct horse"))
        var server = try #require(SCRAMServer(secret: .plain("correct horse"), iterations: 16))
        _ = try runExchange(client: &client, server: &server)
        #expect(client.isComplete)
    }

    @Test("keys recovered from a client log in to a server holding the same verifier")
    func passThrough() throws {
        let verifier = SCRAMVerifier.make(password: "s3cret", iterations: 32)
        // The application authenticates to Sluice…
        var application = SCRAMClient(credentials: .password("s3cret"))
        var sluice = try #require(SCRAMServer(secret: .scram(verifier)))
        let recovered = try runExchange(client: &application, server: &sluice).keys
        // …and Sluice replays the keys to PostgreSQL, which stores the same verifier.
        var toPostgres = SCRAMClient(credentials: .passThrough(recovered))
        var postgres = try #require(SCRAMServer(secret: .scram(verifier)))
        _ = try runExchange(client: &toPostgres, server: &postgres)
        #expect(toPostgres.isComplete)
    }

    @Test("pass-through keys fail clearly against a server with another salt")
    func passThroughMismatch() throws {
        let keys = SCRAMKeys.derive(password: "s3cret", salt: [1, 2, 3], iterations: 32)
        var client = SCRAMClient(credentials: .passThrough(keys))
        var server = try #require(SCRAMServer(secret: .plain("s3cret"), iterations: 32))
        let serverFirst = try server.clientFirstMessageReceived(client.clientFirstMessage)
        #expect(throws: SCRAMError.passThroughParametersMismatch) {
            try client.serverFirstMessageReceived(serverFirst)
        }
    }

    @Test("a wrong password fails at the proof and the state machine stays failed")
    func wrongPassword() throws {
        var client = SCRAMClient(credentials: .password("wrong"))
        var server = try #require(SCRAMServer(secret: .plain("right"), iterations: 8))
        let serverFirst = try server.clientFirstMessageReceived(client.clientFirstMessage)
        let final = try client.serverFirstMessageReceived(serverFirst)
        #expect(throws: SCRAMError.invalidProof) { try server.clientFinalMessageReceived(final) }
        #expect(throws: SCRAMError.unexpectedMessage(state: "failed")) {
            try server.clientFinalMessageReceived(final)
        }
    }

    @Test("the mock exchange shows a stable salt and rejects every proof")
    func mockExchange() throws {
        let secret = Crypto.randomBytes(count: 16)
        var first = SCRAMServer.mock(user: "ghost", systemSecret: secret)
        var second = SCRAMServer.mock(user: "ghost", systemSecret: secret)
        var client = SCRAMClient(credentials: .password("anything"), clientNonce: "abc")
        let one = try first.clientFirstMessageReceived(client.clientFirstMessage)
        let two = try second.clientFirstMessageReceived(client.clientFirstMessage)
        let saltOf = { (message: [UInt8]) in String(decoding: message, as: UTF8.self).split(separator: ",")[1] }
        #expect(saltOf(one) == saltOf(two))
        let final = try client.serverFirstMessageReceived(one)
        #expect(throws: SCRAMError.invalidProof) { try first.clientFinalMessageReceived(final) }
    }

    @Test("an md5 secret or an empty password cannot run SCRAM")
    func md5CannotDoSCRAM() {
        #expect(SCRAMServer(secret: .md5("md553f48b7c4b76a86ce72276c5755f217d")) == nil)
        #expect(SCRAMServer(secret: .plain("")) == nil)
    }

    @Test("the y flag is accepted and bound as eSws")
    func yFlag() throws {
        var server = try #require(SCRAMServer(secret: .plain("pencil"), iterations: 4))
        let serverFirst = try server.clientFirstMessageReceived(scramMessage("y,,n=,r=abc"))
        let nonce = String(decoding: serverFirst, as: UTF8.self).split(separator: ",")[0].dropFirst(2)
        #expect(throws: SCRAMError.malformedMessage("channel binding does not match the client-first-message")) {
            var copy = server
            _ = try copy.clientFinalMessageReceived(scramMessage("c=biws,r=\(nonce),p=AAAA"))
        }
        // The right binding reaches the proof check.
        let proof = Crypto.base64Encode([UInt8](repeating: 0, count: 32))
        #expect(throws: SCRAMError.invalidProof) {
            _ = try server.clientFinalMessageReceived(scramMessage("c=eSws,r=\(nonce),p=\(proof)"))
        }
    }

    @Test("the server ignores the username in client-first, as PostgreSQL does")
    func usernameIgnored() throws {
        var client = SCRAMClient(credentials: .password("pw"), username: "someone,else=x")
        var server = try #require(SCRAMServer(secret: .plain("pw"), iterations: 4))
        _ = try runExchange(client: &client, server: &server)
        #expect(client.isComplete)
    }

    @Test("SASL names escape comma and equals")
    func saslNameEscaping() {
        #expect(SCRAMClient.escapeSASLName("a,b=c") == "a=2Cb=3Dc")
    }
}
