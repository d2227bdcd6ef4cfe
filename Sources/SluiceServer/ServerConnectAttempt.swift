import SluiceCore
import SluiceIO

/// Opening one server connection before the login starts: resolving the pool's hosts, trying their
/// addresses in turn until one accepts, all within `server_connect_timeout`.
///
/// A host list is walked from `hosts.first`; a host that cannot be resolved or reached passes the turn
/// to the next one, so the attempt fails only when every host has failed (or time ran out). On success
/// the connected socket goes to a fresh `ServerConnection`, which logs in.
final class ServerConnectAttempt: EventHandler {
    /// Where a host entry leads.
    enum Target: CustomStringConvertible {
        case tcp(host: String, port: Int)
        case unix(SocketAddress)

        /// One entry of a database's `host` list: `/dir` (PostgreSQL's socket in that directory), `@name`
        /// (the abstract namespace), or a host name or address.
        init(entry: String, port: Int) throws(SystemError) {
            if entry.hasPrefix("/") || entry.hasPrefix("@") {
                self = .unix(try SocketAddress.postgresSocket(directory: entry, port: port))
            } else {
                self = .tcp(host: entry, port: port)
            }
        }

        var description: String {
            switch self {
            case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            case .unix(let address): address.description
            }
        }
    }

    let id: Int
    let pool: Pool
    unowned let proxy: Proxy
    private var targets: [Target]
    private var addresses: [SocketAddress] = []
    private var current: Target?
    private var fd: Int32 = -1
    private var failures: [String] = []
    private var timer: DeadlineTimer?
    private var finished = false

    init(id: Int, pool: Pool, targets: [Target], proxy: Proxy) {
        self.id = id
        self.pool = pool
        self.targets = targets
        self.proxy = proxy
    }

    func start(timeout: Double) {
        if timeout > 0 {
            do {
                timer = try DeadlineTimer(loop: proxy.loop, seconds: timeout) { [unowned self] in
                    let target = current?.description ?? "?"
                    fail("server_connect_timeout (\(timeout) s) reached while connecting to \(target)")
                }
            } catch {
                return fail("\(error)")
            }
        }
        nextTarget()
    }

    private func nextTarget() {
        guard !finished else { return }
        guard !targets.isEmpty else {
            return fail(failures.isEmpty ? "no host to connect to" : failures.joined(separator: "; "))
        }
        let target = targets.removeFirst()
        current = target
        switch target {
        case .unix(let address):
            addresses = [address]
            nextAddress()
        case .tcp(let host, let port):
            proxy.resolveServerHost(host) { [self] result in
                guard !finished else { return }
                switch result {
                case .success(let found):
                    addresses = found.map { $0.withPort(port) }
                    nextAddress()
                case .failure(let error):
                    failures.append("\(error)")
                    nextTarget()
                }
            }
        }
    }

    private func nextAddress() {
        guard !finished else { return }
        guard !addresses.isEmpty else { return nextTarget() }
        let address = addresses.removeFirst()
        do {
            fd = try Socket.connect(to: address, keepalive: proxy.config.tcpKeepaliveSettings)
            try proxy.loop.register(fd, handler: self)
        } catch {
            closeSocket()
            failures.append("\(error)")
            return nextAddress()
        }
    }

    func handleEvent(_ events: UInt32) {
        guard !finished, fd >= 0 else { return }
        if let error = Socket.pendingError(fd) {
            failures.append(
                "could not connect to \(current?.description ?? "?"): \(SystemError("connect", errno: error))")
            closeSocket()
            return nextAddress()
        }
        guard events & (EventBits.output | EventBits.error | EventBits.hangup) != 0 else { return }
        let connected = fd
        proxy.loop.unregister(connected)
        fd = -1
        finish()
        pool.logger.debug("connected to server", [("addr", current?.description ?? "?")])
        var host: String?
        if case .tcp(let name, _)? = current { host = name }
        proxy.serverSocketConnected(self, fd: connected, host: host)
    }

    private func fail(_ reason: String) {
        guard !finished else { return }
        closeSocket()
        finish()
        proxy.serverSocketFailed(self, reason: reason)
    }

    private func finish() {
        finished = true
        timer?.cancel()
        timer = nil
    }

    private func closeSocket() {
        guard fd >= 0 else { return }
        proxy.loop.unregister(fd)
        Syscall.close(fd)
        fd = -1
    }
}
