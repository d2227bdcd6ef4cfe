import SluiceCore
import SluiceIO

/// Read/write routing: which backend a client's unit of work runs on, the monitor that learns each
/// backend's role, position and lag, and read-your-writes. See docs/routing.md.
extension Proxy {

    // MARK: Set-up

    /// Makes the routing state of every database entry that lists replicas; keeps the state of one whose
    /// backends did not change. At startup and on reload, lock held.
    func updateRoutes(_ fresh: SluiceConfig) {
        var routes: [String: RoutedDatabase] = [:]
        // TODO: a `*` entry with replicas does not route: its databases are made up per client name and would
        // each need a monitor of their own. Refused nowhere, so documented (docs/routing.md).
        for (name, database) in fresh.databases where name != "*" && database.routesReads {
            let made = RoutedDatabase(name: name, database: database, config: fresh)
            if let existing = shared.routes[name], existing.addresses == made.addresses {
                existing.state.policy = made.state.policy
                existing.readYourWrites = made.readYourWrites
                routes[name] = existing
            } else {
                routes[name] = made
                logger.info(
                    "routing reads to replicas",
                    [
                        ("db", name), ("primary", "\(made.addresses[0])"),
                        ("replicas", made.addresses.dropFirst().map(\.description).joined(separator: ",")),
                    ])
            }
        }
        for (name, old) in shared.routes where routes[name] !== old { closeMonitors(of: old) }
        shared.routes = routes
        let names = Set(routes.keys)
        everyLoop { proxy in
            proxy.routedDatabases = names
            proxy.routingGeneration &+= 1
            proxy.classifiers = proxy.classifiers.filter { names.contains($0.key) }
        }
        for pool in pools.values {
            let route = routes[pool.key.database]
            pool.routes = pool.key.backend < (route?.addresses.count ?? 1) ? route : nil
        }
    }

    /// This loop's classifier for the pool's database, made on first use with the catalog known so far.
    func classifier(for pool: Pool?) -> StatementClassifier {
        let name = pool?.key.database ?? ""
        if let existing = classifiers[name] { return existing }
        let catalog = shared.lock.withLock { shared.routes[name]?.catalog ?? RoutingCatalog() }
        let made = StatementClassifier(catalog: catalog)
        classifiers[name] = made
        return made
    }

    /// The pool of `home`'s database and user on `backend`, made on first use. Lock held.
    func backendPool(_ home: Pool, backend: Int) -> Pool {
        guard backend != 0, let routes = home.routes else { return home }
        if home.backendPools.indices.contains(backend), let existing = home.backendPools[backend] {
            if case .none = existing.credential { existing.credential = home.credential }
            return existing
        }
        let key = PoolKey(database: home.key.database, user: home.key.user, backend: backend)
        if let existing = pools[key] {
            if case .none = existing.credential { existing.credential = home.credential }
            remember(existing, of: home, at: backend)
            return existing
        }
        let address = routes.state.backends[backend].address
        let pool = Pool(
            key: key, host: address.host, port: address.port, serverDatabase: home.serverDatabase,
            serverUser: home.serverUser, credential: home.credential, mode: home.mode,
            size: home.machine.maxServers, queryWaitTimeout: home.queryWaitTimeout,
            serverLifetime: home.serverLifetime, startupParameters: home.startupParameters, logger: logger)
        pool.routes = routes
        pool.isPaused = home.isPaused
        pool.welcome = nil
        pools[key] = pool
        if let database = config.database(named: home.key.database) {
            configureLimits(pool, database: database, user: config.users[home.key.user], config: config)
        }
        remember(pool, of: home, at: backend)
        return pool
    }

    /// Keeps a backend's pool on the home pool, so routing a read finds it without hashing names.
    private func remember(_ pool: Pool, of home: Pool, at backend: Int) {
        if home.backendPools.count <= backend {
            home.backendPools += Array(repeating: nil, count: backend + 1 - home.backendPools.count)
        }
        home.backendPools[backend] = pool
    }

    // MARK: Choosing

    /// Whether a standby of the pool's database may serve reads now.
    func standbyServesReads(_ pool: Pool?) -> Bool {
        shared.lock.withLock {
            guard let routes = pool?.routes else { return false }
            let now = Syscall.monotonicNow()
            return routes.state.backends.indices.contains { routes.state.mayServeRead($0, after: nil, now: now) }
        }
    }

