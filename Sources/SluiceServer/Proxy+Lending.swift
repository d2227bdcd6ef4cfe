import Glibc
import SluiceCore
import SluiceIO

/// Lending servers to clients and taking them back.
extension Proxy {

    /// The client needs a server: link one now, or queue the client (opening a server if allowed).
    func acquireServer(for client: ClientConnection, request: RouteRequest? = nil) {
        shared.lock.lock()
        defer { shared.lock.unlock() }
        guard let home = client.pool, !client.isWaitingForServer else { return }
        let now = Syscall.monotonicNow()
        var pool = home
        if let routing = client.routing {
            if let routes = home.routes {
                if let request {
                    guard let target = routedPool(for: client, home: home, request: request) else {
                        client.isWaitingForServer = true
                        client.waitingSince = now
                        return waitForPrimary(client, routes: routes, request: request)
                    }
                    routing.target = target
                }
            } else {
                routing.target = nil
            }
            pool = routing.target ?? home
        }
        client.isWaitingForServer = true
        client.waitingSince = now
        if paused || pool.isPaused {
            pausedClients.append(client)
            return
        }
        // A client asking from inside its own processing carries on by itself once linked.
        requestingClientID = client.id
        let action = pool.machine.clientRequestedServer(client.id, now: now, home: index)
        if case .failFast = action, client.routing != nil, pool.routes != nil,
            pool.key.backend != home.routes?.state.primary,
            client.routing?.onStandby == true
        {
            // A standby whose last login failed: the read goes elsewhere while it is left out.
            client.isWaitingForServer = false
            requestingClientID = 0
            client.routeTarget = nil
            if let routes = pool.routes {
                logRouting(
                    routes.state.connectionFailed(pool.key.backend, error: "login failed recently", now: now), routes)
            }
            return acquireServer(for: client, request: .read)
        }
        if case .failFast = action {
            client.isWaitingForServer = false
            requestingClientID = 0
            let error = loginRetryError(pool)
            return client.isLoggingIn ? client.refuse(error) : client.fail(error)
        }
        perform(action, pool: pool)
        requestingClientID = 0
    }

    func perform(_ action: PoolAction, pool: Pool) {
        switch action {
        case .assign(let serverID, let clientID):
            link(serverID: serverID, clientID: clientID, pool: pool)
        case .openServer(let reserve):
            if reserve {
                pool.logger.warning(
                    "taking connection from reserve_pool", [("reserve_pool_size", String(pool.machine.reserveSize))])
            }
            openServerWithinCaps(pool)
        case .wait, .failFast, .none:
            break
        }
    }

    func link(serverID: Int, clientID: Int, pool: Pool, justChecked: Bool = false) {
        guard let server = pool.servers[serverID] else { preconditionFailure("pool lent unknown server \(serverID)") }
        let home = shared.owner(ofClient: clientID)
        if server.proxy !== self || home !== self {
            // The client lives on another loop, or the server does: the server moves to the client's loop
            // and they are linked there.
            let driver = server.proxy
            guard driver === self else {
                return driver.loop.post { [unowned driver] in
                    driver.shared.lock.withLock {
                        driver.move(server, to: home, clientID: clientID, justChecked: justChecked)
                    }
                }
            }
            return move(server, to: home, clientID: clientID, justChecked: justChecked)
        }
        guard let client = clients[clientID], !client.isClosed else {
            // The waiter left between being chosen and being linked: the server goes straight back.
            return returnToPool(server)
        }
        server.state = .active
        let now = Syscall.monotonicNow()
        // A server fresh from login, or just checked, needs no check.
        if server.lentBefore && !justChecked && now - server.idleSince >= config.serverCheckDelay {
            // Long idle: it may have died quietly. Check it before the client's requests go there; the
            // client keeps waiting until the check's ReadyForQuery.
            server.checkingForClient = client
            server.checkStartedAt = now
            server.sendSluiceQuery(config.serverCheckQuery, purpose: .serverCheck)
            server.flushOrLose()
            return
        }
        client.isWaitingForServer = false
        client.isToldOfWait = false
        let waited = PoolStats.micros(now - client.waitingSince)
        pool.stats.waitMicros &+= waited
        pool.stats.serverAssignments &+= 1
        pool.latency.wait.record(micros: waited)
        server.client = client
        server.lentBefore = true
        client.server = server
        if case .awaitingWelcome = client.state, let welcome = pool.welcome {
            client.finishLogin(welcome: welcome)
            if pool.mode != .session && client.input.isEmpty {
                release(server)
                return
            }
        }
        restoreSession(of: client, on: server)
        if client.id != requestingClientID { client.scheduleDrive() }
    }

