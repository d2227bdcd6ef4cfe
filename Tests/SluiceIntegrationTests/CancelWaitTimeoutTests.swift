import Foundation
import Testing

/// `cancel_wait_timeout`: how long a cancel that PostgreSQL never acknowledges keeps its server away
/// from the next client.
///
/// The pool reaches PostgreSQL through a `StallingCancelRelay`: ordinary traffic passes, but every
/// CancelRequest Sluice forwards stops at the relay, whose connection never closes. While a cancel is
/// in flight the server must not serve anyone else (the cancel could land on their query), so with
/// one server the next client waits until Sluice gives up on the cancel, `cancel_wait_timeout` after
/// sending it. The limits used here are far below the 10 s default, so the timings fail if the key
/// were ignored, and a cancel-free run shows that the waiting comes from the cancel alone.
@Suite("cancel_wait_timeout")
struct CancelWaitTimeoutTests {
    @Test(
        "query_timeout's cancel, never acknowledged, keeps the server from the next client for cancel_wait_timeout",
        arguments: [2.0, 5.0])
    func queryTimeoutCancelHoldsTheServer(limit: Double) throws {
        let bench = try StalledCancelBench(settings: ["query_timeout": "1", "cancel_wait_timeout": "\(limit)"])
        defer { bench.stop() }
        try bench.run { holder, next in
            let started = ContinuousClock.now
            try holder.send { $0.query("SELECT 'slept' FROM pg_sleep(2)") }
            let cancel = try #require(
                bench.relay.waitForCancels(1, timeout: .seconds(5))?.first, "query_timeout sent no cancel")
            let sentAfter = cancel.arrived - started
            #expect(sentAfter > .milliseconds(800) && sentAfter < .seconds(3), "cancel sent after \(sentAfter)")
            // The cancel never reached PostgreSQL, so the statement ran to its end.
            let replies = try holder.readUntilReadyForQuery(timeout: .seconds(10))
            #expect(replies.compactMap(\.dataRowColumns) == [["slept"]], "\(replies)")
            try bench.expectNextServed(next, heldFor: limit, after: cancel)
        }
    }

    @Test("a client's cancel, never acknowledged, keeps the server from the next client for cancel_wait_timeout")
    func clientCancelHoldsTheServer() throws {
        let limit = 2.0
        let bench = try StalledCancelBench(settings: ["cancel_wait_timeout": "\(limit)"])
        defer { bench.stop() }
        try bench.run { holder, next in
            let key = try #require(holder.backendKey, "Sluice sent no BackendKeyData")
            try holder.send { $0.query("SELECT 'slept' FROM pg_sleep(1)") }
            sleep(for: .milliseconds(300))
            let canceller = try RawClient(port: bench.sluice.port)
            try canceller.send { $0.cancelRequest(processID: key.processID, secretKey: key.secretKey) }
            let cancel = try #require(
                bench.relay.waitForCancels(1, timeout: .seconds(5))?.first, "the client's cancel was not forwarded")
            canceller.close()
            let replies = try holder.readUntilReadyForQuery(timeout: .seconds(10))
            #expect(replies.compactMap(\.dataRowColumns) == [["slept"]], "\(replies)")
            try bench.expectNextServed(next, heldFor: limit, after: cancel)
        }
    }

    @Test("without a cancel in flight the next client gets the server at once")
    func noCancelNoWait() throws {
        let bench = try StalledCancelBench(settings: ["cancel_wait_timeout": "5"])
        defer { bench.stop() }
        try bench.run { holder, next in
            let slept = try holder.queryValue("SELECT 'slept' FROM pg_sleep(1)")
            let started = ContinuousClock.now
            let served = try next.queryValue("SELECT 'next'")
            let waited = ContinuousClock.now - started
            #expect(slept == "slept" && served == "next")
            #expect(waited < .seconds(1.5), "waited \(waited)")
            #expect(bench.relay.cancels.isEmpty)
            #expect(bench.relay.relayedConnections >= 1, "Sluice did not reach PostgreSQL through the relay")
        }
    }
}

/// Sluice with a one-server transaction pool whose server is reached through a `StallingCancelRelay`.
private final class StalledCancelBench {
    let relay: StallingCancelRelay
    let sluice: SluiceProcess
    let role: (name: String, password: String)
    let database: String

    init(settings: [String: String]) throws {
        let cluster = try TestCluster.current()
        let role = try cluster.makeRole(prefix: "cwt")
        let database = try cluster.makeDatabase(owner: role.name)
        let relay = try StallingCancelRelay(upstreamPort: cluster.port)
        let entry = "host=127.0.0.1 port=\(relay.port) dbname=\(database) pool_size=1"
        (self.role, self.database, self.relay) = (role, database, relay)
        do {
            sluice = try SluiceProcess(
                config: { port in
                    TestConfig.ini(
                        port: port, databases: [database: entry],
                        settings: settings.merging(["pool_mode": "transaction"]) { old, _ in old })
                },
                userlist: TestConfig.userlist([(role.name, role.password)]))
        } catch {
            relay.stop()
            throw error
        }
    }

    func connect() throws -> RawClient {
        try RawClient.connect(port: sluice.port, user: role.name, password: role.password, database: database)
    }

    /// Runs `body` with two logged-in clients of the pool; Sluice's log tail is added to a thrown error.
    func run(_ body: (_ holder: RawClient, _ next: RawClient) throws -> Void) throws {
        do {
            let holder = try connect()
            let next = try connect()
            try body(holder, next)
        } catch {
            throw HarnessError("\(error)\n---- sluice log tail ----\n\(sluice.logTail())")
        }
        if !sluice.isRunning { throw HarnessError("sluice exited during the test:\n\(sluice.logTail())") }
    }

    /// `next` asks for the pool's only server once its previous client is done with it. Sluice must not
    /// lend it before giving up on `cancel` (`limit` seconds after sending it), and must lend it then.
    func expectNextServed(_ next: RawClient, heldFor limit: Double, after cancel: StallingCancelRelay.Cancel) throws {
        try next.send { $0.query("SELECT 'next'") }
        // Longer than the 10 s default, so an ignored setting shows as a wrong time, not a timeout.
        let replies = try next.readUntilReadyForQuery(timeout: .seconds(20))
        let held = (ContinuousClock.now - cancel.arrived).seconds
        #expect(replies.compactMap(\.dataRowColumns) == [["next"]], "\(replies)")
        // The cancel left Sluice a moment before it reached the relay, hence the small allowance below.
        #expect(held >= limit - 0.5, "the server was lent \(held) s after the cancel, before giving up on it")
        #expect(held < limit + 2, "the server was held \(held) s after the cancel; cancel_wait_timeout = \(limit)")
        // Giving up means closing the connection the relay holds open.
        waitUntil(timeout: .seconds(3)) { relay.cancels.first?.closedBySender != nil }
        let closed = relay.cancels.first?.closedBySender.map { ($0 - cancel.arrived).seconds } ?? -1
        #expect(closed >= limit - 0.5 && closed < limit + 2, "cancel connection closed after \(closed) s (-1: never)")
        #expect(relay.cancels.count == 1, "\(relay.cancels)")
    }

    func stop() {
        sluice.stop()
        relay.stop()
    }
}
