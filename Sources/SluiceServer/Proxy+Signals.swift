import Glibc
import SluiceCore
import SluiceIO

/// Signals as PgBouncer defines them, and configuration reload.
extension Proxy {

    func handleSignal(_ signal: Int32) {
        shared.lock.lock()
        defer { shared.lock.unlock() }
        switch signal {
        case SIGHUP:
            _ = reloadConfiguration()
        case SIGTERM:
            beginShutdown(.waitForClients, reason: "SIGTERM")
        case SIGINT:
            beginShutdown(.waitForTransactions, reason: "SIGINT")
        case SIGQUIT:
            logger.info("SIGQUIT: exiting now")
            stopAll()
        case SIGUSR1:
            guard !paused else { return }
            paused = true
            logger.info("SIGUSR1: paused; clients wait for servers until SIGUSR2")
            retireIdleServers(of: nil, reason: "pool paused")
        case SIGUSR2:
            guard paused else { return }
            paused = false
            logger.info("SIGUSR2: resumed")
            resumeWaitingClients()
        default:
            break
        }
    }

    /// Reads and applies the configuration again; returns the error that kept the running one. Lock held.
    func reloadConfiguration() -> (any Error)? {
        logger.info("reloading configuration")
        guard let reload = shared.reload else { return nil }
        do {
            let fresh = try reload()
            apply(fresh, tls: try TLSContexts(fresh))
            return nil
        } catch {
            logger.error("reload failed; keeping the running configuration", [("error", "\(error)")])
            return error
        }
    }

    /// Stops taking clients and lets Sluice exit as `mode` says (SIGTERM, SIGINT, the console's SHUTDOWN).
    /// A second request exits at once. Lock held.
    func beginShutdown(_ mode: ShutdownMode, reason: String) {
        if shutdown != nil {
            logger.info("second shutdown request: exiting now")
            return stopAll()
        }
        shutdown = mode
        logger.info(
            mode == .waitForClients
                ? "\(reason): no new clients; exiting once every client has disconnected"
                : "\(reason): no new clients; exiting once in-flight transactions finish",
            [("clients", String(shared.clientCount))])
        everyLoop { proxy in
            for listener in proxy.listeners { listener.close() }
            proxy.listeners.removeAll()
        }
        if shared.clientCount == 0 { return stopAll() }
        if mode == .waitForTransactions {
            everyLoop { proxy in
                for client in Array(proxy.clients.values) where client.server == nil || client.isLoggingIn {
                    client.fail(.fatal(.adminShutdown, "Sluice is shutting down"))
                }
            }
        }
    }

    /// Closes the idle servers of one database's pools (every pool for nil): a pause or a kill leaves no
    /// server idle. Lock held.
    func retireIdleServers(of database: String?, reason: String) {
        everyLoop { proxy in
            for server in Array(proxy.servers.values) where server.isIdleInPool {
                guard database == nil || server.pool.key.database == database else { continue }
                if server.pool.machine.idleServerRetired(server.id) {
                    server.retire(reason)
                    proxy.serverRemoved(server)
                }
            }
        }
    }

    /// Lets the clients held by a pause ask for servers again. Lock held.
    func resumeWaitingClients() {
        everyLoop { proxy in
            let waiting = proxy.pausedClients
            proxy.pausedClients.removeAll()
            for client in waiting where !client.isClosed {
                if proxy.paused || client.pool?.isPaused == true {
                    proxy.pausedClients.append(client)
                    continue
                }
                client.isWaitingForServer = false
                proxy.acquireServer(for: client)
            }
        }
    }

