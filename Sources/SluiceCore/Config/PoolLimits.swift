/// Main-section settings that cap and shape pools, PgBouncer's defaults unless the file says otherwise.
///
/// Per-database and per-user values live in ``DatabaseConfig`` and ``UserConfig``; the resolve functions
/// below apply PgBouncer's precedence so the proxy asks one place.
public struct PoolLimits: Sendable, Equatable {
    /// `max_db_connections`: server connections across all pools of one database; 0 = no limit.
    public var maxDBConnections = 0
    /// `max_user_connections`: server connections across all pools of one user; 0 = no limit.
    public var maxUserConnections = 0
    /// `max_db_client_connections`: clients of one database; 0 = no limit.
    public var maxDBClientConnections = 0
    /// `max_user_client_connections`: clients logged in as one user; 0 = no limit.
    public var maxUserClientConnections = 0
    /// `min_pool_size`: servers kept open per pool that has clients or a forced user.
    public var minPoolSize = 0
    /// `reserve_pool_size`: extra servers per pool for clients that waited `reservePoolTimeout`.
    public var reservePoolSize = 0
    /// `reserve_pool_timeout`: seconds; 0 disables the reserve, as in PgBouncer.
    public var reservePoolTimeout: Double = 5
    /// `server_round_robin`: lend the longest-idle server first instead of the most recent.
    public var serverRoundRobin = false

    public init() {}

    /// A database's server cap: its own `max_db_connections` when positive, else the global one.
    public func maxDBConnections(_ database: DatabaseConfig?) -> Int {
        if let own = database?.maxDBConnections, own > 0 { return own }
        return maxDBConnections
    }

    /// A database's client cap: its own `max_db_client_connections` when positive, else the global one.
    public func maxDBClientConnections(_ database: DatabaseConfig?) -> Int {
        if let own = database?.maxDBClientConnections, own > 0 { return own }
        return maxDBClientConnections
    }

    /// A user's server cap: the `[users]` value when positive, else the global one.
    public func maxUserConnections(_ user: UserConfig?) -> Int {
        if let own = user?.maxUserConnections, own > 0 { return own }
        return maxUserConnections
    }

    /// A user's client cap: the `[users]` value when positive, else the global one.
    public func maxUserClientConnections(_ user: UserConfig?) -> Int {
        if let own = user?.maxUserClientConnections, own > 0 { return own }
        return maxUserClientConnections
    }

    /// The reserve of a pool: the user's, then the database's, then the global value.
    public func reservePoolSize(database: DatabaseConfig?, user: UserConfig?) -> Int {
        user?.reservePoolSize ?? database?.reservePoolSize ?? reservePoolSize
    }

    /// The minimum of a pool: the database's, then the global value.
    public func minPoolSize(_ database: DatabaseConfig?) -> Int {
        database?.minPoolSize ?? minPoolSize
    }
}