    /// The pool a client's unit goes to; nil when it must wait for a primary. Lock held.
    func routedPool(for client: ClientConnection, home: Pool, request: RouteRequest) -> Pool? {
        guard let routes = home.routes, let routing = client.routing else { return home }
        let now = Syscall.monotonicNow()
        switch request {
        case .read:
            var position: WALPosition?
            switch routes.readYourWrites {
            case .off: position = nil
            case .connection: position = routing.writtenPosition
            case .pool: position = routes.lastWrite[home.key.user]
            }
            let choice = routes.state.chooseReader(after: position, now: now) { index in
                guard let pool = home.backendPools.indices.contains(index) ? home.backendPools[index] : nil else {
                    return 0
                }
                return pool.machine.totalServers - pool.machine.idleCount + pool.machine.waitingCount
            }
            switch choice {
            case .replica(let index):
                routes.reads[index] &+= 1
                routing.onStandby = true
                return backendPool(home, backend: index)
            case .primary(let index, let fallback):
                routes.reads[index] &+= 1
                if fallback { routes.fallbackReads &+= 1 }
                routing.onStandby = false
                return backendPool(home, backend: index)
            case .none:
                break
            }
        case .write:
            break
        }
        routing.onStandby = false
        guard let primary = routes.state.primary else { return nil }
        routes.writes[primary] &+= 1
        return backendPool(home, backend: primary)
    }

    /// A client waits for a primary: none is known (a failover under way, or two claim the role). Lock held.
    func waitForPrimary(_ client: ClientConnection, routes: RoutedDatabase, request: RouteRequest) {
        client.routing?.pendingRequest = request
        routes.waitingForPrimary.append((client.id, Syscall.monotonicNow()))
    }

    /// Hands waiting clients their primary once one is known, and fails those that waited too long. Loop 0's
    /// tick, lock held.
    private func serveWritesWaitingForPrimary(_ routes: RoutedDatabase, now: Double) {
        guard !routes.waitingForPrimary.isEmpty else { return }
        let hasPrimary = routes.state.primary != nil
        let limit = config.primaryWaitTimeout
        var still: [(clientID: Int, since: Double)] = []
        for waiter in routes.waitingForPrimary {
            if hasPrimary {
                shared.owner(ofClient: waiter.clientID).post { $0.retryRoute(clientID: waiter.clientID) }
            } else if now - waiter.since >= limit {
                let error = ErrorFields.fatal(
                    .connectionFailure,
                    "no primary server for database \(routes.name) within primary_wait_timeout (\(limit) s): "
                        + noPrimaryReason(routes))
                shared.owner(ofClient: waiter.clientID).post { $0.failWaiter(waiter.clientID, error: error) }
            } else {
                still.append(waiter)
            }
        }
        routes.waitingForPrimary = still
    }

    private func noPrimaryReason(_ routes: RoutedDatabase) -> String {
        routes.state.conflictingPrimaries.isEmpty
            ? "no backend answers as the primary; a failover may be under way"
            : "more than one backend claims to be the primary; writes stop until only one does"
    }

    func retryRoute(clientID: Int) {
        guard let client = clients[clientID], !client.isClosed, let request = client.routing?.pendingRequest else {
            return
        }
        client.routing?.pendingRequest = nil
        client.isWaitingForServer = false
        acquireServer(for: client, request: request)
    }

    /// Waiters of a standby's pool whose server could not be opened: the standby is left out for a while and
    /// they are routed again (to another standby or the primary) instead of failing. Lock held.
    func rerouteOrFail(_ ids: [Int], pool: Pool, error: ErrorFields) {
        guard let routes = pool.routes, routes.state.backends[pool.key.backend].role == .standby else {
            return failWaiters(ids, pool: pool, error: error)
        }
        logRouting(
            routes.state.connectionFailed(pool.key.backend, error: error.message, now: Syscall.monotonicNow()), routes)
        for id in ids {
            shared.owner(ofClient: id).post { proxy in
                guard let client = proxy.clients[id], !client.isClosed else { return }
                client.isWaitingForServer = false
                client.routeTarget = nil
                proxy.acquireServer(for: client, request: .read)
            }
        }
    }

