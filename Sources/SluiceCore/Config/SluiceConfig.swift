/// Everything Sluice reads at startup: the main section, `[databases]`, `[users]`, the auth_file
/// and the environment overrides, already validated.
///
/// Times are seconds; 0 disables a timeout, as in PgBouncer. Built by
/// ``SluiceConfig/load(path:environment:)``; see docs/configuration.md for every key.
public struct SluiceConfig: Sendable, Equatable {
    /// `listen_addr`: addresses to accept TCP clients on; `*` means all.
    public var listenAddresses: [String]
    /// `listen_port`: TCP port to listen on.
    public var listenPort: Int
    /// `unix_socket_dir`: directory of the Unix-socket listener (`.s.PGSQL.<listen_port>`) and of
    /// servers whose entry sets no `host`. Nil when disabled (empty) or in sidecar mode.
    public var unixSocketDir: String?
    /// `unix_socket_mode`: permissions of the Unix-socket file.
    public var unixSocketMode: Int = 0o777
    /// `unix_socket_group`: group that owns the Unix-socket file; nil keeps the process's group.
    public var unixSocketGroup: String? = nil
    /// `tcp_keepalive`: turn TCP keepalive on for client and server sockets.
    public var tcpKeepalive: Bool = true
    /// `tcp_keepidle`: seconds before the first keepalive probe; 0 keeps the kernel's value.
    public var tcpKeepIdle: Int = 0
    /// `tcp_keepintvl`: seconds between keepalive probes; 0 keeps the kernel's value.
    public var tcpKeepInterval: Int = 0
    /// `tcp_keepcnt`: unanswered probes before a connection is dropped; 0 keeps the kernel's value.
    public var tcpKeepCount: Int = 0
    /// `tcp_user_timeout`: milliseconds sent data may stay unacknowledged; 0 keeps the kernel's value.
    public var tcpUserTimeout: Int = 0
    /// `client_tls_*`: TLS towards clients. Off unless `client_tls_sslmode` says otherwise.
    public var clientTLS = TLSSideConfig(sslmode: .disable)
    /// `client_tls_dheparams`: whether OpenSSL may offer finite-field DHE (TLS 1.2 and below).
    public var clientTLSAutoDH = true
    /// `server_tls_*`: TLS towards servers; `prefer` asks each server for it and takes a plain answer.
    public var serverTLS = TLSSideConfig(sslmode: .prefer)
    /// `dns_max_ttl`: seconds a resolved host name is reused.
    public var dnsMaxTTL: Double = 15
    /// `dns_nxdomain_ttl`: seconds a failed lookup is remembered.
    public var dnsNXDomainTTL: Double = 15
    /// `auth_type`: how clients authenticate. Only implemented methods load.
    public var authType: AuthType
    /// `login_failure_limit`: failed logins per (client address, user) within `login_failure_window`
    /// before that pair is refused for a window; 0 turns the throttle off.
    public var loginFailureLimit = 10
    public var loginFailureWindow: Double = 60
    /// `login_failure_exempt_loopback`: clients on loopback addresses and Unix sockets are never throttled
    /// (a sidecar's clients all come from 127.0.0.1, so one misconfigured worker would lock out the rest).
    public var loginFailureExemptLoopback = true
    /// `auth_user`: the user whose connection runs `auth_query` for users the auth_file does not list;
    /// nil turns look-ups off. A database's `auth_user=` overrides it.
    public var authUser: String?
    /// `auth_query`: the look-up, `$1` standing for the user name; it returns (name, secret).
    public var authQuery = AuthQuery.pgbouncerDefault
    /// `auth_dbname`: the `[databases]` entry whose server the look-up runs on; nil for the client's own.
    public var authDBName: String?
    /// `auth_query_cache_ttl`: seconds an answer of `auth_query` is reused; 0 asks at every login.
    public var authQueryCacheTTL: Double = 15
    /// `auth_hba_file`: path of the rules for `auth_type = hba`, resolved like `auth_file`.
    public var authHBAFile: String?
    /// The rules read from `auth_hba_file`.
    public var hba: HBAFile?
    /// `auth_file`: path of the user list, resolved against the config file's directory.
    public var authFile: String?
    /// The users from auth_file, plus the `DATABASE_URL` user.
    public var userList: UserList
    /// `pool_mode`: default pooling mode.
    public var poolMode: PoolMode
    /// `default_pool_size`: server connections per (database, user) pool; 0 means unlimited.
    public var defaultPoolSize: Int
    /// `max_client_conn`: client connections accepted in total.
    public var maxClientConn: Int
    /// `server_reset_query`: run when a server connection is released in session mode; empty disables.
    public var serverResetQuery: String
    /// `server_reset_query_always`: run the reset query in transaction mode too.
    public var serverResetQueryAlways: Bool
    /// `server_idle_timeout`: close server connections idle this long.
    public var serverIdleTimeout: Double
    /// `server_lifetime`: close unused server connections older than this.
    public var serverLifetime: Double
    /// `server_connect_timeout`: limit for connecting and logging in to a server.
    public var serverConnectTimeout: Double
    /// `server_login_retry`: after a failed server login, fail new clients fast for this long.
    public var serverLoginRetry: Double
    /// `query_wait_timeout`: how long a client may wait for a server connection.
    public var queryWaitTimeout: Double
    /// `client_login_timeout`: how long a client may take to log in.
    public var clientLoginTimeout: Double
    /// `max_packet_size`: largest protocol message accepted, in bytes.
    public var maxPacketSize: Int
    /// `pkt_buf`: per-connection buffer size, in bytes.
    public var pktBuf: Int
    /// `max_prepared_statements`: named statements kept prepared on each server in transaction and statement
    /// pooling; 0 turns statement tracking off.
    public var maxPreparedStatements = 200
    /// `max_client_prepared_statements`: named statements one client may hold at a time in transaction and
    /// statement pooling (Sluice keeps them); 0 for no limit.
    public var maxClientPreparedStatements = 1000
    /// `log_connections`: log each successful client login.
    public var logConnections: Bool
    /// `log_disconnections`: log each client disconnection with its reason.
    public var logDisconnections: Bool
    /// `log_pooler_errors`: log errors Sluice sends to clients.
    public var logPoolerErrors: Bool
    /// `log_stats`: log the averages of the last `stats_period` across all pools.
    public var logStats = true
    /// `stats_period`: seconds between those lines.
    public var statsPeriod = 60
    /// `admin_users`: users allowed every admin console command.
    public var adminUsers: [String]
    /// `stats_users`: users allowed read-only admin console commands.
    public var statsUsers: [String]
    /// `ignore_startup_parameters`: startup parameters accepted and dropped.
    public var ignoreStartupParameters: [String]
    /// `track_extra_parameters`: parameters kept per client beyond the built-in ones.
    public var trackExtraParameters: [String]
    /// `application_name_add_host`: append the client address to `application_name`.
    public var applicationNameAddHost: Bool
    /// `scram_iterations`: PBKDF2 rounds for verifiers made from plain passwords.
    public var scramIterations: Int
    /// `workers` (Sluice only): number of event-loop threads; 0 means one per CPU this process may use.
    public var workers: Int
    /// `pidfile`: where to write the process id; nil for none.
    public var pidfile: String?
    /// `logfile`: where to append the log besides stderr; nil for none.
    public var logfile: String?
    /// `[databases]` entries by client-visible name; the fallback entry is under `*`.
    public var databases: [String: DatabaseConfig]
    /// `[users]` entries by user name.
    public var users: [String: UserConfig]
    /// Accepted but unimplemented settings and other remarks, one per key, for the startup log.
    public var warnings: [ConfigDiagnostic]
    /// The main config file; nil when running from the environment only (sidecar mode).
    public var sourceFile: String?
    /// `query_timeout`, `idle_transaction_timeout`, `transaction_timeout`, `client_idle_timeout`.
    public var clientTimeouts = ClientTimeouts()
    /// `cancel_wait_timeout`: seconds a forwarded cancel request may take before it is dropped.
    public var cancelWaitTimeout: Double = 10
    /// `query_wait_notify`: a logged-in client queued this long for a server is told so by a NOTICE (0 = never).
    public var queryWaitNotify: Double = 5
    /// `autodb_idle_timeout`: a pool made through the `*` entry is freed once it has had no client and no
    /// server this long (0 = never).
    public var autodbIdleTimeout: Double = 3600
    /// `pool_idle_timeout`: any pool is freed once it has had no client and no server this long (0 = never).
    public var poolIdleTimeout: Double = 0
    /// `listen_backlog`: the `listen(2)` backlog of the client listeners (PgBouncer's default is 128).
    public var listenBacklog = 4096
    /// `server_check_delay`: a server idle longer than this is checked before it is lent (0 = always).
    public var serverCheckDelay: Double = 30
    /// `server_check_query`: the check; empty sends an empty query, the cheapest round trip.
    public var serverCheckQuery = ""
    /// `server_fast_close`: in session mode, close a server marked for reconnection at the end of its
    /// client's transaction instead of at the end of the session.
    public var serverFastClose = false
    /// Server and client caps, reserve and minimum pools, idle-server order (see ``PoolLimits``).
    public var poolLimits = PoolLimits()
    /// `stats_listen_addr`, `stats_listen_port`: the HTTP stats port (`/health`, `/metrics`, …); port 0 turns
    /// it off.
    public var statsListenAddress = "127.0.0.1"
    public var statsListenPort = 9632
    /// `stats_auth_token`: the bearer token `/stats` and `/metrics` require; empty for none.
    public var statsAuthToken = ""
    /// `health_check_period`: seconds between health checks of each database's server.
    public var healthCheckPeriod: Double = 10
    /// Read/write routing defaults (`replica_load_balance`, `primary_reads`, `replica_max_lag_bytes`,
    /// `replica_max_lag_seconds`, `replica_ban_time`); a database entry may override all but the ban time.
    public var routingPolicy = RoutingPolicy()
    /// `read_your_writes`: whose writes a client's reads must see (docs/routing.md).
    public var readYourWrites = ReadYourWrites.connection
    /// `routing_check_period`: seconds between the monitor's checks of each routed database's backends.
    public var routingCheckPeriod: Double = 1
    /// `primary_wait_timeout`: how long a write waits while no backend is known to be the primary.
    public var primaryWaitTimeout: Double = 10
    /// `routing_safe_functions`, `routing_unsafe_functions`: functions (`name` or `schema.name`) the operator
    /// declares harmless on a replica, or writes, whatever the catalog says.
    public var routingSafeFunctions: [String] = []
    public var routingUnsafeFunctions: [String] = []
    /// Main-section settings as the file, the environment or the console's `SET` wrote them, by key: what
    /// `SHOW CONFIG` shows (keys not here show their default).
    public var settingValues: [String: String] = [:]

