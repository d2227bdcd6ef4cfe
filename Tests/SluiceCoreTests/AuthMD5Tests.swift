import Testing

@testable import SluiceCore

@Suite("MD5 password authentication")
struct AuthMD5Tests {
    let salt: [UInt8] = [1, 2, 3, 4]

    @Test("stored hash is md5 of password followed by user")
    func storedHash() {
        #expect(MD5Password.storedHash(password: "secret", user: "postgres") == "md553f48b7c4b76a86ce72276c5755f217d")
        #expect(MD5Password.storedHash(password: "1234", user: "admin") == "md545f2603610af569b6155c45067268c6b")
    }

    @Test("response hashes the stored hex digits with the salt")
    func response() {
        let stored = "md553f48b7c4b76a86ce72276c5755f217d"
        #expect(MD5Password.response(storedHash: stored, salt: salt) == "md5bb41a296aab6baccb36ff243a562abff")
    }

    @Test("verify accepts the right response for plain and md5 secrets")
    func verifyAccepts() {
        let answer = "md5bb41a296aab6baccb36ff243a562abff"
        #expect(MD5Password.verify(response: answer, secret: .plain("secret"), user: "postgres", salt: salt))
        #expect(
            MD5Password.verify(
                response: answer, secret: .md5("md553f48b7c4b76a86ce72276c5755f217d"), user: "postgres", salt: salt))
    }

    @Test("verify rejects a wrong password, another salt, a SCRAM secret and an empty password")
    func verifyRejects() {
        let answer = "md5bb41a296aab6baccb36ff243a562abff"
        #expect(!MD5Password.verify(response: answer, secret: .plain("Secret"), user: "postgres", salt: salt))
        #expect(!MD5Password.verify(response: answer, secret: .plain("secret"), user: "postgres", salt: [4, 3, 2, 1]))
        let verifier = SCRAMVerifier.make(password: "secret", iterations: 1)
        #expect(!MD5Password.verify(response: answer, secret: .scram(verifier), user: "postgres", salt: salt))
        let empty = MD5Password.response(storedHash: MD5Password.storedHash(password: "", user: "u"), salt: salt)
        #expect(!MD5Password.verify(response: empty, secret: .plain(""), user: "u", salt: salt))
    }

    @Test("isStoredHash needs the prefix and exactly 32 hex digits")
    func isStoredHash() {
        #expect(MD5Password.isStoredHash("md553f48b7c4b76a86ce72276c5755f217d"))
        #expect(!MD5Password.isStoredHash("md553f48b7c4b76a86ce72276c5755f217"))
        #expect(!MD5Password.isStoredHash("md553f48b7c4b76a86ce72276c5755f217z"))
        #expect(!MD5Password.isStoredHash("xx553f48b7c4b76a86ce72276c5755f217d"))
    }
}