    /// Hands `server`, which this loop drives and the pool has lent to client `clientID`, to the client's
    /// loop `home`. Lock held.
    func move(_ server: ServerConnection, to home: Proxy, clientID: Int, justChecked: Bool) {
        if server.isClosed {
            // It died between being lent and being moved; the client asks again.
            return home.post { $0.requeue(clientID: clientID) }
        }
        if home === self {
            return link(serverID: server.id, clientID: clientID, pool: server.pool, justChecked: justChecked)
        }
        loop.unregister(server.fd)
        servers[server.id] = nil
        // Work this loop already deferred for the server (a drive) runs here before the server leaves.
        loop.defer_ { [self] in
            let gone: Bool = shared.lock.withLock {
                if server.isClosed { return true }
                server.proxy = home
                return false
            }
            if gone { return home.post { $0.requeue(clientID: clientID) } }
            home.post { $0.adopt(server, clientID: clientID, justChecked: justChecked) }
        }
    }

    /// Takes over a server another loop moved here for client `clientID`. Lock held.
    func adopt(_ server: ServerConnection, clientID: Int, justChecked: Bool) {
        do {
            try loop.register(server.fd, handler: server)
        } catch {
            server.lost("could not watch the server socket: \(error)")
            return requeue(clientID: clientID)
        }
        servers[server.id] = server
        server.scheduleDrive()
        link(serverID: server.id, clientID: clientID, pool: server.pool, justChecked: justChecked)
    }

    /// Runs `work` on this loop with the registry's lock held.
    func post(_ work: @escaping (Proxy) -> Void) {
        loop.post { [unowned self] in
            shared.lock.withLock { work(self) }
        }
    }

    /// Takes over a socket the connect path (Proxy+Connect.swift) opened for `pool`, or its failure.
    func openServer(_ pool: Pool, connect: () throws -> (fd: Int32, host: String?)) {
        let now = Syscall.monotonicNow()
        let id = allocateID()
        let fd: Int32
        let host: String?
        do {
            (fd, host) = try connect()
        } catch {
            if pool.isHealthCheck { return healthCheckEnded(pool, error: "could not connect to server: \(error)") }
            if let (routes, index) = pool.monitor {
                return monitorFailed(routes, index, error: "could not connect to server: \(error)")
            }
            if let lookup = pool.authLookup { return authLookupFailed(lookup, reason: "could not connect: \(error)") }
            pool.logger.warning("could not connect to server", [("error", "\(error)")])
            let failure = ErrorFields.fatal(
                .sqlclientUnableToEstablishConnection, "could not connect to server: \(error)")
            pool.lastLoginError = failure
            slotOfUnopenedServerFreed(pool)
            rerouteOrFail(pool.machine.serverOpenFailed(now: now), pool: pool, error: failure)
            return
        }
        let server = ServerConnection(id: id, transport: SocketTransport(fd: fd), pool: pool, proxy: self, now: now)
        server.serverName = host
        do {
            try loop.register(fd, handler: server)
        } catch {
            server.closeSocket()
            if pool.isHealthCheck { return healthCheckEnded(pool, error: "\(error)") }
            if let (routes, index) = pool.monitor { return monitorFailed(routes, index, error: "\(error)") }
            if let lookup = pool.authLookup { return authLookupFailed(lookup, reason: "\(error)") }
            slotOfUnopenedServerFreed(pool)
            failWaiters(pool.machine.serverOpenFailed(now: now), pool: pool, error: .fatal(.internalError, "\(error)"))
            return
        }
        servers[id] = server
        pool.servers[id] = server
        server.logger.debug("connecting to server", [("host", pool.host), ("port", String(pool.port))])
    }

