import Foundation
import Testing

/// F6 from the field cases: a CancelRequest that arrives after its query has finished must not
/// cancel whatever the same server runs next for another client.
@Suite("Field cases: late cancels")
struct FieldCaseCancelTests {
    /// Upper bound on the whole race loop; the loop stops early rather than run past it.
    static let budget: Duration = .seconds(45)

    @Test("F6: a late cancel from client A never cancels client B's query on the same server")
    func lateCancelNeverHitsTheNextClient() throws {
        try withRawSluice(poolSize: 1) { target in
            let a = try target.connect()
            let b = try target.connect()
            let key = try #require(a.backendKey, "Sluice sent no BackendKeyData to client A")

            var rng = SystemRandomNumberGenerator()
            let deadline = ContinuousClock.now + Self.budget
            var tries = 0
            var cancelledA = 0
            var cancelledB: [String] = []
            while tries < 400 && ContinuousClock.now < deadline {
                tries += 1
                // A's statement takes ~20 ms; B queues behind it and then runs ~50 ms, which is
                // the window in which a cancel meant for A would land on B's query.
                try a.send { $0.query("SELECT pg_sleep(0.02)") }
                try b.send { $0.query("SELECT pg_sleep(0.05)") }
                let afterReply = Bool.random(using: &rng)
                var aReplies: [BackendMessage] = []
                if afterReply {
                    // Exactly the field report: the cancel leaves as A's reply comes in.
                    aReplies = try a.readUntilReadyForQuery()
                    sleep(for: .microseconds(Int64.random(in: 0...3_000, using: &rng)))
                } else {
                    sleep(for: .microseconds(Int64.random(in: 5_000...45_000, using: &rng)))
                }
                let canceller = try RawClient(port: target.port)
                try canceller.send { $0.cancelRequest(processID: key.processID, secretKey: key.secretKey) }
                if !afterReply {
                    aReplies = try a.readUntilReadyForQuery()
                }
                if aReplies.contains(where: { $0.sqlState == "57014" }) {
                    cancelledA += 1
                }
                let bReplies = try b.readUntilReadyForQuery()
                if let hit = bReplies.first(where: { $0.sqlState == "57014" }) {
                    cancelledB.append("try \(tries) (\(afterReply ? "after A's reply" : "jittered")): \(hit)")
                }
                canceller.close()
            }
            #expect(
                cancelledB.isEmpty, "B was cancelled \(cancelledB.count) of \(tries) times: \(cancelledB.prefix(5))")
            // Cancels that arrive while A's own statement runs must still work, or the loop above
            // proved nothing.
            #expect(cancelledA > 0, "none of \(tries) cancels reached A's own running statement")
            #expect(tries >= 100, "only \(tries) tries fit in \(Self.budget)")
            try target.expectServing()
        }
    }

    @Test("F6 sibling: a cancel from a client still waiting for the server spares the server's current client")
    func cancelWhileWaitingSparesTheHolder() throws {
        try withRawSluice(poolSize: 1) { target in
            let holder = try target.connect()
            let waiter = try target.connect()
            let key = try #require(waiter.backendKey, "Sluice sent no BackendKeyData")
            for round in 0..<5 {
                try holder.send { $0.query("SELECT 'holder' FROM pg_sleep(0.4)") }
                sleep(for: .milliseconds(50))
                try waiter.send { $0.query("SELECT 'waiter'") }
                sleep(for: .milliseconds(50))
                let canceller = try RawClient(port: target.port)
                try canceller.send { $0.cancelRequest(processID: key.processID, secretKey: key.secretKey) }

                let held = try holder.readUntilReadyForQuery()
                #expect(
                    !held.contains { $0.isError }, "round \(round): the holder was hit by the waiter's cancel: \(held)")
                #expect(held.compactMap(\.dataRowColumns) == [["holder"]])
                // Whether the waiter's own query is cancelled or runs is Sluice's choice; it must end.
                let waited = try waiter.readUntilReadyForQuery()
                #expect(waited.last?.readyStatus == "I")
                canceller.close()
            }
            try target.expectServing()
        }
    }

    @Test("F6 sibling: the key of a client that has left cancels nobody")
    func keyOfDepartedClientCancelsNobody() throws {
        try withRawSluice(poolSize: 1) { target in
            var departedKeys: [(processID: Int32, secretKey: [UInt8])] = []
            for _ in 0..<5 {
                let departed = try target.connect()
                try departed.simpleQuery("SELECT 1")
                departedKeys.append(try #require(departed.backendKey))
                departed.terminate()
            }
            let current = try target.connect()
            try current.send { $0.query("SELECT 'untouched' FROM pg_sleep(0.5)") }
            sleep(for: .milliseconds(100))
            for key in departedKeys {
                let canceller = try RawClient(port: target.port)
                try canceller.send { $0.cancelRequest(processID: key.processID, secretKey: key.secretKey) }
                try canceller.waitForClose(timeout: .seconds(5))
            }
            let replies = try current.readUntilReadyForQuery()
            #expect(!replies.contains { $0.isError }, "a departed client's key cancelled someone else: \(replies)")
        }
    }
}
