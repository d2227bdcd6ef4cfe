import Glibc
import SluiceCore
import SluiceIO

/// One connection as the console shows it, described by the loop that drives it.
struct ConnectionSnapshot {
    var isServer: Bool
    var id: Int
    var user: String
    var database: String
    /// The pool the connection belongs to; nil for console clients and clients still logging in.
    var pool: PoolKey?
    /// PgBouncer's state words: clients `login`, `active`, `idle`, `waiting`; servers `new`, `active`, `idle`,
    /// `used`, `tested`.
    var state: String
    var address: PeerAddress
    var local: PeerAddress
    var connectedAt: Double
    var requestAt: Double
    /// When a waiting client started waiting.
    var waitingSince: Double?
    var closeNeeded: Bool
    var link: Int?
    var remotePID: Int32
    /// `TLSv1.3/TLS_AES_256_GCM_SHA384` for an encrypted connection, empty for a plain one.
    var tls: String
    var applicationName: String
    var preparedStatements: Int
    /// Bytes Sluice holds for the connection's prepared statements.
    var statementBytes: Int
    var inputBytes: Int
    var outputBytes: Int
    var bufferCapacity: Int
}

/// What the loops told the console: their connections, and what their memory is made of.
struct AdminSnapshot {
    var connections: [ConnectionSnapshot] = []
    /// Input and output buffers kept for reuse.
    var spareBuffers = 0
    /// What the allocator gave one client and one server object, where a loop had one.
    var clientObjectSize = 0
    var serverObjectSize = 0

    static func += (lhs: inout AdminSnapshot, rhs: AdminSnapshot) {
        lhs.connections += rhs.connections
        lhs.spareBuffers += rhs.spareBuffers
        lhs.clientObjectSize = max(lhs.clientObjectSize, rhs.clientObjectSize)
        lhs.serverObjectSize = max(lhs.serverObjectSize, rhs.serverObjectSize)
    }
}

/// The console's views, built from the loops' connection snapshots and the shared pools. Lock held.
extension Proxy {

    /// Describes the connections this loop drives and its spare memory. Lock held.
    func adminSnapshot() -> AdminSnapshot {
        var snapshot = AdminSnapshot(connections: connectionSnapshots())
        snapshot.spareBuffers = spareBuffers.count + spareOutputs.count
        if let client = clients.values.first { snapshot.clientObjectSize = Memory.allocatedSize(of: client) }
        if let server = servers.values.first { snapshot.serverObjectSize = Memory.allocatedSize(of: server) }
        return snapshot
    }

    /// Describes the connections this loop drives. Lock held.
    func connectionSnapshots() -> [ConnectionSnapshot] {
        var rows: [ConnectionSnapshot] = []
        rows.reserveCapacity(clients.count + servers.count)
        for client in clients.values where !client.isClosed {
            let state: String
            if client.isLoggingIn {
                state = "login"
            } else if client.isWaitingForServer {
                state = "waiting"
            } else if client.server != nil || client.isAdminConsole {
                state = "active"
            } else {
                state = "idle"
            }
            rows.append(
                ConnectionSnapshot(
                    isServer: false, id: client.id, user: client.user, database: client.database,
                    pool: client.isLoggingIn ? nil : client.pool?.key, state: state, address: client.peer,
                    local: Socket.localAddress(client.fd), connectedAt: client.connectedAt,
                    requestAt: max(client.lastActivity, client.connectedAt),
                    waitingSince: client.isWaitingForServer ? client.waitingSince : nil, closeNeeded: false,
                    link: client.server?.id, remotePID: 0, tls: Self.tlsSummary(client.transport),
                    applicationName: client.parameters["application_name"] ?? "",
                    preparedStatements: client.statements.count,
                    statementBytes: client.statements.values.reduce(0) { $0 + $1.memoryFootprint },
                    inputBytes: client.input.readableBytes, outputBytes: client.output.readableBytes,
                    bufferCapacity: client.input.capacity + client.output.capacity))
        }
        for server in servers.values where !server.isClosed {
            let state: String
            switch server.state {
            case .connecting, .loggingIn: state = "new"
            case .idle: state = coarseNow - server.idleSince >= config.serverCheckDelay ? "used" : "idle"
            case .active: state = server.client != nil ? "active" : "tested"
            case .closed: continue
            }
            rows.append(
                ConnectionSnapshot(
                    isServer: true, id: server.id, user: server.pool.serverUser, database: server.pool.key.database,
                    pool: server.pool.key, state: state,
                    address: PeerAddress(host: server.pool.host, port: server.pool.port, isUnix: false),
                    local: Socket.localAddress(server.fd), connectedAt: server.createdAt,
                    requestAt: max(server.requestStartedAt, server.idleSince), waitingSince: nil,
                    closeNeeded: server.closeWhenReleased, link: server.client?.id,
                    remotePID: server.backendKey?.processID ?? 0, tls: Self.tlsSummary(server.transport),
                    applicationName: server.client?.parameters["application_name"] ?? "",
                    preparedStatements: server.statementCache.count, statementBytes: 0,
                    inputBytes: server.input.readableBytes, outputBytes: server.output.readableBytes,
                    bufferCapacity: server.input.capacity + server.output.capacity))
        }
        return rows
    }

