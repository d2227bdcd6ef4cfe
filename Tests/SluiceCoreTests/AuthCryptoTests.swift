import Testing

@testable import SluiceCore

@Suite("Crypto helpers")
struct AuthCryptoTests {
    @Test("sha256 matches the FIPS 180-2 'abc' vector")
    func sha256Vector() {
        #expect(
            Crypto.hex(Crypto.sha256(Array("abc".utf8)))
                == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test("hmacSHA256 matches a known vector and accepts an empty key")
    func hmacVector() {
        let mac = Crypto.hmacSHA256(
            key: Array("key".utf8), data: Array("The quick brown fox jumps over the lazy dog".utf8))
        #expect(Crypto.hex(mac) == "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8")
        #expect(Crypto.hmacSHA256(key: [], data: []).count == 32)
    }

    @Test("pbkdf2SHA256 matches RFC 7914 style vectors")
    func pbkdf2Vectors() {
        let one = Crypto.pbkdf2SHA256(password: Array("password".utf8), salt: Array("salt".utf8), iterations: 1)
        #expect(Crypto.hex(one) == "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b")
        let many = Crypto.pbkdf2SHA256(password: Array("password".utf8), salt: Array("salt".utf8), iterations: 4096)
        #expect(Crypto.hex(many) == "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a")
    }

    @Test("md5Hex hashes to lowercase hex")
    func md5Hex() {
        #expect(Crypto.md5Hex(Array("1234admin".utf8)) == "45f2603610af569b6155c45067268c6b")
    }

    @Test("randomBytes returns the requested length and differs between calls")
    func randomBytes() {
        #expect(Crypto.randomBytes(count: 0).isEmpty)
        let first = Crypto.randomBytes(count: 32)
        let second = Crypto.randomBytes(count: 32)
        #expect(first.count == 32)
        #expect(first != second)
    }

    @Test("constantTimeEquals compares content and length")
    func constantTimeEquals() {
        #expect(Crypto.constantTimeEquals([1, 2, 3], [1, 2, 3]))
        #expect(!Crypto.constantTimeEquals([1, 2, 3], [1, 2, 4]))
        #expect(!Crypto.constantTimeEquals([1, 2, 3], [1, 2]))
        #expect(Crypto.constantTimeEquals([], []))
    }

    @Test("base64 round-trips and rejects malformed input")
    func base64() {
        #expect(Crypto.base64Encode(Array("n,,".utf8)) == "biws")
        #expect(Crypto.base64Decode("biws") == Array("n,,".utf8))
        #expect(Crypto.base64Decode("bi ws") == nil)
        #expect(Crypto.base64Decode("biw") == nil)
        #expect(Crypto.base64Decode("") == [])
    }
}

@Suite("Cancel keys for protocol 3.2")
struct CancelKeyTests {
    let secret = Array(repeating: UInt8(7), count: 32)

    @Test("the 32-byte key starts with the short one and is checked whole")
    func extendedKey() {
        let key = CancelKey.extended(processID: 42, secretKey: 0x0102_0304, secret: secret)
        #expect(key.count == 32)
        #expect(Array(key.prefix(4)) == [1, 2, 3, 4])
        #expect(CancelKey.matches(key, processID: 42, secretKey: 0x0102_0304, extendedKeys: true, secret: secret))
        #expect(
            !CancelKey.matches([1, 2, 3, 4], processID: 42, secretKey: 0x0102_0304, extendedKeys: true, secret: secret))
        #expect(!CancelKey.matches(key, processID: 43, secretKey: 0x0102_0304, extendedKeys: true, secret: secret))
        var tampered = key
        tampered[31] ^= 1
        #expect(!CancelKey.matches(tampered, processID: 42, secretKey: 0x0102_0304, extendedKeys: true, secret: secret))
        let otherSecret = CancelKey.extended(
            processID: 42, secretKey: 0x0102_0304, secret: [UInt8](repeating: 8, count: 32))
        #expect(otherSecret != key)
    }

    @Test("a protocol 3.0 client's key is its four bytes, and only those")
    func shortKey() {
        #expect(
            CancelKey.matches([1, 2, 3, 4], processID: 42, secretKey: 0x0102_0304, extendedKeys: false, secret: secret))
        let long = CancelKey.extended(processID: 42, secretKey: 0x0102_0304, secret: secret)
        #expect(!CancelKey.matches(long, processID: 42, secretKey: 0x0102_0304, extendedKeys: false, secret: secret))
    }
}
