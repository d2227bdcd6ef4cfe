import Testing

@testable import SluiceCore

@Suite("SCRAM-SHA-256 malformed and hostile messages")
struct AuthSCRAMMalformedTests {
    func freshServer() -> SCRAMServer {
        SCRAMServer(secret: .plain("pencil"), iterations: 4, serverNonce: "SERVER")!
    }

    @Test(
        "malformed client-first messages are rejected",
        arguments: [
            ("", SCRAMError.malformedMessage("empty client-first-message")),
            ("x,,n=,r=a", .malformedMessage("unexpected channel binding flag")),
            ("p=tls-server-end-point,,n=,r=a", .channelBindingNotSupported),
            ("n,a=admin,n=,r=a", .authorizationIdentityNotSupported),
            ("n", .malformedMessage("comma expected after channel binding flag")),
            ("n,", .malformedMessage("comma expected after authorization identity")),
            ("n,,", .malformedMessage("missing username")),
            ("n,,m=ext,n=,r=a", .mandatoryExtensionNotSupported),
            ("n,,r=a", .malformedMessage("expected username")),
            ("n,,n=", .malformedMessage("missing nonce")),
            ("n,,n=,", .malformedMessage("trailing comma")),
            ("n,,n=,r=", .malformedMessage("invalid nonce")),
            ("n,,n=,r=a b", .malformedMessage("invalid nonce")),
            ("n,,n=,r=abc,=x", .malformedMessage("expected an attribute")),
        ])
    func clientFirst(message: String, error: SCRAMError) {
        var server = freshServer()
        #expect(throws: error) { try server.clientFirstMessageReceived(Array(message.utf8)) }
    }

    @Test("extensions after the nonce are ignored")
    func clientFirstExtensions() throws {
        var server = freshServer()
        _ = try server.clientFirstMessageReceived(Array("n,,n=,r=abc,x=future".utf8))
    }

    @Test(
        "malformed client-final messages are rejected",
        arguments: [
            ("", SCRAMError.malformedMessage("missing channel binding")),
            ("r=abcSERVER,p=AAAA", .malformedMessage("expected channel binding")),
            ("c=!!,r=abcSERVER,p=AAAA", .malformedMessage("channel binding does not match the client-first-message")),
            ("c=biws,r=abcOTHER,p=AAAA", .nonceMismatch),
            ("c=biws,r=abcSERVER", .malformedMessage("missing or short proof")),
            ("c=biws,r=abcSERVER,p=AAAA", .malformedMessage("missing or short proof")),
            ("c=biws,r=abcSERVER,p=***", .malformedMessage("proof is not base64")),
            ("c=biws,r=abcSERVER,p=AAAA,x=1", .malformedMessage("proof must be the last attribute")),
        ])
    func clientFinal(message: String, error: SCRAMError) throws {
        var server = freshServer()
        _ = try server.clientFirstMessageReceived(Array("n,,n=,r=abc".utf8))
        #expect(throws: error) { try server.clientFinalMessageReceived(Array(message.utf8)) }
    }

    @Test("messages out of order are refused, not crashed on")
    func outOfOrder() throws {
        var server = freshServer()
        #expect(throws: SCRAMError.unexpectedMessage(state: "awaitingClientFirst")) {
            try server.clientFinalMessageReceived(Array("c=biws".utf8))
        }
        var client = SCRAMClient(credentials: .password("pencil"))
        #expect(throws: SCRAMError.unexpectedMessage(state: "awaitingServerFirst")) {
            try client.serverFinalMessageReceived(Array("v=AAAA".utf8))
        }
    }

    @Test(
        "malformed or hostile server-first messages are rejected",
        arguments: [
            ("", SCRAMError.malformedMessage("missing nonce")),
            ("m=x,r=abcdef,s=AAAA,i=1", .mandatoryExtensionNotSupported),
            ("r=zzzdef,s=AAAA,i=4096", .nonceMismatch),
            ("r=abc,s=AAAA,i=4096", .nonceMismatch),
            ("r=abcdef,i=4096", .malformedMessage("expected salt")),
            ("r=abcdef,s=,i=4096", .malformedMessage("salt is not base64")),
            ("r=abcdef,s=@@@@,i=4096", .malformedMessage("salt is not base64")),
            ("r=abcdef,s=AAAA", .malformedMessage("missing iteration count")),
            ("r=abcdef,s=AAAA,i=", .malformedMessage("iteration count is not a number")),
            ("r=abcdef,s=AAAA,i=-1", .malformedMessage("iteration count is not a number")),
            ("r=abcdef,s=AAAA,i=99999999999999999999", .malformedMessage("iteration count is not a number")),
            ("r=abcdef,s=AAAA,i=0", .iterationCountOutOfRange),
            ("r=abcdef,s=AAAA,i=10000001", .iterationCountOutOfRange),
        ])
    func serverFirst(message: String, error: SCRAMError) {
        var client = SCRAMClient(credentials: .password("pencil"), clientNonce: "abc")
        #expect(throws: error) { try client.serverFirstMessageReceived(Array(message.utf8)) }
    }

    @Test("a server-first message with any salt length is accepted")
    func anySaltLength() throws {
        for saltLength in [1, 8, 16, 33, 64] {
            var client = SCRAMClient(credentials: .password("pencil"), clientNonce: "abc")
            let salt = Crypto.base64Encode([UInt8](repeating: 7, count: saltLength))
            _ = try client.serverFirstMessageReceived(Array("r=abcdef,s=\(salt),i=2".utf8))
        }
    }

    @Test(
        "bad server-final messages fail the login",
        arguments: [
            ("e=invalid-proof", SCRAMError.serverError("invalid-proof")),
            ("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", .serverSignatureMismatch),
            ("v=***", .malformedMessage("server signature is not base64")),
            ("x=1", .malformedMessage("expected server signature")),
            ("", .malformedMessage("expected an attribute")),
        ])
    func serverFinal(message: String, error: SCRAMError) throws {
        var client = SCRAMClient(credentials: .password("pencil"), clientNonce: "abc")
        _ = try client.serverFirstMessageReceived(Array("r=abcdef,s=AAAA,i=2".utf8))
        #expect(throws: error) { try client.serverFinalMessageReceived(Array(message.utf8)) }
        #expect(!client.isComplete)
    }

    @Test("random bytes never crash either side")
    func randomInput() {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("nyp,=arscimve biwsAZ09+/\u{0}\u{ff}".utf8)
        for _ in 0..<2000 {
            let length = Int.random(in: 0...40, using: &generator)
            let message = (0..<length).map { _ in alphabet.randomElement(using: &generator)! }
            var server = freshServer()
            if let first = try? server.clientFirstMessageReceived(message) {
                #expect(!first.isEmpty)
                _ = try? server.clientFinalMessageReceived(message)
            }
            var client = SCRAMClient(credentials: .password("pencil"), clientNonce: "n")
            _ = try? client.serverFirstMessageReceived(message)
            _ = try? client.serverFinalMessageReceived(message)
        }
    }
}
