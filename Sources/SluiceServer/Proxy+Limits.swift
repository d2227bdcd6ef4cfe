import SluiceCore
import SluiceIO

/// Counts behind the caps that span pools: server slots per database and user, clients per database
/// and user. Shared by all loops, under the registry's lock.
struct ProxyLimitState {
    var caps = ServerConnectionCaps<PoolKey>()
    var clientsPerDatabase: [String: Int] = [:]
    var clientsPerUser: [String: Int] = [:]
    var lastMinimumCheck: Double = 0
}

/// Caps across pools, reserve and minimum pools, `server_login_retry`: PgBouncer's pool limits.
extension Proxy {

    /// Applies the settings of `config` that shape a pool; used at creation and on reload.
    // TODO: a reload that lowers a limit leaves servers above it open until they are released and time out;
    // PgBouncer closes the surplus idle ones at once ("too many servers in the pool").
    func configureLimits(_ pool: Pool, database: DatabaseConfig, user: UserConfig?, config: SluiceConfig) {
        let limits = config.poolLimits
        pool.maxDBConnections = limits.maxDBConnections(database)
        pool.maxUserConnections = limits.maxUserConnections(config.users[pool.key.user])
        pool.hasForcedUser = database.user != nil
        pool.machine.reserveSize = limits.reservePoolSize(database: database, user: user)
        pool.machine.reserveTimeout = limits.reservePoolTimeout
        pool.machine.minSize = limits.minPoolSize(database)
        pool.machine.roundRobin = limits.serverRoundRobin
        pool.machine.loginRetry = config.serverLoginRetry
    }

    // MARK: Client caps

    /// Counts a client that named its database and user, and refuses it over `max_db_client_connections`
    /// or `max_user_client_connections`. Like PgBouncer, the check comes before authentication, so a
    /// full database answers the same to everyone.
    func admitClient(_ client: ClientConnection, database: DatabaseConfig) -> ErrorFields? {
        let name = client.database
        let user = client.user
        client.isCounted = true
        limitState.clientsPerDatabase[name, default: 0] += 1
        limitState.clientsPerUser[user, default: 0] += 1
        let databaseLimit = config.poolLimits.maxDBClientConnections(database)
        if databaseLimit > 0, limitState.clientsPerDatabase[name, default: 0] > databaseLimit {
            client.logger.warning("max_db_client_connections reached", [("limit", String(databaseLimit))])
            return .fatal(.tooManyConnections, "client connections exceeded (max_db_client_connections)")
        }
        let userLimit = config.poolLimits.maxUserClientConnections(config.users[user])
        if userLimit > 0, limitState.clientsPerUser[user, default: 0] > userLimit {
            client.logger.warning("max_user_client_connections reached", [("limit", String(userLimit))])
            return .fatal(.tooManyConnections, "client connections exceeded (max_user_client_connections)")
        }
        return nil
    }

    /// Uncounts a client that was counted by `admitClient`, exactly once, under the database and user it
    /// was counted under (they do not change after the startup packet).
    func clientUncounted(_ client: ClientConnection) {
        guard client.isCounted else { return }
        client.isCounted = false
        let database = client.database
        let user = client.user
        limitState.clientsPerDatabase[database, default: 1] -= 1
        limitState.clientsPerUser[user, default: 1] -= 1
        if limitState.clientsPerDatabase[database] == 0 { limitState.clientsPerDatabase[database] = nil }
        if limitState.clientsPerUser[user] == 0 { limitState.clientsPerUser[user] = nil }
    }

    // MARK: Server caps

    /// Opens a server for `pool` if its database and user have a slot left. When one is full, an idle
    /// server of another pool sharing that budget is closed to make room, as PgBouncer evicts; a pool that
    /// still gets no slot waits for one to free. Returns whether a connection was started.
    @discardableResult
    func openServerWithinCaps(_ pool: Pool, evict: Bool = true) -> Bool {
        let key = pool.key
        while !limitState.caps.take(
            for: key, database: key.database, databaseLimit: pool.maxDBConnections, user: key.user,
            userLimit: pool.maxUserConnections)
        {
            guard evict, let victim = evictionCandidate(for: pool) else {
                pool.machine.openDenied()
                pool.logger.debug(
                    "server cap reached; waiting for a slot",
                    [
                        ("db_servers", String(limitState.caps.used(database: key.database))),
                        ("user_servers", String(limitState.caps.used(user: key.user))),
                    ])
                return false
            }
            _ = victim.pool.machine.idleServerRetired(victim.id)
            forgetServer(victim)
            retireElsewhere(victim, reason: "evicted")
        }
        openServer(pool)
        return true
    }

    /// The idle server, of another pool sharing a full budget with `pool`, that has been idle longest.
    private func evictionCandidate(for pool: Pool) -> ServerConnection? {
        let key = pool.key
        let databaseFull = limitState.caps.isFull(database: key.database, limit: pool.maxDBConnections)
        let userFull = limitState.caps.isFull(user: key.user, limit: pool.maxUserConnections)
        var best: ServerConnection?
        for other in pools.values where other !== pool {
            let sharesBudget =
                (databaseFull && other.key.database == key.database) || (userFull && other.key.user == key.user)
            guard sharesBudget else { continue }
            for server in other.servers.values where other.machine.isIdle(server.id) {
                if best == nil || server.idleSince < best!.idleSince { best = server }
            }
        }
        return best
    }

    /// Closes an idle server that its pool has already let go of and `forgetServer` has dropped, on
    /// whichever loop drives it.
    func retireElsewhere(_ server: ServerConnection, reason: String) {
        onDriver(of: server) { driver in
            driver.servers[server.id] = nil
            server.retire(reason)
        }
    }

