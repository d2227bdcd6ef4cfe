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

/// One event loop's part of the proxy: the clients it accepted, the server connections it currently
/// drives, and the code that lends servers to clients.
///
/// Connections are confined to their loop's thread. The pools, caps and cancel keys are shared by all
/// loops in `shared` and touched only with its lock held; every entry point that reaches them (a client
/// asking for a server, a server going quiet, a tick, a signal) takes the lock first. A server connection
/// can serve a client of any loop: it moves to the client's loop before they are linked, so a linked
/// pair is always driven by one thread and the forwarding path takes no lock.
public final class Proxy {
    let shared: ProxyShared
    /// This loop's position in `shared.workers`.
    let index: Int
    /// This loop's copy of the configuration, read without the lock; a reload replaces every copy.
    public internal(set) var config: SluiceConfig
    let loop: EventLoop
    public internal(set) var logger: Logger
    var listeners: [Listener] = []
    var clients: [Int: ClientConnection] = [:]
    /// Server connections this loop drives now: registered with its epoll instance.
    var servers: [Int: ServerConnection] = [:]
    var cancelForwarders: [Int: CancelForwarder] = [:]
    private var nextID: Int
    var trackedParameters: Set<String> = []
    /// Bumped when a reload changes `trackedParameters`, so comparisons remembered by servers lapse.
    var trackedVersion = 0
    var ignoredStartupParameters: Set<String> = []
    var maxPacketSize = Int(Int32.max)
    /// This loop's copy of `shared.tls`, read without the lock when a connection starts TLS.
    var tls = TLSContexts()
    /// Messages Sluice must read whole (ReadyForQuery, ParameterStatus, errors of its own requests,
    /// authentication) may be at most this large, whatever `max_packet_size` says.
    let holdWholeLimit = 1 << 20
    var pausedClients: [ClientConnection] = []
    /// The stats port and its requests in progress, on loop 0 (StatsPort.swift).
    var statsListener: StatsListener?
    var statsConnections: [Int32: StatsConnection] = [:]
    /// This loop's admin console clients, by client id (Proxy+Admin.swift).
    var adminSessions: [Int: AdminSession] = [:]
    var lastClientScan: Double = 0
    var signals: SignalSource?
    /// The id of the client whose own request for a server is being handled right now; 0 for none. An id
    /// rather than a weak reference: a weak reference gives the client a side table for its whole life.
    var requestingClientID = 0
    public private(set) var boundPorts: [Int] = []
    /// The resolver and host-list state of the server-connect path (Proxy+Connect.swift).
    let connector = ServerConnector()
    /// Input buffers of idle clients, lent to whichever client reads next.
    var spareBuffers: [[UInt8]] = []
    /// This loop's SQL classifiers, by database name, for routed databases (Proxy+Routing.swift).
    var classifiers: [String: StatementClassifier] = [:]
    /// This loop's copy of which databases route reads, and a count of the changes to it: a client compares
    /// the count with its own at the start of each unit of work, so a reload that adds or removes replicas
    /// reaches clients already connected without a lock on the forwarding path.
    var routedDatabases: Set<String> = []
    var routingGeneration: UInt16 = 0

    func recycle(_ storage: [UInt8]) {
        // A buffer that grew for one large message goes back to the system rather than staying pinned.
        guard storage.count == Connection.readChunk, spareBuffers.count < 256 else { return }
        spareBuffers.append(storage)
    }

    /// Output buffers of clients that hold no server, taken again by whichever client of this loop is
    /// written to next (ClientConnection.swift).
    var spareOutputs: [[UInt8]] = []

    func recycleOutput(_ storage: [UInt8]) {
        guard !storage.isEmpty, storage.count <= Connection.readChunk, spareOutputs.count < 256 else { return }
        spareOutputs.append(storage)
    }

    /// The greeting and the timeouts the last client of this loop logged in with: a client of the same
    /// pool with the same startup parameters takes them as they are, sharing their storage, instead of
    /// building its own (ClientConnection.swift).
    var recentGreeting: LoginGreeting?
    var recentTimeouts: Boxed<ClientTimeouts>?
    /// When loop 0 last wrote a `log_stats` line, and the totals then (Proxy+Stats.swift).
    var statsLog: (loggedAt: Double, totals: PoolStats) = (0, PoolStats())

