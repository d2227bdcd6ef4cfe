/// What the driver must do after the pool state machine has handled an event.
public enum PoolAction: Equatable, Sendable {
    /// Link this server to this client; the server leaves the idle list.
    case assign(server: Int, client: Int)
    /// Open one more server connection; the client waits for it. `reserve` says it is one of the
    /// `reserve_pool_size` extras, which operators want to see in the log.
    case openServer(reserve: Bool)
    /// The client waits in line.
    case wait
    /// Server logins have been failing within `server_login_retry` and nothing could serve the client:
    /// it should be turned away with the remembered error instead of waiting for a retry.
    case failFast
    /// Nothing to do.
    case none
}

/// Hands servers of one pool to clients, never exceeding `maxServers` (plus the reserve once a client
/// has waited `reserveTimeout`) and serving waiters first come, first served. Holds only identifiers
/// and times, so it runs and is tested without sockets.
///
/// Caps shared with other pools (`max_db_connections`, `max_user_connections`) live in
/// ``ServerConnectionCaps``: when the driver cannot get a slot there for an `.openServer`, it calls
/// ``openDenied()`` and retries when a slot frees.
public struct PoolStateMachine: Sendable {
    public var maxServers: Int
    /// `reserve_pool_size`: servers allowed beyond `maxServers` for clients that waited too long.
    public var reserveSize = 0
    /// `reserve_pool_timeout`: how long the oldest waiter must have waited before the reserve is used.
    /// PgBouncer treats 0 as "never use the reserve", and so does Sluice.
    public var reserveTimeout: Double = 5
    /// `server_round_robin`: lend the idle server that has been idle longest (FIFO) instead of the one
    /// used last (LIFO, PgBouncer's default, which keeps the pool warm and lets extras time out).
    public var roundRobin = false
    /// `min_pool_size`, already limited by the pool's size.
    public var minSize = 0
    /// `server_login_retry`: after a failed login or connect, how long no new attempt is made.
    public var loginRetry: Double = 15
    /// When the last connection attempt failed; cleared by the next successful login.
    public private(set) var loginFailedAt: Double?
    /// Idle servers, most recently used last, each with the event loop that drives it (its home).
    private var idleEntries: [(server: Int, home: Int)] = []
    public var idle: [Int] { idleEntries.map(\.server) }
    public private(set) var active: Set<Int> = []
    /// Servers being connected or logging in.
    public private(set) var opening = 0
    private var waiters: [Waiter] = []
    private var waitersHead = 0

    public struct Waiter: Equatable, Sendable {
        public var client: Int
        public var since: Double
        /// The event loop the client is on.
        public var home: Int = 0
    }

    /// How much longer than the first waiter a waiter on the releasing server's own loop may have waited
    /// less and still be served first. Lending across loops means moving the server to the other loop
    /// (two epoll_ctl calls and a wake-up); under load nearly every release has a waiter, and the oldest
    /// one is on another loop half the time. Within this margin the queue stays first come, first served.
    public var sameLoopMargin: Double = 0.002
    /// How far into the queue that same-loop waiter is looked for.
    static let sameLoopLookahead = 8

    public init(maxServers: Int) {
        self.maxServers = maxServers
    }

    public var totalServers: Int { idleEntries.count + active.count + opening }
    public var idleCount: Int { idleEntries.count }

    public func isIdle(_ server: Int) -> Bool { idleEntries.contains { $0.server == server } }
    public var waitingCount: Int { waiters.count - waitersHead }
    public var oldestWaitSince: Double? { waitersHead < waiters.count ? waiters[waitersHead].since : nil }
    /// More clients wait than connections are being opened for them.
    public var needsServer: Bool { waitingCount > opening }

    /// The server address changed (a reload): failures at the old address say nothing about the new one,
    /// so `server_login_retry` stops holding back attempts.
    public mutating func targetChanged() {
        loginFailedAt = nil
    }

    /// Whether `server_login_retry` still holds back new connection attempts.
    public func isLoginBackingOff(now: Double) -> Bool {
        guard let failedAt = loginFailedAt else { return false }
        return now - failedAt < loginRetry
    }

    /// A client needs a server now. `home` is the client's event loop: an idle server driven by the same
    /// loop is preferred, because lending one from another loop means moving it there first.
    public mutating func clientRequestedServer(_ client: Int, now: Double, home: Int = 0) -> PoolAction {
        if waitingCount == 0, let server = takeIdle(home: home) {
            active.insert(server)
            return .assign(server: server, client: client)
        }
        // PgBouncer's fast fail: with logins failing and no server that could ever serve the client,
        // waiting would only end in query_wait_timeout.
        if isLoginBackingOff(now: now), active.isEmpty, idleEntries.isEmpty, opening == 0 {
            return .failFast
        }
        waiters.append(Waiter(client: client, since: now, home: home))
        return openIfRoom(now: now)
    }

    /// A server finished logging in or was released by its client, clean and idle, on loop `home`.
    public mutating func serverBecameIdle(_ server: Int, fromOpening: Bool, home: Int = 0) -> PoolAction {
        if fromOpening {
            precondition(opening > 0, "a server finished opening but none was opening")
            opening -= 1
            loginFailedAt = nil
        } else {
            active.remove(server)
        }
        if let waiter = popWaiter(preferring: home) {
            active.insert(server)
            return .assign(server: server, client: waiter.client)
        }
        idleEntries.append((server, home))
        return .none
    }

