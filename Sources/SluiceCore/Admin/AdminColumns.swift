import Glibc

/// The columns of each admin console view. PgBouncer's views use PgBouncer 1.25's names, order and types
/// exactly, so that exporters and dashboards written for PgBouncer read Sluice unchanged; each format string
/// reads like the one in PgBouncer's source (`s` text, `i` int4, `q` int8, `N` numeric, `T` timestamp).
public enum AdminColumns {
    public static let pools = AdminResult.columns(
        [
            "database", "user", "cl_active", "cl_waiting", "cl_active_cancel_req", "cl_waiting_cancel_req",
            "sv_active", "sv_active_cancel", "sv_being_canceled", "sv_idle", "sv_used", "sv_tested", "sv_login",
            "maxwait", "maxwait_us", "pool_mode", "load_balance_hosts",
        ], format: "ssiiiiiiiiiiiiiss")

    /// `SHOW CLIENTS` and `SHOW SERVERS`.
    public static let connections = AdminResult.columns(
        [
            "type", "user", "database", "replication", "state", "addr", "port", "local_addr", "local_port",
            "connect_time", "request_time", "wait", "wait_us", "close_needed", "ptr", "link", "remote_pid", "tls",
            "application_name", "prepared_statements", "id",
        ], format: "ssssssisiTTiiississii")

    /// `SHOW SOCKETS` and `SHOW ACTIVE_SOCKETS`: the connection columns and the buffer positions.
    public static let sockets =
        connections
        + AdminResult.columns(
            ["recv_pos", "pkt_pos", "pkt_remain", "send_pos", "send_remain", "pkt_avail", "send_avail"],
            format: "iiiiiii")

    public static let databases = AdminResult.columns(
        [
            "name", "host", "port", "database", "force_user", "pool_size", "min_pool_size", "reserve_pool_size",
            "server_lifetime", "pool_mode", "load_balance_hosts", "max_connections", "current_connections",
            "max_client_connections", "current_client_connections", "paused", "disabled",
        ], format: "ssissiiiissiiiiii")

    public static let users = AdminResult.columns(
        [
            "name", "pool_size", "reserve_pool_size", "pool_mode", "max_user_connections", "current_connections",
            "max_user_client_connections", "current_client_connections",
        ], format: "ssssiiii")

    /// The statistics PgBouncer keeps per database, by their `SHOW STATS_TOTALS` names.
    public static let statNames = [
        "server_assignment_count", "xact_count", "query_count", "bytes_received", "bytes_sent", "xact_time",
        "query_time", "wait_time", "client_parse_count", "server_parse_count", "bind_count", "client_login_count",
    ]

    /// `SHOW STATS`: totals then averages, with PgBouncer's historical names for the byte columns.
    public static let stats: [AdminResult.Column] = {
        let totals = statNames.map { name in
            switch name {
            case "bytes_received": "total_received"
            case "bytes_sent": "total_sent"
            default: "total_" + name
            }
        }
        let averages = statNames.map { name in
            switch name {
            case "bytes_received": "avg_recv"
            case "bytes_sent": "avg_sent"
            default: "avg_" + name
            }
        }
        return [AdminResult.Column("database", .text)] + (totals + averages).map { AdminResult.Column($0, .numeric) }
    }()

    public static let statsTotals =
        [AdminResult.Column("database", .text)] + statNames.map { AdminResult.Column($0, .numeric) }

    /// `SHOW STATS_AVERAGES`: the first eight without a prefix, the four counts with `avg_`, as PgBouncer names them.
    public static let statsAverages =
        [AdminResult.Column("database", .text)]
        + statNames.enumerated().map { index, name in
            AdminResult.Column(index < 8 ? name : "avg_" + name, .numeric)
        }

    public static let nameValue = AdminResult.columns(["name", "value"], format: "sN")
    public static let lists = AdminResult.columns(["list", "items"], format: "si")
    public static let mem = AdminResult.columns(["name", "size", "used", "free", "memtotal"], format: "siiii")
    public static let config = AdminResult.columns(["key", "value", "default", "changeable"], format: "ssss")
    public static let state = AdminResult.columns(["key", "value"], format: "ss")
    public static let version = AdminResult.columns(["version"], format: "s")
    public static let peers = AdminResult.columns(["peer_id", "host", "port", "pool_size"], format: "isii")
    public static let peerPools = AdminResult.columns(
        ["peer_id", "cl_active_cancel_req", "cl_waiting_cancel_req", "sv_active_cancel", "sv_login"],
        format: "iiiii")
    public static let dnsHosts = AdminResult.columns(["hostname", "ttl", "addrs"], format: "sqs")
    public static let dnsZones = AdminResult.columns(["zonename", "serial", "count"], format: "sqi")

    /// Sluice's own: every server address it connects to, with what it knows of its health.
    public static let backends = AdminResult.columns(
        [
            "host", "port", "role", "state", "lag_ms", "databases", "sv_active", "sv_idle", "sv_login", "sv_total",
            "last_check", "last_error", "lag_bytes", "reads", "writes",
        ], format: "sisssqiiiiTsqqq")

    /// Sluice's own: latency percentiles per pool over the last `stats_period`, in microseconds.
    public static let latency = AdminResult.columns(
        [
            "database", "user", "query_count", "query_p50_us", "query_p95_us", "query_p99_us", "xact_count",
            "xact_p50_us", "xact_p95_us", "xact_p99_us", "wait_count", "wait_p50_us", "wait_p95_us", "wait_p99_us",
        ], format: "ssqqqqqqqqqqqq")

    /// A time as PgBouncer's `T` columns write it: `YYYY-MM-DD HH:MM:SS TZ`, local time, whole seconds.
    public static func timestamp(unixSeconds: Double) -> String {
        var seconds = time_t(unixSeconds.rounded(.down))
        var parts = tm()
        guard localtime_r(&seconds, &parts) != nil else { return "" }
        var text = [CChar](repeating: 0, count: 64)
        let count = strftime(&text, text.count, "%Y-%m-%d %H:%M:%S %Z", &parts)
        return String(decoding: text[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// What the `ptr` and `link` columns show for a connection: PgBouncer prints addresses there; Sluice prints
    /// the connection id in hexadecimal, which is as unique and says nothing about memory.
    public static func pointer(_ id: Int) -> String { "0x" + String(id, radix: 16) }
}
