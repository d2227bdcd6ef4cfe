import SluiceCore
import SluiceIO

/// What `/stats` and `/metrics` say: the same figures as the console's views, as JSON and as Prometheus
/// metrics. Built on loop 0 with the lock held, from every loop's snapshot.
extension Proxy {

    /// The client states and server states the gauges are split by, PgBouncer's words.
    static let clientStates = ["active", "idle", "waiting"]
    static let serverStates = ["active", "idle", "used", "tested", "new"]

    /// `/stats`: per pool its connections, totals, the last period's throughput and latency percentiles.
    func statsDocument(_ snapshot: AdminSnapshot) -> JSONValue {
        let byPool = connectionsByPool(snapshot)
        let seconds = shared.lastStatsPeriodLength
        var poolEntries: [JSONValue] = []
        for pool in sortedPools() {
            let members = byPool[pool.key] ?? []
            func counts(server: Bool, _ states: [String]) -> JSONValue {
                .object(
                    states.map { state in
                        (state, .int(Int64(members.count { $0.isServer == server && $0.state == state })))
                    })
            }
            let totals = pool.stats
            let period = pool.lastPeriod.map { $0.to.averages(since: $0.from, over: seconds) }
            let latency = recentLatency(of: pool)
            func percentiles(_ histogram: LatencyHistogram) -> JSONValue {
                .object(
                    [("count", .uint(histogram.count))]
                        + [("p50", 50.0), ("p95", 95), ("p99", 99)].map { name, percent in
                            (name, histogram.percentile(percent).map { .uint($0) } ?? .null)
                        })
            }
            poolEntries.append(
                .object([
                    ("database", .string(pool.shownDatabase)), ("user", .string(pool.key.user)),
                    ("pool_mode", .string(pool.mode.rawValue)),
                    ("pool_size", pool.machine.maxServers == Int.max ? .null : .int(Int64(pool.machine.maxServers))),
                    ("paused", .bool(paused || pool.isPaused)),
                    ("clients", counts(server: false, Self.clientStates)),
                    ("servers", counts(server: true, Self.serverStates)),
                    ("oldest_wait_seconds", .double(oldestWait(members))),
                    (
                        "totals",
                        .object([
                            ("transactions", .uint(totals.transactions)), ("queries", .uint(totals.queries)),
                            ("received_bytes", .uint(totals.received)), ("sent_bytes", .uint(totals.sent)),
                            ("errors", .uint(totals.errors)), ("logins", .uint(totals.logins)),
                            ("server_assignments", .uint(totals.serverAssignments)),
                            ("transaction_time_us", .uint(totals.transactionMicros)),
                            ("query_time_us", .uint(totals.queryMicros)), ("wait_time_us", .uint(totals.waitMicros)),
                        ])
                    ),
                    (
                        "last_period",
                        .object([
                            ("seconds", .double(seconds)),
                            ("transactions_per_second", period.map { .uint($0.transactionsPerSecond) } ?? .null),
                            ("queries_per_second", period.map { .uint($0.queriesPerSecond) } ?? .null),
                            ("received_bytes_per_second", period.map { .uint($0.receivedPerSecond) } ?? .null),
                            ("sent_bytes_per_second", period.map { .uint($0.sentPerSecond) } ?? .null),
                            ("query_us", percentiles(latency.query)),
                            ("transaction_us", percentiles(latency.transaction)),
                            ("wait_us", percentiles(latency.wait)),
                        ])
                    ),
                ]))
        }
        let now = Syscall.monotonicNow()
        let databases: [JSONValue] = checkedDatabaseNames().map { name in
            let (state, health) = healthState(name, now: now)
            return .object([
                ("name", .string(name)), ("state", .string(config.healthCheckPeriod > 0 ? state : "unchecked")),
                ("paused", .bool(paused || shared.pausedDatabases.contains(name))),
                ("disabled", .bool(shared.disabledDatabases.contains(name))),
                ("last_error", health.lastError.map { .string($0) } ?? .null),
            ])
        }
        let clients = snapshot.connections.filter { !$0.isServer }
        return .object([
            ("version", .string(SluiceVersion.full)), ("paused", .bool(paused)),
            ("clients", .int(Int64(clients.count))),
            ("clients_logging_in", .int(Int64(clients.count { $0.state == "login" }))),
            ("servers", .int(Int64(snapshot.connections.count(where: \.isServer)))),
            ("client_login_failures", .uint(shared.loginFailures)), ("databases", .array(databases)),
            ("pools", .array(poolEntries)),
        ])
    }