    /// A server is gone, from whatever list it was on. Returns `.openServer` when waiters need a replacement.
    public mutating func serverClosed(_ server: Int, now: Double) -> PoolAction {
        if active.remove(server) == nil, let i = idleEntries.firstIndex(where: { $0.server == server }) {
            idleEntries.remove(at: i)
        }
        return waitingCount > 0 ? openIfRoom(now: now) : .none
    }

    /// Opening a server failed before it could be used. Starts the `server_login_retry` back-off and
    /// returns the waiters that should be failed because no other attempt is under way that could still
    /// serve them.
    public mutating func serverOpenFailed(now: Double) -> [Int] {
        precondition(opening > 0, "an open failed but none was opening")
        opening -= 1
        loginFailedAt = now
        if opening > 0 || !active.isEmpty || !idleEntries.isEmpty { return [] }
        var failed: [Int] = []
        while let waiter = popWaiter() { failed.append(waiter.client) }
        return failed
    }

    /// The driver could not open the server `.openServer` asked for (a cap shared with other pools is
    /// full); the pool waits for a slot instead.
    public mutating func openDenied() {
        precondition(opening > 0, "an open was denied but none was opening")
        opening -= 1
    }

    /// A waiting client gave up or disconnected.
    public mutating func waiterLeft(_ client: Int) {
        if let i = waiters[waitersHead...].firstIndex(where: { $0.client == client }) {
            waiters.remove(at: i)
        }
    }

    /// Removes and returns the clients that have waited since before `deadline`.
    public mutating func waitersExpired(before deadline: Double) -> [Int] {
        var expired: [Int] = []
        while waitersHead < waiters.count, waiters[waitersHead].since < deadline {
            expired.append(waiters[waitersHead].client)
            waitersHead += 1
        }
        compactWaiters()
        return expired
    }

    /// An idle server is being taken out (idle timeout, lifetime, eviction): it leaves the idle list.
    public mutating func idleServerRetired(_ server: Int) -> Bool {
        guard let i = idleEntries.firstIndex(where: { $0.server == server }) else { return false }
        idleEntries.remove(at: i)
        return true
    }

    /// Starts opening servers for waiters while the pool size, or the reserve, allows.
    public mutating func openIfRoom(now: Double) -> PoolAction {
        // One connection in progress per waiter at most: a slow server should not be hit by a storm.
        guard opening < waitingCount else { return .wait }
        if loginFailedAt != nil {
            // After a failure: nothing until server_login_retry has passed, then one attempt at a time.
            if isLoginBackingOff(now: now) || opening > 0 { return .wait }
        }
        if totalServers < maxServers {
            opening += 1
            return .openServer(reserve: false)
        }
        if reserveSize > 0, reserveTimeout > 0, let since = oldestWaitSince, now - since >= reserveTimeout,
            totalServers < maxServers + reserveSize
        {
            opening += 1
            return .openServer(reserve: true)
        }
        return .wait
    }

    /// How many servers to open now so the pool holds `minSize`, all at once rather than one per tick.
    /// The driver decides whether the pool qualifies (PgBouncer: it has clients, or a forced user).
    public mutating func openForMinimum(now: Double) -> Int {
        let target = min(minSize, maxServers)
        guard totalServers < target else { return 0 }
        if loginFailedAt != nil {
            if isLoginBackingOff(now: now) || opening > 0 { return 0 }
            opening += 1
            return 1
        }
        let count = target - totalServers
        opening += count
        return count
    }

    /// The server to lend next: the newest idle one, or the oldest under `server_round_robin`; among
    /// those, one at home on the client's loop first.
    private mutating func takeIdle(home: Int) -> Int? {
        guard !idleEntries.isEmpty else { return nil }
        let index: Int
        if roundRobin {
            index = idleEntries.firstIndex { $0.home == home } ?? idleEntries.startIndex
        } else {
            index = idleEntries.lastIndex { $0.home == home } ?? idleEntries.index(before: idleEntries.endIndex)
        }
        return idleEntries.remove(at: index).server
    }

    /// The first waiter, or a waiter of loop `home` that came at most `sameLoopMargin` after it.
    private mutating func popWaiter(preferring home: Int) -> Waiter? {
        guard waitersHead < waiters.count else { return nil }
        let first = waiters[waitersHead]
        guard first.home != home, sameLoopMargin > 0 else { return popWaiter() }
        let end = min(waiters.count, waitersHead + Self.sameLoopLookahead)
        var i = waitersHead + 1
        while i < end {
            let candidate = waiters[i]
            if candidate.since - first.since > sameLoopMargin { break }
            if candidate.home == home {
                // Close the gap by moving the few waiters before it one place back.
                var j = i
                while j > waitersHead {
                    waiters[j] = waiters[j - 1]
                    j -= 1
                }
                waitersHead += 1
                compactWaiters()
                return candidate
            }
            i += 1
        }
        return popWaiter()
    }

    private mutating func popWaiter() -> Waiter? {
        guard waitersHead < waiters.count else { return nil }
        let waiter = waiters[waitersHead]
        waitersHead += 1
        compactWaiters()
        return waiter
    }

    private mutating func compactWaiters() {
        if waitersHead == waiters.count {
            waiters.removeAll(keepingCapacity: true)
            waitersHead = 0
        } else if waitersHead > 64, waitersHead > waiters.count / 2 {
            waiters.removeFirst(waitersHead)
            waitersHead = 0
        }
    }
}
