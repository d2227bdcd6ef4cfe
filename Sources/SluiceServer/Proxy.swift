import Glibc
import SluiceCore
import SluiceIO

/// How Sluice is stopping, as PgBouncer's signals define it.
enum ShutdownMode {
    /// SIGTERM: refuse new clients, exit once every client has left.
    case waitForClients
    /// SIGINT: refuse new clients, close each client once its transaction ends, exit when none is left.
    case waitForTransactions
}

/// The whole proxy on one event loop: listeners, clients, pools and their servers.
///
/// Everything here is confined to the loop's thread. Pools are looked up by key and servers are linked
/// to clients by reference; a second loop would share the pool registry behind a lock and hand server
/// connections across loops, which is why nothing below reaches for loop-global state except through
/// `loop`.
public final class Proxy {
    public private(set) var config: SluiceConfig
    let loop: EventLoop
    public internal(set) var logger: Logger
    private var listeners: [Listener] = []
    var clients: [Int: ClientConnection] = [:]
    var servers: [Int: ServerConnection] = [:]
    var pools: [PoolKey: Pool] = [:]
    private var cancelKeys: [Int32: ClientConnection] = [:]
    private var cancelForwarders: [Int: CancelForwarder] = [:]
    private var nextID = 1
    /// Per-process secret that makes mock SCRAM salts for unknown users stable but unguessable.
    private let mockSecret = Crypto.randomBytes(count: 32)
    private(set) var trackedParameters: Set<String> = []
    private(set) var ignoredStartupParameters: Set<String> = []
    private(set) var maxPacketSize = Int(Int32.max)
    /// Messages Sluice must read whole (ReadyForQuery, ParameterStatus, errors of its own requests,
    /// authentication) may be at most this large, whatever `max_packet_size` says.
    let holdWholeLimit = 1 << 20
    private var shutdown: ShutdownMode?
    private var paused = false
    private var pausedClients: [ClientConnection] = []
    private var lastClientScan: Double = 0
    private var signals: SignalSource?
    /// The client whose own request for a server is being handled right now.
    private weak var requestingClient: ClientConnection?
    private var verifierCache: [String: (password: String, verifier: SCRAMVerifier)] = [:]
    public private(set) var boundPorts: [Int] = []

    public init(config: SluiceConfig, logger: Logger) throws {
        self.config = config
        self.logger = logger
        self.loop = try EventLoop()
        applySettings()
    }

    private func applySettings() {
        // Parameters PostgreSQL reports with ParameterStatus that Sluice keeps per client and replays on
        // whichever server the client gets next.
        var tracked: Set<String> = [
            "client_encoding", "datestyle", "timezone", "intervalstyle", "standard_conforming_strings",
            "application_name",
        ]
        for name in config.trackExtraParameters { tracked.insert(name.lowercased()) }
        trackedParameters = tracked
        ignoredStartupParameters = Set(config.ignoreStartupParameters.map { $0.lowercased() })
        maxPacketSize = max(64, config.maxPacketSize)
    }

    // MARK: Running

    /// Binds the listeners. Separate from `run` so startup errors surface before the loop starts.
    public func bind() throws {
        for address in config.listenAddresses {
            let fd = try Socket.listen(host: address, port: config.listenPort)
            let listener = Listener(fd: fd, address: "\(address):\(config.listenPort)", proxy: self)
            try loop.registerLevelTriggered(fd, handler: listener)
            listeners.append(listener)
            boundPorts.append(Socket.localPort(fd))
            logger.info("listening", [("addr", address), ("port", String(Socket.localPort(fd)))])
        }
    }

    /// Runs until shutdown. Signals must already be blocked (`SignalSource.block`).
    public func run(signals wanted: [Int32], reload: @escaping () -> SluiceConfig?) throws {
        signals = try SignalSource(signals: wanted, loop: loop) { [unowned self] signal in
            handleSignal(signal, reload: reload)
        }
        loop.onTick = { [unowned self] now in tick(now) }
        loop.run()
    }

    // MARK: Clients