    func serverLoggedIn(_ server: ServerConnection, parameters: [(name: String, value: String)]) {
        shared.lock.lock()
        defer { shared.lock.unlock() }
        let pool = server.pool
        if pool.isHealthCheck { return healthCheckLoggedIn(server) }
        if pool.monitor != nil { return monitorLoggedIn(server) }
        if pool.authLookup != nil { return authLookupLoggedIn(server) }
        if pool.welcome == nil { pool.welcome = parameters }
        server.state = .idle
        server.idleSince = Syscall.monotonicNow()
        pool.lastLoginError = nil
        perform(pool.machine.serverBecameIdle(server.id, fromOpening: true, home: index), pool: pool)
        offerIdleServer(server)
    }

    func serverLoginFailed(_ server: ServerConnection, error: ErrorFields) {
        shared.lock.lock()
        defer { shared.lock.unlock() }
        let pool = server.pool
        if pool.isHealthCheck {
            forgetServer(server)
            return healthCheckEnded(pool, error: error.message)
        }
        if let (routes, index) = pool.monitor {
            forgetServer(server)
            return monitorFailed(routes, index, error: "login failed: \(error.message)")
        }
        if let lookup = pool.authLookup {
            forgetServer(server)
            return authLookupFailed(lookup, reason: "auth_user login failed: \(error.message)")
        }
        pool.lastLoginError = error
        forgetServer(server)
        rerouteOrFail(pool.machine.serverOpenFailed(now: Syscall.monotonicNow()), pool: pool, error: error)
        offerFreedSlot(database: pool.key.database, user: pool.key.user)
    }

    /// A connection attempt failed before its server was registered: the slot it took is free again.
    private func slotOfUnopenedServerFreed(_ pool: Pool) {
        limitState.caps.release(database: pool.key.database, user: pool.key.user)
        offerFreedSlot(database: pool.key.database, user: pool.key.user)
    }

    func failWaiters(_ ids: [Int], pool: Pool, error: ErrorFields) {
        for id in ids {
            let home = shared.owner(ofClient: id)
            if home === self {
                failWaiter(id, error: error)
            } else {
                home.post { $0.failWaiter(id, error: error) }
            }
        }
    }

    /// Turns away a client of this loop that the pool gave up waiting for.
    func failWaiter(_ id: Int, error: ErrorFields) {
        guard let client = clients[id] else { return }
        client.isWaitingForServer = false
        var fields = error
        fields.severity = "FATAL"
        if client.isLoggingIn { client.refuse(fields) } else { client.fail(fields) }
    }

