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
    let f = FrontendMessageCode.functionCall.rawValue
    let p = FrontendMessageCode.parse.rawValue
    let b = FrontendMessageCode.bind.rawValue
    let e = FrontendMessageCode.execute.rawValue
    let s = FrontendMessageCode.sync.rawValue
    let h = FrontendMessageCode.flush.rawValue
    let copyData = FrontendMessageCode.copyData.rawValue
    let copyDone = FrontendMessageCode.copyDone.rawValue
    let copyFail = FrontendMessageCode.copyFail.rawValue

    func send(_ codes: [UInt8], to tracker: inout ServerReplyTracker) {
        for code in codes { tracker.frontendMessageSent(code) }
    }

    @Test("an extended-protocol COPY FROM STDIN owes one ReadyForQuery although libpq sends two Syncs")
    func extendedCopy() {
        var tracker = ServerReplyTracker()
        send([p, b, e, s], to: &tracker)
        tracker.copyInResponseReceived()
        send([copyData, copyData, copyDone], to: &tracker)
        #expect(tracker.owedCount == 0)
        #expect(!tracker.isQuiet)
        send([s], to: &tracker)
        #expect(tracker.readyForQueryReceived(.idle) == .client)
        #expect(tracker.isIdle)
    }

    @Test("Syncs and Flushes in the middle of COPY data are ignored as the server ignores them")
    func syncDuringCopy() {
        var tracker = ServerReplyTracker()
        send([p, b, e, s], to: &tracker)
        tracker.copyInResponseReceived()
        send([copyData, s, h, copyData, copyFail, s], to: &tracker)
        #expect(tracker.owedCount == 1)
    }

    @Test("a simple-protocol COPY owes only the Query's ReadyForQuery, whatever Syncs come with the data")
    func simpleCopy() {
        var tracker = ServerReplyTracker()
        send([q], to: &tracker)
        tracker.copyInResponseReceived()
        send([copyData, s, h, copyData, copyDone], to: &tracker)
        #expect(tracker.owedCount == 1)
        #expect(tracker.readyForQueryReceived(.idle) == .client)
        #expect(tracker.isIdle)
    }

    @Test("a CopyDone outside COPY changes nothing, as the server ignores it")
    func strayCopyDone() {
        var tracker = ServerReplyTracker()
        send([p, b, e, s, copyDone, q], to: &tracker)
        #expect(tracker.owedCount == 2)
    }

    @Test("extended messages ended by a simple Query or a FunctionCall free the server at its ReadyForQuery")
    func queryEndsExtended() {
        for last in [q, f] {
            var tracker = ServerReplyTracker()
            send([p, b, e, last], to: &tracker)
            #expect(tracker.readyForQueryReceived(.idle) == .client)
            #expect(tracker.isIdle)
        }
    }
}
