import Testing

@testable import SluiceCore

@Suite("Prepared statements: names, completions, cache")
struct PreparedStatementTests {
    let p = FrontendMessageCode.parse.rawValue
    let b = FrontendMessageCode.bind.rawValue
    let e = FrontendMessageCode.execute.rawValue
    let s = FrontendMessageCode.sync.rawValue
    let h = FrontendMessageCode.flush.rawValue
    let q = FrontendMessageCode.query.rawValue

    /// A Parse body: name, query, parameter types.
    func parseBody(_ name: String, _ query: String, types: [UInt32] = []) -> [UInt8] {
        var body = Array(name.utf8) + [0] + Array(query.utf8) + [0]
        body += [UInt8(types.count >> 8), UInt8(types.count & 0xFF)]
        for type in types { body += withUnsafeBytes(of: type.bigEndian) { Array($0) } }
        return body
    }

    @Test("a Parse body gives its name and where the query starts")
    func parseBodyDecoding() throws {
        let body = parseBody("s1", "SELECT $1", types: [23])
        let parsed = try #require(ParseMessageBody(body[...]))
        #expect(parsed.name == "s1")
        #expect(parsed.queryOffset == 3)
        #expect(ParseMessageBody(parseBody("", "SELECT 1")[...])?.name == "")
    }

    @Test(
        "a malformed Parse body is left to the server",
        arguments: [
            [UInt8]([0x73, 0x31]),  // no terminator
            Array("s\0SELECT 1\0".utf8),  // no parameter count
            Array("s\0SELECT 1\0".utf8) + [0, 2, 0, 0, 0, 23],  // two types announced, one given
        ])
    func parseBodyMalformed(body: [UInt8]) {
        #expect(ParseMessageBody(body[...]) == nil)
    }

    @Test("equal text and types share a server name; other text or types do not")
    func serverNames() {
        let one = PreparedStatement(queryAndTypes: parseBody("", "SELECT $1", types: [23]).dropFirst())
        let same = PreparedStatement(queryAndTypes: parseBody("", "SELECT $1", types: [23]).dropFirst())
        let otherType = PreparedStatement(queryAndTypes: parseBody("", "SELECT $1", types: [25]).dropFirst())
        let otherText = PreparedStatement(queryAndTypes: parseBody("", "SELECT $1 ", types: [23]).dropFirst())
        #expect(one.serverName == same.serverName)
        #expect(one.serverName != otherType.serverName)
        #expect(one.serverName != otherText.serverName)
        #expect(one.serverName.hasPrefix(PreparedStatement.namePrefix))
        #expect(one.serverName.utf8.count < 64, "PostgreSQL would truncate nothing, but keep names short")
    }

    @Test("the kept Parse message carries the server name and the client's text and types unchanged")
    func keptParseMessage() throws {
        let body = parseBody("client_name", "SELECT $1::int", types: [23])
        let statement = PreparedStatement(queryAndTypes: body[12...])
        let message = statement.parseMessage
        #expect(message[0] == UInt8(ascii: "P"))
        let length = Int(message[1]) << 24 | Int(message[2]) << 16 | Int(message[3]) << 8 | Int(message[4])
        #expect(length == message.count - 1)
        let rebuilt = try #require(ParseMessageBody(message[5...]))
        #expect(rebuilt.name == statement.serverName)
        #expect(Array(message[(5 + rebuilt.queryOffset)...]) == Array(body[12...]))
    }

    @Test("completions are matched in order, Sluice's own hidden")
    func completionsInOrder() {
        var tracker = ServerReplyTracker()
        tracker.completionSent(.close(serverName: "old"))
        tracker.completionSent(.prepare(serverName: "new"))
        tracker.frontendMessageSent(b)
        tracker.frontendMessageSent(p)
        tracker.frontendMessageSent(s)
        let got1 = tracker.completionReceived()
        #expect(got1 == .close(serverName: "old"))
        let got2 = tracker.completionReceived()
        #expect(got2 == .prepare(serverName: "new"))
        let got3 = tracker.completionReceived()
        #expect(got3 == .client)
        let got4 = tracker.completionReceived()
        #expect(got4 == nil)
        #expect(tracker.readyForQueryReceived(.idle) == .client)
        #expect(tracker.isIdle)
    }