    /// Drops a closed server from the registries and frees its slot, without offering the slot on.
    func forgetServer(_ server: ServerConnection) {
        if server.proxy === self { servers[server.id] = nil }
        guard server.pool.servers.removeValue(forKey: server.id) != nil, !server.pool.isOutsidePools else { return }
        limitState.caps.release(database: server.pool.key.database, user: server.pool.key.user)
    }

    /// A server slot of this database and user came free: the pool blocked longest that still has clients
    /// waiting gets it.
    func offerFreedSlot(database: String, user: String) {
        let now = Syscall.monotonicNow()
        for key in limitState.caps.blockedPools(database: database, user: user) {
            guard let pool = pools[key], pool.machine.needsServer, !paused, !pool.isPaused else {
                limitState.caps.unblock(key, database: key.database, user: key.user)
                continue
            }
            let action = pool.machine.openIfRoom(now: now)
            guard case .openServer = action else {
                // Its own size or server_login_retry holds it back; its own events retry it.
                limitState.caps.unblock(key, database: key.database, user: key.user)
                continue
            }
            if openServerWithinCaps(pool, evict: false) { return }
        }
    }

    /// A server just went idle in its pool. While another pool of the same database or user is blocked
    /// on a full cap, an idle server is worth more to that pool: close it so the slot moves over.
    func offerIdleServer(_ server: ServerConnection) {
        let key = server.pool.key
        guard server.isIdleInPool, limitState.caps.hasBlocked(database: key.database, user: key.user) else { return }
        let needy = limitState.caps.blockedPools(database: key.database, user: key.user).contains { other in
            other != key && (pools[other]?.machine.needsServer ?? false)
        }
        guard needy, server.pool.machine.idleServerRetired(server.id) else { return }
        server.retire("evicted")
        serverRemoved(server)
    }

    // MARK: Maintenance

    /// Per-tick pool upkeep: reserve servers for clients that waited long enough, retries after
    /// `server_login_retry`, and `min_pool_size`.
    func maintainPools(_ now: Double) {
        guard !paused else { return }
        for pool in pools.values where pool.machine.needsServer && !pool.isPaused {
            perform(pool.machine.openIfRoom(now: now), pool: pool)
        }
        // PgBouncer checks the minimum three times a second; so does Sluice.
        guard now - limitState.lastMinimumCheck >= 0.33 else { return }
        limitState.lastMinimumCheck = now
        // TODO: PgBouncer also creates the pool of a forced-user database with min_pool_size at startup; here
        // such a pool exists, and is kept warm, only from its first client on.
        for pool in pools.values where pool.machine.minSize > 0 && !pool.isPaused {
            // PgBouncer keeps the minimum only for pools in use, or whose database forces a user.
            guard pool.hasForcedUser || pool.clientCount > 0 else { continue }
            let count = pool.machine.openForMinimum(now: now)
            if count > 0 { pool.logger.debug("opening servers for min_pool_size", [("count", String(count))]) }
            for _ in 0..<count { openServerWithinCaps(pool, evict: false) }
        }
    }

    /// Frees pools that have had no client and no server for `pool_idle_timeout`, or for
    /// `autodb_idle_timeout` when made through the `*` entry: each pool holds its statistics and
    /// latency histograms, and a sidecar reached through `*` under many names would otherwise keep one
    /// per name until restart. A freed pool's rows leave the console and the metrics, as in PgBouncer.
    /// Pools of databases that route reads stay: their home pool holds its backends' pools. So does a pool
    /// within `server_login_retry` of a failed server login, which a new pool would forget.
    /// Loop 0, about once a second, lock held.
    func freeUnusedPools(_ now: Double) {
        let autodb = config.autodbIdleTimeout
        let any = config.poolIdleTimeout
        for pool in Array(pools.values) {
            let isUnused =
                pool.clientCount == 0 && pool.servers.isEmpty && pool.machine.totalServers == 0
                && pool.machine.waitingCount == 0 && pool.key.backend == 0 && pool.backendPools.isEmpty
                && pool.routes == nil && !pool.machine.isLoginBackingOff(now: now)
            // Off, a timeout must leave no old mark behind to free a pool the moment it is turned on.
            guard isUnused, autodb > 0 || any > 0 else {
                pool.unusedSince = nil
                continue
            }
            let since = pool.unusedSince ?? now
            pool.unusedSince = since
            var limit = any
            if autodb > 0, config.databases[pool.key.database] == nil {
                limit = limit > 0 ? min(limit, autodb) : autodb
            }
            guard limit > 0, now - since >= limit else { continue }
            pools[pool.key] = nil
            shared.freedPoolTotals += pool.stats
            shared.hostCursors[pool.key] = nil
            limitState.caps.forgetUnused(database: pool.key.database, user: pool.key.user)
            pool.logger.info("pool freed", [("unused_s", String(Int(now - since)))])
        }
    }

    /// Whether `server_idle_timeout` may close an idle server of this pool without going under the minimum.
    func mayCloseIdle(_ pool: Pool) -> Bool {
        pool.machine.minSize == 0 || pool.servers.count > pool.machine.minSize
    }

    /// The error for a client turned away while `server_login_retry` holds back new logins.
    func loginRetryError(_ pool: Pool) -> ErrorFields {
        var error = pool.lastLoginError ?? .fatal(.sqlclientUnableToEstablishConnection, "server login failed")
        error.severity = "FATAL"
        error.message = "server login has been failing, cached error: \(error.message) (server_login_retry)"
        return error
    }
}
