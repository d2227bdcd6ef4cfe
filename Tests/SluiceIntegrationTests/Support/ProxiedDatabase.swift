import Foundation

/// The setup most tests share: a fresh role and database on the test cluster, with Sluice in front.
///
/// The database keeps its real name in Sluice's `[databases]`; the userlist holds the role's
/// password in plain text unless a test says otherwise. Call `stop()` at the end of the test.
final class ProxiedDatabase {
    let cluster: TestCluster
    let role: (name: String, password: String)
    let database: String
    let sluice: SluiceProcess

    /// - Parameters:
    ///   - settings: keys for the `[sluice]` section, over `TestConfig.ini`'s defaults; `@ROLE@` in a value
    ///     stands for the role's name (for `admin_users` and `stats_users`).
    ///   - poolSize: the database's `pool_size`.
    ///   - connectionLimit: the role's `CONNECTION LIMIT` on PostgreSQL, to prove the pool's bound.
    ///   - databaseExtra: more `key=value` pairs for the `[databases]` entry.
    init(
        settings: [String: String] = [:],
        poolSize: Int = 5,
        connectionLimit: Int? = nil,
        databaseExtra: [String: String] = [:]
    ) throws {
        let cluster = try TestCluster.current()
        let role = try cluster.makeRole(prefix: "proxied", connectionLimit: connectionLimit)
        let database = try cluster.makeDatabase(owner: role.name)
        let entry = TestConfig.database(
            cluster, dbname: database,
            extra: databaseExtra.merging(["pool_size": String(poolSize)]) { old, _ in old })
        sluice = try SluiceProcess(
            config: { port in
                TestConfig.ini(
                    port: port, databases: [database: entry],
                    settings: settings.mapValues { $0.replacingOccurrences(of: "@ROLE@", with: role.name) })
            },
            userlist: TestConfig.userlist([(role.name, role.password)]))
        self.cluster = cluster
        self.role = role
        self.database = database
    }

    /// A libpq connection through Sluice as the role (its real password unless one is given).
    func connect(
        password: String? = nil, extra: [String: String] = [:], timeout: Duration = .seconds(10)
    ) throws -> PQConn {
        try PQConn.connect(
            port: sluice.port, user: role.name, password: password ?? role.password, dbname: database, extra: extra,
            timeout: timeout)
    }

    /// A superuser connection straight to the database on PostgreSQL, bypassing Sluice.
    func directSuperuser() throws -> PQConn {
        try cluster.superuserConnection(database: database)
    }

    /// Process ids of the server connections Sluice holds for the role right now.
    func serverPIDs() throws -> [Int32] {
        try cluster.backendPIDs(of: role.name)
    }

    func stop() {
        sluice.stop()
    }
}
