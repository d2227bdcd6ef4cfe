import Testing

@testable import SluiceCore

@Suite("Server reply tracker")
struct ServerReplyTrackerTests {
    let q = FrontendMessageCode.query.rawValue
    let p = FrontendMessageCode.parse.rawValue
    let b = FrontendMessageCode.bind.rawValue
    let d = FrontendMessageCode.describe.rawValue
    let e = FrontendMessageCode.execute.rawValue
    let s = FrontendMessageCode.sync.rawValue
    let h = FrontendMessageCode.flush.rawValue

    @Test("releases only after the last Sync's ReadyForQuery of a pipeline")
    func pipeline() {
        var tracker = ServerReplyTracker()
        for _ in 0..<3 {
            for code in [p, b, e, s] { tracker.frontendMessageSent(code) }
        }
        #expect(tracker.owedCount == 3)
        #expect(tracker.readyForQueryReceived(.idle) == .client)
        #expect(!tracker.isIdle)
        #expect(tracker.readyForQueryReceived(.idle) == .client)
        #expect(!tracker.isIdle)
        #expect(tracker.readyForQueryReceived(.idle) == .client)
        #expect(tracker.isIdle)
    }

    @Test("a simple query followed by an extended batch owes two ReadyForQuery")
    func simpleThenExtended() {
        var tracker = ServerReplyTracker()
        for code in [q, p, d, b, e, s] { tracker.frontendMessageSent(code) }
        #expect(tracker.readyForQueryReceived(.idle) == .client)
        #expect(!tracker.isIdle)
        #expect(tracker.readyForQueryReceived(.idle) == .client)
        #expect(tracker.isIdle)
    }

    @Test("Flush is not a transaction boundary")
    func flushKeepsServer() {
        var tracker = ServerReplyTracker()
        for code in [p, d, h] { tracker.frontendMessageSent(code) }
        #expect(tracker.currentOwner == .client)
        #expect(!tracker.isIdle)
        #expect(tracker.clientRequestInFlight)
        for code in [b, e, s] { tracker.frontendMessageSent(code) }
        #expect(tracker.readyForQueryReceived(.idle) == .client)
        #expect(tracker.isIdle)
    }

    @Test("Sluice's own queries are answered before the client's and never count as theirs")
    func sluiceRequestsFirst() {
        var tracker = ServerReplyTracker()
        tracker.sluiceQuerySent(.parameterRestore)
        tracker.frontendMessageSent(q)
        #expect(tracker.currentOwner == .sluice(.parameterRestore))
        #expect(tracker.readyForQueryReceived(.idle) == .sluice(.parameterRestore))
        #expect(tracker.currentOwner == .client)
        #expect(tracker.readyForQueryReceived(.idle) == .client)
        #expect(tracker.isIdle)
    }

    @Test("an open transaction keeps the server although nothing is owed")
    func openTransaction() {
        var tracker = ServerReplyTracker()
        tracker.frontendMessageSent(q)
        #expect(tracker.readyForQueryReceived(.inTransaction) == .client)
        #expect(tracker.isQuiet)
        #expect(!tracker.isIdle)
        #expect(!tracker.clientRequestInFlight)
    }

    @Test("an unrequested ReadyForQuery is reported as nobody's")
    func unrequested() {
        var tracker = ServerReplyTracker()
        #expect(tracker.readyForQueryReceived(.idle) == nil)
    }
}

@Suite("Server reply tracker: COPY and mixed protocols")
struct ServerReplyTrackerCopyTests {
    let q = FrontendMessageCode.query.rawValue
    let p = FrontendMessageCode.parse.rawValue
    let b = FrontendMessageCode.bind.rawValue
    let e = FrontendMessageCode.execute.rawValue
    let s = FrontendMessageCode.sync.rawValue
    let h = FrontendMessageCode.flush.rawValue
    let copyData = FrontendMessageCode.copyData.rawValue
    let copyDone = FrontendMessageCode.copyDone.rawValue
    let copyFail = FrontendMessageCode.copyFail.rawValue

    @Test("an extended-protocol COPY FROM STDIN owes one ReadyForQuery although libpq sends two Syncs")
    func extendedCopy() {
        var tracker = ServerReplyTracker()
        for code in [p, b, e, s, copyData, copyData, copyDone, s] { tracker.frontendMessageSent(code) }
        #expect(tracker.owedCount == 1)
        #expect(tracker.readyForQueryReceived(.idle) == .client)
        #expect(tracker.isIdle)
    }

    @Test("Syncs and Flushes in the middle of COPY data are ignored as the server ignores them")
    func syncDuringCopy() {
        var tracker = ServerReplyTracker()
        for code in [p, b, e, s, copyData, s, h, copyData, copyFail, s] { tracker.frontendMessageSent(code) }
        #expect(tracker.owedCount == 1)
    }

    @Test("a simple-protocol COPY owes only the Query's ReadyForQuery")
    func simpleCopy() {
        var tracker = ServerReplyTracker()
        for code in [q, copyData, s, h, copyData, copyDone] { tracker.frontendMessageSent(code) }
        #expect(tracker.owedCount == 1)
        #expect(tracker.readyForQueryReceived(.idle) == .client)
        #expect(tracker.isIdle)
    }

    @Test("extended messages ended by a simple Query free the server at the Query's ReadyForQuery")
    func queryEndsExtended() {
        var tracker = ServerReplyTracker()
        for code in [p, b, e, q] { tracker.frontendMessageSent(code) }
        #expect(tracker.readyForQueryReceived(.idle) == .client)
        #expect(tracker.isIdle)
    }
}
