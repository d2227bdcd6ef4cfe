import Glibc

/// Session state a client's SQL may leave on a server beyond its transaction, as far as the text shows.
///
/// In transaction pooling a client's next transaction may run on another server, and another client
/// may get this one. Sluice does not parse SQL to learn what changed: a cheap scan of the text
/// (``SessionTextScan``) says only whether something may have, and after such a transaction Sluice asks
/// the server (``SessionCheck``). The server applies transaction semantics (ROLLBACK, savepoints,
/// `SET LOCAL`, an aborted COMMIT) better than any imitation could.
public struct SessionEffects: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// `SET`, `RESET`, `DISCARD` or `set_config` not known to be local to the transaction.
    public static let settings = SessionEffects(rawValue: 1 << 0)
    /// `LISTEN`.
    public static let listen = SessionEffects(rawValue: 1 << 1)
    /// A session-level advisory lock function.
    public static let advisoryLock = SessionEffects(rawValue: 1 << 2)
    /// `CREATE TEMP …`, `SELECT … INTO TEMP`.
    public static let temporaryObject = SessionEffects(rawValue: 1 << 3)
    /// `DECLARE … WITH HOLD`.
    public static let holdCursor = SessionEffects(rawValue: 1 << 4)
    /// SQL `PREPARE`.
    public static let sqlPrepare = SessionEffects(rawValue: 1 << 5)
    /// Something that may end state held so far (`UNLISTEN`, `DROP`, `CLOSE`, `DEALLOCATE`, `DISCARD`,
    /// advisory unlock): worth asking again whether the client still needs its server.
    public static let mayRelease = SessionEffects(rawValue: 1 << 6)

    /// Effects that can create state which ties a client to its server.
    public static let creatingPins: SessionEffects = [
        .listen, .advisoryLock, .temporaryObject, .holdCursor, .sqlPrepare,
    ]
}

/// State that lives in one server process and cannot be recreated on another, so a client holding any
/// stays on its server (is pinned) until it is gone.
public struct SessionPins: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// `SET ROLE`: handing the server to another client would hand over the role.
    public static let role = SessionPins(rawValue: 1 << 0)
    /// `SET SESSION AUTHORIZATION`, seen in the server's ParameterStatus.
    public static let sessionAuthorization = SessionPins(rawValue: 1 << 1)
    /// Channels listened on: notifications arrive on this connection only.
    public static let listen = SessionPins(rawValue: 1 << 2)
    public static let advisoryLock = SessionPins(rawValue: 1 << 3)
    public static let temporaryObject = SessionPins(rawValue: 1 << 4)
    public static let holdCursor = SessionPins(rawValue: 1 << 5)
    public static let sqlPrepare = SessionPins(rawValue: 1 << 6)
    /// Sluice's own check of the session failed: what the server holds is unknown.
    public static let unknown = SessionPins(rawValue: 1 << 7)

    /// Which effect a check looks for to learn whether each pin holds (`SET ROLE` is among the settings).
    private static let checkedByEffect: [(SessionEffects, SessionPins)] = [
        (.settings, .role), (.listen, .listen), (.advisoryLock, .advisoryLock),
        (.temporaryObject, .temporaryObject), (.holdCursor, .holdCursor), (.sqlPrepare, .sqlPrepare),
    ]

    /// The pins a check covers when it looks for these effects.
    init(checkedBy effects: SessionEffects) {
        var pins: SessionPins = []
        for (effect, pin) in Self.checkedByEffect where effects.contains(effect) { pins.insert(pin) }
        self = pins
    }

    /// The effects a check must look for to learn whether these pins still hold.
    var effectsToRecheck: SessionEffects {
        var effects: SessionEffects = []
        for (effect, pin) in Self.checkedByEffect where contains(pin) { effects.insert(effect) }
        return effects
    }

    public var description: String {
        let names: [(SessionPins, String)] = [
            (.role, "SET ROLE"), (.sessionAuthorization, "SET SESSION AUTHORIZATION"), (.listen, "LISTEN"),
            (.advisoryLock, "advisory lock"), (.temporaryObject, "temporary table"), (.holdCursor, "WITH HOLD cursor"),
            (.sqlPrepare, "SQL PREPARE"), (.unknown, "unchecked session state"),
        ]
        return names.filter { contains($0.0) }.map(\.1).joined(separator: ", ")
    }
}

