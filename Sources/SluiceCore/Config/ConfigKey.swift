/// One setting of the main section (`[sluice]`, alias `[pgbouncer]`): its PgBouncer default and
/// what Sluice does with it.
///
/// ``ConfigKey/all`` is the single list of every setting Sluice knows. The loader, the
/// documentation test and, later, `SHOW CONFIG` all read it, so they cannot disagree.
public struct ConfigKey: Sendable, Equatable {
    /// What Sluice does when a file sets the key.
    public enum Kind: Sendable, Equatable {
        /// Parsed into ``SluiceConfig`` and honoured.
        case implemented
        /// Not implemented, and ignoring it changes neither security nor limits: Sluice accepts
        /// any valid value with one warning.
        case cosmetic
        /// Not implemented, and ignoring it would make Sluice weaker (security, limits,
        /// timeouts): accepted with a warning only at its default value, refused otherwise.
        case restrictive
    }

    /// How the value is written; also used to compare a value with the default.
    public enum ValueType: Sendable, Equatable {
        /// Integer in C `strtol` base-0 syntax: `0x` hex, leading-zero octal, or decimal.
        case integer
        /// Seconds, possibly fractional.
        case seconds
        /// `0`/`1` (PgBouncer writes booleans as integers); `on`/`off`, `true`/`false`,
        /// `yes`/`no` are accepted too.
        case boolean
        /// Free text, taken verbatim after trimming.
        case text
        /// Comma-separated list.
        case list
        /// One of a fixed set of words, compared case-insensitively.
        case choice([String])
    }

    /// The setting's name, lowercase.
    public var name: String
    /// PgBouncer's default, written as PgBouncer shows it; empty for "not set".
    public var defaultValue: String
    /// The default when Sluice runs without a file (sidecar mode), when it differs.
    public var sidecarDefault: String?
    /// What Sluice does with the key.
    public var kind: Kind
    /// Whether a reload can change it (PgBouncer's `changeable` column in `SHOW CONFIG`).
    public var reloadable: Bool
    /// How the value is written.
    public var valueType: ValueType
    /// Values other than the default that a restrictive key may take without making Sluice
    /// weaker.
    public var harmlessValues: [String]
    /// Whether the value may hold a secret and must not be echoed in messages.
    public var isSensitive: Bool
    /// Whether PgBouncer lacks the key (it is a Sluice extension).
    public var isSluiceOnly: Bool

    init(
        _ name: String, _ defaultValue: String, _ kind: Kind, _ valueType: ValueType, reloadable: Bool = true,
        sidecarDefault: String? = nil, harmlessValues: [String] = [], isSensitive: Bool = false,
        isSluiceOnly: Bool = false
    ) {
        self.name = name
        self.defaultValue = defaultValue
        self.sidecarDefault = sidecarDefault
        self.kind = kind
        self.reloadable = reloadable
        self.valueType = valueType
        self.harmlessValues = harmlessValues
        self.isSensitive = isSensitive
        self.isSluiceOnly = isSluiceOnly
    }

    /// Looks a key up by name, case-insensitively.
    public static func named(_ name: String) -> ConfigKey? {
        index[name.lowercased()]
    }

