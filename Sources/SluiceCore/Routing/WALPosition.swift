/// A position in the write-ahead log (PostgreSQL's `pg_lsn`), written `X/Y` with the high and low 32 bits in
/// hexadecimal. Read-your-writes compares a replica's replay position with the primary's position after a
/// client's write, so the comparison must be exact: positions are plain 64-bit byte offsets.
public struct WALPosition: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var offset: UInt64

    public init(_ offset: UInt64) {
        self.offset = offset
    }

    /// Parses PostgreSQL's text form; nil for anything else (a NULL, or a malformed value).
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, (1...8).contains(parts[0].count), (1...8).contains(parts[1].count),
            let high = UInt64(parts[0], radix: 16), let low = UInt64(parts[1], radix: 16)
        else { return nil }
        offset = high << 32 | low
    }

    public var description: String {
        String(offset >> 32, radix: 16, uppercase: true) + "/"
            + String(offset & 0xFFFF_FFFF, radix: 16, uppercase: true)
    }

    public static func < (lhs: WALPosition, rhs: WALPosition) -> Bool { lhs.offset < rhs.offset }

    /// Bytes from `earlier` to `self`; 0 when `earlier` is not earlier.
    public func bytes(since earlier: WALPosition) -> UInt64 {
        offset > earlier.offset ? offset - earlier.offset : 0
    }
}