/// Settings a session holds beyond its defaults, by lower-case name: what Sluice replays on another server.
public typealias SessionSettings = [String: (name: String, value: String)]

/// What a statement text may do to the session, found by a lexical scan (comments, quoted strings and
/// identifiers, dollar quotes and statement boundaries are honoured; nothing is parsed).
public struct SessionTextScan: Sendable {
    public var effects: SessionEffects = []
    /// Names of custom settings (`app.tenant`) the text sets or resets. PostgreSQL lists those in
    /// `pg_settings` only once an extension defines them, so the check has to ask for each by name.
    public var customNames: [String] = []

    public init() {}

    /// Scans `text`, a Query's or Parse's statement text; a zero byte ends it. `quickTest: false` skips
    /// the quick test and always runs the lexer (for tests that hold the two to the same answer).
    public init(_ text: UnsafeRawBufferPointer, quickTest: Bool = true) {
        if quickTest && !SQLLexer.mayAffectSession(text) { return }
        var lexer = SQLLexer(text)
        var statement = StatementScan()
        while let token = lexer.next() {
            if case .semicolon = token {
                statement.finish(lexer: lexer, into: &self)
                statement = StatementScan()
                continue
            }
            statement.consume(token, lexer: lexer, into: &self)
        }
        statement.finish(lexer: lexer, into: &self)
    }

    public init(_ text: [UInt8]) {
        self = text.withUnsafeBytes { SessionTextScan($0) }
    }

    /// A text Sluice could not read whole (it streamed past): anything may have changed.
    public static let unread: SessionTextScan = {
        var scan = SessionTextScan()
        scan.effects = [.settings, .mayRelease]
        return scan
    }()

    mutating func addCustomName(_ name: String) {
        guard name.utf8.contains(UInt8(ascii: ".")) else { return }
        let key = name.lowercased()
        if !customNames.contains(key) { customNames.append(key) }
    }
}

/// Follows one statement's tokens for the few shapes that matter. Everything it holds is plain data (text
/// positions, not strings), so following a statement costs no reference counting.
private struct StatementScan {
    private enum Leading {
        case none, set, reset, create, declare, other
    }
    private var leading: Leading = .none
    private var index = 0
    /// The setting name after `SET` / `RESET`, as a span of the text (`app . "X"` parts included).
    private var name: Range<Int>?
    private var nameIsDotted = false
    private var collectingName = false
    private var nameWantsPart = false
    private var previousWasInto = false
    /// A `set_config(` call being followed.
    private var setConfig: SetConfigCall?

    private struct SetConfigCall {
        var depth = 0
        var argument = 0
        /// The first argument, when it is a string literal.
        var name: Range<Int>?
        var thirdArgumentTokens = 0
        var thirdIsTrue = false
        var sawParenthesis = false
    }

    mutating func consume(_ token: SQLToken, lexer: SQLLexer, into scan: inout SessionTextScan) {
        defer { index += 1 }
        if setConfig != nil {
            followSetConfig(token, lexer: lexer, into: &scan)
            return
        }
        if collectingName {
            switch token {
            case .word(_, let range), .quotedIdentifier(let range):
                if nameWantsPart, let current = name {
                    name = current.lowerBound..<range.upperBound
                    nameWantsPart = false
                    return
                }
            case .punctuation(UInt8(ascii: ".")):
                if !nameWantsPart {
                    nameWantsPart = true
                    nameIsDotted = true
                    return
                }
            default:
                break
            }
            endName(lexer: lexer, into: &scan)
        }
        switch token {
        case .word(let word, let range):
            if index == 0 {
                startStatement(word, into: &scan)
                return
            }
            switch leading {
            case .set where index == 1:
                switch word {
                case .local, .transaction, .constraints:
                    // Ends with the transaction: nothing for the session.
                    leading = .other
                case .session:
                    scan.effects.insert(.settings)
                default:
                    scan.effects.insert(.settings)
                    startName(range)
                }
            case .set where index == 2:
                if word != .authorization && word != .characteristics { startName(range) }
            case .reset where index == 1:
                if word != .all { startName(range) }
            case .create:
                if word == .temp || word == .temporary { scan.effects.insert(.temporaryObject) }
            case .declare:
                if word == .hold { scan.effects.insert(.holdCursor) }
            default:
                break
            }
            if previousWasInto && (word == .temp || word == .temporary) { scan.effects.insert(.temporaryObject) }
            previousWasInto = word == .into
            switch word {
            case .setConfig:
                setConfig = SetConfigCall()
            case .advisoryLock:
                scan.effects.insert(.advisoryLock)
            case .advisoryUnlock:
                scan.effects.insert(.mayRelease)
            default:
                break
            }
        case .quotedIdentifier(let range):
            if leading == .set && (index == 1 || index == 2) || leading == .reset && index == 1 {
                scan.effects.insert(.settings)
                startName(range)
            }
            previousWasInto = false
        default:
            previousWasInto = false
        }
    }