    @Test("an error skips the rest of its batch only")
    func errorSkipsToSync() {
        var tracker = ServerReplyTracker()
        tracker.completionSent(.prepare(serverName: "a"))
        tracker.frontendMessageSent(b)
        tracker.completionSent(.prepare(serverName: "b"))
        tracker.frontendMessageSent(s)
        tracker.completionSent(.prepare(serverName: "c"))
        tracker.frontendMessageSent(s)
        let got5 = tracker.completionReceived()
        #expect(got5 == .prepare(serverName: "a"))
        // The Bind failed: "b" was never prepared; "c" belongs to the next batch.
        let got6 = tracker.errorReceived()
        #expect(got6 == [.prepare(serverName: "b")])
        #expect(tracker.readyForQueryReceived(.idle) == .client)
        let got7 = tracker.completionReceived()
        #expect(got7 == .prepare(serverName: "c"))
        #expect(tracker.readyForQueryReceived(.idle) == .client)
        #expect(tracker.isIdle)
    }

    @Test("after an error with no Sync sent yet, what follows until the Sync is skipped")
    func errorBeforeSyncSent() {
        var tracker = ServerReplyTracker()
        tracker.frontendMessageSent(p)
        tracker.frontendMessageSent(b)
        tracker.frontendMessageSent(e)
        tracker.frontendMessageSent(h)
        let got8 = tracker.completionReceived()
        #expect(got8 == .client)
        let got9 = tracker.errorReceived()
        #expect(got9 == [])
        let skippedParse = tracker.completionSent(.prepare(serverName: "x"))
        #expect(!skippedParse, "the server skips this Parse")
        tracker.frontendMessageSent(s)
        let sent10 = tracker.completionSent(.prepare(serverName: "y"))
        #expect(sent10)
        tracker.frontendMessageSent(s)
        #expect(tracker.readyForQueryReceived(.idle) == .client)
        let got11 = tracker.completionReceived()
        #expect(got11 == .prepare(serverName: "y"))
    }

    @Test("an error in a simple query skips no extended request")
    func simpleQueryError() {
        var tracker = ServerReplyTracker()
        tracker.frontendMessageSent(q)
        tracker.completionSent(.prepare(serverName: "a"))
        tracker.frontendMessageSent(s)
        let got12 = tracker.errorReceived()
        #expect(got12 == [])
        #expect(tracker.readyForQueryReceived(.idle) == .client)
        let got13 = tracker.completionReceived()
        #expect(got13 == .prepare(serverName: "a"))
    }

    @Test("a batch that ended without its completions does not shift the next batch's")
    func unansweredCompletionsDropAtReadyForQuery() {
        var tracker = ServerReplyTracker()
        tracker.frontendMessageSent(p)
        tracker.frontendMessageSent(s)
        tracker.completionSent(.prepare(serverName: "next"))
        tracker.frontendMessageSent(s)
        #expect(tracker.readyForQueryReceived(.idle) == .client)
        let got14 = tracker.completionReceived()
        #expect(got14 == .prepare(serverName: "next"))
    }

    @Test("an error probe is announced until its batch fails")
    func errorProbe() {
        var tracker = ServerReplyTracker()
        let error = ErrorFields.error(.duplicatePreparedStatement, "prepared statement \"x\" already exists")
        tracker.completionSent(.errorProbe(error))
        tracker.frontendMessageSent(s)
        #expect(tracker.pendingErrorProbe == error)
        let got15 = tracker.errorReceived()
        #expect(got15 == [.errorProbe(error)])
        #expect(tracker.pendingErrorProbe == nil)
        #expect(tracker.readyForQueryReceived(.idle) == .client)
    }

    @Test("the cache evicts the least recently used, never one used in the transaction under way")
    func cacheEviction() {
        var cache = ServerStatementCache(capacity: 2)
        #expect(cache.insert("a") == nil)
        #expect(cache.insert("b") == nil)
        // All of these belong to the transaction under way.
        #expect(cache.insert("c") == nil)
        #expect(cache.count == 3)
        cache.transactionEnded()
        cache.use("a")
        #expect(cache.insert("d") == "b")
        #expect(cache.contains("a") && cache.contains("c") && cache.contains("d"))
        cache.transactionEnded()
        #expect(cache.insert("e") == "c")
        cache.remove("a")
        #expect(!cache.contains("a"))
        cache.removeAll()
        #expect(cache.count == 0)
    }

    @Test(
        "DEALLOCATE and DISCARD are noticed in a query's text",
        arguments: [
            ("SELECT 1", StatementRelease.none),
            ("deallocate all", .releasesAll),
            ("  DEALLOCATE PREPARE ALL;", .releasesAll),
            ("DISCARD ALL; SELECT 1", .releasesAll),
            ("discard plans", .mayRelease),
            ("DEALLOCATE s1", .mayRelease),
            ("SELECT 1; DEALLOCATE ALL", .mayRelease),
            ("SELECT 'discard' AS word", .mayRelease),
        ])
    func statementRelease(text: String, expected: StatementRelease) {
        #expect(StatementRelease.classify(Array(text.utf8)[...]) == expected)
    }
}