    /// Monotonic time as of the last tick or event batch: precise enough for every timeout, and free.
    var coarseNow: Double = Syscall.monotonicNow()

    // Shared state, under `shared.lock`.
    var pools: [PoolKey: Pool] {
        get { shared.pools }
        _modify { yield &shared.pools }
    }
    var limitState: ProxyLimitState {
        get { shared.limitState }
        _modify { yield &shared.limitState }
    }
    var cancelKeys: [Int32: Int] {
        get { shared.cancelKeys }
        _modify { yield &shared.cancelKeys }
    }
    var paused: Bool {
        get { shared.paused }
        set { shared.paused = newValue }
    }
    var shutdown: ShutdownMode? {
        get { shared.shutdown }
        set { shared.shutdown = newValue }
    }
    var mockSecret: [UInt8] { shared.mockSecret }

    init(shared: ProxyShared, index: Int, logger: Logger) throws {
        self.shared = shared
        self.index = index
        self.config = shared.config
        self.tls = shared.tls
        self.logger = logger
        self.loop = try EventLoop()
        self.nextID = index + 1
        applySettings()
    }

    func applySettings() {
        // Parameters PostgreSQL reports with ParameterStatus that Sluice keeps per client and replays on
        // whichever server the client gets next.
        var tracked: Set<String> = [
            "client_encoding", "datestyle", "timezone", "intervalstyle", "standard_conforming_strings",
            "application_name",
        ]
        for name in config.trackExtraParameters { tracked.insert(name.lowercased()) }
        if tracked != trackedParameters { trackedVersion += 1 }
        trackedParameters = tracked
        ignoredStartupParameters = Set(config.ignoreStartupParameters.map { $0.lowercased() })
        maxPacketSize = max(64, config.maxPacketSize)
    }

    // MARK: Running

    /// Binds the listeners. Separate from `run` so startup errors surface before the loop starts.
    public func bind() throws {
        // As PgBouncer: each listen_addr entry may stand for several addresses (`*` is every IPv4 and
        // IPv6 address, a name may have both); one that cannot be bound is a warning, but a list of which
        // nothing could be bound stops startup, and so does a Unix socket that cannot be created.
        var lastError: (any Error)?
        for entry in config.listenAddresses {
            for address in try Socket.listenAddresses(for: entry, port: config.listenPort) {
                let fd: Int32
                do {
                    fd = try Socket.listen(on: address, backlog: Int32(config.listenBacklog))
                } catch {
                    logger.warning("cannot listen", [("addr", address.description), ("error", "\(error)")])
                    lastError = error
                    continue
                }
                try addListener(fd: fd, address: address, unixPath: nil)
            }
        }
        if !config.listenAddresses.isEmpty && listeners.isEmpty {
            let entries = config.listenAddresses.joined(separator: ",")
            throw lastError ?? SystemError("listen \(entries)", errno: EADDRNOTAVAIL)
        }
        if let directory = config.unixSocketDir {
            let group: gid_t?
            if let name = config.unixSocketGroup {
                guard let id = Socket.groupID(named: name) else {
                    throw SystemError("unix_socket_group \(name): no such group", errno: ENOENT)
                }
                group = id
            } else {
                group = nil
            }
            let (fd, address) = try Socket.listenUnix(
                directory: directory, port: config.listenPort, mode: config.unixSocketMode, groupID: group,
                backlog: Int32(config.listenBacklog))
            try addListener(fd: fd, address: address, unixPath: address.host.hasPrefix("@") ? nil : address.host)
        }
        if listeners.isEmpty {
            throw SystemError("nowhere to listen: listen_addr and unix_socket_dir are both empty", errno: EINVAL)
        }
        try bindStatsPort()
    }

    private func addListener(fd: Int32, address: SocketAddress, unixPath: String?) throws {
        let listener = Listener(fd: fd, address: address, unixPath: unixPath, proxy: self)
        do {
            try loop.registerLevelTriggered(fd, handler: listener)
        } catch {
            listener.close()
            throw error
        }
        listeners.append(listener)
        if address.isUnix {
            logger.info("listening", [("addr", address.description)])
        } else {
            boundPorts.append(Socket.localPort(fd))
            logger.info("listening", [("addr", address.host), ("port", String(Socket.localPort(fd)))])
        }
    }