    /// `/metrics`: counters, gauges and histograms, labelled only with bounded values.
    func metrics(_ snapshot: AdminSnapshot) -> String {
        let byPool = connectionsByPool(snapshot)
        let pools = sortedPools()
        func labels(_ pool: Pool) -> [(String, String)] { [("database", pool.shownDatabase), ("user", pool.key.user)] }
        var out = PrometheusExposition()
        let counters: [(String, String, KeyPath<PoolStats, UInt64>)] = [
            ("sluice_transactions_total", "Transactions completed.", \.transactions),
            (
                "sluice_queries_total", "Requests answered with ReadyForQuery (simple queries, extended batches).",
                \.queries
            ),
            ("sluice_received_bytes_total", "Bytes received from clients.", \.received),
            ("sluice_sent_bytes_total", "Bytes sent to clients.", \.sent),
            ("sluice_errors_total", "ErrorResponses that reached clients.", \.errors),
            ("sluice_client_logins_total", "Clients that logged in.", \.logins),
            ("sluice_server_assignments_total", "Times a server was lent to a client.", \.serverAssignments),
        ]
        for (name, help, field) in counters {
            out.family(name, type: .counter, help: help)
            for pool in pools { out.sample(labels: labels(pool), value: pool.stats[keyPath: field]) }
        }
        out.family("sluice_client_login_failures_total", type: .counter, help: "Client authentications that failed.")
        out.sample(value: shared.loginFailures)
        out.family(
            "sluice_client_logins_throttled_total", type: .counter,
            help: "Client logins refused because their address and user failed too often (login_failure_limit).")
        out.sample(value: shared.throttledLogins)

        out.family("sluice_client_connections", type: .gauge, help: "Client connections by state.")
        for pool in pools {
            let members = byPool[pool.key] ?? []
            for state in Self.clientStates {
                out.sample(
                    labels: labels(pool) + [("state", state)],
                    value: members.count { !$0.isServer && $0.state == state })
            }
        }
        out.sample(
            labels: [("database", ""), ("user", ""), ("state", "login")],
            value: snapshot.connections.count { !$0.isServer && $0.state == "login" })
        out.family("sluice_server_connections", type: .gauge, help: "Server connections by state.")
        for pool in pools {
            let members = byPool[pool.key] ?? []
            for state in Self.serverStates {
                out.sample(
                    labels: labels(pool) + [("state", state)], value: members.count { $0.isServer && $0.state == state }
                )
            }
        }
        out.family("sluice_pool_size", type: .gauge, help: "Most server connections the pool may open (0: no limit).")
        for pool in pools {
            out.sample(labels: labels(pool), value: pool.machine.maxServers == Int.max ? 0 : pool.machine.maxServers)
        }
        out.family(
            "sluice_pool_utilization_ratio", type: .gauge,
            help: "Server connections over the pool's size (0 for a pool without a limit).")
        for pool in pools {
            let size = pool.machine.maxServers
            let used = (byPool[pool.key] ?? []).count(where: \.isServer)
            out.sample(labels: labels(pool), value: size == Int.max || size == 0 ? 0 : Double(used) / Double(size))
        }
        out.family("sluice_waiting_clients", type: .gauge, help: "Clients waiting for a server.")
        for pool in pools {
            out.sample(labels: labels(pool), value: (byPool[pool.key] ?? []).count { $0.waitingSince != nil })
        }
        out.family("sluice_oldest_wait_seconds", type: .gauge, help: "How long the longest-waiting client has waited.")
        for pool in pools { out.sample(labels: labels(pool), value: oldestWait(byPool[pool.key] ?? [])) }
        out.family(
            "sluice_database_up", type: .gauge,
            help: "1 when the database's last health check succeeded within two health_check_period.")
        let now = Syscall.monotonicNow()
        for name in checkedDatabaseNames() {
            out.sample(labels: [("database", name)], value: healthState(name, now: now).state == "up" ? 1 : 0)
        }
        out.family("sluice_paused", type: .gauge, help: "1 while Sluice is paused (PAUSE, SIGUSR1).")
        out.sample(value: paused ? 1 : 0)
        routingMetrics(into: &out, now: now)

        let histograms: [(String, String, KeyPath<PoolLatency, LatencyHistogram>)] = [
            ("sluice_query_duration_seconds", "Time from a request to its ReadyForQuery.", \.query),
            (
                "sluice_transaction_duration_seconds", "Time from a transaction's first request to its end.",
                \.transaction
            ),
            ("sluice_wait_duration_seconds", "Time clients waited for a server.", \.wait),
        ]
        for (name, help, field) in histograms {
            out.family(name, type: .histogram, help: help)
            for pool in pools {
                let histogram = pool.latency[keyPath: field]
                out.histogram(
                    labels: labels(pool), buckets: histogram.prometheusBuckets(), sum: histogram.sumSeconds,
                    count: histogram.count)
            }
        }
        return out.rendered()
    }

