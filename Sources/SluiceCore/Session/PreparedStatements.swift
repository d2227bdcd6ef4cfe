/// A named statement a client prepared with Parse, kept by Sluice so that it can be prepared on
/// whichever server the client is lent in transaction pooling.
public final class PreparedStatement: Sendable, Equatable {
    /// The statement's name on servers. It is derived from the statement's text and parameter types,
    /// so clients that prepare the same statement under any name share one copy on each server.
    public let serverName: String
    /// The client's Parse message with `serverName` as its name: what a server that lacks the
    /// statement is sent.
    public let parseMessage: [UInt8]
    /// Where the query text lies in `parseMessage`: routing classifies it on every Bind.
    private let queryRange: Range<Int>
    /// What running the statement may do to the session, read from its text once.
    public let sessionScan: SessionTextScan

    /// Bytes this statement holds, counted against the client's statements (`SHOW` and the log).
    public var memoryFootprint: Int { parseMessage.count + serverName.utf8.count + 64 }

    /// Makes the statement from the body of the client's Parse message after its name: the query string
    /// with its terminator, then the parameter count and types, exactly as they will go to servers.
    public init(queryAndTypes: ArraySlice<UInt8>) {
        // 128 bits of SHA-256: a collision would have to be built on purpose, and even then it would
        // only let a client run a statement another client of the same pool could prepare itself.
        let digest = Crypto.sha256(Array(queryAndTypes))
        serverName = Self.namePrefix + Crypto.hex(Array(digest[0..<16]))
        var message: [UInt8] = []
        let length = 4 + serverName.utf8.count + 1 + queryAndTypes.count
        message.reserveCapacity(1 + length)
        message.append(FrontendMessageCode.parse.rawValue)
        withUnsafeBytes(of: UInt32(length).bigEndian) { message.append(contentsOf: $0) }
        message.append(contentsOf: serverName.utf8)
        message.append(0)
        message.append(contentsOf: queryAndTypes)
        parseMessage = message
        let start = 1 + 4 + serverName.utf8.count + 1
        queryRange = start..<(message[start...].firstIndex(of: 0) ?? message.endIndex)
        sessionScan = queryAndTypes.withUnsafeBytes { SessionTextScan($0) }
    }

    /// The statement's SQL text as the client sent it, without copying it.
    public var queryBytes: ArraySlice<UInt8> { parseMessage[queryRange] }

    /// Every statement Sluice prepares on a server is named with this prefix.
    public static let namePrefix = "sluice_"

    public static func == (lhs: PreparedStatement, rhs: PreparedStatement) -> Bool { lhs === rhs }
}

/// The parts of a Parse message body Sluice needs: the statement name, and where the rest begins.
public struct ParseMessageBody: Equatable, Sendable {
    public var name: String
    /// Offset in the body of the query string.
    public var queryOffset: Int

    /// Reads the name of a complete Parse body and checks the rest is well formed. Nil when it is not:
    /// such a message goes to the server unchanged, which rejects it as PostgreSQL does.
    public init?(_ body: ArraySlice<UInt8>) {
        guard let nameEnd = body.firstIndex(of: 0), let queryEnd = body[(nameEnd + 1)...].firstIndex(of: 0),
            body.endIndex - queryEnd - 1 >= 2
        else { return nil }
        let countIndex = queryEnd + 1
        let parameterCount = Int(body[countIndex]) << 8 | Int(body[countIndex + 1])
        guard body.endIndex - countIndex - 2 == parameterCount * 4 else { return nil }
        name = String(decoding: body[body.startIndex..<nameEnd], as: UTF8.self)
        queryOffset = nameEnd + 1 - body.startIndex
    }
}

/// The statements Sluice has prepared on one server, at most `capacity` (`max_prepared_statements`)
/// of them: when one more is needed the least recently used is closed, unless it was used in the
/// transaction under way, whose portals would close with it.
public struct ServerStatementCache: Sendable {
    public var capacity: Int
    private var lastUse: [String: UInt64] = [:]
    private var clock: UInt64 = 0
    /// Uses at or after this tick belong to the transaction under way.
    private var transactionStart: UInt64 = 0

    public init(capacity: Int) {
        self.capacity = capacity
    }

    public var count: Int { lastUse.count }

    public func contains(_ name: String) -> Bool { lastUse[name] != nil }

    /// The statement is used now (Bind or Describe): it becomes the most recently used.
    public mutating func use(_ name: String) {
        clock += 1
        lastUse[name] = clock
    }

    /// Records that `name` is being prepared. Returns the statement to close first, if the cache is full
    /// and one can go.
    public mutating func insert(_ name: String) -> String? {
        var evicted: String?
        if lastUse.count >= capacity, let oldest = lastUse.min(by: { $0.value < $1.value }),
            oldest.value < transactionStart
        {
            lastUse[oldest.key] = nil
            evicted = oldest.key
        }
        use(name)
        return evicted
    }

    /// The statement is gone from the server, or was never prepared there.
    public mutating func remove(_ name: String) {
        lastUse[name] = nil
    }

    public mutating func removeAll() {
        lastUse.removeAll()
    }

    /// The server finished a transaction and nothing else is owed: statements used so far may be closed
    /// from now on. (With requests of a pipeline still on their way, one of them may have bound a portal.)
    public mutating func transactionEnded() {
        transactionStart = clock + 1
    }
}

/// How a simple Query's text may affect prepared statements, judged from its words alone.
public enum StatementRelease: Equatable, Sendable {
    /// Neither DEALLOCATE nor DISCARD appears.
    case none
    /// DEALLOCATE or DISCARD appears somewhere: the server may drop statements, and Sluice stops assuming
    /// it has any. (A false alarm only costs preparing them again.)
    case mayRelease
    /// The query begins with `DEALLOCATE [PREPARE] ALL` or `DISCARD ALL`, which drop the client's own
    /// statements as well on a direct connection.
    case releasesAll

    /// Classifies the query text (what has arrived of it). Case-insensitive, no parsing.
    public static func classify(_ text: ArraySlice<UInt8>) -> StatementRelease {
        guard containsWord("deallocate", in: text) || containsWord("discard", in: text) else { return .none }
        let words = text.split(whereSeparator: { $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D || $0 == 0 })
            .prefix(3).map { word in
                String(decoding: word.last == 0x3B ? word.dropLast() : word, as: UTF8.self).lowercased()
            }
        let releasesAll =
            words.starts(with: ["discard", "all"]) || words.starts(with: ["deallocate", "all"])
            || words.starts(with: ["deallocate", "prepare", "all"])
        return releasesAll ? .releasesAll : .mayRelease
    }

    /// The statement name when `text` is exactly one `DEALLOCATE [PREPARE] name` (an optional semicolon
    /// and white space or comments around it), as PostgreSQL reads the name: folded to lower case
    /// unless quoted. Nil for anything else, `DEALLOCATE ALL` included.
    public static func deallocatedName(_ text: UnsafeRawBufferPointer) -> String? {
        SQLLexer.singleDeallocate(text)
    }

    /// Whether `word` (lower-case ASCII) occurs in `text`, in any case.
    private static func containsWord(_ word: StaticString, in text: ArraySlice<UInt8>) -> Bool {
        let length = word.utf8CodeUnitCount
        guard text.count >= length else { return false }
        let first = word.utf8Start[0]
        var i = text.startIndex
        let last = text.endIndex - length
        while i <= last {
            if text[i] | 0x20 == first {
                var j = 1
                while j < length && text[i + j] | 0x20 == word.utf8Start[j] { j += 1 }
                if j == length { return true }
            }
            i += 1
        }
        return false
    }
}