    static func tlsSummary(_ transport: any Transport) -> String {
        guard let session = transport as? TLSTransport else { return "" }
        return "\(session.protocolVersion)/\(session.cipher)"
    }

    /// Builds view `name` (validated by the caller). Lock held.
    func view(_ name: String, snapshot: AdminSnapshot) -> AdminResult {
        let connections = snapshot.connections
        switch name {
        case "help": return helpView()
        case "version":
            return AdminResult(
                columns: AdminColumns.version,
                rows: [["PgBouncer \(SluiceVersion.pgbouncer) (Sluice \(SluiceVersion.sluice))"]])
        case "config": return configView()
        case "databases": return databasesView(connections)
        case "pools": return poolsView(snapshot)
        case "clients": return connectionsView(connections.filter { !$0.isServer }, columns: AdminColumns.connections)
        case "servers": return connectionsView(connections.filter(\.isServer), columns: AdminColumns.connections)
        case "sockets": return connectionsView(connections, columns: AdminColumns.sockets)
        case "active_sockets":
            return connectionsView(
                connections.filter { $0.inputBytes > 0 || $0.outputBytes > 0 }, columns: AdminColumns.sockets)
        case "users": return usersView(connections)
        case "stats", "stats_totals", "stats_averages": return statsView(name)
        case "totals": return totalsView()
        case "lists": return listsView(connections)
        case "state":
            // Sluice has no SUSPEND (it serves PgBouncer's online restart), so it is never suspended.
            return AdminResult(
                columns: AdminColumns.state,
                rows: [["active", paused ? "no" : "yes"], ["paused", paused ? "yes" : "no"], ["suspended", "no"]])
        case "mem": return memView(snapshot)
        case "peers": return AdminResult(columns: AdminColumns.peers)
        case "peer_pools": return AdminResult(columns: AdminColumns.peerPools)
        case "dns_hosts": return AdminResult(columns: AdminColumns.dnsHosts)
        case "dns_zones": return AdminResult(columns: AdminColumns.dnsZones)
        case "backends": return backendsView(connections)
        case "latency": return latencyView()
        default: return AdminResult(columns: [])
        }
    }

    private func helpView() -> AdminResult {
        var result = AdminResult.command("SHOW")
        result.notices = [
            """
            Console usage
            \tSHOW HELP|CONFIG|USERS|DATABASES|POOLS|CLIENTS|SERVERS|VERSION
            \tSHOW STATS|STATS_TOTALS|STATS_AVERAGES|TOTALS|LISTS|STATE|MEM
            \tSHOW SOCKETS|ACTIVE_SOCKETS|PEERS|PEER_POOLS|DNS_HOSTS|DNS_ZONES
            \tSHOW BACKENDS|LATENCY (Sluice's own)
            \tSET key = arg
            \tRELOAD
            \tPAUSE [<db>]
            \tRESUME [<db>]
            \tDISABLE <db>
            \tENABLE <db>
            \tRECONNECT [<db>]
            \tKILL [<db>]
            \tKILL_CLIENT <client_id>
            \tSHUTDOWN [WAIT_FOR_SERVERS|WAIT_FOR_CLIENTS]
            \tWAIT_CLOSE [<db>]
            """
        ]
        return result
    }