    /// A server received a ReadyForQuery: decide whether it can go back to the pool.
    func serverBecameQuiet(_ server: ServerConnection) {
        guard server.tracker.isQuiet else { return }
        shared.lock.lock()
        defer { shared.lock.unlock() }
        if server.pool.isHealthCheck {
            let failed = server.closeWhenReleased
            server.retire("health check done")
            forgetServer(server)
            return healthCheckEnded(server.pool, error: failed ? "the server rejected an empty query" : nil)
        }
        // The monitor's and the look-ups' connections stay open between questions; answers were read as they came.
        if server.pool.monitor != nil || server.pool.authLookup != nil { return }
        server.pool.stats += server.pendingStats
        server.pool.latency.record(server.pendingStats)
        server.pendingStats = PoolStats()
        if let client = server.client { takeByteCounts(of: client) }
        if let checked = server.checkingForClient ?? nil, server.client == nil {
            server.checkingForClient = nil
            if server.closeWhenReleased || !server.tracker.isIdle {
                server.retire("server_check_query failed")
                serverRemoved(server)
                return requeue(checked)
            }
            server.idleSince = Syscall.monotonicNow()
            return link(serverID: server.id, clientID: checked.id, pool: server.pool, justChecked: true)
        }
        if let client = server.client {
            if server.pool.mode == .session, server.closeWhenReleased, config.serverFastClose, server.tracker.isIdle {
                // server_fast_close: the session survives, on a fresh server from its next transaction on.
                client.server = nil
                server.client = nil
                server.retire("server_fast_close")
                serverRemoved(server)
                return
            }
            guard server.pool.mode != .session, server.tracker.isIdle else { return }
            if case .forward = client.passthrough { return }
            if server.startSessionCheckIfDue() {
                // The client keeps the server until the answer is in: its next transaction must not start
                // elsewhere with settings Sluice does not know yet. Anything it sends meanwhile queues here.
                server.flushOrLose()
                return
            }
            // Read-your-writes: the client keeps the server until the primary's position is in.
            if server.mayHaveWritten && askPositionIfDue(server) { return }
            // Pinned: the client keeps its server, as in session pooling, until the state is gone.
            guard server.pins.isEmpty else { return }
            release(server)
            if shutdown == .waitForTransactions {
                client.fail(.fatal(.adminShutdown, "Sluice is shutting down"))
            }
        } else if server.tracker.isIdle {
            if server.startSessionCheckIfDue() { return server.flushOrLose() }
            if !server.pins.isEmpty && server.pool.mode != .session {
                server.retire("its client left state that cannot move: \(server.pins)")
                return serverRemoved(server)
            }
            returnToPool(server)
        } else {
            server.retire("still in a transaction after its client left")
            serverRemoved(server)
        }
    }

    /// Unlinks a server from its client in transaction mode.
    func release(_ server: ServerConnection) {
        guard let client = server.client else { return }
        client.server = nil
        server.client = nil
        var resetting = false
        if config.serverResetQueryAlways, !config.serverResetQuery.isEmpty {
            server.sendSluiceQuery(config.serverResetQuery, purpose: .resetQuery)
            resetting = true
        }
        if resetting {
            server.flushOrLose()
        } else {
            returnToPool(server)
        }
        if !client.input.isEmpty { client.scheduleDrive() }
    }

    /// The server is clean and idle with no client: lend it to the next waiter or park it.
    func returnToPool(_ server: ServerConnection) {
        let pool = server.pool
        let now = Syscall.monotonicNow()
        if server.cancelsInFlight > 0 {
            server.releaseWhenCancelsLand = true
            return
        }
        if server.closeWhenReleased || paused || pool.isPaused || server.lifetimeReached(now) {
            server.retire(
                server.closeWhenReleased
                    ? "marked for closing" : paused || pool.isPaused ? "pool paused" : "server_lifetime reached")
            serverRemoved(server)
            return
        }
        server.state = .idle
        server.idleSince = now
        perform(pool.machine.serverBecameIdle(server.id, fromOpening: false, home: index), pool: pool)
        offerIdleServer(server)
    }

    /// Bookkeeping after a server connection closed outside login.
    func serverRemoved(_ server: ServerConnection) {
        let pool = server.pool
        forgetServer(server)
        // Pools blocked on a shared cap have waited longest: they get the slot before this pool's own
        // replacement, which queues behind them if the cap is still full.
        offerFreedSlot(database: pool.key.database, user: pool.key.user)
        perform(pool.machine.serverClosed(server.id, now: Syscall.monotonicNow()), pool: pool)
    }

    /// Like `requeue(_:)`, for a client of this loop known by id.
    func requeue(clientID: Int) {
        guard let client = clients[clientID] else { return }
        requeue(client)
    }

    /// A client whose server failed its check asks again, without losing its place to a timeout.
    func requeue(_ client: ClientConnection) {
        guard !client.isClosed else { return }
        client.isWaitingForServer = false
        acquireServer(for: client)
    }

