/// Reads RFC 5802 attribute lists (`n=…,r=…,p=…`) straight from the received bytes.
///
/// SCRAM signs the exact bytes exchanged (the AuthMessage), so messages are never decoded into a
/// `String` and re-encoded: invalid UTF-8 in a username would otherwise change what gets signed.
struct SCRAMAttributeReader {
    let bytes: [UInt8]
    private(set) var position: Int

    init(_ bytes: [UInt8], from position: Int = 0) {
        self.bytes = bytes
        self.position = position
    }

    var isAtEnd: Bool { position >= bytes.count }

    /// The attribute name at the cursor, without consuming it.
    var peekName: UInt8? {
        guard position + 1 < bytes.count, bytes[position + 1] == UInt8(ascii: "=") else { return nil }
        return bytes[position]
    }

    /// Reads one `x=value` attribute and the comma after it, if any.
    mutating func next() throws(SCRAMError) -> (name: UInt8, value: ArraySlice<UInt8>) {
        guard let name = peekName, Self.isAlpha(name) else {
            throw .malformedMessage("expected an attribute")
        }
        let start = position + 2
        var end = start
        while end < bytes.count && bytes[end] != UInt8(ascii: ",") { end += 1 }
        position = end
        if end < bytes.count {
            position += 1
            if position == bytes.count { throw .malformedMessage("trailing comma") }
        }
        return (name, bytes[start..<end])
    }

    /// Reads the attribute `name`, failing with a message that names it when something else is there.
    mutating func expect(_ name: Character, _ meaning: String) throws(SCRAMError) -> ArraySlice<UInt8> {
        if isAtEnd { throw .malformedMessage("missing \(meaning)") }
        let attribute = try next()
        guard attribute.name == name.asciiValue else { throw .malformedMessage("expected \(meaning)") }
        return attribute.value
    }

    static func isAlpha(_ byte: UInt8) -> Bool {
        (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
    }

    /// RFC 5802 `printable`: visible ASCII except the comma.
    static func isValidNonce(_ bytes: ArraySlice<UInt8>) -> Bool {
        !bytes.isEmpty && bytes.allSatisfy { $0 >= 0x21 && $0 <= 0x7E && $0 != UInt8(ascii: ",") }
    }

    static func decodeBase64(_ bytes: ArraySlice<UInt8>) -> [UInt8]? {
        guard bytes.allSatisfy({ $0 < 0x80 }) else { return nil }
        return Crypto.base64Decode(String(decoding: bytes, as: UTF8.self))
    }

    /// A fresh nonce: 18 random bytes in base64, the size libpq and PostgreSQL use.
    static func makeNonce() -> String {
        Crypto.base64Encode(Crypto.randomBytes(count: 18))
    }
}