    private mutating func startStatement(_ keyword: SQLKeyword, into scan: inout SessionTextScan) {
        switch keyword {
        case .set:
            leading = .set
        case .reset:
            leading = .reset
            scan.effects.insert(.settings)
        case .discard:
            // DISCARD ALL resets settings and ends every pin; DISCARD TEMP drops temporary tables.
            leading = .other
            scan.effects.formUnion([.settings, .mayRelease])
        case .listen:
            leading = .other
            scan.effects.insert(.listen)
        case .prepare:
            leading = .other
            scan.effects.insert(.sqlPrepare)
        case .create:
            leading = .create
        case .declare:
            leading = .declare
        case .unlisten, .deallocate, .close, .drop:
            leading = .other
            scan.effects.insert(.mayRelease)
        case .setConfig:
            leading = .other
            setConfig = SetConfigCall()
        default:
            leading = .other
        }
    }

    private mutating func startName(_ range: Range<Int>) {
        name = range
        nameIsDotted = false
        nameWantsPart = false
        collectingName = true
    }

    private mutating func endName(lexer: SQLLexer, into scan: inout SessionTextScan) {
        if let name, nameIsDotted { scan.addCustomName(lexer.identifierText(name)) }
        name = nil
        collectingName = false
    }

    private mutating func followSetConfig(_ token: SQLToken, lexer: SQLLexer, into scan: inout SessionTextScan) {
        guard var call = setConfig else { return }
        switch token {
        case .punctuation(UInt8(ascii: "(")):
            call.depth += 1
            call.sawParenthesis = true
        case .punctuation(UInt8(ascii: ")")):
            call.depth -= 1
        case .punctuation(UInt8(ascii: ",")) where call.depth == 1:
            call.argument += 1
        case .string(let range) where call.depth == 1 && call.argument == 0:
            call.name = range
        case .word(let word, _) where call.depth == 1 && call.argument == 2:
            call.thirdArgumentTokens += 1
            call.thirdIsTrue = word == .true
        default:
            if call.depth == 1 && call.argument == 2 { call.thirdArgumentTokens += 1 }
        }
        if !call.sawParenthesis {
            // `set_config` not followed by a call: a column or something else of that name.
            setConfig = nil
            return
        }
        if call.depth > 0 {
            setConfig = call
            return
        }
        setConfig = nil
        let isLocal = call.argument == 2 && call.thirdArgumentTokens == 1 && call.thirdIsTrue
        if !isLocal {
            scan.effects.insert(.settings)
            if let name = call.name { scan.addCustomName(lexer.stringText(name)) }
        }
    }

    /// The statement ended (a semicolon, or the end of the text).
    mutating func finish(lexer: SQLLexer, into scan: inout SessionTextScan) {
        if collectingName { endName(lexer: lexer, into: &scan) }
        if setConfig != nil { scan.effects.insert(.settings) }
    }
}

/// Keywords the scan acts on, matched case-insensitively.
enum SQLKeyword: Equatable {
    case set, reset, discard, listen, unlisten, prepare, deallocate, declare, close, create, drop
    case local, transaction, constraints, session, authorization, characteristics, all
    case temp, temporary, hold, into, `true`
    case setConfig, advisoryLock, advisoryUnlock
    case other
}

