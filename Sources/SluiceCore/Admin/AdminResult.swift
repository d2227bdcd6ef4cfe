/// A result the admin console sends: a RowDescription, DataRows and a CommandComplete, with PgBouncer's column
/// types so that exporters reading the type OIDs see what they would see from PgBouncer.
public struct AdminResult: Sendable {
    /// The column types PgBouncer's console uses, by the letter of its row format.
    public enum ColumnType: Sendable {
        /// `s`: text.
        case text
        /// `i`: int4.
        case int4
        /// `q`: int8.
        case int8
        /// `N`: numeric, which every statistics counter is.
        case numeric
        /// `T`: a time written as text, `YYYY-MM-DD HH:MM:SS TZ` in local time.
        case timestamp

        var typeOID: UInt32 {
            switch self {
            case .text, .timestamp: 25
            case .int4: 23
            case .int8: 20
            case .numeric: 1700
            }
        }

        var typeSize: Int16 {
            switch self {
            case .int4: 4
            case .int8: 8
            case .text, .timestamp, .numeric: -1
            }
        }
    }

    public struct Column: Sendable, Equatable {
        public var name: String
        public var type: ColumnType

        public init(_ name: String, _ type: ColumnType) {
            self.name = name
            self.type = type
        }
    }

    public var columns: [Column]
    /// Values as text (the console answers in text format); nil is SQL NULL.
    public var rows: [[String?]] = []
    /// The CommandComplete tag.
    public var tag = "SHOW"
    /// NoticeResponses sent before the rows (`SHOW HELP` answers with one).
    public var notices: [String] = []

    public init(columns: [Column], rows: [[String?]] = [], tag: String = "SHOW") {
        self.columns = columns
        self.rows = rows
        self.tag = tag
    }

    /// A reply that is only a command tag (and notices): RESUME, RELOAD, SET, …
    public static func command(_ tag: String, notice: String? = nil) -> AdminResult {
        var result = AdminResult(columns: [], tag: tag)
        if let notice { result.notices = [notice] }
        return result
    }

    /// The columns as given, in order, with the type letters of PgBouncer's row formats (`s`, `i`, `q`, `N`,
    /// `T`): how the views declare themselves, so each reads like the format string in PgBouncer's source.
    public static func columns(_ names: [String], format: String) -> [Column] {
        precondition(names.count == format.count, "\(names.count) names for format \(format)")
        return zip(names, format).map { name, letter in
            switch letter {
            case "s": Column(name, .text)
            case "i": Column(name, .int4)
            case "q": Column(name, .int8)
            case "N": Column(name, .numeric)
            case "T": Column(name, .timestamp)
            default: preconditionFailure("unknown column type letter \(letter)")
            }
        }
    }

    /// Appends the whole reply, up to but not including ReadyForQuery.
    public func encode(into buffer: inout ByteBuffer) {
        for notice in notices {
            buffer.writeNoticeResponse(ErrorFields(severity: "NOTICE", sqlState: "00000", message: notice))
        }
        if !columns.isEmpty {
            let at = buffer.beginMessage(BackendMessageCode.rowDescription.rawValue)
            buffer.write(uint16: UInt16(columns.count))
            for column in columns {
                buffer.write(cString: column.name)
                buffer.write(uint32: 0)  // table OID
                buffer.write(uint16: 0)  // column number
                buffer.write(uint32: column.type.typeOID)
                buffer.write(uint16: UInt16(bitPattern: column.type.typeSize))
                buffer.write(uint32: UInt32(bitPattern: -1))  // type modifier
                buffer.write(uint16: 0)  // text format
            }
            buffer.endMessage(lengthAt: at)
            for row in rows {
                let rowAt = buffer.beginMessage(BackendMessageCode.dataRow.rawValue)
                buffer.write(uint16: UInt16(row.count))
                for value in row {
                    if let value {
                        let bytes = Array(value.utf8)
                        buffer.write(uint32: UInt32(bytes.count))
                        buffer.write(bytes: bytes)
                    } else {
                        buffer.write(uint32: UInt32(bitPattern: -1))
                    }
                }
                buffer.endMessage(lengthAt: rowAt)
            }
        }
        let completeAt = buffer.beginMessage(BackendMessageCode.commandComplete.rawValue)
        buffer.write(cString: tag)
        buffer.endMessage(lengthAt: completeAt)
    }
}
