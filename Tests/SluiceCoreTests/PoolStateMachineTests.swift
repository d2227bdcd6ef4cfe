import Testing

@testable import SluiceCore

@Suite("Pool state machine")
struct PoolStateMachineTests {
    @Test("opens servers up to the cap and queues the rest first come, first served")
    func capAndFIFO() {
        var pool = PoolStateMachine(maxServers: 2)
        #expect(pool.clientRequestedServer(1, now: 0) == .openServer(reserve: false))
        #expect(pool.clientRequestedServer(2, now: 1) == .openServer(reserve: false))
        #expect(pool.clientRequestedServer(3, now: 2) == .wait)
        #expect(pool.totalServers == 2)
        #expect(pool.serverBecameIdle(100, fromOpening: true) == .assign(server: 100, client: 1))
        #expect(pool.serverBecameIdle(101, fromOpening: true) == .assign(server: 101, client: 2))
        #expect(pool.serverBecameIdle(100, fromOpening: false) == .assign(server: 100, client: 3))
        #expect(pool.serverBecameIdle(101, fromOpening: false) == .none)
        #expect(pool.idle == [101])
        #expect(pool.clientRequestedServer(4, now: 3) == .assign(server: 101, client: 4))
    }

    @Test("an idle server of the client's own loop is lent first; another loop's only when none is")
    func prefersTheClientsLoop() {
        var pool = PoolStateMachine(maxServers: 3)
        for client in 1...3 { _ = pool.clientRequestedServer(client, now: 0) }
        _ = pool.serverBecameIdle(10, fromOpening: true, home: 0)
        _ = pool.serverBecameIdle(11, fromOpening: true, home: 1)
        _ = pool.serverBecameIdle(12, fromOpening: true, home: 0)
        for server in [10, 11, 12] {
            #expect(pool.serverBecameIdle(server, fromOpening: false, home: server == 11 ? 1 : 0) == .none)
        }
        #expect(pool.clientRequestedServer(4, now: 1, home: 1) == .assign(server: 11, client: 4))
        #expect(pool.clientRequestedServer(5, now: 1, home: 1) == .assign(server: 12, client: 5))
        pool.roundRobin = true
        #expect(pool.clientRequestedServer(6, now: 1, home: 0) == .assign(server: 10, client: 6))
        // Waiters stay first come, first served whatever their loop: the next idle server goes to the oldest.
        #expect(pool.clientRequestedServer(7, now: 2, home: 1) == .wait)
        #expect(pool.serverBecameIdle(10, fromOpening: false, home: 0) == .assign(server: 10, client: 7))
    }

    @Test("a released server goes to a waiter of its own loop only when it came within the margin of the first")
    func sameLoopWaiterWithinMargin() {
        var pool = PoolStateMachine(maxServers: 1)
        pool.sameLoopMargin = 0.002
        _ = pool.clientRequestedServer(1, now: 0, home: 0)
        #expect(pool.serverBecameIdle(10, fromOpening: true, home: 0) == .assign(server: 10, client: 1))
        #expect(pool.clientRequestedServer(2, now: 1.000, home: 1) == .wait)
        #expect(pool.clientRequestedServer(3, now: 1.001, home: 0) == .wait)
        #expect(pool.clientRequestedServer(4, now: 1.010, home: 0) == .wait)
        // Client 3 (loop 0) came 1 ms after client 2 (loop 1): a server released on loop 0 goes to 3.
        #expect(pool.serverBecameIdle(10, fromOpening: false, home: 0) == .assign(server: 10, client: 3))
        // Client 4 came 10 ms after client 2: first come, first served again.
        #expect(pool.serverBecameIdle(10, fromOpening: false, home: 0) == .assign(server: 10, client: 2))
        #expect(pool.serverBecameIdle(10, fromOpening: false, home: 0) == .assign(server: 10, client: 4))
        #expect(pool.waitingCount == 0)
    }

    @Test("a changed server address ends the server_login_retry back-off")
    func targetChangeEndsBackoff() {
        var pool = PoolStateMachine(maxServers: 2)
        pool.loginRetry = 30
        #expect(pool.clientRequestedServer(1, now: 0) == .openServer(reserve: false))
        #expect(pool.serverOpenFailed(now: 1) == [1])
        #expect(pool.clientRequestedServer(2, now: 2) == .failFast)
        pool.targetChanged()
        #expect(pool.clientRequestedServer(3, now: 3) == .openServer(reserve: false))
    }

    @Test("never exceeds the cap however many clients ask")
    func neverExceeds() {
        var pool = PoolStateMachine(maxServers: 3)
        var opened = 0
        for client in 0..<100 where pool.clientRequestedServer(client, now: 0) == .openServer(reserve: false) {
            opened += 1
        }
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
        #expect(pool.serverOpenFailed(now: 0) == [])
        #expect(pool.serverOpenFailed(now: 0) == [1, 2])
        #expect(pool.totalServers == 0)
    }