    /// Runs this loop until shutdown. Only loop 0 takes `signals` (they must already be blocked with
    /// `SignalSource.block`).
    func run(signals wanted: [Int32]?) throws {
        if let wanted {
            signals = try SignalSource(signals: wanted, loop: loop) { [unowned self] signal in
                handleSignal(signal)
            }
        }
        loop.onTick = { [unowned self] now in tick(now) }
        loop.run()
        // SIGQUIT and a second SIGTERM leave without the orderly close: the Unix socket's file goes too.
        for listener in listeners { listener.close() }
    }

    /// Stops every loop.
    func stopAll() {
        for worker in shared.workers {
            if worker === self { loop.stop() } else { worker.loop.post { [unowned worker] in worker.loop.stop() } }
        }
    }

    // MARK: Clients

    /// A listener accepted a client: it goes to the next loop in turn, so clients spread evenly.
    func accepted(fd: Int32, peer: PeerAddress) {
        let target: Proxy = shared.lock.withLock {
            let worker = shared.workers[shared.nextAcceptWorker % shared.workers.count]
            shared.nextAcceptWorker &+= 1
            return worker
        }
        if target === self { return adopt(clientFD: fd, peer: peer) }
        target.loop.post { [unowned target] in target.adopt(clientFD: fd, peer: peer) }
    }

    func adopt(clientFD fd: Int32, peer: PeerAddress) {
        let now = Syscall.monotonicNow()
        let transport = SocketTransport(fd: fd)
        Socket.setNoDelay(fd)
        let id = allocateID()
        let client = ClientConnection(id: id, transport: transport, peer: peer, proxy: self, now: now)
        // System calls before the lock: other loops may be waiting for it. No event reaches the client
        // before this loop is back in epoll_wait.
        do {
            try loop.register(fd, handler: client)
        } catch {
            logger.error("could not watch client socket", [("error", "\(error)")])
            return transport.close()
        }
        shared.lock.lock()
        defer { shared.lock.unlock() }
        if shutdown != nil {
            client.refuse(.fatal(.cannotConnectNow, "Sluice is shutting down"))
            return
        }
        if shared.clientCount >= config.maxClientConn {
            logger.warning(
                "max_client_conn reached",
                [("peer", peer.description), ("max_client_conn", String(config.maxClientConn))])
            // Refused once its startup packet is read: an error written before the client has spoken is
            // lost when its startup packet then meets a closed socket.
            client.refusal = .fatal(
                .tooManyConnections, "no more connections allowed (max_client_conn = \(config.maxClientConn))")
        }
        clients[id] = client
        shared.clientCount += 1
        if client.logs(.debug) { client.logger.debug("client connected") }
        client.drive()
    }

    /// The client sent a valid startup packet: find its database and start authentication.
    func startupCompleted(_ client: ClientConnection) {
        shared.lock.lock()
        defer { shared.lock.unlock() }
        var name = client.database
        if name == "pgbouncer" || name == "sluice" { return startAdminLogin(client) }
        var routeSetting = RouteSetting.auto
        if config.databases[name] == nil, name.hasSuffix("_ro"), shared.routes[String(name.dropLast(3))] != nil {
            // `<db>_ro`: a read-only session of a routed database, on a standby for its whole life.
            name = String(name.dropLast(3))
            client.database = name
            routeSetting = .replica
        }
        if let option = client.sessionSettings.removeValue(forKey: "sluice.route") {
            // Sluice's own setting, never sent to PostgreSQL.
            guard let setting = RouteSetting(rawValue: option.value.lowercased()) else {
                return client.refuse(
                    .fatal(
                        .invalidParameterValue, "invalid value for parameter \"sluice.route\": \"\(option.value)\"",
                        hint: "Available values: primary, replica, auto."))
            }
            routeSetting = setting
        }
        guard let database = config.databases[name] ?? config.databases["*"] else {
            return client.refuse(.fatal(.invalidCatalogName, "no such database: \(name)"))
        }
        if shared.disabledDatabases.contains(name) {
            return client.refuse(
                .fatal(
                    .cannotConnectNow, "database \(name) is disabled", hint: "an operator ran DISABLE; ENABLE lifts it")
            )
        }
        if let refusal = admitClient(client, database: database) { return client.refuse(refusal) }
        if let refusal = throttled(client) { return client.refuse(refusal) }
        var lookedUp: StoredSecret?
        if let key = authLookupKey(for: client, database: database) {
            let cacheKey = AuthQueryCache.Key(database: key.database, user: client.user)
            guard let cached = shared.authCache.lookup(cacheKey, now: Syscall.monotonicNow()) else {
                return lookUpUser(client, key: key, route: routeSetting)
            }
            lookedUp = cached
        }
        beginLogin(client, route: routeSetting, lookedUp: lookedUp)
    }