    func accepted(fd: Int32, peer: PeerAddress) {
        let now = Syscall.monotonicNow()
        let transport = SocketTransport(fd: fd)
        Socket.setNoDelay(fd)
        let id = allocateID()
        let client = ClientConnection(id: id, transport: transport, peer: peer, proxy: self, now: now)
        if shutdown != nil {
            client.refuse(.fatal(.cannotConnectNow, "Sluice is shutting down"))
            return
        }
        if clients.count >= config.maxClientConn {
            logger.warning(
                "max_client_conn reached",
                [("peer", peer.description), ("max_client_conn", String(config.maxClientConn))])
            // Refused once its startup packet is read: an error written before the client has spoken is
            // lost when its startup packet then meets a closed socket.
            client.refusal = .fatal(
                .tooManyConnections, "no more connections allowed (max_client_conn = \(config.maxClientConn))")
        }
        do {
            try loop.register(fd, handler: client)
        } catch {
            logger.error("could not watch client socket", [("error", "\(error)")])
            return
        }
        clients[id] = client
        client.logger.debug("client connected")
        client.drive()
    }

    /// The client sent a valid startup packet: find its database and start authentication.
    func startupCompleted(_ client: ClientConnection) {
        let name = client.database
        if name == "pgbouncer" || name == "sluice" {
            // TODO: the admin console; until it exists the name is refused rather than routed anywhere.
            return client.refuse(.fatal(.featureNotSupported, "the admin console is not available in this build"))
        }
        guard let database = config.databases[name] ?? config.databases["*"] else {
            return client.refuse(.fatal(.invalidCatalogName, "no such database: \(name)"))
        }
        var secret = config.userList.users[client.user]
        let method: ClientAuthMethod
        switch config.authType {
        case .trust, .any:
            if config.authType == .trust, !config.userList.users.isEmpty, secret == nil {
                return client.refuse(.fatal(.invalidAuthorizationSpecification, "no such user: \(client.user)"))
            }
            method = .trust
        case .plain:
            method = .cleartext
        case .md5:
            if case .scram = secret { method = .scram } else { method = .md5 }
        case .scramSHA256:
            method = .scram
            if case .md5 = secret {
                client.logger.warning("user has an md5 secret, which cannot check a SCRAM login")
            }
        default:
            return client.refuse(.fatal(.featureNotSupported, "auth_type \(config.authType) is not supported"))
        }
        if method == .scram, case .plain(let password)? = secret {
            secret = .scram(verifier(user: client.user, password: password))
        }
        client.pool = pool(for: client, database: database)
        let key = allocateCancelKey()
        client.cancelKey = key
        cancelKeys[key.processID] = client
        client.beginAuthentication(
            ClientAuthentication(user: client.user, method: method, secret: secret, mockSecret: mockSecret))
    }

    /// A SCRAM verifier for a plain auth_file password, computed once per password rather than once per
    /// login: PBKDF2 is slow by design, and anyone who knows a user name could make Sluice run it.
    private func verifier(user: String, password: String) -> SCRAMVerifier {
        if let cached = verifierCache[user], cached.password == password { return cached.verifier }
        let made = SCRAMVerifier.make(password: password, iterations: config.scramIterations)
        verifierCache[user] = (password, made)
        return made
    }

    func logAuthenticationFailure(_ client: ClientConnection, _ error: ErrorFields) {
        client.logger.warning("authentication failed", [("sqlstate", error.sqlState)])
    }

    func clientAuthenticated(_ client: ClientConnection, keys: SCRAMKeys?) {
        guard let pool = client.pool else { return client.refuse(.fatal(.internalError, "no pool")) }
        if let keys, pool.serverUser == client.user {
            switch pool.credential {
            case .none, .scramKeys: pool.credential = .scramKeys(keys)
            case .password, .md5Hash: break
            }
        }
        if let welcome = pool.welcome {
            client.finishLogin(welcome: welcome)
        } else {
            // The first client of a pool waits for a server login: only a server can say what
            // server_version, encoding and the rest are.
            acquireServer(for: client)
        }
    }