enum SQLToken: Equatable {
    /// An unquoted word, with where it is in the text (a setting's name is read from there).
    case word(SQLKeyword, Range<Int>)
    case semicolon
    /// `"…"`, the span between the quotes.
    case quotedIdentifier(Range<Int>)
    /// `'…'` or `E'…'`, the span between the quotes.
    case string(Range<Int>)
    case punctuation(UInt8)
    case other
}

/// A lexer over SQL text that knows only what it must to find tokens: whitespace, `--` and nested
/// `/* */` comments, `'…'` and `E'…'` strings, `"…"` identifiers, `$tag$…$tag$` strings, `$n`
/// parameters. The text is borrowed: a scan allocates nothing unless a string literal is kept.
struct SQLLexer {
    /// The text as a plain pointer: the scan runs on every Query a pooled client sends, and buffer
    /// pointers cost an optional check per byte.
    private let base: UnsafePointer<UInt8>
    private let count: Int
    private var offset = 0

    init(_ text: UnsafeRawBufferPointer) {
        if let address = text.baseAddress, text.count > 0 {
            base = address.assumingMemoryBound(to: UInt8.self)
            count = text.count
        } else {
            base = UnsafePointer(bitPattern: 1)!
            count = 0
        }
    }

    var bytes: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: base, count: count) }

    /// A quick test, run on every statement text before the lexer: false only when no token of the text
    /// can be one the scan acts on. Every such token is either the first word of a statement (the text's
    /// first word, or one after a semicolon), or a word with an underscore (`set_config`, the advisory
    /// lock functions), or `TEMP` after `INTO`; each is looked for with `memchr`, which is what keeps
    /// ordinary statements at a few dozen instructions where the lexer needs more than a thousand.
    static func mayAffectSession(_ text: UnsafeRawBufferPointer) -> Bool {
        guard let address = text.baseAddress, text.count > 0 else { return false }
        let base = address.assumingMemoryBound(to: UInt8.self)
        var count = text.count
        if let zero = memchr(base, 0, count) { count = UnsafeRawPointer(zero) - address }
        // The first word, unless something else (a comment, a parenthesis) comes first.
        var i = 0
        while i < count && isSpace(base[i]) { i += 1 }
        guard i < count else { return false }
        guard isIdentifierStart(base[i]) else { return true }
        let start = i
        while i < count && isIdentifierPart(base[i]) { i += 1 }
        switch keyword(base, start..<i) {
        case .set, .reset, .discard, .listen, .unlisten, .prepare, .deallocate, .declare, .close, .create, .drop,
            .setConfig, .advisoryLock, .advisoryUnlock:
            return true
        default:
            break
        }
        // Another statement after a semicolon.
        var from = i
        while from < count, let found = memchr(base + from, Int32(UInt8(ascii: ";")), count - from) {
            var j = UnsafeRawPointer(found) - address + 1
            while j < count && isSpace(base[j]) { j += 1 }
            if j < count { return true }
            from = j
        }
        // An underscore inside set_config, or before advisory (the lexer's test for the lock functions).
        from = i
        while from < count, let found = memchr(base + from, Int32(UInt8(ascii: "_")), count - from) {
            let at = UnsafeRawPointer(found) - address
            from = at + 1
            if at >= 3 && at + 7 <= count && contains(base, (at - 3)..<at, "set")
                && contains(base, (at + 1)..<(at + 7), "config")
            {
                return true
            }
            if at + 9 <= count && contains(base, (at + 1)..<(at + 9), "advisory") { return true }
        }
        // INTO followed by anything but a plain word that cannot be TEMP or TEMPORARY.
        return intoMayPrecedeTemp(base, count, from: i, letter: UInt8(ascii: "o"))
            || intoMayPrecedeTemp(base, count, from: i, letter: UInt8(ascii: "O"))
    }

    /// Whether some `into` whose last letter is `letter` is followed by TEMP, or by something other than a
    /// word (a comment, say) that might hide it.
    private static func intoMayPrecedeTemp(_ base: UnsafePointer<UInt8>, _ count: Int, from: Int, letter: UInt8) -> Bool
    {
        var from = from
        while from < count, let found = memchr(base + from, Int32(letter), count - from) {
            let at = UnsafeRawPointer(found) - UnsafeRawPointer(base)
            from = at + 1
            guard at >= 3, lower(base[at - 1]) == UInt8(ascii: "t"), lower(base[at - 2]) == UInt8(ascii: "n"),
                lower(base[at - 3]) == UInt8(ascii: "i")
            else { continue }
            var j = at + 1
            while j < count && isSpace(base[j]) { j += 1 }
            guard j < count else { continue }
            guard isIdentifierStart(base[j]) else { return true }
            if j + 4 <= count && contains(base, j..<(j + 4), "temp") { return true }
        }
        return false
    }

    @inline(__always) private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || (byte >= 0x09 && byte <= 0x0D)
    }

    /// Whether `word` (lower-case ASCII) occurs in the span, in any case (for a span of the word's length:
    /// whether the span is the word).
    private static func contains(_ base: UnsafePointer<UInt8>, _ range: Range<Int>, _ word: StaticString) -> Bool {
        let length = word.utf8CodeUnitCount
        guard range.count >= length else { return false }
        let bytes = word.utf8Start
        var start = range.lowerBound
        while start + length <= range.upperBound {
            var k = 0
            while k < length && lower(base[start + k]) == bytes[k] { k += 1 }
            if k == length { return true }
            start += 1
        }
        return false
    }

    /// See ``StatementRelease/deallocatedName(_:)``.
    static func singleDeallocate(_ text: UnsafeRawBufferPointer) -> String? {
        var lexer = SQLLexer(text)
        guard case .word(.deallocate, _)? = lexer.next() else { return nil }
        var token = lexer.next()
        if case .word(.prepare, _)? = token {
            token = lexer.next()
        }
        let name: String
        switch token {
        case .word(let word, let range)?:
            guard word != .all else { return nil }
            name = lexer.lowerText(range)
        case .quotedIdentifier(let range)?:
            name = String(decoding: lexer.bytes[range], as: UTF8.self).replacingOccurrences(of: "\"\"", with: "\"")
        default:
            return nil
        }
        var rest = lexer.next()
        if case .semicolon? = rest { rest = lexer.next() }
        return rest == nil ? name : nil
    }

    /// An unquoted word as PostgreSQL folds it.
    func lowerText(_ range: Range<Int>) -> String {
        String(decoding: bytes[range].map { Self.lower($0) }, as: UTF8.self)
    }

    /// A name's text as PostgreSQL takes it: unquoted parts folded to lower case, quotes removed.
    /// (Setting names compare case-insensitively anyway.)
    func identifierText(_ range: Range<Int>) -> String {
        var text: [UInt8] = []
        for byte in bytes[range] where byte != UInt8(ascii: "\"") { text.append(Self.lower(byte)) }
        return String(decoding: text, as: UTF8.self)
    }

    /// A string literal's text, its doubled quotes undone.
    func stringText(_ range: Range<Int>) -> String {
        String(decoding: bytes[range], as: UTF8.self).replacingOccurrences(of: "''", with: "'")
    }

    mutating func next() -> SQLToken? {
        let count = self.count
        let base = self.base
        var i = offset
        defer { offset = i }
        while i < count {
            let byte = base[i]
            if Self.isIdentifierStart(byte) {
                let start = i
                i += 1
                while i < count && Self.isIdentifierPart(base[i]) { i += 1 }
                // E'…' is a string with backslash escapes.
                if i - start == 1 && byte | 0x20 == UInt8(ascii: "e") && i < count && base[i] == UInt8(ascii: "'") {
                    return .string(readString(from: &i, escapes: true))
                }
                return .word(Self.keyword(base, start..<i), start..<i)
            }
            switch byte {
            case 0x20, 0x09, 0x0A, 0x0D, 0x0C:
                i += 1
            case 0:
                // The end of a statement text inside a message (a Parse's parameter types follow).
                i = count
                return nil
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                while i < count && Self.isIdentifierPart(base[i]) { i += 1 }
                return .other
            case UInt8(ascii: "-") where i + 1 < count && base[i + 1] == UInt8(ascii: "-"):
                while i < count && base[i] != 0x0A { i += 1 }
            case UInt8(ascii: "/") where i + 1 < count && base[i + 1] == UInt8(ascii: "*"):
                skipBlockComment(from: &i)
            case UInt8(ascii: ";"):
                i += 1
                return .semicolon
            case UInt8(ascii: "'"):
                return .string(readString(from: &i, escapes: false))
            case UInt8(ascii: "\""):
                i += 1
                let start = i
                while i < count {
                    if base[i] == UInt8(ascii: "\"") {
                        if i + 1 < count && base[i + 1] == UInt8(ascii: "\"") {
                            i += 2
                            continue
                        }
                        break
                    }
                    i += 1
                }
                let end = min(i, count)
                i += 1
                return .quotedIdentifier(start..<end)
            case UInt8(ascii: "$"):
                let start = i
                if skipDollarString(from: &i) { return .string(start..<start) }
                i += 1
                while i < count && base[i] >= UInt8(ascii: "0") && base[i] <= UInt8(ascii: "9") { i += 1 }
                return .other
            default:
                i += 1
                return .punctuation(byte)
            }
        }
        return nil
    }

    /// Reads a quoted string from its opening quote at `i`; returns the span between the quotes.
    private func readString(from i: inout Int, escapes: Bool) -> Range<Int> {
        i += 1
        let start = i
        while i < count {
            let byte = base[i]
            if byte == UInt8(ascii: "\\") && escapes {
                i += 2
                continue
            }
            if byte == UInt8(ascii: "'") {
                if i + 1 < count && base[i + 1] == UInt8(ascii: "'") {
                    i += 2
                    continue
                }
                break
            }
            i += 1
        }
        let end = min(i, count)
        i += 1
        return start..<end
    }

    private func skipBlockComment(from i: inout Int) {
        var depth = 0
        while i < count {
            if base[i] == UInt8(ascii: "/") && i + 1 < count && base[i + 1] == UInt8(ascii: "*") {
                depth += 1
                i += 2
            } else if base[i] == UInt8(ascii: "*") && i + 1 < count && base[i + 1] == UInt8(ascii: "/") {
                depth -= 1
                i += 2
                if depth == 0 { return }
            } else {
                i += 1
            }
        }
    }

    /// Skips `$tag$ … $tag$` when one starts at `i`; false for a parameter (`$1`) or a lone `$`.
    private func skipDollarString(from i: inout Int) -> Bool {
        var tagEnd = i + 1
        while tagEnd < count && base[tagEnd] != UInt8(ascii: "$") {
            let byte = base[tagEnd]
            let allowed = tagEnd == i + 1 ? Self.isIdentifierStart(byte) : Self.isIdentifierPart(byte)
            guard allowed else { return false }
            tagEnd += 1
        }
        guard tagEnd < count else { return false }
        let tagLength = tagEnd - i + 1
        var search = tagEnd + 1
        while search + tagLength <= count {
            if base[search] == UInt8(ascii: "$") && memcmp(base + search, base + i, tagLength) == 0 {
                i = search + tagLength
                return true
            }
            search += 1
        }
        i = count
        return true
    }

    /// Letters, `_` and every byte of a multi-byte character (PostgreSQL's identifier start), as bit
    /// masks over the byte's value: a few instructions per byte, no table to load.
    @inline(__always) private static func isIdentifierStart(_ byte: UInt8) -> Bool {
        switch byte >> 6 {
        case 0: false
        case 1: (0x07FF_FFFE_87FF_FFFE as UInt64) >> UInt64(byte & 63) & 1 != 0
        default: true
        }
    }

    /// Identifier characters after the first: those, digits and `$`.
    @inline(__always) private static func isIdentifierPart(_ byte: UInt8) -> Bool {
        switch byte >> 6 {
        case 0: (0x03FF_0010_0000_0000 as UInt64) >> UInt64(byte & 63) & 1 != 0
        case 1: (0x07FF_FFFE_87FF_FFFE as UInt64) >> UInt64(byte & 63) & 1 != 0
        default: true
        }
    }

    /// Matches a word against the keywords by length first, so most words cost one comparison.
    private static func keyword(_ text: UnsafePointer<UInt8>, _ range: Range<Int>) -> SQLKeyword {
        @inline(__always) func equals(_ word: StaticString) -> Bool {
            guard word.utf8CodeUnitCount == range.count else { return false }
            let bytes = word.utf8Start
            var i = 0
            while i < range.count {
                if lower(text[range.lowerBound + i]) != bytes[i] { return false }
                i += 1
            }
            return true
        }
        switch range.count {
        case 3:
            if equals("set") { return .set }
            if equals("all") { return .all }
        case 4:
            if equals("temp") { return .temp }
            if equals("hold") { return .hold }
            if equals("into") { return .into }
            if equals("drop") { return .drop }
            if equals("true") { return .true }
        case 5:
            if equals("reset") { return .reset }
            if equals("close") { return .close }
            if equals("local") { return .local }
        case 6:
            if equals("listen") { return .listen }
            if equals("create") { return .create }
        case 7:
            if equals("discard") { return .discard }
            if equals("prepare") { return .prepare }
            if equals("declare") { return .declare }
            if equals("session") { return .session }
        case 8:
            if equals("unlisten") { return .unlisten }
        case 9:
            if equals("temporary") { return .temporary }
        case 10:
            if equals("deallocate") { return .deallocate }
            if equals("set_config") { return .setConfig }
        case 11:
            if equals("transaction") { return .transaction }
            if equals("constraints") { return .constraints }
        case 13:
            if equals("authorization") { return .authorization }
        case 15:
            if equals("characteristics") { return .characteristics }
        default:
            break
        }
        if range.count >= 16 && equalsPrefix(text, range, "pg_") {
            // pg_advisory_lock[_shared], pg_try_advisory_lock[_shared]: held by the session; the _xact_
            // forms end with the transaction. Unlocking may end a pin.
            let name = String(
                decoding: UnsafeBufferPointer(start: text + range.lowerBound, count: range.count), as: UTF8.self
            )
            .lowercased()
            if name.contains("_advisory") {
                if name.contains("unlock") { return .advisoryUnlock }
                if !name.contains("xact") { return .advisoryLock }
            }
        }
        return .other
    }

    private static func equalsPrefix(_ text: UnsafePointer<UInt8>, _ range: Range<Int>, _ prefix: StaticString) -> Bool
    {
        let bytes = prefix.utf8Start
        for i in 0..<prefix.utf8CodeUnitCount where lower(text[range.lowerBound + i]) != bytes[i] { return false }
        return true
    }

    /// ASCII lower case; other bytes as they are.
    @inline(__always) static func lower(_ byte: UInt8) -> UInt8 {
        byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
    }
}