    /// Authentication starts, with the user's secret from the auth_file or, for a user it does not list,
    /// from `auth_query` (`lookedUp`). Lock held.
    func beginLogin(_ client: ClientConnection, route routeSetting: RouteSetting, lookedUp: StoredSecret?) {
        let login: ClientAuthentication
        switch authentication(for: client, lookedUp: lookedUp) {
        case .success(let made): login = made
        case .failure(let refusal): return client.refuse(refusal)
        }
        client.timeouts = config.clientTimeouts.overridden(by: config.users[client.user])
        issueCancelKey(to: client)
        client.beginAuthentication(login, route: routeSetting, lookedUp: lookedUp)
    }

    /// How the client proves who it is, by `auth_type` (or the `auth_hba_file` rule it matches) and the
    /// user's secret in the auth_file.
    func authentication(
        for client: ClientConnection, lookedUp: StoredSecret? = nil
    ) -> Result<ClientAuthentication, ErrorFields> {
        var secret = config.userList.users[client.user] ?? lookedUp
        let method: ClientAuthMethod
        var authType = config.authType
        if authType == .hba {
            switch hbaDecision(for: client) {
            case .success(let decided?): authType = decided
            case .success(nil):
                // The operating system vouched for the user (peer): no password, and no auth_file entry needed.
                return .success(
                    ClientAuthentication(user: client.user, method: .trust, secret: secret, mockSecret: mockSecret))
            case .failure(let refusal): return .failure(refusal)
            }
        }
        switch authType {
        case .trust, .any:
            if authType == .trust, !config.userList.users.isEmpty, secret == nil {
                return .failure(.fatal(.invalidAuthorizationSpecification, "no such user: \(client.user)"))
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
        case .cert:
            // The handshake verified the certificate against client_tls_ca_file; its name must be the user's.
            guard let name = (client.transport as? TLSTransport)?.verifiedPeerCommonName, name == client.user else {
                return .failure(
                    .fatal(
                        .invalidAuthorizationSpecification,
                        "certificate authentication failed for user \"\(client.user)\""))
            }
            method = .trust
        case .hba, .pam, .ldap:
            return .failure(.fatal(.featureNotSupported, "auth_type \(authType) is not supported"))
        }
        if method == .scram, case .plain(let password)? = secret {
            secret = .scram(verifier(user: client.user, password: password))
        }
        return .success(
            ClientAuthentication(user: client.user, method: method, secret: secret, mockSecret: mockSecret))
    }

    func issueCancelKey(to client: ClientConnection) {
        let key = allocateCancelKey()
        client.cancelKey = key
        cancelKeys[key.processID] = client.id
    }

    /// A SCRAM verifier for a plain auth_file password, computed once per password rather than once per
    /// login: PBKDF2 is slow by design, and anyone who knows a user name could make Sluice run it.
    func verifier(user: String, password: String) -> SCRAMVerifier {
        if let cached = shared.verifierCache[user], cached.password == password { return cached.verifier }
        let made = SCRAMVerifier.make(password: password, iterations: config.scramIterations)
        shared.verifierCache[user] = (password, made)
        return made
    }

    /// What Sluice logs in to the server with, from the database entry or the auth_file. Nil when only a
    /// SCRAM verifier is known: the keys come from a client's proof.
    func serverCredential(database: DatabaseConfig, serverUser: String, config: SluiceConfig) -> ServerCredential? {
        if let password = database.password { return .password(password) }
        switch config.userList.users[serverUser] {
        case .plain(let password)?: return .password(password)
        case .md5(let hash)?: return .md5Hash(hash)
        case .scram?, nil: return nil
        }
    }

    func logAuthenticationFailure(_ client: ClientConnection, _ error: ErrorFields) {
        shared.lock.withLock {
            shared.loginFailures &+= 1
            if let key = throttleKey(client) { shared.loginThrottle.failed(key, now: coarseNow) }
        }
        client.logger.warning("authentication failed", [("sqlstate", error.sqlState)])
    }

    /// The throttle's key for a client, nil when it is exempt (loopback and Unix-socket clients by default).
    func throttleKey(_ client: ClientConnection) -> LoginThrottle.Key? {
        if config.loginFailureExemptLoopback && (client.peer.isUnix || Self.isLoopback(client.peer.host)) { return nil }
        return LoginThrottle.Key(address: client.peer.host, user: client.user)
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "::1" || host.hasPrefix("127.") || host.hasPrefix("::ffff:127.")
    }

    /// A refusal when the client's (address, user) failed too often lately. Lock held.
    func throttled(_ client: ClientConnection) -> ErrorFields? {
        guard let key = throttleKey(client), let wait = shared.loginThrottle.retryAfter(key, now: coarseNow) else {
            return nil
        }
        shared.throttledLogins &+= 1
        let seconds = Int(wait.rounded(.up))
        client.logger.warning("login throttled after repeated failures", [("retry_after_s", String(seconds))])
        return .fatal(
            .invalidAuthorizationSpecification,
            "too many failed logins for user \"\(client.user)\" from this address; try again in \(seconds) s")
    }

    /// The client proved who it is. Only now does it get a pool: a pool made for names from a startup packet
    /// would let anyone who can reach the port create pools (and their servers) for made-up users.
    func clientAuthenticated(
        _ client: ClientConnection, keys: SCRAMKeys?, route routeSetting: RouteSetting, lookedUp: StoredSecret?
    ) {
        shared.lock.lock()
        defer { shared.lock.unlock() }
        if let key = throttleKey(client) { shared.loginThrottle.succeeded(key) }
        if client.isAdminConsole { return adminLoggedIn(client) }
        // A RELOAD during the login may have removed the database.
        guard let database = config.database(named: client.database) else {
            return client.refuse(.fatal(.invalidCatalogName, "no such database: \(client.database)"))
        }
        if let keys { shared.provenKeys[client.user] = keys }
        let pool = pool(for: client, database: database)
        client.pool = pool
        pool.clientCount += 1
        pool.unusedSince = nil
        if let lookedUp { adoptLookedUpCredential(lookedUp, pool: pool, user: client.user) }
        if pool.routes != nil { client.routing = ClientRouting(setting: routeSetting) }
        client.routingGeneration = routingGeneration
        pool.stats.logins &+= 1
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

    func pool(for client: ClientConnection, database: DatabaseConfig) -> Pool {
        let serverUser = database.user ?? client.user
        let key = PoolKey(database: client.database, user: serverUser)
        if let existing = pools[key] { return existing }
        let credential =
            serverCredential(database: database, serverUser: serverUser, config: config)
            ?? shared.provenKeys[serverUser].map(ServerCredential.scramKeys) ?? .none
        let user = config.users[client.user]
        let mode = user?.poolMode ?? database.poolMode ?? config.poolMode
        let size = user?.poolSize ?? database.poolSize ?? config.defaultPoolSize
        var startup: [(String, String)] = []
        if let v = database.clientEncoding { startup.append(("client_encoding", v)) }
        if let v = database.dateStyle { startup.append(("datestyle", v)) }
        if let v = database.timeZone { startup.append(("timezone", v)) }
        if let v = database.applicationName { startup.append(("application_name", v)) }
        let pool = Pool(
            key: key, host: database.host ?? config.unixSocketDir ?? "127.0.0.1", port: database.port ?? 5432,
            serverDatabase: database.dbname ?? client.database, serverUser: serverUser, credential: credential,
            mode: mode, size: size > 0 ? size : Int.max,
            queryWaitTimeout: user?.queryWaitTimeout ?? database.queryWaitTimeout ?? config.queryWaitTimeout,
            serverLifetime: database.serverLifetime ?? config.serverLifetime, startupParameters: startup, logger: logger
        )
        pool.isPaused = shared.pausedDatabases.contains(key.database)
        pool.routes = shared.routes[key.database]
        pools[key] = pool
        configureLimits(pool, database: database, user: user, config: config)
        pool.logger.debug("pool created", [("pool_mode", mode.rawValue), ("pool_size", String(size))])
        return pool
    }

    /// Ids are unique across loops: loop i of n hands out i+1, i+1+n, i+1+2n, … so a client's id also
    /// names its loop.
    func allocateID() -> Int {
        defer { nextID += shared.workers.count }
        return nextID
    }
}
