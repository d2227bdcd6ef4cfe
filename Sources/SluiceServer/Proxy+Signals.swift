import Glibc
import SluiceCore
import SluiceIO

/// Signals as PgBouncer defines them, and configuration reload.
extension Proxy {

    func handleSignal(_ signal: Int32, reload: () -> SluiceConfig?) {
        switch signal {
        case SIGHUP:
            logger.info("reloading configuration")
            if let fresh = reload() { apply(fresh) }
        case SIGTERM, SIGINT:
            if shutdown != nil {
                logger.info("second shutdown signal: exiting now")
                return loop.stop()
            }
            shutdown = signal == SIGTERM ? .waitForClients : .waitForTransactions
            logger.info(
                signal == SIGTERM
                    ? "SIGTERM: no new clients; exiting once every client has disconnected"
                    : "SIGINT: no new clients; exiting once in-flight transactions finish",
                [("clients", String(clients.count))])
            for listener in listeners { listener.close() }
            listeners.removeAll()
            if clients.isEmpty { loop.stop() }
            if shutdown == .waitForTransactions {
                for client in Array(clients.values) where client.server == nil || client.isLoggingIn {
                    client.fail(.fatal(.adminShutdown, "Sluice is shutting down"))
                }
            }
        case SIGQUIT:
            logger.info("SIGQUIT: exiting now")
            loop.stop()
        case SIGUSR1:
            guard !paused else { return }
            paused = true
            logger.info("SIGUSR1: paused; clients wait for servers until SIGUSR2")
            for server in Array(servers.values) where server.isIdleInPool {
                if server.pool.machine.idleServerRetired(server.id) {
                    server.retire("pool paused")
                    serverRemoved(server)
                }
            }
        case SIGUSR2:
            guard paused else { return }
            paused = false
            logger.info("SIGUSR2: resumed")
            let waiting = pausedClients
            pausedClients.removeAll()
            for client in waiting where !client.isClosed {
                client.isWaitingForServer = false
                acquireServer(for: client)
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
        }
        var kept = fresh
        kept.listenAddresses = config.listenAddresses
        kept.listenPort = config.listenPort
        // Like PgBouncer's, the Unix socket's directory, mode and group are fixed at startup.
        kept.unixSocketDir = config.unixSocketDir
        kept.unixSocketMode = config.unixSocketMode
        kept.unixSocketGroup = config.unixSocketGroup
        config = kept
        applySettings()
        logger.info("configuration reloaded")
    }

}
