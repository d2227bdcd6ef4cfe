import Foundation

/// The PostgreSQL that `scripts/test` started: a primary and a streaming replica on loopback.
///
/// Tests share it and run in parallel, so everything they create gets a unique name. Nothing is
/// dropped afterwards: the cluster is thrown away after the run.
struct TestCluster: Sendable {
    var host: String
    var port: Int
    var replicaPort: Int?
    /// A superuser that logs in without a password on loopback.
    var superuser: String

    /// The cluster from the environment. Fails (never skips) when the tests were started without it.
    static func current() throws -> TestCluster {
        let environment = ProcessInfo.processInfo.environment
        guard let portText = environment["SLUICE_TEST_PGPORT"], let port = Int(portText) else {
            throw HarnessError(
                "SLUICE_TEST_PGPORT is not set: run the integration tests with scripts/test, "
                    + "which starts a throwaway PostgreSQL and points the tests at it")
        }
        return TestCluster(
            host: environment["SLUICE_TEST_PGHOST"] ?? "127.0.0.1",
            port: port,
            replicaPort: environment["SLUICE_TEST_REPLICA_PORT"].flatMap { Int($0) },
            superuser: environment["SLUICE_TEST_PGUSER"] ?? "postgres")
    }

    /// A superuser connection to the primary (or to the replica).
    func superuserConnection(database: String = "postgres", replica: Bool = false) throws -> PQConn {
        guard let target = replica ? replicaPort : port else {
            throw HarnessError("SLUICE_TEST_REPLICA_PORT is not set: scripts/test starts a replica")
        }
        return try PQConn.connect(host: host, port: target, user: superuser, dbname: database)
    }

    /// Runs SQL as the superuser on the primary; rows come back like `psql -At` prints them
    /// (columns joined by `|`, rows by newlines, NULL as an empty string).
    @discardableResult
    func superuserSQL(_ sql: String, database: String = "postgres") throws -> String {
        let connection = try superuserConnection(database: database)
        defer { connection.close() }
        return try connection.exec(sql)
            .map { row in row.map { $0 ?? "" }.joined(separator: "|") }
            .joined(separator: "\n")
    }

    /// Creates a login role with a unique name and a SCRAM-stored password.
    func makeRole(
        prefix: String = "role",
        password: String? = nil,
        connectionLimit: Int? = nil
    ) throws -> (name: String, password: String) {
        let name = uniqueName(prefix)
        let secret = password ?? randomPassword()
        let limit = connectionLimit.map { " CONNECTION LIMIT \($0)" } ?? ""
        try superuserSQL("CREATE ROLE \(name) LOGIN PASSWORD \(sqlLiteral(secret))\(limit)")
        return (name, secret)
    }

    /// Creates a database with a unique name, owned by `owner`.
    func makeDatabase(owner: String, prefix: String = "db") throws -> String {
        let name = uniqueName(prefix)
        try superuserSQL("CREATE DATABASE \(name) OWNER \(owner)")
        return name
    }

    /// The role's stored SCRAM secret (`SCRAM-SHA-256$4096:salt$StoredKey:ServerKey`), as a
    /// userlist may hold it.
    func scramSecret(of role: String) throws -> String {
        try superuserSQL("SELECT rolpassword FROM pg_authid WHERE rolname = \(sqlLiteral(role))")
    }

    /// The MD5 secret a userlist holds for a role: `md5` + md5(password + user), computed by the
    /// server, independently of Sluice's own code.
    func md5Secret(user: String, password: String) throws -> String {
        try superuserSQL("SELECT 'md5' || md5(\(sqlLiteral(password + user)))")
    }

    /// Process ids of the server connections a role has open on the primary.
    func backendPIDs(of role: String) throws -> [Int32] {
        try superuserSQL("SELECT pid FROM pg_stat_activity WHERE usename = \(sqlLiteral(role)) ORDER BY pid")
            .split(separator: "\n").compactMap { Int32($0) }
    }

    /// Ends one server connection, as an operator or a failover would.
    func terminateBackend(_ pid: Int32) throws {
        try superuserSQL("SELECT pg_terminate_backend(\(pid))")
    }
}