    private func configView() -> AdminResult {
        let fromFile = config.sourceFile != nil
        let rows: [[String?]] = ConfigKey.all.map { key in
            let fallback = fromFile ? key.defaultValue : key.sidecarDefault ?? key.defaultValue
            var value = config.settingValues[key.name] ?? fallback
            if key.isSensitive && !value.isEmpty { value = "<redacted>" }
            return [key.name, value, key.defaultValue, key.reloadable ? "yes" : "no"]
        }
        return AdminResult(columns: AdminColumns.config, rows: rows)
    }

    /// Every database clients can reach by name: configured ones, ones served through `*` that have pools,
    /// and the console itself, as PgBouncer lists it.
    private func databasesView(_ connections: [ConnectionSnapshot]) -> AdminResult {
        var names = Set(config.databases.keys.filter { $0 != "*" })
        for key in pools.keys { names.insert(key.database) }
        var rows: [[String?]] = []
        let servers = connections.filter(\.isServer)
        let limits = config.poolLimits
        for name in names.sorted() {
            guard let database = config.database(named: name) else { continue }
            let clientCount = limitState.clientsPerDatabase[name] ?? 0
            let isPaused = paused || shared.pausedDatabases.contains(name)
            rows.append([
                name, database.host ?? config.unixSocketDir, String(database.port ?? 5432),
                database.dbname ?? name, database.user, String(database.poolSize ?? config.defaultPoolSize),
                String(limits.minPoolSize(database)), String(limits.reservePoolSize(database: database, user: nil)),
                String(Int(database.serverLifetime ?? config.serverLifetime)), database.poolMode?.rawValue,
                (database.loadBalanceHosts ?? .roundRobin).rawValue, String(limits.maxDBConnections(database)),
                String(servers.count { $0.database == name }),
                String(limits.maxDBClientConnections(database)), String(clientCount), isPaused ? "1" : "0",
                shared.disabledDatabases.contains(name) ? "1" : "0",
            ])
        }
        let consoleClients = connections.count {
            !$0.isServer && ($0.database == "pgbouncer" || $0.database == "sluice")
        }
        rows.append([
            "pgbouncer", nil, String(config.listenPort), "pgbouncer", "pgbouncer", "2", "0", "0", "0", "statement",
            nil, "0", "0", "0", String(consoleClients), "0", "0",
        ])
        return AdminResult(columns: AdminColumns.databases, rows: rows)
    }

    private func poolsView(_ snapshot: AdminSnapshot) -> AdminResult {
        let byPool = connectionsByPool(snapshot)
        let rows: [[String?]] = sortedPools()
            .map { pool in
                let members = byPool[pool.key] ?? []
                func count(server: Bool, _ state: String) -> String {
                    String(members.count { $0.isServer == server && $0.state == state })
                }
                let waited = oldestWait(members)
                let database = config.database(named: pool.key.database)
                // TODO: the cancel columns stay 0: Sluice forwards a cancel request at once on a connection of
                // its own rather than queueing it per pool, so there is no per-pool count to show yet.
                return [
                    pool.shownDatabase, pool.key.user,
                    String(members.count { !$0.isServer && ($0.state == "active" || $0.state == "idle") }),
                    count(server: false, "waiting"), "0", "0", count(server: true, "active"), "0", "0",
                    count(server: true, "idle"), count(server: true, "used"), count(server: true, "tested"),
                    count(server: true, "new"), String(Int(waited)),
                    String(Int((waited * 1_000_000).rounded()) % 1_000_000),
                    pool.mode.rawValue, (database?.loadBalanceHosts ?? .roundRobin).rawValue,
                ]
            }
        return AdminResult(columns: AdminColumns.pools, rows: rows)
    }