    private func pool(for client: ClientConnection, database: DatabaseConfig) -> Pool {
        let serverUser = database.user ?? client.user
        let key = PoolKey(database: client.database, user: serverUser)
        if let existing = pools[key] { return existing }
        let credential: ServerCredential
        if let password = database.password {
            credential = .password(password)
        } else {
            switch config.userList.users[serverUser] {
            case .plain(let password)?: credential = .password(password)
            case .md5(let hash)?: credential = .md5Hash(hash)
            case .scram?, nil: credential = .none
            }
        }
        let user = config.users[client.user]
        let mode = user?.poolMode ?? database.poolMode ?? config.poolMode
        let size = user?.poolSize ?? database.poolSize ?? config.defaultPoolSize
        var startup: [(String, String)] = []
        if let v = database.clientEncoding { startup.append(("client_encoding", v)) }
        if let v = database.dateStyle { startup.append(("datestyle", v)) }
        if let v = database.timeZone { startup.append(("timezone", v)) }
        if let v = database.applicationName { startup.append(("application_name", v)) }
        let pool = Pool(
            key: key, host: database.host ?? "127.0.0.1", port: database.port ?? 5432,
            serverDatabase: database.dbname ?? client.database, serverUser: serverUser, credential: credential,
            mode: mode, size: size > 0 ? size : Int.max,
            queryWaitTimeout: user?.queryWaitTimeout ?? database.queryWaitTimeout ?? config.queryWaitTimeout,
            serverLifetime: database.serverLifetime ?? config.serverLifetime, startupParameters: startup, logger: logger
        )
        pools[key] = pool
        pool.logger.debug("pool created", [("pool_mode", mode.rawValue), ("pool_size", String(size))])
        return pool
    }

    // MARK: Lending servers

    /// The client needs a server: link one now, or queue the client (opening a server if allowed).
    func acquireServer(for client: ClientConnection) {
        guard let pool = client.pool, !client.isWaitingForServer else { return }
        let now = Syscall.monotonicNow()
        client.isWaitingForServer = true
        client.waitingSince = now
        if paused {
            pausedClients.append(client)
            return
        }
        // A client asking from inside its own processing carries on by itself once linked.
        requestingClient = client
        perform(pool.machine.clientRequestedServer(client.id, now: now), pool: pool)
        requestingClient = nil
    }

    private func perform(_ action: PoolAction, pool: Pool) {
        switch action {
        case .assign(let serverID, let clientID):
            link(serverID: serverID, clientID: clientID, pool: pool)
        case .openServer:
            openServer(pool)
        case .wait, .none:
            break
        }
    }

    private func link(serverID: Int, clientID: Int, pool: Pool) {
        guard let server = pool.servers[serverID] else { preconditionFailure("pool lent unknown server \(serverID)") }
        guard let client = clients[clientID], !client.isClosed else {
            // The waiter left between being chosen and being linked: the server goes straight back.
            return returnToPool(server)
        }
        client.isWaitingForServer = false
        server.state = .active
        server.client = client
        client.server = server
        if case .awaitingWelcome = client.state, let welcome = pool.welcome {
            client.finishLogin(welcome: welcome)
            if pool.mode != .session && client.input.isEmpty {
                release(server)
                return
            }
        }
        if let sql = client.parameters.restoreStatements(comparedTo: server.parameters, tracked: trackedParameters) {
            server.sendSluiceQuery(sql, purpose: .parameterRestore)
        }
        if client !== requestingClient { client.scheduleDrive() }
    }

    private func openServer(_ pool: Pool) {
        let now = Syscall.monotonicNow()
        let id = allocateID()
        let fd: Int32
        do {
            fd = try Socket.connect(host: pool.host, port: pool.port)
        } catch {
            pool.logger.warning("could not connect to server", [("error", "\(error)")])
            failWaiters(
                pool.machine.serverOpenFailed(), pool: pool,
                error: .fatal(.sqlclientUnableToEstablishConnection, "could not connect to server: \(error)"))
            return
        }
        let server = ServerConnection(id: id, transport: SocketTransport(fd: fd), pool: pool, proxy: self, now: now)
        do {
            try loop.register(fd, handler: server)
        } catch {
            server.closeSocket()
            failWaiters(pool.machine.serverOpenFailed(), pool: pool, error: .fatal(.internalError, "\(error)"))
            return
        }
        servers[id] = server
        pool.servers[id] = server
        server.logger.debug("connecting to server", [("host", pool.host), ("port", String(pool.port))])
    }

