/// Classifies statement texts for read/write routing, caching the answer per text.
///
/// One per event loop, used only from that loop's thread: the cache is unsynchronized, and parsing happens
/// on the calling thread (libpg_query keeps its memory per thread, so several loops may parse at once).
/// Applications send the same few hundred texts over and over (prepared statements, ORMs), so nearly every
/// call after warm-up is one hash lookup.
public final class StatementClassifier {
    /// Texts longer than this are not parsed and count as writes. libpg_query 15 has no stack-depth check
    /// (its `stack_is_too_deep` always says no), and a chain like `1+1+1+…` nests one level per two bytes;
    /// measured, each level takes about 115 bytes of stack in the parser's JSON output, so 16 KiB stays under
    /// 1 MiB of stack, half of the smallest default thread stack glibc gives (2 MiB, when `ulimit -s` is
    /// unlimited). Longer statements are rare and mostly bulk writes.
    public static let defaultMaximumTextLength = 16 * 1024

    /// The cache holds at most this many bytes of statement text (about as much again in bookkeeping), so a
    /// client cycling through large distinct texts cannot grow a loop's memory without bound.
    static let cacheByteLimit = 4 * 1024 * 1024

    public private(set) var hits = 0
    public private(set) var misses = 0

    private var analyzer: StatementAnalyzer
    /// Token storage for the tree being analyzed, kept between texts so that a miss allocates little.
    private var parseTree = ParseTree()
    private let capacity: Int
    private let maximumTextLength: Int
    // Two generations approximate least-recently-used eviction at the cost of one extra lookup on a miss:
    // new entries go to `recent`; when it is half full, it becomes `older` and the previous `older` is
    // dropped. An entry found in `older` moves back to `recent`.
    private var recent: [String: Classification] = [:]
    private var older: [String: Classification] = [:]
    private var recentBytes = 0
    /// Texts a replica refused (SQLSTATE 25006). Kept apart from the cache so that eviction and catalog
    /// reloads do not forget them; bounded by `capacity`.
    private var pinned: Set<String> = []
    /// Classifications shared by the texts of one shape: see `classify(utf8:)`.
    private var shapes: ShapeTable
    private var shapeBuffer: [UInt8] = []
    /// Shapes of pinned texts, which outlive the shape table's resets like `pinned` outlives the cache's.
    private var pinnedShapes: Set<[UInt8]> = []

    /// - Parameters:
    ///   - catalog: what the primary's catalog says; `RoutingCatalog()` until it has been read.
    ///   - capacity: the most texts the cache holds (at least 2).
    ///   - maximumTextLength: longer texts are writes without being parsed (see `defaultMaximumTextLength`).
    public init(catalog: RoutingCatalog, capacity: Int = 4096, maximumTextLength: Int = defaultMaximumTextLength) {
        analyzer = StatementAnalyzer(catalog: catalog)
        shapes = ShapeTable(capacity: max(capacity, 2))
        self.capacity = max(capacity, 2)
        self.maximumTextLength = maximumTextLength
    }

    /// The classification of a statement text as a client sent it (a Query's text, or a Parse's, which may
    /// hold `$1` parameters).
    public func classify(_ text: String) -> Classification {
        if let cached = recent[text] {
            hits += 1
            return cached
        }
        if let cached = older.removeValue(forKey: text) {
            hits += 1
            remember(text, cached)
            return cached
        }
        misses += 1
        let classification =
            pinned.contains(text)
            ? Classification(statementClass: .write(reason: "refused by a replica")) : classifyUncached(text)
        remember(text, classification)
        return classification
    }

    /// The classification of a statement text given as its UTF-8 bytes, without a trailing NUL, as they sit
    /// in a protocol message.
    ///
    /// A single SELECT, INSERT, UPDATE, DELETE, MERGE, VALUES or TABLE statement (or one led by WITH) is
    /// classified by its shape: its text with the literals masked (`StatementShape`). Nothing the classifier
    /// looks at in such a statement (node kinds, clauses, the names of functions, relations, operators and
    /// types, comments) is a literal, so texts that differ only in constants get one answer, and clients that
    /// inline their constants cost a parse per statement, not per execution. Other statements (`SET`,
    /// `EXPLAIN (ANALYZE 'off')`, transaction control), and texts without a shape, are cached by their text.
    public func classify(utf8 bytes: UnsafeRawBufferPointer) -> Classification {
        guard bytes.count <= 4096, StatementShape.mask(bytes, into: &shapeBuffer), Self.isShareable(shapeBuffer)
        else {
            return classify(String(decoding: bytes, as: UTF8.self))
        }
        if let cached = shapeBuffer.withUnsafeBytes({ shapes.value(for: $0) }) {
            hits += 1
            return cached
        }
        var classification = classify(String(decoding: bytes, as: UTF8.self))
        if pinnedShapes.contains(shapeBuffer) {
            classification = Classification(statementClass: .write(reason: "refused by a replica"))
        }
        shapeBuffer.withUnsafeBytes { shapes.set(classification, for: $0) }
        return classification
    }