    private func connectionsView(_ connections: [ConnectionSnapshot], columns: [AdminResult.Column]) -> AdminResult {
        let now = coarseNow
        let wallOffset = Syscall.wallClockNow() - Syscall.monotonicNow()
        let withSockets = columns.count > AdminColumns.connections.count
        let rows: [[String?]] = connections.sorted { $0.id < $1.id }.map { connection in
            let waited = connection.waitingSince.map { max(0, now - $0) } ?? 0
            var row: [String?] = [
                connection.isServer ? "S" : "C", connection.user, connection.database, "", connection.state,
                connection.address.host, String(connection.address.port), connection.local.host,
                String(connection.local.port),
                AdminColumns.timestamp(unixSeconds: connection.connectedAt + wallOffset),
                AdminColumns.timestamp(unixSeconds: connection.requestAt + wallOffset), String(Int(waited)),
                String(Int((waited * 1_000_000).rounded()) % 1_000_000), connection.closeNeeded ? "1" : "0",
                AdminColumns.pointer(connection.id), connection.link.map(AdminColumns.pointer),
                String(connection.remotePID), connection.tls, connection.applicationName,
                String(connection.preparedStatements),
                String(connection.id),
            ]
            if withSockets {
                row += [
                    String(connection.inputBytes), "0", "0", String(connection.outputBytes),
                    String(connection.outputBytes), "0", String(max(0, connection.bufferCapacity)),
                ]
            }
            return row
        }
        return AdminResult(columns: columns, rows: rows)
    }

    /// Users with a `[users]` entry, an auth_file line or a pool, as PgBouncer lists the users it knows.
    private func usersView(_ connections: [ConnectionSnapshot]) -> AdminResult {
        var names = Set(config.users.keys)
        names.formUnion(config.userList.users.keys)
        for key in pools.keys { names.insert(key.user) }
        let limits = config.poolLimits
        func padded(_ value: Int?) -> String {
            value.map { String(repeating: " ", count: max(0, 9 - String($0).count)) + String($0) } ?? ""
        }
        let rows: [[String?]] = names.sorted().map { name in
            let user = config.users[name]
            let serverCount = connections.count { $0.isServer && $0.user == name }
            return [
                name, padded(user?.poolSize), padded(user?.reservePoolSize), user?.poolMode?.rawValue,
                String(limits.maxUserConnections(user)), String(serverCount),
                String(limits.maxUserClientConnections(user)), String(limitState.clientsPerUser[name] ?? 0),
            ]
        }
        return AdminResult(columns: AdminColumns.users, rows: rows)
    }

    /// Each database's totals, and its averages over the last whole `stats_period`.
    private func statsByDatabaseAndPeriod() -> [(database: String, totals: PoolStats, averages: PoolStats.Averages)] {
        var totals: [String: PoolStats] = [:]
        var from: [String: PoolStats] = [:]
        var to: [String: PoolStats] = [:]
        for pool in pools.values {
            totals[pool.key.database, default: PoolStats()] += pool.stats
            if let period = pool.lastPeriod {
                from[pool.key.database, default: PoolStats()] += period.from
                to[pool.key.database, default: PoolStats()] += period.to
            }
        }
        let seconds = shared.lastStatsPeriodLength
        return totals.keys.sorted().map { database in
            let averages = (to[database] ?? PoolStats()).averages(since: from[database] ?? PoolStats(), over: seconds)
            return (database, totals[database]!, averages)
        }
    }

    private func statsView(_ name: String) -> AdminResult {
        let rows: [[String?]] = statsByDatabaseAndPeriod().map { entry in
            let totals = entry.totals.pgbouncerTotals.map { String($0) }
            let averages = entry.averages.pgbouncerAverages.map { String($0) }
            switch name {
            case "stats": return [entry.database] + totals + averages
            case "stats_totals": return [entry.database] + totals
            default: return [entry.database] + averages
            }
        }
        let columns =
            name == "stats"
            ? AdminColumns.stats : name == "stats_totals" ? AdminColumns.statsTotals : AdminColumns.statsAverages
        return AdminResult(columns: columns, rows: rows)
    }

