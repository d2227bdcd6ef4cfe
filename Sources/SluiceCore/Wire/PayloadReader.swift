/// Why a message body could not be decoded. Each case maps to SQLSTATE 08P01 for the client.
public struct ProtocolViolation: Error, Equatable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A strict cursor over one message body: every read is bounds-checked and `finish()` insists the
/// body was consumed exactly, so a malformed length can never shift the framing of what follows.
public struct PayloadReader {
    private let bytes: ArraySlice<UInt8>
    private var position: Int

    public init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        self.position = bytes.startIndex
    }

    public var remaining: Int { bytes.endIndex - position }
    public var isAtEnd: Bool { position == bytes.endIndex }

    public mutating func readByte() throws(ProtocolViolation) -> UInt8 {
        guard remaining >= 1 else { throw ProtocolViolation("message body ends early") }
        defer { position += 1 }
        return bytes[position]
    }

    public mutating func readUInt16() throws(ProtocolViolation) -> UInt16 {
        guard remaining >= 2 else { throw ProtocolViolation("message body ends early") }
        defer { position += 2 }
        return UInt16(bytes[position]) << 8 | UInt16(bytes[position + 1])
    }

    public mutating func readUInt32() throws(ProtocolViolation) -> UInt32 {
        guard remaining >= 4 else { throw ProtocolViolation("message body ends early") }
        defer { position += 4 }
        return UInt32(bytes[position]) << 24 | UInt32(bytes[position + 1]) << 16 | UInt32(bytes[position + 2]) << 8
            | UInt32(bytes[position + 3])
    }

    public mutating func readInt32() throws(ProtocolViolation) -> Int32 { Int32(bitPattern: try readUInt32()) }

    public mutating func readBytes(_ count: Int) throws(ProtocolViolation) -> ArraySlice<UInt8> {
        guard count >= 0, remaining >= count else { throw ProtocolViolation("message body ends early") }
        defer { position += count }
        return bytes[position..<(position + count)]
    }

    public mutating func readRest() -> ArraySlice<UInt8> {
        defer { position = bytes.endIndex }
        return bytes[position...]
    }

    /// Reads the protocol's String: bytes up to a NUL, which is consumed.
    public mutating func readCString() throws(ProtocolViolation) -> String {
        guard let end = bytes[position...].firstIndex(of: 0) else {
            throw ProtocolViolation("string is not NUL-terminated")
        }
        defer { position = end + 1 }
        return String(decoding: bytes[position..<end], as: UTF8.self)
    }

    public func finish() throws(ProtocolViolation) {
        guard isAtEnd else { throw ProtocolViolation("message has \(remaining) trailing bytes") }
    }
}