    /// Whether texts of this shape may share a classification: one statement of a kind whose class no literal
    /// can change. The shape keeps comments, so the first word is found after any leading ones.
    static func isShareable(_ shape: [UInt8]) -> Bool {
        var i = 0
        while i < shape.count {
            let byte = shape[i]
            if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\t")
                || byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "(")
            {
                i += 1
            } else if byte == UInt8(ascii: "-") && i + 1 < shape.count && shape[i + 1] == UInt8(ascii: "-") {
                while i < shape.count && shape[i] != UInt8(ascii: "\n") { i += 1 }
            } else if byte == UInt8(ascii: "/") && i + 1 < shape.count && shape[i + 1] == UInt8(ascii: "*") {
                // Comments that nest are rare here: anything but a simple one makes the shape unshareable.
                var j = i + 2
                while j + 1 < shape.count && !(shape[j] == UInt8(ascii: "*") && shape[j + 1] == UInt8(ascii: "/")) {
                    if shape[j] == UInt8(ascii: "/") && shape[j + 1] == UInt8(ascii: "*") { return false }
                    j += 1
                }
                i = j + 2
            } else {
                break
            }
        }
        var end = i
        while end < shape.count && (shape[end] | 0x20 >= UInt8(ascii: "a") && shape[end] | 0x20 <= UInt8(ascii: "z")) {
            end += 1
        }
        guard end > i, end - i <= 6, end == shape.count || !isWordByte(shape[end]) else { return false }
        var word: UInt64 = 0
        for byte in shape[i..<end] { word = word << 8 | UInt64(byte | 0x20) }
        guard shareableFirstWords.contains(word) else { return false }
        // One statement: a semicolon may only end it.
        if let semicolon = shape.firstIndex(of: UInt8(ascii: ";")) {
            for byte in shape[(semicolon + 1)...]
            where
                !(byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\t")
                || byte == UInt8(ascii: "\r"))
            {
                return false
            }
        }
        return true
    }

    private static func isWordByte(_ byte: UInt8) -> Bool {
        (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "z")) || byte == UInt8(ascii: "_")
            || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "$") || byte >= 0x80
    }

    /// SELECT, INSERT, UPDATE, DELETE, MERGE, WITH, VALUES, TABLE, lowercased and packed into an integer.
    private static let shareableFirstWords: Set<UInt64> = Set(
        ["select", "insert", "update", "delete", "merge", "with", "values", "table"].map { word in
            word.utf8.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        })

    /// Uses a newly read catalog from now on. Every cached answer may have changed, so the cache is cleared;
    /// pinned texts stay pinned.
    public func replaceCatalog(_ catalog: RoutingCatalog) {
        analyzer = StatementAnalyzer(catalog: catalog)
        shapes.removeAll()
        recent.removeAll()
        older.removeAll()
        recentBytes = 0
    }

    /// A replica refused `text` as a write (SQLSTATE 25006, read_only_sql_transaction): the classifier
    /// thought it read-only, the server knew better (a mislabelled function, say). From now on it is a write,
    /// and any hint in it is ignored, since following a replica hint would fail the same way.
    public func pinToPrimary(_ text: String) {
        if pinned.count >= capacity, let any = pinned.first { pinned.remove(any) }
        pinned.insert(text)
        let classification = Classification(statementClass: .write(reason: "refused by a replica"))
        // The other texts of its shape would be refused alike.
        var text = text
        text.withUTF8 { bytes in
            let raw = UnsafeRawBufferPointer(bytes)
            guard StatementShape.mask(raw, into: &shapeBuffer), Self.isShareable(shapeBuffer) else { return }
            if pinnedShapes.count >= capacity, let any = pinnedShapes.first { pinnedShapes.remove(any) }
            pinnedShapes.insert(shapeBuffer)
            shapeBuffer.withUnsafeBytes { shapes.set(classification, for: $0) }
        }
        older.removeValue(forKey: text)
        if recent[text] != nil {
            recent[text] = classification
        } else {
            remember(text, classification)
        }
    }

    private func remember(_ text: String, _ classification: Classification) {
        let size = text.utf8.count
        guard size <= Self.cacheByteLimit / 4 else { return }
        if recent.count >= capacity / 2 || recentBytes + size > Self.cacheByteLimit / 2 {
            older = recent
            recent = [:]
            recent.reserveCapacity(capacity / 2)
            recentBytes = 0
        }
        recent[text] = classification
        recentBytes += size
    }

    /// Parses and classifies without the cache. Never traps: anything the parser or the reader refuses is
    /// a write.
    func classifyUncached(_ text: String) -> Classification {
        var text = text
        return text.withUTF8 { bytes in
            guard bytes.count <= maximumTextLength else {
                return Classification(statementClass: .write(reason: "too long to classify"))
            }
            // The C API takes a NUL-terminated string; a NUL inside would silently cut the text short.
            guard !bytes.contains(0) else { return Classification(statementClass: .write(reason: "not parsable")) }
            return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: bytes.count + 1) { buffer in
                _ = buffer.initialize(fromContentsOf: bytes)
                buffer[bytes.count] = 0
                let terminated = UnsafeBufferPointer(rebasing: buffer[..<bytes.count])
                let hint = RouteHintScanner.hint(in: terminated)
                let pointer = UnsafeRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self)
                let statementClass = PgQuery.withParseTree(pointer) { json in
                    guard let json, let analyzed = try? parseTree.read(json: json, analyzer.classify(tree:)) else {
                        return StatementClass.write(reason: "not parsable")
                    }
                    return analyzed
                }
                return Classification(statementClass: statementClass, hint: hint)
            }
        }
    }
}