    /// `SHOW TOTALS`: the STATS columns summed over every database, one per row, with PgBouncer's row names.
    private func totalsView() -> AdminResult {
        var totals = PoolStats()
        var from = PoolStats()
        var to = PoolStats()
        for pool in pools.values {
            totals += pool.stats
            if let period = pool.lastPeriod {
                from += period.from
                to += period.to
            }
        }
        let averages = to.averages(since: from, over: shared.lastStatsPeriodLength)
        let names = [
            "server_assignment_count", "xact_count", "query_count", "client_bytes", "server_bytes", "xact_time",
            "query_time", "wait_time", "ps_client_parse_count", "ps_server_parse_count", "ps_bind_count",
            "client_login_count",
        ]
        var rows: [[String?]] = []
        for (name, value) in zip(names, totals.pgbouncerTotals) { rows.append(["total_" + name, String(value)]) }
        for (name, value) in zip(names, averages.pgbouncerAverages) { rows.append(["avg_" + name, String(value)]) }
        return AdminResult(columns: AdminColumns.nameValue, rows: rows)
    }

    private func listsView(_ connections: [ConnectionSnapshot]) -> AdminResult {
        var databases = Set(config.databases.keys.filter { $0 != "*" })
        for key in pools.keys { databases.insert(key.database) }
        var users = Set(config.users.keys)
        users.formUnion(config.userList.users.keys)
        let clients = connections.filter { !$0.isServer }
        let items: [(String, Int)] = [
            ("databases", databases.count + 1), ("users", users.count), ("peers", 0), ("pools", pools.count),
            ("peer_pools", 0), ("free_clients", 0), ("used_clients", clients.count { $0.state != "login" }),
            ("login_clients", clients.count { $0.state == "login" }), ("free_servers", 0),
            ("used_servers", connections.count(where: \.isServer)), ("dns_names", 0), ("dns_zones", 0),
            ("dns_queries", 0), ("dns_pending", 0),
        ]
        return AdminResult(columns: AdminColumns.lists, rows: items.map { [$0.0, String($0.1)] })
    }

    /// Sluice allocates no slabs; the rows are its kinds of memory: size per item, items in use, spare items
    /// kept for reuse, and the total.
    private func memView(_ snapshot: AdminSnapshot) -> AdminResult {
        let connections = snapshot.connections
        let clients = connections.filter { !$0.isServer }
        let servers = connections.filter(\.isServer)
        let clientSize = snapshot.clientObjectSize
        let serverSize = snapshot.serverObjectSize
        let bufferBytes = connections.reduce(0) { $0 + $1.bufferCapacity }
        let spare = snapshot.spareBuffers
        let statementCount = clients.reduce(0) { $0 + $1.preparedStatements }
        let statementBytes = clients.reduce(0) { $0 + $1.statementBytes }
        func row(_ name: String, size: Int, used: Int, free: Int, total: Int) -> [String?] {
            [name, String(size), String(used), String(free), String(total)]
        }
        return AdminResult(
            columns: AdminColumns.mem,
            rows: [
                row("client_cache", size: clientSize, used: clients.count, free: 0, total: clientSize * clients.count),
                row("server_cache", size: serverSize, used: servers.count, free: 0, total: serverSize * servers.count),
                row(
                    "iobuf_cache", size: Connection.readChunk, used: bufferBytes / Connection.readChunk, free: spare,
                    total: bufferBytes + spare * Connection.readChunk),
                row(
                    "client_prepared_statement_cache", size: statementCount == 0 ? 0 : statementBytes / statementCount,
                    used: statementCount, free: 0, total: statementBytes),
                row(
                    "server_prepared_statement_cache", size: 0, used: servers.reduce(0) { $0 + $1.preparedStatements },
                    free: 0, total: 0),
            ])
    }