    @Test("a closed server is replaced when clients wait")
    func replacement() {
        var pool = PoolStateMachine(maxServers: 1)
        _ = pool.clientRequestedServer(1, now: 0)
        _ = pool.serverBecameIdle(7, fromOpening: true)
        _ = pool.clientRequestedServer(2, now: 0)
        #expect(pool.serverClosed(7, now: 0) == .openServer(reserve: false))
    }

    @Test("uses the reserve only once the oldest waiter has waited reserve_pool_timeout")
    func reserve() {
        var pool = PoolStateMachine(maxServers: 1)
        pool.reserveSize = 1
        pool.reserveTimeout = 5
        #expect(pool.clientRequestedServer(1, now: 0) == .openServer(reserve: false))
        _ = pool.serverBecameIdle(10, fromOpening: true)
        #expect(pool.clientRequestedServer(2, now: 1) == .wait)
        #expect(pool.openIfRoom(now: 5.9) == .wait)
        #expect(pool.openIfRoom(now: 6) == .openServer(reserve: true))
        _ = pool.serverBecameIdle(11, fromOpening: true)
        #expect(pool.clientRequestedServer(3, now: 7) == .wait)
        #expect(pool.openIfRoom(now: 100) == .wait, "pool size plus reserve is the hard cap")
        #expect(pool.totalServers == 2)
    }

    @Test("a reserve_pool_timeout of 0 disables the reserve, as in PgBouncer")
    func reserveTimeoutZero() {
        var pool = PoolStateMachine(maxServers: 0)
        pool.reserveSize = 3
        pool.reserveTimeout = 0
        #expect(pool.clientRequestedServer(1, now: 0) == .wait)
        #expect(pool.openIfRoom(now: 1000) == .wait)
    }

    @Test("after a failed login new clients fail fast until server_login_retry passes, then one attempt is made")
    func loginRetry() {
        var pool = PoolStateMachine(maxServers: 5)
        pool.loginRetry = 15
        #expect(pool.clientRequestedServer(1, now: 0) == .openServer(reserve: false))
        #expect(pool.serverOpenFailed(now: 1) == [1])
        #expect(pool.isLoginBackingOff(now: 15.9))
        #expect(pool.clientRequestedServer(2, now: 10) == .failFast)
        #expect(pool.waitingCount == 0)
        #expect(pool.clientRequestedServer(3, now: 16) == .openServer(reserve: false))
        #expect(pool.clientRequestedServer(4, now: 16) == .wait, "one attempt at a time while logins fail")
        #expect(pool.serverBecameIdle(20, fromOpening: true) == .assign(server: 20, client: 3))
        #expect(pool.loginFailedAt == nil)
        #expect(pool.openIfRoom(now: 17) == .openServer(reserve: false), "a success lifts the one-at-a-time rule")
    }

    @Test("a failed login leaves waiters queued when a working server can still serve them")
    func loginRetryWithServers() {
        var pool = PoolStateMachine(maxServers: 2)
        _ = pool.clientRequestedServer(1, now: 0)
        _ = pool.serverBecameIdle(10, fromOpening: true)
        #expect(pool.clientRequestedServer(2, now: 1) == .openServer(reserve: false))
        #expect(pool.serverOpenFailed(now: 2) == [])
        #expect(pool.clientRequestedServer(3, now: 3) == .wait, "server 10 will come back")
        #expect(pool.serverBecameIdle(10, fromOpening: false) == .assign(server: 10, client: 2))
    }

    @Test("idle servers are lent newest first, or oldest first under server_round_robin")
    func idleOrder() {
        for roundRobin in [false, true] {
            var pool = PoolStateMachine(maxServers: 3)
            pool.roundRobin = roundRobin
            for client in 1...3 { _ = pool.clientRequestedServer(client, now: 0) }
            for server in [10, 11, 12] { _ = pool.serverBecameIdle(server, fromOpening: true) }
            for server in [10, 11, 12] { _ = pool.serverBecameIdle(server, fromOpening: false) }
            let expected = roundRobin ? 10 : 12
            #expect(pool.clientRequestedServer(4, now: 1) == .assign(server: expected, client: 4))
        }
    }

    @Test("min_pool_size opens every missing server at once, within the pool size")
    func minimum() {
        var pool = PoolStateMachine(maxServers: 3)
        pool.minSize = 5
        #expect(pool.openForMinimum(now: 0) == 3)
        #expect(pool.openForMinimum(now: 0) == 0)
        #expect(pool.serverOpenFailed(now: 1) == [])
        #expect(pool.openForMinimum(now: 2) == 0, "no new attempt while another is still opening or backing off")
    }

    @Test("a denied open gives back its place so the pool can ask again")
    func denied() {
        var pool = PoolStateMachine(maxServers: 2)
        #expect(pool.clientRequestedServer(1, now: 0) == .openServer(reserve: false))
        pool.openDenied()
        #expect(pool.opening == 0 && pool.needsServer)
        #expect(pool.openIfRoom(now: 1) == .openServer(reserve: false))
    }
}
