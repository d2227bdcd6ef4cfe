import Testing

@testable import SluiceCore

@Suite("Pool state machine")
struct PoolStateMachineTests {
    @Test("opens servers up to the cap and queues the rest first come, first served")
    func capAndFIFO() {
        var pool = PoolStateMachine(maxServers: 2)
        #expect(pool.clientRequestedServer(1, now: 0) == .openServer)
        #expect(pool.clientRequestedServer(2, now: 1) == .openServer)
        #expect(pool.clientRequestedServer(3, now: 2) == .wait)
        #expect(pool.totalServers == 2)
        #expect(pool.serverBecameIdle(100, fromOpening: true) == .assign(server: 100, client: 1))
        #expect(pool.serverBecameIdle(101, fromOpening: true) == .assign(server: 101, client: 2))
        #expect(pool.serverBecameIdle(100, fromOpening: false) == .assign(server: 100, client: 3))
        #expect(pool.serverBecameIdle(101, fromOpening: false) == .none)
        #expect(pool.idle == [101])
        #expect(pool.clientRequestedServer(4, now: 3) == .assign(server: 101, client: 4))
    }

    @Test("never exceeds the cap however many clients ask")
    func neverExceeds() {
        var pool = PoolStateMachine(maxServers: 3)
        var opened = 0
        for client in 0..<100 where pool.clientRequestedServer(client, now: 0) == .openServer { opened += 1 }
        #expect(opened == 3)
        #expect(pool.waitingCount == 100)
    }

    @Test("waiters that time out leave the queue in order")
    func expiry() {
        var pool = PoolStateMachine(maxServers: 0)
        _ = pool.clientRequestedServer(1, now: 0)
        _ = pool.clientRequestedServer(2, now: 5)
        #expect(pool.waitersExpired(before: 3) == [1])
        #expect(pool.waitingCount == 1)
        pool.waiterLeft(2)
        #expect(pool.waitingCount == 0)
    }

    @Test("a failed open fails the waiters only when nothing else can serve them")
    func openFailure() {
        var pool = PoolStateMachine(maxServers: 2)
        _ = pool.clientRequestedServer(1, now: 0)
        _ = pool.clientRequestedServer(2, now: 0)
        #expect(pool.serverOpenFailed() == [])
        #expect(pool.serverOpenFailed() == [1, 2])
        #expect(pool.totalServers == 0)
    }

    @Test("a closed server is replaced when clients wait")
    func replacement() {
        var pool = PoolStateMachine(maxServers: 1)
        _ = pool.clientRequestedServer(1, now: 0)
        _ = pool.serverBecameIdle(7, fromOpening: true)
        _ = pool.clientRequestedServer(2, now: 0)
        #expect(pool.serverClosed(7) == .openServer)
    }
}