    func serverLost(_ server: ServerConnection, reason: String) {
        shared.lock.lock()
        defer { shared.lock.unlock() }
        if server.pool.isHealthCheck {
            forgetServer(server)
            return healthCheckEnded(server.pool, error: "connection lost: \(reason)")
        }
        if let (routes, index) = server.pool.monitor {
            forgetServer(server)
            if routes.monitors[index] === server.pool {
                monitorFailed(routes, index, error: "connection lost: \(reason)")
            }
            return
        }
        if let lookup = server.pool.authLookup {
            forgetServer(server)
            if lookup.pool === server.pool { authLookupFailed(lookup, reason: "connection lost: \(reason)") }
            return
        }
        if let checked = server.checkingForClient {
            server.checkingForClient = nil
            serverRemoved(server)
            return requeue(checked)
        }
        if let client = server.client {
            client.server = nil
            server.client = nil
            client.fail(.fatal(.connectionFailure, "server connection closed unexpectedly: \(reason)"))
        }
        serverRemoved(server)
    }

    func clientClosed(_ client: ClientConnection) {
        shared.lock.lock()
        defer { shared.lock.unlock() }
        guard clients.removeValue(forKey: client.id) != nil else { return }
        if client.isAdminConsole {
            adminSessions[client.id] = nil
            shared.adminWaits.removeAll { $0.clientID == client.id }
        }
        takeByteCounts(of: client)
        shared.clientCount -= 1
        client.pool?.clientCount -= 1
        clientUncounted(client)
        if cancelKeys[client.cancelKey.processID] == client.id { cancelKeys[client.cancelKey.processID] = nil }
        if client.isWaitingForServer, let pool = client.routeTarget ?? client.pool {
            pool.machine.waiterLeft(client.id)
            pausedClients.removeAll { $0 === client }
            pool.routes?.waitingForPrimary.removeAll { $0.clientID == client.id }
        }
        if let server = client.server {
            client.server = nil
            server.client = nil
            if case .forward = client.passthrough {
                // Part of a message already went to the server; anything Sluice sent now would be read as
                // the rest of it.
                server.retire("client left in the middle of a message")
                serverRemoved(server)
            } else {
                detach(server)
            }
        }
        if shutdown != nil && shared.clientCount == 0 {
            logger.info("all clients have left, shutting down")
            stopAll()
        }
    }

    /// Adds what the client's socket carried since last time to its pool's totals. Lock held.
    func takeByteCounts(of client: ClientConnection) {
        guard let pool = client.pool else { return }
        pool.stats.received &+= client.bytesRead
        pool.stats.sent &+= client.bytesWritten
        client.bytesRead = 0
        client.bytesWritten = 0
    }

    /// Cleans up a server whose client left: roll back, reset, or close when it is mid-query. Sluice's own
    /// requests still owed (a session check) finish first; the server goes back once they are answered.
    func detach(_ server: ServerConnection) {
        guard server.tracker.isQuiet || !server.tracker.clientRequestInFlight else {
            // Nobody will read the result: stop the work on PostgreSQL too, then drop the connection.
            if server.tracker.clientRequestInFlight && server.backendKey != nil { cancelOnServer(server, reason: nil) }
            server.retire("client disconnected while a request was running")
            serverRemoved(server)
            return
        }
        if !server.pins.isEmpty && server.pool.mode != .session {
            // The client's temporary tables, locks, role… must not reach the next client; a new server is
            // cheaper than undoing each kind.
            server.retire("its client left state that cannot move: \(server.pins)")
            serverRemoved(server)
            return
        }
        if server.tracker.transactionStatus != .idle {
            server.sendSluiceQuery("ROLLBACK", purpose: .rollback)
        }
        if server.pool.mode == .session || config.serverResetQueryAlways, !config.serverResetQuery.isEmpty {
            server.sendSluiceQuery(config.serverResetQuery, purpose: .resetQuery)
        }
        // What the client last did may have changed the session: asked after the rollback, the server says.
        _ = server.startSessionCheckIfDue()
        if server.tracker.owedCount > 0 {
            server.flushOrLose()
        } else {
            returnToPool(server)
        }
    }

}
