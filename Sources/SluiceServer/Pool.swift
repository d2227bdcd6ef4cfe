import SluiceCore
import Synchronization

/// Identifies a pool: the database name a client asked for, the user servers log in as, and, for a database
/// that routes reads, which of its backends the servers connect to (0 for the entry's `host`, then its
/// `replicas` in order).
struct PoolKey: Hashable, CustomStringConvertible {
    var database: String
    var user: String
    var backend = 0
    var description: String { backend == 0 ? "\(database)/\(user)" : "\(database)/\(user)/backend\(backend)" }
}

/// The server connections of one (database, user) pair to one backend, and the clients waiting for them.
/// Shared by all loops: everything but `mode` is used with the registry's lock held.
final class Pool {
    let key: PoolKey
    /// Where servers are opened; a reload that changes them marks existing servers for closing.
    var host: String
    var port: Int
    /// The database name on the server, which may differ from the name clients use.
    var serverDatabase: String
    let serverUser: String
    var credential: ServerCredential
    /// Read on every ReadyForQuery without the lock, so kept in an atomic; only a reload changes it.
    private let modeIndex: Atomic<Int>
    var mode: PoolMode {
        get { PoolMode.allCases[modeIndex.load(ordering: .relaxed)] }
        set { modeIndex.store(PoolMode.allCases.firstIndex(of: newValue)!, ordering: .relaxed) }
    }
    /// Clients, on any loop, that use this pool.
    var clientCount = 0
    /// Since when the pool has had no client and no server (`autodb_idle_timeout`, `pool_idle_timeout`).
    var unusedSince: Double?
    /// The console paused or killed the pool's database: clients wait, servers close once released.
    var isPaused = false
    /// Seconds a client may wait for a server (`query_wait_timeout`, per user, database or global).
    var queryWaitTimeout: Double
    /// Seconds after which an idle server is closed (`server_lifetime`, per database or global).
    var serverLifetime: Double
    var machine: PoolStateMachine
    /// ParameterStatus values of the first server login, shown to clients as their welcome.
    var welcome: [(name: String, value: String)]?
    var servers: [Int: ServerConnection] = [:]
    /// Totals since the pool was created, all loops together.
    var stats = PoolStats()
    /// The totals when the current `stats_period` began, and the last whole period (its first and last
    /// totals): the console's averages and percentiles describe that period, as PgBouncer's do.
    var periodStart = PoolStats()
    var lastPeriod: (from: PoolStats, to: PoolStats)?
    /// Latency histograms since the pool was created, at the start of the current period, and of the last
    /// whole period.
    var latency = PoolLatency()
    var periodStartLatency = PoolLatency()
    var lastPeriodLatency = PoolLatency()
    /// A pool of its own for one database's health checks: never in the registry, never lent.
    var isHealthCheck = false
    /// For the routing monitor's own connection to one backend: the database it watches and the backend.
    var monitor: (routes: RoutedDatabase, backend: Int)?
    /// The database as per-pool views and metrics name it: a routed database's pools on other backends than
    /// the entry's `host` carry their address, so that (database, user) stays unique per row and series.
    var shownDatabase: String { key.backend == 0 ? key.database : "\(key.database)@\(host):\(port)" }
    /// For the connection that runs `auth_query` (Proxy+AuthQuery.swift).
    var authLookup: AuthLookup?
    /// Sluice's own connections (health checks, the routing monitor, look-ups): outside the registry, no
    /// slot, no cap.
    var isOutsidePools: Bool { isHealthCheck || monitor != nil || authLookup != nil }
    /// For a routed database's pool on its entry's `host`: the pools of the same database and user on each
    /// backend, by backend index (made on first use).
    var backendPools: [Pool?] = []
    /// The routing state of the pool's database when it routes reads; nil otherwise.
    var routes: RoutedDatabase?
    let logger: Logger
    /// Server parameters the database entry asks for at login (client_encoding, datestyle, timezone, …).
    let startupParameters: [(String, String)]
    /// `max_db_connections` and `max_user_connections` as they apply to this pool (0 = no limit).
    var maxDBConnections = 0
    var maxUserConnections = 0
    /// The database forces one server user: PgBouncer keeps `min_pool_size` for such pools even
    /// without clients.
    var hasForcedUser = false
    /// The error of the last failed server login, repeated to clients turned away during
    /// `server_login_retry`.
    var lastLoginError: ErrorFields?

    init(
        key: PoolKey, host: String, port: Int, serverDatabase: String, serverUser: String,
        credential: ServerCredential, mode: PoolMode, size: Int, queryWaitTimeout: Double, serverLifetime: Double,
        startupParameters: [(String, String)], logger: Logger
    ) {
        self.queryWaitTimeout = queryWaitTimeout
        self.serverLifetime = serverLifetime
        self.key = key
        self.host = host
        self.port = port
        self.serverDatabase = serverDatabase
        self.serverUser = serverUser
        self.credential = credential
        self.modeIndex = Atomic(PoolMode.allCases.firstIndex(of: mode)!)
        self.machine = PoolStateMachine(maxServers: size)
        self.startupParameters = startupParameters
        self.logger = logger.with("db", key.database).with("user", key.user)
    }
}