    /// A standby refused a Query Sluice classified as a read (25006): the text goes to the primary from now on,
    /// on every loop, and this client's Query runs again, ahead of anything it sent after it.
    func standbyRefused(client: ClientConnection, server: ServerConnection) {
        guard let routing = client.routing else { return }
        var message = ByteBuffer()
        message.write(byte: FrontendMessageCode.query.rawValue)
        message.write(uint32: UInt32(4 + routing.lastQuery.readableBytes + 1))
        message.write(bytes: routing.lastQuery.readableView)
        message.write(byte: 0)
        client.input.prepend(Array(message.readableView))
        let text = String(decoding: routing.lastQuery.readableView, as: UTF8.self)
        client.logger.warning(
            "a replica refused a statement classified as a read; "
                + "running it on the primary and sending it there from now on",
            [("backend", "\(server.pool.host):\(server.pool.port)"), ("statement", String(text.prefix(200)))])
        let name = server.pool.key.database
        shared.lock.withLock {
            everyLoop { proxy in proxy.classifiers[name]?.pinToPrimary(text) }
        }
    }

    // MARK: Read-your-writes

    /// Before a server that may have written goes back, the primary's position is asked so this client's
    /// (or this pool's) later reads wait for standbys that replayed it. Returns whether it was asked.
    func askPositionIfDue(_ server: ServerConnection) -> Bool {
        guard server.mayHaveWritten else { return false }
        server.mayHaveWritten = false
        guard let routes = server.pool.routes, routes.readYourWrites != .off,
            routes.state.backends[server.pool.key.backend].role == .primary
        else { return false }
        server.sendSluiceQuery(RoutingState.positionQuery, purpose: .walPosition)
        server.flushOrLose()
        return true
    }

    // MARK: Monitor

    /// Asks each backend of each routed database, every `routing_check_period`, on a connection of its own.
    /// Loop 0's tick, lock held.
    func runRoutingMonitor(_ now: Double) {
        let period = config.routingCheckPeriod
        for routes in shared.routes.values {
            serveWritesWaitingForPrimary(routes, now: now)
            for index in routes.addresses.indices {
                if let sent = routes.probeSentAt[index] {
                    // A login may take server_connect_timeout; a check of a logged-in backend is one tiny query.
                    let loggedIn = routes.monitors[index]?.servers.values.first?.isLoggedIn ?? false
                    let limit = max(2 * period, loggedIn ? 2 : config.serverConnectTimeout)
                    guard now - sent >= limit else { continue }
                    monitorFailed(routes, index, error: "no answer within \(limit) s")
                    continue
                }
                guard now - routes.lastProbeAt[index] >= period else { continue }
                routes.lastProbeAt[index] = now
                routes.probeSentAt[index] = now
                if let pool = routes.monitors[index], let server = pool.servers.values.first {
                    server.sendSluiceQuery(RoutingState.probeQuery, purpose: .routingProbe)
                    // TODO: the catalog is read every 60 s, not when it changes; a view made since counts as a table
                    // until then (functions do not: unknown ones go to the primary). A setting, or a check of
                    // pg_stat_database's DDL counters, would shorten that.
                    if index == routes.state.primary, now - (routes.catalogReadAt ?? -Double.infinity) >= 60 {
                        routes.catalogReadAt = now
                        server.sendSluiceQuery(RoutingCatalog.query, purpose: .routingCatalog)
                    }
                    server.flushOrLose()
                } else if let pool = monitorPool(routes, index) {
                    routes.monitors[index] = pool
                    openServer(pool)
                } else {
                    // Not the backend's fault: no ban. Checks start once a client's login gives Sluice keys.
                    routes.probeSentAt[index] = nil
                    if !routes.warnedNoCredentials {
                        routes.warnedNoCredentials = true
                        logger.warning(
                            "routing monitor has no credentials yet: replicas serve reads once a client has logged in",
                            [("db", routes.name)])
                    }
                }
            }
        }
    }

    private func monitorPool(_ routes: RoutedDatabase, _ index: Int) -> Pool? {
        guard let pool = healthCheckPool(for: routes.name, applicationName: "sluice routing monitor", backend: index)
        else {
            return nil
        }
        let address = routes.addresses[index]
        pool.host = address.host
        pool.port = address.port
        pool.isHealthCheck = false
        pool.monitor = (routes, index)
        return pool
    }

