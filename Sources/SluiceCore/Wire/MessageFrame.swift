/// The 5-byte header every message after startup carries: a type byte and a length that counts itself.
public struct MessageHeader: Equatable, Sendable {
    public var code: UInt8
    /// The whole message including the type byte: the length field plus one.
    public var totalLength: Int

    public var bodyLength: Int { totalLength - 5 }

    /// Reads a header from the front of `buffer` without consuming anything. Returns nil when fewer than
    /// five bytes are buffered; throws when the declared length is impossible or above `maximumLength`.
    public static func peek(_ buffer: ByteBuffer, maximumLength: Int) throws(ProtocolViolation) -> MessageHeader? {
        guard buffer.readableBytes >= 5 else { return nil }
        let code = buffer.byte(at: 0)
        let length = Int(buffer.uint32(at: 1))
        guard length >= 4 else { throw ProtocolViolation("invalid message length \(length)") }
        guard length <= maximumLength else {
            throw ProtocolViolation("message of \(length) bytes exceeds the limit of \(maximumLength)")
        }
        return MessageHeader(code: code, totalLength: length + 1)
    }
}