    private static let index: [String: ConfigKey] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })

    private static let sslModes = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]

    /// Every main-section key, alphabetically: PgBouncer 1.25's keys, the two that PgBouncer's
    /// development branch adds (`login_notify_message`, `pool_idle_timeout`), and Sluice's own.
    public static let all: [ConfigKey] = [
        ConfigKey("admin_users", "", .implemented, .list),
        ConfigKey("application_name_add_host", "0", .implemented, .boolean),
        ConfigKey("auth_dbname", "", .implemented, .text),
        ConfigKey("auth_file", "", .implemented, .text),
        ConfigKey("auth_hba_file", "", .implemented, .text),
        ConfigKey("auth_ident_file", "", .restrictive, .text),
        ConfigKey("auth_ldap_options", "", .restrictive, .text, isSensitive: true),
        ConfigKey("auth_query", AuthQuery.pgbouncerDefault, .implemented, .text),
        ConfigKey("auth_query_cache_ttl", "15", .implemented, .seconds, isSluiceOnly: true),
        ConfigKey(
            "auth_type", "md5", .implemented, .choice(AuthType.allCases.map(\.rawValue)),
            sidecarDefault: AuthType.scramSHA256.rawValue),
        ConfigKey("auth_user", "", .implemented, .text),
        ConfigKey("autodb_idle_timeout", "3600", .implemented, .seconds),
        ConfigKey("cancel_wait_timeout", "10", .implemented, .seconds),
        ConfigKey("client_idle_timeout", "0", .implemented, .seconds),
        ConfigKey("client_login_timeout", "60", .implemented, .seconds),
        ConfigKey("client_tls13_ciphers", "", .implemented, .text),
        ConfigKey("client_tls_ca_file", "", .implemented, .text),
        ConfigKey("client_tls_cert_file", "", .implemented, .text),
        ConfigKey("client_tls_ciphers", "default", .implemented, .text),
        ConfigKey("client_tls_dheparams", "auto", .implemented, .text),
        ConfigKey("client_tls_ecdhcurve", "auto", .implemented, .text),
        ConfigKey("client_tls_key_file", "", .implemented, .text),
        ConfigKey("client_tls_protocols", "secure", .implemented, .text),
        ConfigKey("client_tls_sslmode", "disable", .implemented, .choice(sslModes)),
        ConfigKey("conffile", "", .cosmetic, .text),
        ConfigKey("default_pool_size", "20", .implemented, .integer),
        ConfigKey("disable_pqexec", "0", .restrictive, .boolean, reloadable: false),
        ConfigKey("dns_max_ttl", "15", .implemented, .seconds),
        ConfigKey("dns_nxdomain_ttl", "15", .implemented, .seconds),
        ConfigKey("dns_zone_check_period", "0", .cosmetic, .seconds),
        ConfigKey("health_check_period", "10", .implemented, .seconds, isSluiceOnly: true),
        ConfigKey("idle_transaction_timeout", "0", .implemented, .seconds),
        ConfigKey("ignore_startup_parameters", "", .implemented, .list),
        ConfigKey("job_name", "pgbouncer", .cosmetic, .text, reloadable: false),
        ConfigKey("listen_addr", "", .implemented, .list, reloadable: false, sidecarDefault: "127.0.0.1"),
        // PgBouncer's default is 128; a sidecar's clients reconnecting all at once need more room.
        ConfigKey("listen_backlog", "4096", .implemented, .integer, reloadable: false),
        ConfigKey("listen_port", "6432", .implemented, .integer, reloadable: false),
        ConfigKey("log_connections", "1", .implemented, .boolean),
        ConfigKey("log_disconnections", "1", .implemented, .boolean),
        ConfigKey("log_pooler_errors", "1", .implemented, .boolean),
        ConfigKey("log_stats", "1", .implemented, .boolean),
        ConfigKey("logfile", "", .implemented, .text),
        ConfigKey("login_failure_exempt_loopback", "1", .implemented, .boolean, isSluiceOnly: true),
        ConfigKey("login_failure_limit", "10", .implemented, .integer, isSluiceOnly: true),
        ConfigKey("login_failure_window", "60", .implemented, .seconds, isSluiceOnly: true),
        ConfigKey("login_notify_message", "", .cosmetic, .text),
        ConfigKey("max_client_conn", "100", .implemented, .integer, sidecarDefault: "10000"),
        ConfigKey("max_client_prepared_statements", "1000", .implemented, .integer, isSluiceOnly: true),
        ConfigKey("max_db_client_connections", "0", .implemented, .integer),
        ConfigKey("max_db_connections", "0", .implemented, .integer),
        ConfigKey("max_packet_size", "2147483647", .implemented, .integer),
        ConfigKey("max_prepared_statements", "200", .implemented, .integer),
        ConfigKey("max_user_client_connections", "0", .implemented, .integer),
        ConfigKey("max_user_connections", "0", .implemented, .integer),
        ConfigKey("min_pool_size", "0", .implemented, .integer),
        ConfigKey("peer_id", "0", .restrictive, .integer),
        ConfigKey("pidfile", "", .implemented, .text, reloadable: false),
        ConfigKey("pkt_buf", "4096", .implemented, .integer, reloadable: false),
        ConfigKey("pool_idle_timeout", "0", .implemented, .seconds),
        ConfigKey(
            "pool_mode", "session", .implemented, .choice(PoolMode.allCases.map(\.rawValue)),
            sidecarDefault: PoolMode.transaction.rawValue),
        ConfigKey("primary_reads", "0", .implemented, .boolean, isSluiceOnly: true),
        ConfigKey("primary_wait_timeout", "10", .implemented, .seconds, isSluiceOnly: true),
        ConfigKey("query_timeout", "0", .implemented, .seconds),
        ConfigKey("query_wait_notify", "5", .implemented, .seconds),
        ConfigKey("query_wait_timeout", "120", .implemented, .seconds),
        ConfigKey(
            "read_your_writes", "connection", .implemented, .choice(["off", "connection", "pool"]), isSluiceOnly: true),
        ConfigKey("replica_ban_time", "30", .implemented, .seconds, isSluiceOnly: true),
        ConfigKey(
            "replica_load_balance", "round_robin", .implemented, .choice(["round_robin", "least_outstanding"]),
            isSluiceOnly: true),
        ConfigKey("replica_max_lag_bytes", "16777216", .implemented, .integer, isSluiceOnly: true),
        ConfigKey("replica_max_lag_seconds", "10", .implemented, .seconds, isSluiceOnly: true),
        ConfigKey("reserve_pool_size", "0", .implemented, .integer),
        ConfigKey("reserve_pool_timeout", "5", .implemented, .seconds),
        ConfigKey("resolv_conf", "", .cosmetic, .text, reloadable: false),
        ConfigKey("routing_check_period", "1", .implemented, .seconds, isSluiceOnly: true),
        ConfigKey("routing_safe_functions", "", .implemented, .list, isSluiceOnly: true),
        ConfigKey("routing_unsafe_functions", "", .implemented, .list, isSluiceOnly: true),
        ConfigKey("sbuf_loopcnt", "5", .cosmetic, .integer),
        ConfigKey("scram_iterations", "4096", .implemented, .integer),
        ConfigKey("server_check_delay", "30", .implemented, .seconds),
        ConfigKey("server_check_query", "<empty>", .implemented, .text),
        ConfigKey("server_connect_timeout", "15", .implemented, .seconds),
        ConfigKey("server_fast_close", "0", .implemented, .boolean),
        ConfigKey("server_idle_timeout", "600", .implemented, .seconds),
        ConfigKey("server_lifetime", "3600", .implemented, .seconds),
        ConfigKey("server_login_retry", "15", .implemented, .seconds),
        ConfigKey("server_reset_query", "DISCARD ALL", .implemented, .text),
        ConfigKey("server_reset_query_always", "0", .implemented, .boolean),
        ConfigKey("server_round_robin", "0", .implemented, .boolean),
        ConfigKey("server_tls13_ciphers", "", .implemented, .text),
        ConfigKey("server_tls_ca_file", "", .implemented, .text),
        ConfigKey("server_tls_cert_file", "", .implemented, .text),
        ConfigKey("server_tls_ciphers", "default", .implemented, .text),
        ConfigKey("server_tls_key_file", "", .implemented, .text),
        ConfigKey("server_tls_protocols", "secure", .implemented, .text),
        ConfigKey("server_tls_sslmode", "prefer", .implemented, .choice(sslModes)),
        ConfigKey("service_name", "", .cosmetic, .text, reloadable: false),
        ConfigKey("so_reuseport", "0", .cosmetic, .boolean, reloadable: false),
        ConfigKey("stats_auth_token", "", .implemented, .text, isSensitive: true, isSluiceOnly: true),
        ConfigKey("stats_listen_addr", "127.0.0.1", .implemented, .text, reloadable: false, isSluiceOnly: true),
        ConfigKey("stats_listen_port", "9632", .implemented, .integer, reloadable: false, isSluiceOnly: true),
        ConfigKey("stats_period", "60", .implemented, .integer),
        ConfigKey("stats_users", "", .implemented, .list),
        ConfigKey("suspend_timeout", "10", .cosmetic, .seconds),
        ConfigKey("syslog", "0", .cosmetic, .boolean),
        ConfigKey("syslog_facility", "daemon", .cosmetic, .text),
        ConfigKey("syslog_ident", "pgbouncer", .cosmetic, .text),
        ConfigKey("tcp_defer_accept", "1", .cosmetic, .integer),
        ConfigKey("tcp_keepalive", "1", .implemented, .boolean),
        ConfigKey("tcp_keepcnt", "0", .implemented, .integer),
        ConfigKey("tcp_keepidle", "0", .implemented, .integer),
        ConfigKey("tcp_keepintvl", "0", .implemented, .integer),
        ConfigKey("tcp_socket_buffer", "0", .cosmetic, .integer),
        ConfigKey("tcp_user_timeout", "0", .implemented, .integer),
        ConfigKey("track_extra_parameters", "IntervalStyle", .implemented, .list, reloadable: false),
        ConfigKey("transaction_timeout", "0", .implemented, .seconds),
        ConfigKey("unix_socket_dir", "/tmp", .implemented, .text, reloadable: false, sidecarDefault: ""),
        ConfigKey("unix_socket_group", "", .implemented, .text, reloadable: false),
        ConfigKey("unix_socket_mode", "0777", .implemented, .integer, reloadable: false),
        ConfigKey("user", "", .restrictive, .text, reloadable: false),
        ConfigKey("verbose", "0", .cosmetic, .integer),
        ConfigKey("workers", "auto", .implemented, .text, reloadable: false, isSluiceOnly: true),
    ]
}
