/// What the driver must do after the pool state machine has handled an event.
public enum PoolAction: Equatable, Sendable {
    /// Link this server to this client; the server leaves the idle list.
    case assign(server: Int, client: Int)
    /// Open one more server connection; the client waits for it.
    case openServer
    /// The client waits in line.
    case wait
    /// Nothing to do.
    case none
}

/// Hands servers of one pool to clients, never exceeding `maxServers` and serving waiters first come,
/// first served. Holds only identifiers, so it runs and is tested without sockets.
public struct PoolStateMachine: Sendable {
    public var maxServers: Int
    /// Idle servers, most recently used last (PgBouncer's LIFO default keeps the pool warm and small).
    public private(set) var idle: [Int] = []
    public private(set) var active: Set<Int> = []
    /// Servers being connected or logging in.
    public private(set) var opening = 0
    private var waiters: [Waiter] = []
    private var waitersHead = 0

    public struct Waiter: Equatable, Sendable {
        public var client: Int
        public var since: Double
    }

    public init(maxServers: Int) {
        self.maxServers = maxServers
    }

    public var totalServers: Int { idle.count + active.count + opening }
    public var waitingCount: Int { waiters.count - waitersHead }
    public var oldestWaitSince: Double? { waitersHead < waiters.count ? waiters[waitersHead].since : nil }

    /// A client needs a server now.
    public mutating func clientRequestedServer(_ client: Int, now: Double) -> PoolAction {
        if waitingCount == 0, let server = idle.popLast() {
            active.insert(server)
            return .assign(server: server, client: client)
        }
        waiters.append(Waiter(client: client, since: now))
        return openIfRoom()
    }

    /// A server finished logging in or was released by its client, clean and idle.
    public mutating func serverBecameIdle(_ server: Int, fromOpening: Bool) -> PoolAction {
        if fromOpening {
            precondition(opening > 0, "a server finished opening but none was opening")
            opening -= 1
        } else {
            active.remove(server)
        }
        if let waiter = popWaiter() {
            active.insert(server)
            return .assign(server: server, client: waiter.client)
        }
        idle.append(server)
        return .none
    }

    /// A server is gone, from whatever list it was on. Returns `.openServer` when waiters need a replacement.
    public mutating func serverClosed(_ server: Int) -> PoolAction {
        if active.remove(server) == nil, let i = idle.firstIndex(of: server) {
            idle.remove(at: i)
        }
        return waitingCount > 0 ? openIfRoom() : .none
    }

    /// Opening a server failed before it could be used. Returns the waiters that should be failed when
    /// no other connection attempt is under way that could still serve them.
    public mutating func serverOpenFailed() -> [Int] {
        precondition(opening > 0, "an open failed but none was opening")
        opening -= 1
        if opening > 0 || !active.isEmpty || !idle.isEmpty { return [] }
        var failed: [Int] = []
        while let waiter = popWaiter() { failed.append(waiter.client) }
        return failed
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

    /// An idle server is being taken out (idle timeout, lifetime): it leaves the idle list.
    public mutating func idleServerRetired(_ server: Int) -> Bool {
        guard let i = idle.firstIndex(of: server) else { return false }
        idle.remove(at: i)
        return true
    }

    /// Starts opening servers for waiters while the cap allows.
    public mutating func openIfRoom() -> PoolAction {
        // One connection in progress per waiter at most: a slow server should not be hit by a storm.
        guard totalServers < maxServers, opening < waitingCount else { return .wait }
        opening += 1
        return .openServer
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