    /// Percentiles of each pool's query, transaction and wait times over the last whole `stats_period`.
    private func latencyView() -> AdminResult {
        let rows: [[String?]] = sortedPools()
            .map { pool in
                let period = recentLatency(of: pool)
                var row: [String?] = [pool.shownDatabase, pool.key.user]
                for histogram in [period.query, period.transaction, period.wait] {
                    row.append(String(histogram.count))
                    for percent in [50.0, 95, 99] { row.append(histogram.percentile(percent).map { String($0) }) }
                }
                return row
            }
        return AdminResult(columns: AdminColumns.latency, rows: rows)
    }

    /// Every server address Sluice connects to, with what the health checks found there, and for the backends of
    /// routed databases what the routing monitor found: role, lag, reads and writes sent there.
    private func backendsView(_ connections: [ConnectionSnapshot]) -> AdminResult {
        struct Target {
            var host: String
            var port: Int
            var names: Set<String> = []
            var routed: [(routes: RoutedDatabase, index: Int)] = []
        }
        var targets: [String: Target] = [:]
        for name in checkedDatabaseNames() {
            guard let database = config.database(named: name) else { continue }
            let host = database.host ?? config.unixSocketDir ?? "127.0.0.1"
            let port = database.port ?? 5432
            targets["\(host):\(port)", default: Target(host: host, port: port)].names.insert(name)
        }
        for routes in shared.routes.values {
            for (index, address) in routes.addresses.enumerated() {
                let key = "\(address.host):\(address.port)"
                targets[key, default: Target(host: address.host, port: address.port)].names.insert(routes.name)
                targets[key]?.routed.append((routes, index))
            }
        }
        let now = Syscall.monotonicNow()
        let wallOffset = Syscall.wallClockNow() - now
        let rows: [[String?]] = targets.values.sorted { ($0.host, $0.port) < ($1.host, $1.port) }.map { target in
            let servers = connections.filter { connection in
                guard connection.isServer, let pool = connection.pool, target.names.contains(pool.database) else {
                    return false
                }
                // A routed database's pools each lead to one backend; others lead to their entry's host.
                guard let routes = shared.routes[pool.database] else { return true }
                return routes.addresses.indices.contains(pool.backend)
                    && routes.addresses[pool.backend] == BackendAddress(host: target.host, port: target.port)
            }
            let checked = target.names.filter { name in !target.routed.contains { $0.routes.name == name } }
            let states = checked.map { healthState($0, now: now) }
            var state =
                states.contains { $0.state == "down" }
                ? "down" : states.allSatisfy { $0.state == "up" } ? "up" : "unknown"
            var role = "primary"
            var lagMS: String?
            var lagBytes: String?
            var lastCheck = states.compactMap(\.health.checkedAt).max()
            var lastError = states.compactMap(\.health.lastError).first
            var reads: UInt64 = 0
            var writes: UInt64 = 0
            for (routes, index) in target.routed {
                let backend = routes.state.backends[index]
                role = backend.role.rawValue
                reads &+= routes.reads[index]
                writes &+= routes.writes[index]
                if backend.checkedAt == nil {
                    state = "unknown"
                } else if !backend.isReachable || (backend.bannedUntil ?? 0) > now {
                    state = backend.isReachable ? "banned" : "down"
                } else if backend.role == .standby && !routes.state.mayServeRead(index, after: nil, now: now) {
                    state = "lagging"
                } else if state != "down" {
                    state = "up"
                }
                lagMS = backend.lagSeconds.map { String(Int(($0 * 1000).rounded())) }
                lagBytes = backend.lagBytes.map(String.init)
                lastCheck = [lastCheck, backend.checkedAt].compactMap { $0 }.max()
                lastError = lastError ?? backend.lastError
            }
            return [
                target.host, String(target.port), role, state, lagMS, target.names.sorted().joined(separator: ","),
                String(servers.count { $0.state == "active" }),
                String(servers.count { $0.state == "idle" || $0.state == "used" }),
                String(servers.count { $0.state == "new" }), String(servers.count),
                lastCheck.map { AdminColumns.timestamp(unixSeconds: $0 + wallOffset) }, lastError, lagBytes,
                String(reads), String(writes),
            ]
        }
        return AdminResult(columns: AdminColumns.backends, rows: rows)
    }
}
