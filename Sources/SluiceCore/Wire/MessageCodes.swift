/// The type byte of every message a PostgreSQL server sends (protocol 3, "Message Formats").
public enum BackendMessageCode: UInt8, Sendable {
    case authentication = 0x52  // R
    case backendKeyData = 0x4B  // K
    case bindComplete = 0x32  // 2
    case closeComplete = 0x33  // 3
    case commandComplete = 0x43  // C
    case copyData = 0x64  // d
    case copyDone = 0x63  // c
    case copyInResponse = 0x47  // G
    case copyOutResponse = 0x48  // H
    case copyBothResponse = 0x57  // W
    case dataRow = 0x44  // D
    case emptyQueryResponse = 0x49  // I
    case errorResponse = 0x45  // E
    case functionCallResponse = 0x56  // V
    case negotiateProtocolVersion = 0x76  // v
    case noData = 0x6E  // n
    case noticeResponse = 0x4E  // N
    case notificationResponse = 0x41  // A
    case parameterDescription = 0x74  // t
    case parameterStatus = 0x53  // S
    case parseComplete = 0x31  // 1
    case portalSuspended = 0x73  // s
    case readyForQuery = 0x5A  // Z
    case rowDescription = 0x54  // T
}

/// The type byte of every message a PostgreSQL client sends after the startup packet.
public enum FrontendMessageCode: UInt8, Sendable {
    case bind = 0x42  // B
    case close = 0x43  // C
    case copyData = 0x64  // d
    case copyDone = 0x63  // c
    case copyFail = 0x66  // f
    case describe = 0x44  // D
    case execute = 0x45  // E
    case flush = 0x48  // H
    case functionCall = 0x46  // F
    case parse = 0x50  // P
    /// PasswordMessage, SASLInitialResponse and SASLResponse all share this byte.
    case password = 0x70  // p
    case query = 0x51  // Q
    case sync = 0x53  // S
    case terminate = 0x58  // X
}

/// The four-byte codes that stand where a protocol version would in an untyped startup-phase packet.
public enum StartupRequestCode {
    public static let sslRequest: UInt32 = 80_877_103
    public static let gssEncRequest: UInt32 = 80_877_104
    public static let cancelRequest: UInt32 = 80_877_102
    /// Protocol 3.0: major version in the high 16 bits, minor in the low.
    public static let protocol3: UInt32 = 196_608
}

/// Transaction status carried by ReadyForQuery.
public enum TransactionStatus: UInt8, Sendable {
    case idle = 0x49  // I
    case inTransaction = 0x54  // T
    case failed = 0x45  // E
}
