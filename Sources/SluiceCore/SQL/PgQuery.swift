import CPgQuery
import Glibc

/// The two calls into libpg_query the classifier makes: parse a text into a tree, and find its comments.
///
/// Both are safe to call from several threads at once (the library keeps its state per thread, see the
/// CPgQuery shim), but neither bounds its recursion: callers pass only texts of bounded length.
enum PgQuery {
    /// Parses `text` and passes libpg_query's JSON of its parse tree
    /// (`{"version":…,"stmts":[{"stmt":{"SelectStmt":…}}]}`) to `body`, or nil when PostgreSQL's grammar
    /// rejects the text. The bytes are the library's and are freed when `body` returns.
    static func withParseTree<Result>(
        _ text: UnsafePointer<CChar>, _ body: (UnsafeBufferPointer<UInt8>?) -> Result
    ) -> Result {
        let result = pg_query_parse(text)
        defer { pg_query_free_parse_result(result) }
        guard result.error == nil, let tree = result.parse_tree else { return body(nil) }
        return body(
            UnsafeBufferPointer(start: UnsafeRawPointer(tree).assumingMemoryBound(to: UInt8.self), count: strlen(tree)))
    }

    /// The byte ranges of the comments in `text`, as PostgreSQL's own lexer sees them, so that text inside
    /// string literals, quoted identifiers and dollar quotes never counts. Nil when the lexer rejects the text
    /// (an unterminated quote or comment, say).
    ///
    /// The scanner's only output is protobuf, and this build exports no unpackers; the message is simple
    /// enough to read directly: `ScanResult { int32 version = 1; repeated ScanToken tokens = 2; }` and
    /// `ScanToken { int32 start = 1; int32 end = 2; Token token = 4; KeywordKind keyword_kind = 5; }`,
    /// where `end` is exclusive and token 275 is a `--` comment, 276 a `/* */` one.
    static func commentRanges(_ text: UnsafePointer<CChar>) -> [Range<Int>]? {
        let result = pg_query_scan(text)
        defer { pg_query_free_scan_result(result) }
        guard result.error == nil else { return nil }
        guard let data = result.pbuf.data else { return [] }
        let bytes = UnsafeBufferPointer(
            start: UnsafeRawPointer(data).assumingMemoryBound(to: UInt8.self), count: result.pbuf.len)
        var ranges: [Range<Int>] = []
        var message = ProtobufReader(bytes: bytes[...])
        while let field = message.nextField() {
            guard field.number == 2, case .bytes(let tokenBytes) = field.value else { continue }
            var token = ProtobufReader(bytes: tokenBytes)
            var start = 0
            var end = 0
            var kind: UInt64 = 0
            while let tokenField = token.nextField() {
                guard case .varint(let value) = tokenField.value else { continue }
                switch tokenField.number {
                case 1: start = Int(truncatingIfNeeded: value)
                case 2: end = Int(truncatingIfNeeded: value)
                case 4: kind = value
                default: break
                }
            }
            guard !token.failed else { return nil }
            if kind == 275 || kind == 276, start >= 0, start <= end {
                ranges.append(start..<end)
            }
        }
        return message.failed ? nil : ranges
    }
}
