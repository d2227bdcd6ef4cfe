import Glibc
import SluiceCore
import SluiceIO

/// Signals as PgBouncer defines them, and configuration reload.
extension Proxy {

    func handleSignal(_ signal: Int32, reload: () -> SluiceConfig?) {
        shared.lock.lock()
        defer { shared.lock.unlock() }
        switch signal {
        case SIGHUP:
            logger.info("reloading configuration")
            if let fresh = reload() { apply(fresh) }
        case SIGTERM, SIGINT:
            if shutdown != nil {
                logger.info("second shutdown signal: exiting now")
                return stopAll()
            }
            shutdown = signal == SIGTERM ? .waitForClients : .waitForTransactions
            logger.info(
                signal == SIGTERM
                    ? "SIGTERM: no new clients; exiting once every client has disconnected"
                    : "SIGINT: no new clients; exiting once in-flight transactions finish",
                [("clients", String(shared.clientCount))])
            for listener in listeners { listener.close() }
            listeners.removeAll()
            if shared.clientCount == 0 { return stopAll() }
            if shutdown == .waitForTransactions {
                everyLoop { proxy in
                    for client in Array(proxy.clients.values) where client.server == nil || client.isLoggingIn {
                        client.fail(.fatal(.adminShutdown, "Sluice is shutting down"))
                    }
                }
            }
        case SIGQUIT:
            logger.info("SIGQUIT: exiting now")
            stopAll()
        case SIGUSR1:
            guard !paused else { return }
            paused = true
            logger.info("SIGUSR1: paused; clients wait for servers until SIGUSR2")
            everyLoop { proxy in
                for server in Array(proxy.servers.values) where server.isIdleInPool {
                    if server.pool.machine.idleServerRetired(server.id) {
                        server.retire("pool paused")
                        proxy.serverRemoved(server)
                    }
                }
            }
        case SIGUSR2:
            guard paused else { return }
            paused = false
            logger.info("SIGUSR2: resumed")
            everyLoop { proxy in
                let waiting = proxy.pausedClients
                proxy.pausedClients.removeAll()
                for client in waiting where !client.isClosed {
                    client.isWaitingForServer = false
                    proxy.acquireServer(for: client)
                }
            }
        default:
            break
        }
    }

    /// Takes a reloaded configuration: sizes, timeouts, users and pool settings change in place.
    func apply(_ fresh: SluiceConfig) {
        if fresh.listenAddresses != config.listenAddresses || fresh.listenPort != config.listenPort {
            logger.warning("listen_addr and listen_port change only on restart")
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
            let host = database.host ?? fresh.unixSocketDir ?? "127.0.0.1"
            let port = database.port ?? 5432
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
                for server in Array(pool.servers.values) {
                    onDriver(of: server) { proxy in
                        guard !server.isClosed else { return }
                        server.closeWhenReleased = true
                        if server.pool.machine.idleServerRetired(server.id) {
                            server.retire("server address changed")
                            proxy.serverRemoved(server)
                        }
                    }
                }
            }
        }
        var kept = fresh
        kept.listenAddresses = config.listenAddresses
        kept.listenPort = config.listenPort
        // Like PgBouncer's, the Unix socket's directory, mode and group are fixed at startup.
        kept.unixSocketDir = config.unixSocketDir
        kept.unixSocketMode = config.unixSocketMode
        kept.unixSocketGroup = config.unixSocketGroup
        shared.config = kept
        everyLoop { proxy in
            proxy.config = kept
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