    /// Takes a reloaded configuration: sizes, timeouts, users and pool settings change in place; new
    /// connections use the new TLS contexts.
    func apply(_ fresh: SluiceConfig, tls: TLSContexts) {
        if fresh.listenAddresses != config.listenAddresses || fresh.listenPort != config.listenPort {
            logger.warning("listen_addr and listen_port change only on restart")
        }
        // As for the pools' credentials below: proven keys stay while the userlist still holds a verifier for
        // the user, or, for a user found by auth_query, while look-ups are configured.
        let looksUp = fresh.authUser != nil || fresh.databases.values.contains { $0.authUser != nil }
        shared.provenKeys = shared.provenKeys.filter { user, _ in
            switch fresh.userList.users[user] {
            case .scram?: true
            case nil: looksUp
            case .plain?, .md5?: false
            }
        }
        for (key, pool) in pools {
            guard let database = fresh.databases[key.database] ?? fresh.databases["*"] else { continue }
            let user = fresh.users[key.user]
            let size = user?.poolSize ?? database.poolSize ?? fresh.defaultPoolSize
            pool.machine.maxServers = size > 0 ? size : Int.max
            pool.mode = user?.poolMode ?? database.poolMode ?? fresh.poolMode
            pool.queryWaitTimeout = user?.queryWaitTimeout ?? database.queryWaitTimeout ?? fresh.queryWaitTimeout
            pool.serverLifetime = database.serverLifetime ?? fresh.serverLifetime
            configureLimits(pool, database: database, user: user, config: fresh)
            // A changed password reaches the next server login; keys proven by clients stay valid only while
            // the userlist still holds a SCRAM verifier for the user.
            if let credential = serverCredential(database: database, serverUser: pool.serverUser, config: fresh) {
                pool.credential = credential
            } else if case .scram? = fresh.userList.users[pool.serverUser], case .scramKeys = pool.credential {
                // Keep the keys a client proved: the verifier they match is still the user's secret.
            } else if fresh.userList.users[pool.serverUser] == nil, (database.authUser ?? fresh.authUser) != nil {
                // A user found by auth_query: what its clients proved (or its md5 hash) still logs it in.
            } else {
                pool.credential = .none
            }
            // A smaller pool takes effect now: idle servers above the new size close.
            for server in Array(pool.servers.values) where pool.machine.totalServers > pool.machine.maxServers {
                if pool.machine.idleServerRetired(server.id) {
                    onDriver(of: server) { proxy in
                        server.retire("pool_size lowered")
                        proxy.serverRemoved(server)
                    }
                }
            }
            var host = database.host ?? fresh.unixSocketDir ?? "127.0.0.1"
            var port = database.port ?? 5432
            if key.backend > 0 {
                // A standby's pool: its address is the entry's replica of that position, if it still has one.
                guard database.routesReads, key.backend <= database.replicas.count else {
                    pool.routes = nil
                    markServersForClosing(pool, reason: "replica removed from the configuration")
                    continue
                }
                host = database.replicas[key.backend - 1].host
                port = database.replicas[key.backend - 1].port
            }
            let dbname = database.dbname ?? key.database
            if host != pool.host || port != pool.port || dbname != pool.serverDatabase {
                // Servers of the old target finish what they do and close; new ones go to the new target.
                pool.logger.info(
                    "server address changed; reconnecting the pool", [("host", host), ("port", "\(port)")])
                pool.host = host
                pool.port = port
                pool.serverDatabase = dbname
                pool.machine.targetChanged()
                pool.lastLoginError = nil
                markServersForClosing(pool, reason: "server address changed")
            }
        }
        updateRoutes(fresh)
        var kept = fresh
        kept.listenAddresses = config.listenAddresses
        kept.listenPort = config.listenPort
        // Like PgBouncer's, the Unix socket's directory, mode and group are fixed at startup.
        kept.unixSocketDir = config.unixSocketDir
        kept.unixSocketMode = config.unixSocketMode
        kept.unixSocketGroup = config.unixSocketGroup
        shared.config = kept
        shared.tls = tls
        shared.loginThrottle.limit = kept.loginFailureLimit
        shared.loginThrottle.window = kept.loginFailureWindow
        // Answers looked up under the old auth_user or auth_query may not be what the new ones would give.
        shared.authCache.ttl = kept.authQueryCacheTTL
        shared.authCache.removeAll()
        closeIdleAuthLookups()
        everyLoop { proxy in
            proxy.config = kept
            proxy.tls = tls
            proxy.applySettings()
        }
        logger.info("configuration reloaded")
    }

    /// Runs `work` on every loop (at once on this one, soon on the others), with the lock held.
    func everyLoop(_ work: @escaping (Proxy) -> Void) {
        for worker in shared.workers {
            if worker === self { work(self) } else { worker.post(work) }
        }
    }

    /// Runs `work` on whichever loop drives `server`, following it if it moves meanwhile; lock held.
    func onDriver(of server: ServerConnection, _ work: @escaping (Proxy) -> Void) {
        let driver = server.proxy
        if driver === self { return work(self) }
        driver.post { driver in
            if server.proxy === driver { work(driver) } else { driver.onDriver(of: server, work) }
        }
    }

}
