import Glibc
import SluiceCore
import SluiceIO

/// Every timeout, checked on the loop's tick.
extension Proxy {

    func tick(_ now: Double) {
        for pool in pools.values {
            if pool.queryWaitTimeout > 0 {
                for id in pool.machine.waitersExpired(before: now - pool.queryWaitTimeout) {
                    guard let client = clients[id] else { continue }
                    client.isWaitingForServer = false
                    client.logger.warning("query_wait_timeout reached")
                    let error = ErrorFields.fatal(
                        .connectionFailure,
                        "query_wait_timeout: no server connection became free within \(pool.queryWaitTimeout) s")
                    if client.isLoggingIn { client.refuse(error) } else { client.fail(error) }
                }
            }
        }
        for server in Array(servers.values) {
            switch server.state {
            case .idle:
                if config.serverIdleTimeout > 0 && now - server.idleSince >= config.serverIdleTimeout {
                    if server.pool.machine.idleServerRetired(server.id) {
                        server.retire("server_idle_timeout reached")
                        serverRemoved(server)
                    }
                } else if server.pool.serverLifetime > 0 && now - server.createdAt >= server.pool.serverLifetime {
                    if server.pool.machine.idleServerRetired(server.id) {
                        server.retire("server_lifetime reached")
                        serverRemoved(server)
                    }
                }
            case .connecting, .loggingIn:
                if config.serverConnectTimeout > 0 && now - server.createdAt >= config.serverConnectTimeout {
                    server.lost("server_connect_timeout reached")
                }
            case .active, .closed:
                break
            }
        }
        for forwarder in Array(cancelForwarders.values) where now >= forwarder.deadline {
            forwarder.finish("timed out")
        }
        if now - lastClientScan >= 1 {
            lastClientScan = now
            for client in Array(clients.values) where client.isLoggingIn && !client.isWaitingForServer {
                if config.clientLoginTimeout > 0 && now - client.connectedAt >= config.clientLoginTimeout {
                    client.refuse(.fatal(.protocolViolation, "client_login_timeout: login took too long"))
                }
            }
            if shutdown == .waitForTransactions {
                for client in Array(clients.values) where client.server == nil {
                    client.fail(.fatal(.adminShutdown, "Sluice is shutting down"))
                }
            }
        }
    }

}