/// Sluice's question to a server after a transaction whose text may have changed the session: which
/// settings the session holds, and whether it holds state that pins the client to this server.
public struct SessionCheck: Sendable {
    /// The effects the check looks for.
    public let effects: SessionEffects
    public let customNames: [String]

    /// A check for `pending` (what the transaction's text may have done) on a server whose client is
    /// pinned by `pins` and whose settings Sluice knows as `known`.
    public init(pending: SessionEffects, customNames: [String], pins: SessionPins, known: SessionSettings) {
        var effects = pending.intersection(SessionEffects.creatingPins.union(.settings))
        if pending.contains(.mayRelease) || pending.contains(.settings) { effects.formUnion(pins.effectsToRecheck) }
        var names = customNames
        if effects.contains(.settings) {
            for key in known.keys where key.utf8.contains(UInt8(ascii: ".")) && !names.contains(key) {
                names.append(key)
            }
        }
        self.effects = effects
        self.customNames = names
    }

    /// Whether there is anything to ask.
    public var isNeeded: Bool { !effects.isEmpty }

    /// The pins this check decides; others the server had stay as they were.
    public var checkedPins: SessionPins { SessionPins(checkedBy: effects) }

    /// One simple query. Every name is qualified and every operator spelled from pg_catalog: the client
    /// may have set a search_path that would resolve them elsewhere.
    public var query: String {
        var parts: [String] = []
        if effects.contains(.settings) {
            parts.append(
                "SELECT name, setting FROM pg_catalog.pg_settings WHERE source OPERATOR(pg_catalog.=) 'session'")
            for name in customNames {
                let literal = sqlLiteral(name)
                parts.append("SELECT \(literal), pg_catalog.current_setting(\(literal), true)")
            }
            parts.append(
                "SELECT NULL, 'role' WHERE pg_catalog.current_setting('role') OPERATOR(pg_catalog.<>) 'none'")
        }
        if effects.contains(.listen) {
            parts.append("SELECT NULL, 'listen' WHERE EXISTS (SELECT FROM pg_catalog.pg_listening_channels())")
        }
        if effects.contains(.advisoryLock) {
            parts.append(
                "SELECT NULL, 'advisory' WHERE EXISTS (SELECT FROM pg_catalog.pg_locks WHERE locktype "
                    + "OPERATOR(pg_catalog.=) 'advisory' AND pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid())")
        }
        if effects.contains(.temporaryObject) {
            parts.append(
                "SELECT NULL, 'temporary' WHERE EXISTS (SELECT FROM pg_catalog.pg_class WHERE relnamespace "
                    + "OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema())")
        }
        if effects.contains(.holdCursor) {
            parts.append("SELECT NULL, 'hold' WHERE EXISTS (SELECT FROM pg_catalog.pg_cursors WHERE is_holdable)")
        }
        if effects.contains(.sqlPrepare) {
            parts.append(
                "SELECT NULL, 'prepare' WHERE EXISTS (SELECT FROM pg_catalog.pg_prepared_statements WHERE from_sql)")
        }
        return parts.joined(separator: " UNION ALL ")
    }
}