    /// The settings of a file that sets nothing: PgBouncer's defaults.
    public static let pgbouncerDefaults = SluiceConfig(
        listenAddresses: [],
        listenPort: 6432,
        unixSocketDir: "/tmp",
        authType: .md5,
        authFile: nil,
        userList: UserList(),
        poolMode: .session,
        defaultPoolSize: 20,
        maxClientConn: 100,
        serverResetQuery: "DISCARD ALL",
        serverResetQueryAlways: false,
        serverIdleTimeout: 600,
        serverLifetime: 3600,
        serverConnectTimeout: 15,
        serverLoginRetry: 15,
        queryWaitTimeout: 120,
        clientLoginTimeout: 60,
        maxPacketSize: 2_147_483_647,
        pktBuf: 4096,
        logConnections: true,
        logDisconnections: true,
        logPoolerErrors: true,
        adminUsers: [],
        statsUsers: [],
        ignoreStartupParameters: [],
        trackExtraParameters: ["IntervalStyle"],
        applicationNameAddHost: false,
        scramIterations: SCRAMVerifier.defaultIterations,
        workers: 0,
        pidfile: nil,
        logfile: nil,
        databases: [:],
        users: [:],
        warnings: [],
        sourceFile: nil)

    /// The settings without a file, before `DATABASE_URL` is applied: a local sidecar in
    /// transaction mode that authenticates its one user by SCRAM.
    public static let sidecarDefaults: SluiceConfig = {
        var config = pgbouncerDefaults
        config.listenAddresses = ["127.0.0.1"]
        config.unixSocketDir = nil
        config.authType = .scramSHA256
        config.poolMode = .transaction
        config.maxClientConn = 10_000
        return config
    }()

    /// The entry a client asking for database `name` is routed by: the exact entry, else the
    /// `*` fallback renamed to `name` (its `dbname`, when unset, then defaults to `name`).
    public func database(named name: String) -> DatabaseConfig? {
        if let exact = databases[name] { return exact }
        guard var fallback = databases["*"] else { return nil }
        fallback.name = name
        return fallback
    }
}