    func serverLoggedIn(_ server: ServerConnection, parameters: [(name: String, value: String)]) {
        let pool = server.pool
        if pool.welcome == nil { pool.welcome = parameters }
        server.state = .idle
        server.idleSince = Syscall.monotonicNow()
        perform(pool.machine.serverBecameIdle(server.id, fromOpening: true), pool: pool)
    }

    func serverLoginFailed(_ server: ServerConnection, error: ErrorFields) {
        let pool = server.pool
        servers[server.id] = nil
        pool.servers[server.id] = nil
        failWaiters(pool.machine.serverOpenFailed(), pool: pool, error: error)
    }

    private func failWaiters(_ ids: [Int], pool: Pool, error: ErrorFields) {
        for id in ids {
            guard let client = clients[id] else { continue }
            client.isWaitingForServer = false
            var fields = error
            fields.severity = "FATAL"
            if client.isLoggingIn { client.refuse(fields) } else { client.fail(fields) }
        }
    }

    /// A server received a ReadyForQuery: decide whether it can go back to the pool.
    func serverBecameQuiet(_ server: ServerConnection) {
        guard server.tracker.isQuiet else { return }
        if let client = server.client {
            guard server.pool.mode != .session, server.tracker.isIdle else { return }
            if case .forward = client.passthrough { return }
            release(server)
            if shutdown == .waitForTransactions {
                client.fail(.fatal(.adminShutdown, "Sluice is shutting down"))
            }
        } else if server.tracker.isIdle {
            returnToPool(server)
        } else {
            server.retire("still in a transaction after its client left")
            serverRemoved(server)
        }
    }

    /// Unlinks a server from its client in transaction mode.
    private func release(_ server: ServerConnection) {
        guard let client = server.client else { return }
        client.server = nil
        server.client = nil
        if config.serverResetQueryAlways, !config.serverResetQuery.isEmpty {
            server.sendSluiceQuery(config.serverResetQuery, purpose: .resetQuery)
            server.flushOrLose()
        } else {
            returnToPool(server)
        }
        if !client.input.isEmpty { client.scheduleDrive() }
    }

    /// The server is clean and idle with no client: lend it to the next waiter or park it.
    private func returnToPool(_ server: ServerConnection) {
        let pool = server.pool
        let now = Syscall.monotonicNow()
        if server.cancelsInFlight > 0 {
            server.releaseWhenCancelsLand = true
            return
        }
        if server.closeWhenReleased || paused
            || (pool.serverLifetime > 0 && now - server.createdAt >= pool.serverLifetime)
        {
            server.retire(
                server.closeWhenReleased ? "reset failed" : paused ? "pool paused" : "server_lifetime reached")
            serverRemoved(server)
            return
        }
        server.state = .idle
        server.idleSince = now
        perform(pool.machine.serverBecameIdle(server.id, fromOpening: false), pool: pool)
    }

    /// Bookkeeping after a server connection closed outside login.
    private func serverRemoved(_ server: ServerConnection) {
        let pool = server.pool
        servers[server.id] = nil
        pool.servers[server.id] = nil
        perform(pool.machine.serverClosed(server.id), pool: pool)
    }

    func serverLost(_ server: ServerConnection, reason: String) {
        if let client = server.client {
            client.server = nil
            server.client = nil
            client.fail(.fatal(.connectionFailure, "server connection closed unexpectedly: \(reason)"))
        }
        serverRemoved(server)
    }

    func clientClosed(_ client: ClientConnection) {
        clients[client.id] = nil
        if cancelKeys[client.cancelKey.processID] === client { cancelKeys[client.cancelKey.processID] = nil }
        if client.isWaitingForServer, let pool = client.pool {
            pool.machine.waiterLeft(client.id)
            pausedClients.removeAll { $0 === client }
        }
        if let server = client.server {
            client.server = nil
            server.client = nil
            detach(server)
        }
        if shutdown != nil && clients.isEmpty {
            logger.info("all clients have left, shutting down")
            loop.stop()
        }
    }

