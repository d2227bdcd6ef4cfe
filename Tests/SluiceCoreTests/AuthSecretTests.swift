import Testing

@testable import SluiceCore

@Suite("Stored secrets, verifiers and SASLprep")
struct AuthSecretTests {
    @Test("a SCRAM verifier renders and parses back")
    func verifierRoundTrip() throws {
        let verifier = SCRAMVerifier.make(password: "pencil", salt: RFC7677.salt, iterations: 4096)
        let text = verifier.render()
        #expect(text.hasPrefix("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"))
        #expect(SCRAMVerifier.parse(text) == verifier)
    }

    @Test(
        "malformed verifiers do not parse",
        arguments: [
            "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==",
            "SCRAM-SHA-256$0:W22ZaJ0SNY7soEsUEjb6gQ==$AAAA:AAAA",
            "SCRAM-SHA-256$x:W22ZaJ0SNY7soEsUEjb6gQ==$AAAA:AAAA",
            "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$AAAA:AAAA",
            "SCRAM-SHA-256$4096:$\(String(repeating: "A", count: 43))=:\(String(repeating: "A", count: 43))=",
            "SCRAM-SHA-1$4096:W22ZaJ0SNY7soEsUEjb6gQ==$AAAA:AAAA",
        ])
    func malformedVerifiers(text: String) {
        #expect(SCRAMVerifier.parse(text) == nil)
    }

    @Test("descriptions never contain secrets")
    func redaction() {
        let verifier = SCRAMVerifier.make(password: "pencil", iterations: 1)
        #expect(!"\(StoredSecret.plain("hunter2"))".contains("hunter2"))
        #expect(!"\(StoredSecret.scram(verifier))".contains(Crypto.base64Encode(verifier.storedKey)))
        let keys = SCRAMKeys.derive(password: "x", salt: [1], iterations: 1)
        #expect(!"\(keys)".contains(Crypto.base64Encode(keys.clientKey)))
    }

    @Test("secrets are classified like PgBouncer does")
    func classification() {
        let verifier = SCRAMVerifier.make(password: "pencil", iterations: 1)
        #expect(
            StoredSecret.parse("md553f48b7c4b76a86ce72276c5755f217d") == .md5("md553f48b7c4b76a86ce72276c5755f217d"))
        #expect(
            StoredSecret.parse("MD553f48b7c4b76a86ce72276c5755f217d") == .plain("MD553f48b7c4b76a86ce72276c5755f217d"))
        #expect(
            StoredSecret.parse("md553F48B7C4B76A86CE72276C5755F217D") == .md5("md553f48b7c4b76a86ce72276c5755f217d"))
        #expect(StoredSecret.parse("md5short") == .plain("md5short"))
        #expect(StoredSecret.parse(verifier.render()) == .scram(verifier))
        #expect(StoredSecret.parse("SCRAM-SHA-256$broken") == nil)
        #expect(StoredSecret.parse("") == .plain(""))
    }

    @Test("cleartext passwords verify against every secret kind")
    func cleartext() {
        let verifier = SCRAMVerifier.make(password: "pencil", iterations: 2)
        #expect(StoredSecret.plain("pencil").verifyCleartext(password: "pencil", user: "u"))
        #expect(!StoredSecret.plain("pencil").verifyCleartext(password: "pen", user: "u"))
        #expect(
            StoredSecret.md5(MD5Password.storedHash(password: "pencil", user: "u"))
                .verifyCleartext(password: "pencil", user: "u"))
        #expect(
            !StoredSecret.md5(MD5Password.storedHash(password: "pencil", user: "u"))
                .verifyCleartext(password: "pencil", user: "v"))
        #expect(StoredSecret.scram(verifier).verifyCleartext(password: "pencil", user: "u"))
        #expect(!StoredSecret.scram(verifier).verifyCleartext(password: "pencils", user: "u"))
        #expect(!StoredSecret.plain("").verifyCleartext(password: "", user: "u"))
    }

    @Test("SASLprep leaves ASCII alone and normalises the rest")
    func saslprep() {
        #expect(SASLprep.prepare("pencil") == Array("pencil".utf8))
        #expect(SASLprep.prepare("a\u{7}b") == Array("a\u{7}b".utf8))
        // Non-ASCII space maps to a space; soft hyphen maps to nothing; NFKC folds the ligature.
        #expect(SASLprep.prepare("a\u{00A0}b") == Array("a b".utf8))
        #expect(SASLprep.prepare("I\u{00AD}X") == Array("IX".utf8))
        #expect(SASLprep.prepare("\u{FB01}x") == Array("fix".utf8))
        #expect(SASLprep.prepare("\u{2168}") == Array("IX".utf8))
        // A prohibited character makes PostgreSQL use the raw bytes.
        #expect(SASLprep.prepare("é\u{0007}") == Array("é\u{0007}".utf8))
        #expect(SASLprep.prepare("é\u{E000}") == Array("é\u{E000}".utf8))
    }
}
