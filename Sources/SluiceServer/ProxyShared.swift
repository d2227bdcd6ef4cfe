import SluiceCore
import SluiceIO

/// What all event loops share: the pools and their state machines, the caps that span pools, cancel keys,
/// pause and shutdown, and the configuration the next reload replaces. Every field is read and written
/// with `lock` held. Connections are not shared: each belongs to one loop (see `Proxy`), and what one
/// loop wants done to another loop's connection it posts to that loop.
final class ProxyShared: @unchecked Sendable {
    let lock = RecursiveLock()
    var config: SluiceConfig
    /// The TLS contexts of `config`; each loop keeps a copy in `Proxy.tls`.
    var tls = TLSContexts()
    /// One per event loop; index 0 also owns the listeners and the signals.
    var workers: [Proxy] = []
    var pools: [PoolKey: Pool] = [:]
    /// Server slots and client counts behind the caps that span pools (Proxy+Limits.swift).
    var limitState = ProxyLimitState()
    /// Cancel keys Sluice issued, to the id of the client holding each.
    var cancelKeys: [Int32: Int] = [:]
    var paused = false
    /// Databases paused, disabled or killed from the admin console, by the name clients use.
    var pausedDatabases: Set<String> = []
    var disabledDatabases: Set<String> = []
    /// Admin console commands that answer once something has happened (PAUSE, WAIT_CLOSE).
    var adminWaits: [AdminWait] = []
    /// When the current `stats_period` began, and how long the last whole one lasted (Proxy+Stats.swift).
    var statsPeriodStartedAt: Double = 0
    var lastStatsPeriodLength: Double = 0
    /// Client authentications that failed, for `/metrics`.
    var loginFailures: UInt64 = 0
    /// `auth_query` look-ups under way, and the answers kept (Proxy+AuthQuery.swift).
    var authLookups: [AuthLookupKey: AuthLookup] = [:]
    var authCache = AuthQueryCache(ttl: 15)
    /// Failed logins per (address, user), for `login_failure_limit`.
    var loginThrottle = LoginThrottle(limit: 0, window: 60)
    /// Logins refused by the throttle, for `/metrics`.
    var throttledLogins: UInt64 = 0
    /// What the health checks found, by database name (Proxy+Health.swift).
    var health: [String: DatabaseHealth] = [:]
    /// The routing state of each database that routes reads to replicas (Proxy+Routing.swift).
    var routes: [String: RoutedDatabase] = [:]
    /// Reads the configuration again; nil until the loops run.
    var reload: (() throws -> SluiceConfig)?
    var shutdown: ShutdownMode?
    /// Clients connected to any loop, for `max_client_conn`.
    var clientCount = 0
    /// SCRAM verifiers computed from plain auth_file passwords, by user.
    var verifierCache: [String: (password: String, verifier: SCRAMVerifier)] = [:]
    /// The SCRAM keys each user's clients last proved: what Sluice logs in to PostgreSQL with for a user whose
    /// only secret is a verifier. Kept by user rather than only in pools, so they outlive a freed pool and
    /// serve health checks and `auth_query` connections.
    var provenKeys: [String: SCRAMKeys] = [:]
    /// The totals of pools freed by `autodb_idle_timeout` or `pool_idle_timeout`, so that `log_stats`, which
    /// sums every pool, never sees its total shrink.
    var freedPoolTotals = PoolStats()
    /// Next host index per pool, for `load_balance_hosts = round-robin`.
    var hostCursors: [PoolKey: Int] = [:]
    /// The loop the next accepted client goes to.
    var nextAcceptWorker = 0
    /// Per-process secret that makes mock SCRAM salts for unknown users stable but unguessable.
    let mockSecret: [UInt8] = {
        Crypto.prepare()
        return Crypto.randomBytes(count: 32)
    }()

    /// Per-process secret that extends clients' 4-byte cancel keys to the 32 bytes protocol 3.2 clients get
    /// (`CancelKey`), so the longer keys cost no memory per client.
    let cancelKeySecret = Crypto.randomBytes(count: 32)

    init(config: SluiceConfig) {
        self.config = config
        loginThrottle.limit = config.loginFailureLimit
        loginThrottle.window = config.loginFailureWindow
        authCache.ttl = config.authQueryCacheTTL
    }

    /// The loop that owns the client with this id: ids are handed out in strides, one residue per loop.
    func owner(ofClient id: Int) -> Proxy {
        workers[(id - 1) % workers.count]
    }
}