    /// Cleans up a server whose client left: roll back, reset, or close when it is mid-query.
    private func detach(_ server: ServerConnection) {
        guard server.tracker.isQuiet else {
            server.retire("client disconnected while a request was running")
            serverRemoved(server)
            return
        }
        if server.tracker.transactionStatus != .idle {
            server.sendSluiceQuery("ROLLBACK", purpose: .rollback)
        }
        if server.pool.mode == .session || config.serverResetQueryAlways, !config.serverResetQuery.isEmpty {
            server.sendSluiceQuery(config.serverResetQuery, purpose: .resetQuery)
        }
        if server.tracker.owedCount > 0 {
            server.flushOrLose()
        } else {
            returnToPool(server)
        }
    }

    // MARK: Cancel

    private func allocateCancelKey() -> (processID: Int32, secretKey: Int32) {
        while true {
            let bytes = Crypto.randomBytes(count: 8)
            let pid =
                Int32(
                    bitPattern: UInt32(bytes[0]) << 24 | UInt32(bytes[1]) << 16 | UInt32(bytes[2]) << 8
                        | UInt32(bytes[3])) & 0x7FFF_FFFF
            let key = Int32(
                bitPattern: UInt32(bytes[4]) << 24 | UInt32(bytes[5]) << 16 | UInt32(bytes[6]) << 8 | UInt32(bytes[7]))
            if pid != 0 && cancelKeys[pid] == nil { return (pid, key) }
        }
    }

    func cancelRequested(processID: Int32, secretKey: [UInt8], from peer: PeerAddress) {
        guard let client = cancelKeys[processID], secretKey.count == 4 else {
            logger.debug("cancel request for an unknown key dropped", [("peer", peer.description)])
            return
        }
        let expected = withUnsafeBytes(of: client.cancelKey.secretKey.bigEndian) { Array($0) }
        guard Crypto.constantTimeEquals(expected, secretKey) else {
            logger.debug("cancel request with a wrong key dropped", [("peer", peer.description)])
            return
        }
        // Only a request that is running right now may be cancelled. A cancel that arrives after the
        // reply left would otherwise hit whatever the server does next, possibly for another client.
        guard let server = client.server, server.tracker.clientRequestInFlight, server.backendKey != nil else {
            client.logger.debug("cancel request with nothing to cancel dropped")
            return
        }
        let pool = server.pool
        do {
            let fd = try Socket.connect(host: pool.host, port: pool.port)
            let deadline = Syscall.monotonicNow() + max(1, config.serverConnectTimeout)
            let forwarder = CancelForwarder(
                id: allocateID(), transport: SocketTransport(fd: fd), server: server, proxy: self, deadline: deadline)
            try loop.register(fd, handler: forwarder)
            cancelForwarders[forwarder.id] = forwarder
            server.cancelsInFlight += 1
            client.logger.debug("cancel request forwarded", [("server", "S\(server.id)")])
        } catch {
            client.logger.warning("could not forward cancel request", [("error", "\(error)")])
        }
    }

    func cancelFinished(_ forwarder: CancelForwarder) {
        cancelForwarders[forwarder.id] = nil
        guard let server = forwarder.server, !server.isClosed else { return }
        server.cancelsInFlight -= 1
        if server.cancelsInFlight == 0 && server.releaseWhenCancelsLand {
            server.releaseWhenCancelsLand = false
            returnToPool(server)
        }
    }

    // MARK: Time

    private func tick(_ now: Double) {
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

    // MARK: Signals

    private func handleSignal(_ signal: Int32, reload: () -> SluiceConfig?) {
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
    private func apply(_ fresh: SluiceConfig) {
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
        }
        var kept = fresh
        kept.listenAddresses = config.listenAddresses
        kept.listenPort = config.listenPort
        config = kept
        applySettings()
        logger.info("configuration reloaded")
    }

    private func allocateID() -> Int {
        defer { nextID += 1 }
        return nextID
    }
}
