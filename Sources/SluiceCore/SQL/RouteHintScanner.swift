/// Finds a routing hint, `/* sluice: primary */` or `-- sluice: replica`, in the comments of a statement text.
///
/// A comment is a hint when its content, without the comment markers and surrounding whitespace, is
/// `sluice:` followed by `primary` or `replica` (ASCII case ignored, spaces after the colon optional).
/// Comments with anything else in them are not hints, so prose that happens to mention Sluice stays prose.
/// Comments are found by PostgreSQL's lexer, so a hint-shaped string literal is not a hint.
enum RouteHintScanner {
    /// The hint in `text` (its UTF-8 bytes, NUL-terminated at `bytes.count`), if any. The lexer runs only
    /// when the bytes contain "sluice" in some case, which almost no statement does.
    static func hint(in bytes: UnsafeBufferPointer<UInt8>) -> RouteHint? {
        guard containsSluice(bytes), let base = bytes.baseAddress else { return nil }
        let text = UnsafeRawPointer(base).assumingMemoryBound(to: CChar.self)
        guard let ranges = PgQuery.commentRanges(text) else { return nil }
        var found: RouteHint?
        for range in ranges where range.upperBound <= bytes.count {
            switch hint(inComment: UnsafeBufferPointer(rebasing: bytes[range])) {
            case .primary?: return .primary
            case .replica?: found = .replica
            case nil: continue
            }
        }
        return found
    }

    /// The hint a whole comment token (markers included) spells, if it spells one.
    static func hint(inComment comment: UnsafeBufferPointer<UInt8>) -> RouteHint? {
        var content = comment[...]
        if content.starts(with: "--".utf8) {
            content = content.dropFirst(2)
        } else if content.starts(with: "/*".utf8), content.count >= 4 {
            content = content.dropFirst(2).dropLast(2)
        } else {
            return nil
        }
        content = trimmed(content)
        let prefix = "sluice:".utf8
        guard content.count > prefix.count, equalIgnoringASCIICase(content.prefix(prefix.count), prefix) else {
            return nil
        }
        let value = trimmed(content.dropFirst(prefix.count))
        if equalIgnoringASCIICase(value, "primary".utf8) { return .primary }
        if equalIgnoringASCIICase(value, "replica".utf8) { return .replica }
        return nil
    }

    private static func containsSluice(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let needle = Array("sluice".utf8)
        guard bytes.count >= needle.count else { return false }
        for start in 0...(bytes.count - needle.count) where bytes[start] | 0x20 == needle[0] {
            if equalIgnoringASCIICase(bytes[start..<(start + needle.count)], needle) { return true }
        }
        return false
    }

    private static func trimmed(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> Slice<UnsafeBufferPointer<UInt8>> {
        var result = bytes
        while let first = result.first, isSpace(first) { result = result.dropFirst() }
        while let last = result.last, isSpace(last) { result = result.dropLast() }
        return result
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || (0x09...0x0D).contains(byte)
    }

    /// Compares with ASCII letters folded to lower case; `expected` must already be lower case.
    private static func equalIgnoringASCIICase(
        _ bytes: Slice<UnsafeBufferPointer<UInt8>>, _ expected: some Collection<UInt8>
    ) -> Bool {
        guard bytes.count == expected.count else { return false }
        for (byte, wanted) in zip(bytes, expected) {
            let folded = (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
            guard folded == wanted else { return false }
        }
        return true
    }
}
