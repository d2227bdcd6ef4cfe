/// The body of a DataRow ('D'): a column count, then each column as a length (-1 for NULL) and its bytes.
/// Sluice reads rows only of its own queries, which return text.
public enum DataRowBody {
    /// Every column as UTF-8 text, NULL as nil. Throws when the body is not exactly that.
    public static func textColumns(_ body: ArraySlice<UInt8>) throws(ProtocolViolation) -> [String?] {
        var reader = PayloadReader(body)
        let count = Int(try reader.readUInt16())
        var columns: [String?] = []
        columns.reserveCapacity(count)
        for _ in 0..<count {
            let length = try reader.readInt32()
            columns.append(length < 0 ? nil : String(decoding: try reader.readBytes(Int(length)), as: UTF8.self))
        }
        guard reader.readRest().isEmpty else { throw ProtocolViolation("DataRow longer than its columns") }
        return columns
    }
}
