import COpenSSL
import Foundation

/// Hashes, MACs, key derivation and randomness for authentication, all delegated to libcrypto.
///
/// Every primitive goes through OpenSSL so that no digest is implemented by hand; the helpers only
/// adapt byte arrays to the C calls. A libcrypto failure here means the library itself is broken
/// (out of memory, missing default provider), so it stops the process rather than letting an
/// authentication decision be made on garbage.
public enum Crypto {
    /// Length in bytes of a SHA-256 digest, and so of every SCRAM-SHA-256 key and signature.
    public static let sha256Length = 32

    /// SHA-256 of `data`.
    public static func sha256(_ data: [UInt8]) -> [UInt8] {
        digest(data, algorithm: Algorithms.sha256, length: sha256Length)
    }

    /// MD5 of `data`, as raw bytes. Only for PostgreSQL's legacy md5 authentication.
    public static func md5(_ data: [UInt8]) -> [UInt8] {
        digest(data, algorithm: Algorithms.md5, length: 16)
    }

    /// MD5 of `data` as 32 lowercase hex digits, the form PostgreSQL's md5 auth exchanges.
    public static func md5Hex(_ data: [UInt8]) -> String {
        hex(md5(data))
    }

    /// HMAC-SHA-256 of `data` under `key`.
    public static func hmacSHA256(key: [UInt8], data: [UInt8]) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: sha256Length)
        var outputLength: UInt32 = 0
        // An empty array may have no base address; OpenSSL reads a NULL key as "reuse the previous
        // key" in some code paths, so a zero-length key must still point somewhere.
        let keyBytes = key.isEmpty ? [0] : key
        let result = keyBytes.withUnsafeBytes { keyBuffer in
            data.withUnsafeBufferPointer { dataBuffer in
                output.withUnsafeMutableBufferPointer { outBuffer in
                    HMAC(
                        Algorithms.sha256, keyBuffer.baseAddress, Int32(key.count), dataBuffer.baseAddress, data.count,
                        outBuffer.baseAddress, &outputLength)
                }
            }
        }
        if result == nil || Int(outputLength) != sha256Length {
            fatalError("libcrypto HMAC-SHA-256 failed: \(lastOpenSSLError())")
        }
        return output
    }

    /// PBKDF2 with HMAC-SHA-256, producing one 32-byte block: SCRAM's `Hi()` function.
    public static func pbkdf2SHA256(password: [UInt8], salt: [UInt8], iterations: Int) -> [UInt8] {
        precondition(iterations > 0 && iterations <= Int(Int32.max), "PBKDF2 iteration count out of range")
        var output = [UInt8](repeating: 0, count: sha256Length)
        let passwordBytes = password.map { CChar(bitPattern: $0) } + [0]
        let saltBytes = salt.isEmpty ? [0] : salt
        let result = passwordBytes.withUnsafeBufferPointer { passwordBuffer in
            saltBytes.withUnsafeBufferPointer { saltBuffer in
                output.withUnsafeMutableBufferPointer { outBuffer in
                    PKCS5_PBKDF2_HMAC(
                        passwordBuffer.baseAddress, Int32(password.count), saltBuffer.baseAddress, Int32(salt.count),
                        Int32(iterations), Algorithms.sha256, Int32(sha256Length), outBuffer.baseAddress)
                }
            }
        }
        if result != 1 {
            fatalError("libcrypto PBKDF2-HMAC-SHA-256 failed: \(lastOpenSSLError())")
        }
        return output
    }

    /// `count` bytes from the kernel's CSPRNG (`getrandom`), for salts, nonces and cancel keys. Every
    /// login takes some; libcrypto's RAND_bytes costs far more per call (a provider lookup and a
    /// fork check) for bytes that come from the same source.
    public static func randomBytes(count: Int) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let n = output.withUnsafeMutableBytes { getrandom($0.baseAddress! + filled, count - filled, 0) }
            if n > 0 {
                filled += n
            } else if n < 0 && errno != EINTR {
                // A nonce or salt from a failed generator would be predictable; never continue.
                fatalError("getrandom failed: errno \(errno)")
            }
        }
        return output
    }

    /// Compares two byte strings in time that depends only on their length.
    ///
    /// Lengths are public in every use here (digest sizes), so a length mismatch returns at once.
    public static func constantTimeEquals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        if lhs.isEmpty { return true }
        return lhs.withUnsafeBytes { left in
            rhs.withUnsafeBytes { right in
                CRYPTO_memcmp(left.baseAddress, right.baseAddress, lhs.count) == 0
            }
        }
    }

    /// Standard base64 with padding, as SCRAM and RFC 5803 secrets use.
    public static func base64Encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
    }

    /// Strict base64 decoding: padding required, no whitespace or foreign characters.
    public static func base64Decode(_ text: String) -> [UInt8]? {
        guard let data = Data(base64Encoded: text) else { return nil }
        return [UInt8](data)
    }

    /// Lowercase hexadecimal rendering of `bytes`.
    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Loads libcrypto's default provider now rather than at the first login: its one-time cost (about
    /// 1.5 MiB of memory) then shows in the process's starting size, not in its first client's, and a
    /// libcrypto without SHA-256 stops Sluice at startup. MD5 stays lazy: a FIPS build may lack it, and
    /// only md5 logins need it.
    public static func prepare() {
        _ = Algorithms.sha256
    }

    /// Digest algorithms fetched from the default provider once. Passing `EVP_md5()` or `EVP_sha256()`
    /// makes libcrypto look the implementation up again on every call, which costs more than hashing a
    /// password. Fetched algorithms are immutable and safe to share between threads.
    private enum Algorithms {
        nonisolated(unsafe) static let md5 = fetch("MD5")
        nonisolated(unsafe) static let sha256 = fetch("SHA2-256")

        static func fetch(_ name: String) -> OpaquePointer? {
            guard let algorithm = EVP_MD_fetch(nil, name, nil) else {
                fatalError("libcrypto has no \(name): \(lastOpenSSLError())")
            }
            return algorithm
        }
    }

    private static func digest(_ data: [UInt8], algorithm: OpaquePointer?, length: Int) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: length)
        var outputLength: UInt32 = 0
        let result = data.withUnsafeBytes { dataBuffer in
            output.withUnsafeMutableBufferPointer { outBuffer in
                EVP_Digest(dataBuffer.baseAddress, data.count, outBuffer.baseAddress, &outputLength, algorithm, nil)
            }
        }
        if result != 1 || Int(outputLength) != length {
            fatalError("libcrypto digest failed: \(lastOpenSSLError())")
        }
        return output
    }

    private static func lastOpenSSLError() -> String {
        let code = ERR_get_error()
        if code == 0 { return "no error queued" }
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Cancel keys of protocol 3.2 clients. A client keeps only its 4-byte key (what protocol 3.0 clients
/// get); its 32-byte key is those 4 bytes followed by 28 bytes of an HMAC over the process id and them,
/// keyed with a per-process secret, so it is recomputed rather than stored, and cannot be guessed from
/// the short key.
public enum CancelKey {
    /// The secret key length protocol 3.2 clients get, as PostgreSQL 18 sends.
    public static let extendedLength = 32

    public static func extended(processID: Int32, secretKey: Int32, secret: [UInt8]) -> [UInt8] {
        let short = withUnsafeBytes(of: secretKey.bigEndian) { Array($0) }
        let message = withUnsafeBytes(of: processID.bigEndian) { Array($0) } + short
        return short + Crypto.hmacSHA256(key: secret, data: message).prefix(extendedLength - 4)
    }

    /// Whether `presented` is the client's key: the short one for a protocol 3.0 client, the extended
    /// one for a 3.2 client (whose short key alone would be a 32-bit secret again).
    public static func matches(
        _ presented: [UInt8], processID: Int32, secretKey: Int32, extendedKeys: Bool, secret: [UInt8]
    ) -> Bool {
        let expected =
            extendedKeys
            ? extended(processID: processID, secretKey: secretKey, secret: secret)
            : withUnsafeBytes(of: secretKey.bigEndian) { Array($0) }
        return Crypto.constantTimeEquals(expected, presented)
    }
}
