/// Encoders for the messages Sluice itself originates. Everything else is forwarded as received.
extension ByteBuffer {
    /// Starts a typed message and returns where its length goes; pair with `endMessage`.
    public mutating func beginMessage(_ code: UInt8) -> Int {
        write(byte: code)
        let lengthIndex = writeIndex
        write(uint32: 0)
        return lengthIndex
    }

    public mutating func endMessage(lengthAt lengthIndex: Int) {
        set(uint32: UInt32(writeIndex - lengthIndex), at: lengthIndex)
    }

    // MARK: Backend messages, sent to clients

    public mutating func writeAuthenticationOk() { writeAuthentication(code: 0) }

    public mutating func writeAuthenticationCleartextPassword() { writeAuthentication(code: 3) }

    public mutating func writeAuthenticationMD5Password(salt: [UInt8]) {
        let at = beginMessage(BackendMessageCode.authentication.rawValue)
        write(uint32: 5)
        write(bytes: salt)
        endMessage(lengthAt: at)
    }

    public mutating func writeAuthenticationSASL(mechanisms: [String]) {
        let at = beginMessage(BackendMessageCode.authentication.rawValue)
        write(uint32: 10)
        for mechanism in mechanisms { write(cString: mechanism) }
        write(byte: 0)
        endMessage(lengthAt: at)
    }

    public mutating func writeAuthenticationSASLContinue(_ data: [UInt8]) {
        let at = beginMessage(BackendMessageCode.authentication.rawValue)
        write(uint32: 11)
        write(bytes: data)
        endMessage(lengthAt: at)
    }

    public mutating func writeAuthenticationSASLFinal(_ data: [UInt8]) {
        let at = beginMessage(BackendMessageCode.authentication.rawValue)
        write(uint32: 12)
        write(bytes: data)
        endMessage(lengthAt: at)
    }

    private mutating func writeAuthentication(code: UInt32) {
        let at = beginMessage(BackendMessageCode.authentication.rawValue)
        write(uint32: code)
        endMessage(lengthAt: at)
    }

    public mutating func writeParameterStatus(name: String, value: String) {
        let at = beginMessage(BackendMessageCode.parameterStatus.rawValue)
        write(cString: name)
        write(cString: value)
        endMessage(lengthAt: at)
    }

    public mutating func writeBackendKeyData(processID: Int32, secretKey: Int32) {
        let at = beginMessage(BackendMessageCode.backendKeyData.rawValue)
        write(int32: processID)
        write(int32: secretKey)
        endMessage(lengthAt: at)
    }

    /// BackendKeyData with a secret key of any length (protocol 3.2: 4 to 256 bytes).
    public mutating func writeBackendKeyData(processID: Int32, secretKey: [UInt8]) {
        let at = beginMessage(BackendMessageCode.backendKeyData.rawValue)
        write(int32: processID)
        write(bytes: secretKey)
        endMessage(lengthAt: at)
    }

    public mutating func writeReadyForQuery(_ status: TransactionStatus) {
        let at = beginMessage(BackendMessageCode.readyForQuery.rawValue)
        write(byte: status.rawValue)
        endMessage(lengthAt: at)
    }

    /// `newestMinor` is sent as a whole protocol version (major 3 in the high half), as PostgreSQL sends it:
    /// newer libpq reads the field that way and rejects a bare minor number as a downgrade below 3.0.
    public mutating func writeNegotiateProtocolVersion(newestMinor: UInt32, unrecognizedOptions: [String]) {
        let at = beginMessage(BackendMessageCode.negotiateProtocolVersion.rawValue)
        write(uint32: StartupRequestCode.protocol3 | newestMinor)
        write(uint32: UInt32(unrecognizedOptions.count))
        for option in unrecognizedOptions { write(cString: option) }
        endMessage(lengthAt: at)
    }

    public mutating func writeErrorResponse(_ error: ErrorFields) {
        writeNotice(code: BackendMessageCode.errorResponse.rawValue, error)
    }

    public mutating func writeNoticeResponse(_ notice: ErrorFields) {
        writeNotice(code: BackendMessageCode.noticeResponse.rawValue, notice)
    }

    private mutating func writeNotice(code: UInt8, _ fields: ErrorFields) {
        let at = beginMessage(code)
        write(byte: 0x53)  // S: severity, localized
        write(cString: fields.severity)
        write(byte: 0x56)  // V: severity, never localized
        write(cString: fields.severity)
        write(byte: 0x43)  // C: SQLSTATE
        write(cString: fields.sqlState)
        write(byte: 0x4D)  // M: message
        write(cString: fields.message)
        if let detail = fields.detail {
            write(byte: 0x44)  // D
            write(cString: detail)
        }
        if let hint = fields.hint {
            write(byte: 0x48)  // H
            write(cString: hint)
        }
        write(byte: 0)
        endMessage(lengthAt: at)
    }

    // MARK: Frontend messages, sent to servers

    public mutating func writeStartupMessage(parameters: [(String, String)]) {
        let lengthIndex = writeIndex
        write(uint32: 0)
        write(uint32: StartupRequestCode.protocol3)
        for (name, value) in parameters {
            write(cString: name)
            write(cString: value)
        }
        write(byte: 0)
        set(uint32: UInt32(writeIndex - lengthIndex), at: lengthIndex)
    }

    public mutating func writeCancelRequest(processID: Int32, secretKey: Int32) {
        write(uint32: 16)
        write(uint32: StartupRequestCode.cancelRequest)
        write(int32: processID)
        write(int32: secretKey)
    }

    public mutating func writePasswordMessage(_ password: String) {
        let at = beginMessage(FrontendMessageCode.password.rawValue)
        write(cString: password)
        endMessage(lengthAt: at)
    }

    public mutating func writeSASLInitialResponse(mechanism: String, data: [UInt8]) {
        let at = beginMessage(FrontendMessageCode.password.rawValue)
        write(cString: mechanism)
        write(int32: Int32(data.count))
        write(bytes: data)
        endMessage(lengthAt: at)
    }

    public mutating func writeSASLResponse(_ data: [UInt8]) {
        let at = beginMessage(FrontendMessageCode.password.rawValue)
        write(bytes: data)
        endMessage(lengthAt: at)
    }

    public mutating func writeQuery(_ sql: String) {
        let at = beginMessage(FrontendMessageCode.query.rawValue)
        write(cString: sql)
        endMessage(lengthAt: at)
    }

    /// Parse of a statement without parameters.
    public mutating func writeParse(name: String, query: String) {
        let at = beginMessage(FrontendMessageCode.parse.rawValue)
        write(cString: name)
        write(cString: query)
        write(uint16: 0)
        endMessage(lengthAt: at)
    }

    /// Describe of a prepared statement.
    public mutating func writeDescribe(statement name: String) { writeStatementMessage(.describe, name) }

    /// Close of a prepared statement.
    public mutating func writeClose(statement name: String) { writeStatementMessage(.close, name) }

    /// Describe or Close naming a statement (`S`; portals, `P`, are the client's own and pass as they came).
    private mutating func writeStatementMessage(_ code: FrontendMessageCode, _ name: String) {
        let at = beginMessage(code.rawValue)
        write(byte: UInt8(ascii: "S"))
        write(cString: name)
        endMessage(lengthAt: at)
    }

    public mutating func writeSync() {
        let at = beginMessage(FrontendMessageCode.sync.rawValue)
        endMessage(lengthAt: at)
    }

    public mutating func writeTerminate() {
        let at = beginMessage(FrontendMessageCode.terminate.rawValue)
        endMessage(lengthAt: at)
    }
}
