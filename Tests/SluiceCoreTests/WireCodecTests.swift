import Testing

@testable import SluiceCore

@Suite("Wire codec")
struct WireCodecTests {
    @Test("a startup message round-trips with its parameters")
    func startupRoundTrip() throws {
        var buffer = ByteBuffer()
        buffer.writeStartupMessage(parameters: [("user", "alice"), ("database", "app"), ("application_name", "x")])
        let decoded = try #require(try StartupPacket.decode(from: buffer))
        #expect(decoded.length == buffer.readableBytes)
        #expect(
            decoded.0
                == .startup(
                    majorVersion: 3, minorVersion: 0,
                    parameters: [
                        StartupParameter(name: "user", value: "alice"),
                        StartupParameter(name: "database", value: "app"),
                        StartupParameter(name: "application_name", value: "x"),
                    ]))
    }

    @Test("a partial startup packet asks for more bytes without consuming")
    func partialStartup() throws {
        var full = ByteBuffer()
        full.writeStartupMessage(parameters: [("user", "alice")])
        let partial = ByteBuffer(bytes: Array(full.readableView.prefix(9)))
        #expect(try StartupPacket.decode(from: partial) == nil)
        #expect(try StartupPacket.decode(from: ByteBuffer(bytes: [0, 0])) == nil)
    }

    @Test("startup lengths below 8 or above 10000 are protocol violations")
    func startupLengthBounds() {
        #expect(throws: ProtocolViolation.self) { try StartupPacket.decode(from: ByteBuffer(bytes: [0, 0, 0, 4])) }
        #expect(throws: ProtocolViolation.self) {
            try StartupPacket.decode(from: ByteBuffer(bytes: [0, 0, 0x27, 0x11, 0, 3, 0, 0]))
        }
    }

    @Test("SSLRequest, GSSENCRequest and CancelRequest are recognised by their codes")
    func specialRequests() throws {
        var ssl = ByteBuffer()
        ssl.write(uint32: 8)
        ssl.write(uint32: StartupRequestCode.sslRequest)
        #expect(try StartupPacket.decode(from: ssl)?.0 == .sslRequest)
        var gss = ByteBuffer()
        gss.write(uint32: 8)
        gss.write(uint32: StartupRequestCode.gssEncRequest)
        #expect(try StartupPacket.decode(from: gss)?.0 == .gssEncRequest)
        var cancel = ByteBuffer()
        cancel.writeCancelRequest(processID: 42, secretKey: 7)
        #expect(try StartupPacket.decode(from: cancel)?.0 == .cancelRequest(processID: 42, secretKey: [0, 0, 0, 7]))
    }

    @Test("a startup parameter list without its terminator is rejected")
    func unterminatedParameters() {
        var buffer = ByteBuffer()
        buffer.write(uint32: 13)
        buffer.write(uint32: StartupRequestCode.protocol3)
        buffer.write(bytes: Array("user".utf8))
        buffer.write(byte: 0)
        #expect(throws: ProtocolViolation.self) { try StartupPacket.decode(from: buffer) }
    }

    @Test("message headers check the declared length before the body")
    func headerBounds() throws {
        #expect(try MessageHeader.peek(ByteBuffer(bytes: [0x51, 0, 0]), maximumLength: 100) == nil)
        let ok = try #require(try MessageHeader.peek(ByteBuffer(bytes: [0x51, 0, 0, 0, 9]), maximumLength: 100))
        #expect(ok.totalLength == 10 && ok.bodyLength == 5 && ok.code == 0x51)
        #expect(throws: ProtocolViolation.self) {
            try MessageHeader.peek(ByteBuffer(bytes: [0x51, 0, 0, 0, 3]), maximumLength: 100)
        }
        #expect(throws: ProtocolViolation.self) {
            try MessageHeader.peek(ByteBuffer(bytes: [0x51, 0, 0, 1, 0]), maximumLength: 100)
        }
    }

    @Test("an ErrorResponse round-trips through the encoder and decoder")
    func errorRoundTrip() throws {
        var buffer = ByteBuffer()
        let fields = ErrorFields.fatal(.invalidPassword, "password authentication failed for user \"x\"", hint: "h")
        buffer.writeErrorResponse(fields)
        let header = try #require(try MessageHeader.peek(buffer, maximumLength: 1000))
        #expect(header.code == BackendMessageCode.errorResponse.rawValue)
        #expect(header.totalLength == buffer.readableBytes)
        let decoded = try ErrorFields(decoding: buffer.bytes(at: 5, count: header.bodyLength))
        #expect(decoded == fields)
    }

    @Test("payload readers insist on exact consumption")
    func exactConsumption() throws {
        var reader = PayloadReader([0x61, 0, 0x62][...])
        #expect(try reader.readCString() == "a")
        #expect(throws: ProtocolViolation.self) { try reader.finish() }
        var short = PayloadReader([0, 1][...])
        #expect(throws: ProtocolViolation.self) { try short.readUInt32() }
    }

    @Test("the buffer compacts and grows without losing unread bytes")
    func bufferCompaction() {
        var buffer = ByteBuffer(capacity: 8)
        buffer.write(bytes: [1, 2, 3, 4, 5, 6])
        buffer.moveReaderIndex(forwardBy: 4)
        buffer.write(bytes: [7, 8, 9, 10, 11, 12, 13, 14, 15])
        #expect(Array(buffer.readableView) == [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15])
    }
}
