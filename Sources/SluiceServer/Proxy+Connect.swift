import SluiceCore
import SluiceIO

/// State of one loop's server-connect path that outlives one attempt: the resolver (only loop 0 has
/// one) and the attempts under way.
final class ServerConnector {
    var resolver: Resolver?
    var attempts: [Int: ServerConnectAttempt] = [:]
}

/// Every socket Sluice opens towards a server, for logins and for cancel requests.
extension Proxy {

    /// Starts opening a server for `pool`. The pool counts the server as opening from now on; the outcome
    /// arrives through `openServer(_:connect:)`, on this loop, later or at once.
    func openServer(_ pool: Pool) {
        let entries = pool.host.split(separator: ",").map(String.init)
        var targets: [ServerConnectAttempt.Target] = []
        for entry in entries {
            do {
                targets.append(try ServerConnectAttempt.Target(entry: entry, port: pool.port))
            } catch {
                return openServer(pool, connect: { throw error })
            }
        }
        if targets.count > 1 {
            let database = config.databases[pool.key.database] ?? config.databases["*"]
            switch database?.loadBalanceHosts ?? .roundRobin {
            case .roundRobin:
                // Each new connection starts one host further; the rest of the list stays as a fallback so
                // that one host being down does not fail the clients waiting for this connection.
                let start = (shared.hostCursors[pool.key] ?? 0) % targets.count
                shared.hostCursors[pool.key] = start + 1
                targets = Array(targets[start...] + targets[..<start])
            case .disable:
                break
            }
        }
        let attempt = ServerConnectAttempt(id: allocateID(), pool: pool, targets: targets, proxy: self)
        connector.attempts[attempt.id] = attempt
        attempt.start(timeout: config.serverConnectTimeout)
    }

    /// `host` is the name or address the socket reached, nil for a Unix socket.
    func serverSocketConnected(_ attempt: ServerConnectAttempt, fd: Int32, host: String?) {
        shared.lock.lock()
        defer { shared.lock.unlock() }
        connector.attempts[attempt.id] = nil
        openServer(attempt.pool, connect: { (fd, host) })
    }

    func serverSocketFailed(_ attempt: ServerConnectAttempt, reason: String) {
        shared.lock.lock()
        defer { shared.lock.unlock() }
        connector.attempts[attempt.id] = nil
        openServer(attempt.pool, connect: { throw ServerConnectError(reason: reason) })
    }

    /// Looks a server host name up without blocking the loop; literal addresses answer at once.
    func resolveServerHost(_ host: String, _ completion: @escaping Resolver.Completion) {
        if let literal = SocketAddress.numeric(host, port: 0) { return completion(.success(literal)) }
        // One resolver, on loop 0, for all loops: an answer is reused for dns_max_ttl whichever loop
        // connects next, and a name is looked up once however many loops want it.
        let resolving = shared.workers[0]
        guard resolving === self else {
            return resolving.loop.post { [unowned resolving, unowned self] in
                resolving.resolveServerHost(host) { result in self.loop.post { completion(result) } }
            }
        }
        let resolver: Resolver
        if let existing = connector.resolver {
            resolver = existing
        } else {
            do {
                resolver = try Resolver(loop: loop)
            } catch {
                return completion(.failure(ResolverError(host: host, message: "\(error)")))
            }
            connector.resolver = resolver
        }
        resolver.maxTTL = config.dnsMaxTTL
        resolver.failureTTL = config.dnsNXDomainTTL
        resolver.resolve(host, completion)
    }

    /// A socket to the very server `server` is connected to, for a CancelRequest: with a host list or a
    /// name with several addresses, any other choice could reach a different PostgreSQL.
    func openCancelSocket(to server: ServerConnection) throws -> Int32 {
        guard let address = Socket.peerAddress(server.fd) else {
            throw ServerConnectError(reason: "the server's address is unknown (its socket is closed)")
        }
        return try Socket.connect(to: address, keepalive: config.tcpKeepaliveSettings)
    }
}

/// Why no socket to a server could be opened, in words for the log and the client.
struct ServerConnectError: Error, CustomStringConvertible {
    var reason: String
    var description: String { reason }
}

extension SluiceConfig {
    /// The keepalive options every TCP socket gets, read at each connect so a reload applies to new ones.
    var tcpKeepaliveSettings: TCPKeepalive {
        TCPKeepalive(
            enabled: tcpKeepalive, idle: tcpKeepIdle, interval: tcpKeepInterval, count: tcpKeepCount,
            userTimeoutMS: tcpUserTimeout)
    }
}