    /// The monitor's connection logged in: the first question goes at once. Lock held.
    func monitorLoggedIn(_ server: ServerConnection) {
        server.state = .active
        guard let (routes, index) = server.pool.monitor else { return }
        server.sendSluiceQuery(RoutingState.probeQuery, purpose: .routingProbe)
        if index == routes.state.primary || routes.catalogReadAt == nil {
            routes.catalogReadAt = Syscall.monotonicNow()
            server.sendSluiceQuery(RoutingCatalog.query, purpose: .routingCatalog)
        }
        server.flushOrLose()
    }

    /// The monitor's connection to a backend failed, or its question went unanswered. Lock held.
    func monitorFailed(_ routes: RoutedDatabase, _ index: Int, error: String) {
        if let pool = routes.monitors[index] {
            for server in Array(pool.servers.values) {
                onDriver(of: server) { proxy in
                    server.retire("routing monitor: \(error)")
                    proxy.forgetServer(server)
                }
            }
        }
        routes.monitors[index] = nil
        routes.probeSentAt[index] = nil
        logRouting(routes.state.probeFailed(index, error: error, now: Syscall.monotonicNow()), routes)
    }

    func closeMonitors(of routes: RoutedDatabase) {
        for pool in routes.monitors.compactMap({ $0 }) {
            for server in Array(pool.servers.values) {
                onDriver(of: server) { proxy in
                    server.retire("routing configuration changed")
                    proxy.forgetServer(server)
                }
            }
        }
        routes.monitors = routes.monitors.map { _ in nil }
    }

    /// The rows of one of Sluice's own questions. Lock taken here.
    func sluiceRequestAnswered(_ server: ServerConnection, request: SluiceRequest, rows: [[String?]]) {
        shared.lock.lock()
        defer { shared.lock.unlock() }
        switch request {
        case .routingProbe:
            guard let (routes, index) = server.pool.monitor, routes.monitors[index] === server.pool else { return }
            routes.probeSentAt[index] = nil
            guard let row = rows.first, let probe = BackendProbe(row: row) else {
                return monitorFailed(routes, index, error: "unexpected answer to the routing check")
            }
            logRouting(routes.state.probeAnswered(index, probe, now: Syscall.monotonicNow()), routes)
        case .routingCatalog:
            guard let (routes, _) = server.pool.monitor else { return }
            let catalog = RoutingCatalog(
                rows: rows, safeFunctions: config.routingSafeFunctions, unsafeFunctions: config.routingUnsafeFunctions)
            guard catalog != routes.catalog else { return }
            routes.catalog = catalog
            let name = routes.name
            everyLoop { proxy in proxy.classifiers[name]?.replaceCatalog(catalog) }
        case .authQuery:
            authLookupAnswered(server, rows: rows)
        case .walPosition:
            guard let position = rows.first?.first.flatMap({ $0 }).flatMap({ WALPosition($0) }),
                let routes = server.pool.routes
            else { return }
            switch routes.readYourWrites {
            case .off: break
            case .connection:
                server.client?.routing?.writtenPosition = position
            case .pool:
                let user = server.pool.key.user
                routes.lastWrite[user] = max(routes.lastWrite[user] ?? position, position)
            }
        default:
            break
        }
    }

    func logRouting(_ events: [RoutingEvent], _ routes: RoutedDatabase) {
        for event in events {
            let address = { (index: Int) in routes.addresses[index].description }
            switch event {
            case .roleChanged(let index, let from, let to):
                logger.warning(
                    "backend changed role",
                    [("db", routes.name), ("backend", address(index)), ("from", from.rawValue), ("to", to.rawValue)])
            case .banned(let index, let reason):
                logger.warning(
                    "backend unreachable; left out of routing",
                    [("db", routes.name), ("backend", address(index)), ("reason", reason)])
            case .reachableAgain(let index):
                logger.info("backend reachable again", [("db", routes.name), ("backend", address(index))])
            case .lagExceeded(let index, let bytes, let seconds):
                logger.warning(
                    "replica lag over the limit; reads skip it",
                    [
                        ("db", routes.name), ("backend", address(index)), ("lag_bytes", "\(bytes)"),
                        ("lag_seconds", "\(seconds)"),
                    ])
            case .caughtUp(let index):
                logger.info(
                    "replica caught up; serving reads again", [("db", routes.name), ("backend", address(index))])
            case .splitBrain(let indices):
                logger.error(
                    "more than one backend claims to be the primary; writes stop until only one does",
                    [("db", routes.name), ("backends", indices.map(address).joined(separator: ","))])
            }
        }
    }
}