/// The answer to a ``SessionCheck``, gathered row by row.
public struct SessionCheckResult: Sendable {
    public var settings: SessionSettings = [:]
    public var pins: SessionPins = []

    public init() {}

    /// Adds one DataRow's body. Settings in `excluded` (lower case) are kept in step by other means.
    public mutating func addRow(_ body: ArraySlice<UInt8>, excluded: Set<String>) throws {
        var reader = PayloadReader(body)
        guard try reader.readUInt16() == 2 else { throw SessionCheckError.unexpectedRow }
        let name = try Self.readColumn(&reader)
        guard let value = try Self.readColumn(&reader) else { return }
        guard let name else {
            switch value {
            case "role": pins.insert(.role)
            case "listen": pins.insert(.listen)
            case "advisory": pins.insert(.advisoryLock)
            case "temporary": pins.insert(.temporaryObject)
            case "hold": pins.insert(.holdCursor)
            case "prepare": pins.insert(.sqlPrepare)
            default: throw SessionCheckError.unexpectedRow
            }
            return
        }
        let key = name.lowercased()
        // A custom setting that was reset still exists, empty; on a server that never had it, it does not.
        if excluded.contains(key) || (value.isEmpty && key.utf8.contains(UInt8(ascii: "."))) { return }
        settings[key] = (name, value)
    }

