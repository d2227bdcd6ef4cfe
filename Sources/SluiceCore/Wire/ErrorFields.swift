/// The fields of an ErrorResponse or NoticeResponse that Sluice reads or writes.
public struct ErrorFields: Error, Sendable, Equatable, CustomStringConvertible {
    public var severity: String
    public var sqlState: String
    public var message: String
    public var detail: String?
    public var hint: String?

    public init(
        severity: String = "ERROR", sqlState: String, message: String, detail: String? = nil, hint: String? = nil
    ) {
        self.severity = severity
        self.sqlState = sqlState
        self.message = message
        self.detail = detail
        self.hint = hint
    }

    public static func fatal(_ sqlState: SQLState, _ message: String, hint: String? = nil) -> ErrorFields {
        ErrorFields(severity: "FATAL", sqlState: sqlState.rawValue, message: message, hint: hint)
    }

    public static func error(_ sqlState: SQLState, _ message: String, hint: String? = nil) -> ErrorFields {
        ErrorFields(severity: "ERROR", sqlState: sqlState.rawValue, message: message, hint: hint)
    }

    /// Decodes an ErrorResponse or NoticeResponse body: (field byte, String)* terminated by a zero byte.
    public init(decoding body: ArraySlice<UInt8>) throws(ProtocolViolation) {
        var reader = PayloadReader(body)
        var severity = "ERROR"
        var sqlState = "XX000"
        var message = ""
        var detail: String?
        var hint: String?
        while true {
            let field = try reader.readByte()
            if field == 0 { break }
            let value = try reader.readCString()
            switch field {
            case 0x56: severity = value  // V wins over the localized S
            case 0x53 where severity == "ERROR": severity = value
            case 0x43: sqlState = value
            case 0x4D: message = value
            case 0x44: detail = value
            case 0x48: hint = value
            default: break
            }
        }
        try reader.finish()
        self.init(severity: severity, sqlState: sqlState, message: message, detail: detail, hint: hint)
    }

    public var description: String { "\(severity) \(sqlState) \(message)" }
}

/// SQLSTATE codes Sluice reports itself (PostgreSQL "Appendix A. Error Codes").
public enum SQLState: String, Sendable {
    case protocolViolation = "08P01"
    case connectionFailure = "08006"
    case sqlclientUnableToEstablishConnection = "08001"
    case connectionException = "08000"
    case invalidAuthorizationSpecification = "28000"
    case invalidPassword = "28P01"
    case invalidCatalogName = "3D000"
    case tooManyConnections = "53300"
    case configurationLimitExceeded = "53400"
    case queryCanceled = "57014"
    case adminShutdown = "57P01"
    case cannotConnectNow = "57P03"
    case featureNotSupported = "0A000"
    case programLimitExceeded = "54000"
    case internalError = "XX000"
    case insufficientPrivilege = "42501"
    case syntaxError = "42601"
    case objectNotInPrerequisiteState = "55000"
    case invalidParameterValue = "22023"
    case configFileError = "F0000"
    case undefinedObject = "42704"
    case duplicatePreparedStatement = "42P05"
    case invalidSQLStatementName = "26000"
    case inFailedSQLTransaction = "25P02"
    case readOnlySQLTransaction = "25006"
}
