import SluiceCore
import SluiceIO

/// What Sluice last learned of one database's server by checking it.
struct DatabaseHealth {
    /// When the last check ended (monotonic, and wall-clock for display); nil before the first.
    var checkedAt: Double?
    var checkedAtWall: Double?
    var isOK = false
    var lastError: String?
    /// When the check under way (or the last one) started.
    var startedAt: Double?
    /// The pool of the check under way; nil when none runs.
    var running: Pool?
    /// The user the last successful check logged in as: the one to keep using once the pools that lent it
    /// are freed (`pool_idle_timeout`), rather than whichever auth_file user sorts first.
    var user: String?
}

/// Health checks: every `health_check_period`, loop 0 logs in to each database's server on a connection of
/// its own, outside the pools (it takes no pool slot and no cap), sends an empty query and logs out. The stats
/// port's `/health/database` and `SHOW BACKENDS` only report what the checks found.
extension Proxy {

    /// The databases checked: every configured one, and every one served through `*` that has a pool (made
    /// once a client has authenticated, freed by `autodb_idle_timeout`) whose server once logged in: a name
    /// that PostgreSQL does not know must not become a database readiness depends on.
    func checkedDatabaseNames() -> [String] {
        var names = Set(config.databases.keys.filter { $0 != "*" })
        for pool in pools.values where pool.welcome != nil { names.insert(pool.key.database) }
        return names.sorted()
    }

    /// Starts the checks that are due; gives up on one that has run two periods. Loop 0's tick, lock held.
    func runHealthChecksIfDue(_ now: Double) {
        let period = config.healthCheckPeriod
        guard period > 0 else { return }
        for name in checkedDatabaseNames() {
            var health = shared.health[name] ?? DatabaseHealth()
            if let pool = health.running {
                let limit = max(2 * period, config.serverConnectTimeout)
                guard now - (health.startedAt ?? now) >= limit else { continue }
                closeCheckConnection(of: pool, reason: "health check timed out")
                shared.health[name] = health
                healthCheckEnded(pool, error: "no answer within \(Self.seconds(limit))")
                continue
            }
            guard now - (health.startedAt ?? -Double.infinity) >= period else { continue }
            health.startedAt = now
            guard let pool = healthCheckPool(for: name) else {
                shared.health[name] = health
                recordHealth(
                    name,
                    error: "no credentials to check with: the entry forces no user, no client has logged in, "
                        + "and the auth_file has no password")
                continue
            }
            health.running = pool
            shared.health[name] = health
            openServer(pool)
        }
        // Databases gone from the configuration, or whose `*` pool was freed, are no longer reported; a check
        // still under way for one would otherwise never be timed out.
        let current = Set(checkedDatabaseNames())
        for (name, health) in shared.health where !current.contains(name) {
            if let pool = health.running { closeCheckConnection(of: pool, reason: "database no longer checked") }
            shared.health[name] = nil
        }
    }

    private func closeCheckConnection(of pool: Pool, reason: String) {
        for server in Array(pool.servers.values) {
            onDriver(of: server) { proxy in
                server.retire(reason)
                proxy.forgetServer(server)
            }
        }
    }

    /// A pool of its own for checking `name`, logging in as the database's forced user, else as the user of a
    /// pool of the database, else as the first auth_file user with a password Sluice can log in with.
    /// `backend` (the routing monitor's) names which of a routed database's backends the pool's key is for.
    func healthCheckPool(for name: String, applicationName: String = "sluice health check", backend: Int = 0) -> Pool? {
        guard let database = config.database(named: name) else { return nil }
        let existing = pools.values.filter { $0.key.database == name && $0.key.backend == 0 }.sorted {
            $0.key.user < $1.key.user
        }
        // A configured auth_user is the account meant for Sluice's own connections; otherwise a pool that can
        // log in (its credential from the auth_file or from a client's proof) lends its user.
        var user =
            database.user ?? database.authUser ?? config.authUser
            ?? existing.first { $0.credential != .none }?.serverUser ?? shared.health[name]?.user
        if user == nil {
            user = config.userList.users.keys.sorted().first { name in
                switch config.userList.users[name] {
                case .plain?, .md5?: true
                case .scram?: shared.provenKeys[name] != nil
                case nil: false
                }
            }
        }
        guard let user else { return nil }
        let credential =
            serverCredential(database: database, serverUser: user, config: config)
            ?? existing.first { $0.serverUser == user }?.credential
            ?? shared.provenKeys[user].map(ServerCredential.scramKeys) ?? .none
        let pool = ownConnectionPool(
            name: name, database: database, user: user, credential: credential, applicationName: applicationName,
            backend: backend)
        pool.isHealthCheck = true
        return pool
    }

    /// A pool of one connection for Sluice's own use (health checks, the routing monitor, auth_query), to the
    /// entry's primary unless the caller moves it, named in `pg_stat_activity` by `applicationName`.
    func ownConnectionPool(
        name: String, database: DatabaseConfig, user: String, credential: ServerCredential, applicationName: String,
        backend: Int = 0
    ) -> Pool {
        var startup: [(String, String)] = [("application_name", applicationName)]
        if let v = database.clientEncoding { startup.append(("client_encoding", v)) }
        return Pool(
            key: PoolKey(database: name, user: user, backend: backend),
            host: database.host ?? config.unixSocketDir ?? "127.0.0.1",
            port: database.port ?? 5432, serverDatabase: database.dbname ?? name, serverUser: user,
            credential: credential, mode: .session, size: 1, queryWaitTimeout: 0, serverLifetime: 0,
            startupParameters: startup, logger: logger)
    }

    /// A check's server logged in: one empty query, the cheapest round trip that proves it serves. Lock held.
    func healthCheckLoggedIn(_ server: ServerConnection) {
        server.state = .active
        server.sendSluiceQuery("", purpose: .serverCheck)
        server.flushOrLose()
    }

    /// A check ended: `error` is nil when the server answered. Lock held.
    func healthCheckEnded(_ pool: Pool, error: String?) {
        let name = pool.key.database
        guard var health = shared.health[name], health.running === pool else { return }
        health.running = nil
        if error == nil { health.user = pool.serverUser }
        shared.health[name] = health
        recordHealth(name, error: error)
    }

    private func recordHealth(_ name: String, error: String?) {
        var health = shared.health[name] ?? DatabaseHealth()
        let wasOK = health.checkedAt == nil ? nil : health.isOK
        health.checkedAt = Syscall.monotonicNow()
        health.checkedAtWall = Syscall.wallClockNow()
        health.isOK = error == nil
        health.lastError = error
        shared.health[name] = health
        if let error, wasOK != false {
            logger.warning("health check failed", [("db", name), ("error", error)])
        } else if error == nil, wasOK == false {
            logger.info("health check succeeded again", [("db", name)])
        }
    }

    /// Whether the database passed a check within the last two periods, as `/health/database` judges it.
    func healthState(_ name: String, now: Double) -> (state: String, health: DatabaseHealth) {
        let health = shared.health[name] ?? DatabaseHealth()
        guard let checkedAt = health.checkedAt else { return ("unknown", health) }
        let fresh = now - checkedAt <= 2 * max(config.healthCheckPeriod, 0.1)
        return (health.isOK && fresh ? "up" : "down", health)
    }
}