    /// The routing families, one series per backend of each routed database (labels: database, backend).
    private func routingMetrics(into out: inout PrometheusExposition, now: Double) {
        let databases = shared.routes.values.sorted { $0.name < $1.name }
        guard !databases.isEmpty else { return }
        func each(_ body: (RoutedDatabase, Int, [(String, String)]) -> Void) {
            for routes in databases {
                for index in routes.addresses.indices {
                    body(routes, index, [("database", routes.name), ("backend", routes.addresses[index].description)])
                }
            }
        }
        out.family(
            "sluice_backend_primary", type: .gauge, help: "1 for the backend routed writes go to, 0 for the others.")
        each { routes, index, labels in out.sample(labels: labels, value: routes.state.primary == index ? 1 : 0) }
        out.family(
            "sluice_backend_reachable", type: .gauge, help: "1 when the routing monitor's last check got an answer.")
        each { routes, index, labels in
            out.sample(labels: labels, value: routes.state.backends[index].isReachable ? 1 : 0)
        }
        out.family(
            "sluice_backend_serves_reads", type: .gauge,
            help: "1 for a standby that may serve reads now (reachable, not banned, within the lag limits).")
        each { routes, index, labels in
            out.sample(labels: labels, value: routes.state.mayServeRead(index, after: nil, now: now) ? 1 : 0)
        }
        out.family("sluice_replica_lag_bytes", type: .gauge, help: "WAL bytes a standby is behind the primary.")
        each { routes, index, labels in
            if let lag = routes.state.backends[index].lagBytes { out.sample(labels: labels, value: lag) }
        }
        out.family(
            "sluice_replica_lag_seconds", type: .gauge,
            help: "How long ago the primary passed the standby's replay position (0 when it has replayed all).")
        each { routes, index, labels in
            if let lag = routes.state.backends[index].lagSeconds { out.sample(labels: labels, value: lag) }
        }
        out.family("sluice_routed_reads_total", type: .counter, help: "Units of work routed to the backend as reads.")
        each { routes, index, labels in out.sample(labels: labels, value: routes.reads[index]) }
        out.family("sluice_routed_writes_total", type: .counter, help: "Units of work routed to the backend as writes.")
        each { routes, index, labels in out.sample(labels: labels, value: routes.writes[index]) }
        out.family(
            "sluice_fallback_reads_total", type: .counter,
            help: "Reads the primary served because no standby could (down, banned, lagging, behind a client's write).")
        for routes in databases { out.sample(labels: [("database", routes.name)], value: routes.fallbackReads) }
    }

    /// The pools in the order every view lists them: by database, then user.
    func sortedPools() -> [Pool] {
        pools.values.sorted {
            ($0.key.database, $0.key.user, $0.key.backend) < ($1.key.database, $1.key.user, $1.key.backend)
        }
    }

    /// Each pool's connections in a snapshot.
    func connectionsByPool(_ snapshot: AdminSnapshot) -> [PoolKey: [ConnectionSnapshot]] {
        var byPool: [PoolKey: [ConnectionSnapshot]] = [:]
        for connection in snapshot.connections {
            if let key = connection.pool { byPool[key, default: []].append(connection) }
        }
        return byPool
    }

    /// How long the longest-waiting of these clients has waited; 0 when none waits.
    func oldestWait(_ members: [ConnectionSnapshot]) -> Double {
        members.compactMap(\.waitingSince).min().map { max(0, coarseNow - $0) } ?? 0
    }
}
