/// One `[databases]` entry: where a client-visible database name leads and how its pools behave.
///
/// Every optional property is nil when the entry does not set it, so the proxy can fall back to the
/// user's or the global setting in PgBouncer's order (user, then database, then global).
public struct DatabaseConfig: Sendable, Equatable, CustomStringConvertible {
    /// The name clients connect to; `*` is the fallback entry used for any other name.
    public var name: String
    /// `host`: server host name, IP address, comma-separated list, or a Unix socket directory
    /// (leading `/`). Nil means PgBouncer's Unix socket default.
    public var host: String?
    /// `port`: server port; nil means 5432.
    public var port: Int?
    /// `dbname`: database name on the server; nil means the client-side name.
    public var dbname: String?
    /// `user`: forced server user. When set, every client shares one pool logged in as this user.
    public var user: String?
    /// `password`: password for the forced user; nil means look the user up in auth_file.
    public var password: String?
    /// `auth_user`: user whose credentials run `auth_query`. Parsed; the proxy decides support.
    public var authUser: String?
    /// `auth_query`: query that looks up unknown users' secrets. Parsed; the proxy decides support.
    public var authQuery: String?
    /// `auth_dbname`: database in which `auth_query` runs.
    public var authDBName: String?
    /// `pool_size`: maximum server connections per pool of this database.
    public var poolSize: Int?
    /// `min_pool_size`: keep at least this many server connections open.
    public var minPoolSize: Int?
    /// `reserve_pool_size` (alias `reserve_pool`): extra connections for clients that waited too long.
    public var reservePoolSize: Int?
    /// `pool_mode`: pooling mode for this database.
    public var poolMode: PoolMode?
    /// `max_db_connections`: cap on server connections across all pools of this database.
    public var maxDBConnections: Int?
    /// `max_db_client_connections`: cap on client connections to this database.
    public var maxDBClientConnections: Int?
    /// `server_lifetime`: seconds after which an unused server connection is closed.
    public var serverLifetime: Double?
    /// `query_wait_timeout`: seconds a client may wait for a server connection.
    public var queryWaitTimeout: Double?
    /// `load_balance_hosts`: how a host list is walked.
    public var loadBalanceHosts: LoadBalanceHosts?
    /// `connect_query`: run once on each new server connection before clients use it.
    public var connectQuery: String?
    /// `client_encoding`: startup parameter sent to the server.
    public var clientEncoding: String?
    /// `datestyle`: startup parameter sent to the server.
    public var dateStyle: String?
    /// `timezone`: startup parameter sent to the server.
    public var timeZone: String?
    /// `application_name`: startup parameter sent to the server.
    public var applicationName: String?
    /// `replicas`: streaming standbys of `host` that serve reads (Sluice only; see docs/routing.md).
    public var replicas: [BackendAddress] = []
    /// `routing`: whether reads go to the replicas; nil means yes when there are any.
    public var routing: Bool?
    /// `replica_load_balance`, `primary_reads`, `replica_max_lag_bytes`, `replica_max_lag_seconds`,
    /// `read_your_writes`: per-database overrides of the main section's routing settings.
    public var replicaLoadBalance: ReplicaLoadBalance?
    public var primaryReads: Bool?
    public var replicaMaxLagBytes: UInt64?
    public var replicaMaxLagSeconds: Double?
    public var readYourWrites: ReadYourWrites?

    /// Whether the entry routes reads to replicas.
    public var routesReads: Bool { !replicas.isEmpty && routing != false }

    /// An entry with only a name; everything else inherits.
    public init(name: String) {
        self.name = name
    }

    /// The database name to send to the server for a client that asked for `requested`.
    public func serverDatabaseName(requested: String) -> String {
        dbname ?? requested
    }

    /// Shows where the entry leads without the password.
    public var description: String {
        let target = "\(host ?? "<unix socket>"):\(port ?? 5432)/\(dbname ?? name)"
        let forced = user.map { " user=\($0)" } ?? ""
        let secret = password == nil ? "" : " password=<redacted>"
        return "DatabaseConfig(\(name) -> \(target)\(forced)\(secret))"
    }
}

/// One `[users]` entry: per-user overrides of pool settings.
public struct UserConfig: Sendable, Equatable {
    /// The client user name the settings apply to.
    public var name: String
    /// `pool_mode`: pooling mode for this user's pools; wins over the database's.
    public var poolMode: PoolMode?
    /// `pool_size`: maximum server connections per pool of this user; wins over the database's.
    public var poolSize: Int?
    /// `query_wait_timeout`: seconds this user's clients may wait for a server connection.
    public var queryWaitTimeout: Double?
    /// `query_timeout` for this user's clients (see ``ClientTimeouts``).
    public var queryTimeout: Double?
    /// `idle_transaction_timeout` for this user's clients.
    public var idleTransactionTimeout: Double?
    /// `transaction_timeout` for this user's clients.
    public var transactionTimeout: Double?
    /// `client_idle_timeout` for this user's clients.
    public var clientIdleTimeout: Double?
    /// `max_user_connections`: cap on this user's server connections across databases.
    public var maxUserConnections: Int?
    /// `max_user_client_connections`: cap on clients logged in as this user.
    public var maxUserClientConnections: Int?
    /// `reserve_pool_size`: extra servers for this user's pools; wins over the database's.
    public var reservePoolSize: Int?

    /// An entry with only a name; everything else inherits.
    public init(name: String) {
        self.name = name
    }
}