    private static func readColumn(_ reader: inout PayloadReader) throws -> String? {
        let length = try reader.readInt32()
        if length < 0 { return nil }
        return String(decoding: try reader.readBytes(Int(length)), as: UTF8.self)
    }
}

public enum SessionCheckError: Error {
    case unexpectedRow
}

extension SessionSettings {
    /// The statements that turn a server holding `server` into one holding these settings: RESET what
    /// only the server has, set what differs. Values are set with `set_config`, which stores the string as
    /// given, as startup options and `pg_settings` have it; `SET name TO 'a, b'` would quote a list
    /// setting's value once more (`search_path` would become the one schema `"a, b"`).
    public func restoreStatements(comparedTo server: SessionSettings) -> String {
        var sql = ""
        for (key, entry) in server where self[key] == nil {
            sql += "RESET \(quoteIdentifier(entry.name));"
        }
        var calls: [String] = []
        for (key, entry) in self where server[key]?.value != entry.value {
            calls.append("pg_catalog.set_config(\(sqlLiteral(entry.name)), \(sqlLiteral(entry.value)), false)")
        }
        if !calls.isEmpty { sql += "SELECT " + calls.joined(separator: ", ") + ";" }
        return sql
    }

    private func quoteIdentifier(_ name: String) -> String {
        // A custom name is two identifiers; quoting the whole would make it one.
        name.split(separator: ".", omittingEmptySubsequences: false)
            .map { "\"" + $0.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
            .joined(separator: ".")
    }
}

/// A string as an SQL literal, quotes doubled (Sluice's own queries run with standard_conforming_strings).
func sqlLiteral(_ value: String) -> String {
    "'" + value.replacingOccurrences(of: "'", with: "''") + "'"
}
