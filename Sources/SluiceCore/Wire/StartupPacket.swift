/// The untyped first packet of a connection (protocol "Start-up" and "Canceling Requests in Progress").
public enum StartupPacket: Equatable, Sendable {
    case startup(majorVersion: UInt16, minorVersion: UInt16, parameters: [StartupParameter])
    case sslRequest
    case gssEncRequest
    case cancelRequest(processID: Int32, secretKey: [UInt8])

    /// PostgreSQL refuses startup packets larger than this before authentication, and so does Sluice.
    public static let maximumLength = 10_000

    /// Decodes one startup-phase packet from the front of `buffer` without consuming it.
    /// Returns nil when more bytes are needed; throws on anything malformed.
    public static func decode(from buffer: ByteBuffer) throws(ProtocolViolation) -> (StartupPacket, length: Int)? {
        guard buffer.readableBytes >= 4 else { return nil }
        let length = Int(buffer.uint32(at: 0))
        guard length >= 8, length <= maximumLength else {
            throw ProtocolViolation("invalid length of startup packet: \(length)")
        }
        guard buffer.readableBytes >= length else { return nil }
        var reader = PayloadReader(buffer.bytes(at: 4, count: length - 4))
        let code = try reader.readUInt32()
        switch code {
        case StartupRequestCode.sslRequest:
            try reader.finish()
            return (.sslRequest, length)
        case StartupRequestCode.gssEncRequest:
            try reader.finish()
            return (.gssEncRequest, length)
        case StartupRequestCode.cancelRequest:
            let processID = try reader.readInt32()
            // Protocol 3.2 allows secret keys of up to 256 bytes; 3.0 uses four.
            let key = Array(reader.readRest())
            guard (4...256).contains(key.count) else { throw ProtocolViolation("invalid cancel request key length") }
            return (.cancelRequest(processID: processID, secretKey: key), length)
        default:
            let major = UInt16(code >> 16)
            let minor = UInt16(code & 0xFFFF)
            // Another major version's packet has another layout: report the version, not its contents.
            guard major == 3 else {
                return (.startup(majorVersion: major, minorVersion: minor, parameters: []), length)
            }
            var parameters: [StartupParameter] = []
            while true {
                let name = try reader.readCString()
                if name.isEmpty { break }
                let value = try reader.readCString()
                parameters.append(StartupParameter(name: name, value: value))
            }
            try reader.finish()
            return (.startup(majorVersion: major, minorVersion: minor, parameters: parameters), length)
        }
    }
}

public struct StartupParameter: Equatable, Sendable {
    public var name: String
    public var value: String
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}
