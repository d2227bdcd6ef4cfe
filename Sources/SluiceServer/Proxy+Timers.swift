import Glibc
import SluiceCore
import SluiceIO

/// Every timeout, checked on the loop's tick.
extension Proxy {

    func tick(_ now: Double) {
        shared.lock.lock()
        defer { shared.lock.unlock() }
        coarseNow = now
        // The pools are shared: loop 0 looks after them, the other loops after their own connections.
        if index == 0 {
            logStatsIfDue(now)
            rollStatsPeriodIfDue(now)
            runHealthChecksIfDue(now)
            runRoutingMonitor(now)
            expireAuthLookups(now)
            expireStatsConnections(now)
            checkAdminWaits()
            for pool in pools.values where pool.queryWaitTimeout > 0 {
                for id in pool.machine.waitersExpired(before: now - pool.queryWaitTimeout) {
                    let limit = pool.queryWaitTimeout
                    let home = shared.owner(ofClient: id)
                    if home === self {
                        queryWaitTimedOut(id, limit: limit)
                    } else {
                        home.post { $0.queryWaitTimedOut(id, limit: limit) }
                    }
                }
            }
        }
        // Iterating a dictionary that the body may shrink is safe (the loop keeps the storage it started
        // with), and costs a copy only on the rare tick that closes something; `Array(…)` would allocate
        // on every tick.
        for server in servers.values {
            switch server.state {
            case .idle:
                if config.serverIdleTimeout > 0 && now - server.idleSince >= config.serverIdleTimeout
                    && mayCloseIdle(server.pool)
                {
                    if server.pool.machine.idleServerRetired(server.id) {
                        server.retire("server_idle_timeout reached")
                        serverRemoved(server)
                    }
                } else if server.lifetimeReached(now) {
                    if server.pool.machine.idleServerRetired(server.id) {
                        server.retire("server_lifetime reached")
                        serverRemoved(server)
                    }
                }
            case .connecting, .loggingIn:
                if config.serverConnectTimeout > 0 && now - server.createdAt >= config.serverConnectTimeout {
                    server.lost("server_connect_timeout reached")
                }
            case .active:
                if let client = server.client { checkTimeouts(of: client, on: server, now: now) }
                if server.checkingForClient != nil, now - server.checkStartedAt >= max(1, config.serverConnectTimeout) {
                    server.lost("server_check_query got no answer within server_connect_timeout")
                }
            case .closed:
                break
            }
        }
        if index == 0 { maintainPools(now) }
        for forwarder in cancelForwarders.values where now >= forwarder.deadline {
            forwarder.finish("timed out")
        }
        if now - lastClientScan >= 1 {
            lastClientScan = now
            for client in clients.values where client.timeouts.clientIdleTimeout > 0 {
                checkIdle(client, now: now)
            }
            if index == 0 { freeUnusedPools(now) }
            let notifyAfter = config.queryWaitNotify
            for client in clients.values {
                if client.isLoggingIn {
                    if !client.isWaitingForServer && config.clientLoginTimeout > 0
                        && now - client.connectedAt >= config.clientLoginTimeout
                    {
                        client.refuse(.fatal(.protocolViolation, "client_login_timeout: login took too long"))
                    }
                } else if client.isWaitingForServer && !client.isToldOfWait && notifyAfter > 0
                    && now - client.waitingSince >= notifyAfter, let pool = client.routeTarget ?? client.pool
                {
                    client.noticeWaiting(pool: pool)
                }
            }
            if shutdown == .waitForTransactions {
                for client in clients.values where client.server == nil {
                    client.fail(.fatal(.adminShutdown, "Sluice is shutting down"))
                }
            }
        }
    }

    func queryWaitTimedOut(_ id: Int, limit: Double) {
        guard let client = clients[id] else { return }
        client.isWaitingForServer = false
        client.logger.warning("query_wait_timeout reached")
        let error = ErrorFields.fatal(
            .connectionFailure, "query_wait_timeout: no server connection became free within \(limit) s")
        if client.isLoggingIn { client.refuse(error) } else { client.fail(error) }
    }

    /// `query_timeout`, `idle_transaction_timeout` and `transaction_timeout` of a client holding a server.
    private func checkTimeouts(of client: ClientConnection, on server: ServerConnection, now: Double) {
        let timeouts = client.timeouts
        let tracker = server.tracker
        if timeouts.queryTimeout > 0, tracker.clientRequestInFlight, server.cancelReason == nil,
            now - server.requestStartedAt >= timeouts.queryTimeout
        {
            client.logger.info("query_timeout reached; cancelling the request", [("server", "S\(server.id)")])
            cancelOnServer(server, reason: "query_timeout (\(Self.seconds(timeouts.queryTimeout)))")
        }
        if timeouts.idleTransactionTimeout > 0, tracker.isQuiet, tracker.transactionStatus != .idle,
            now - server.quietSince >= timeouts.idleTransactionTimeout
        {
            // PostgreSQL's own idle_in_transaction_session_timeout ends the session with 25P03.
            return terminate(client, "idle_transaction_timeout", timeouts.idleTransactionTimeout, sqlState: "25P03")
        }
        if timeouts.transactionTimeout > 0, let started = client.transactionStartedAt,
            now - started >= timeouts.transactionTimeout
        {
            // As PostgreSQL 17's own transaction_timeout, with 25P04.
            terminate(client, "transaction_timeout", timeouts.transactionTimeout, sqlState: "25P04")
        }
    }

    /// `client_idle_timeout`: a logged-in client outside any transaction, silent for too long.
    private func checkIdle(_ client: ClientConnection, now: Double) {
        guard case .ready = client.state, !client.isWaitingForServer, client.input.isEmpty,
            client.server.map({ $0.tracker.isIdle }) ?? true,
            now - client.lastActivity >= client.timeouts.clientIdleTimeout
        else { return }
        // PostgreSQL's own idle_session_timeout ends the session with 57P05.
        terminate(client, "client_idle_timeout", client.timeouts.clientIdleTimeout, sqlState: "57P05")
    }

    /// Ends a client's session because the timeout `name` fired, saying so to the client and in the log.
    private func terminate(_ client: ClientConnection, _ name: String, _ limit: Double, sqlState: String) {
        client.logger.info("\(name) reached")
        client.fail(
            ErrorFields(
                severity: "FATAL", sqlState: sqlState,
                message: "terminating connection due to \(name) (\(Self.seconds(limit)))"))
    }

    static func seconds(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value)) s" : "\(value) s"
    }
}
