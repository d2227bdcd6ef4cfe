import Foundation
import Testing

/// `auth_user` + `auth_query` against the test cluster, whose roles other than `postgres` may only log in
/// with SCRAM: a user found by the query logs in to PostgreSQL with the keys it proved to Sluice.
@Suite("auth_query and SCRAM pass-through")
struct AuthQueryIntegrationTests {
    /// Sluice whose auth_file lists only the auth_user (`postgres`, which the cluster trusts on loopback).
    static func sluice(
        cluster: TestCluster, database: String, settings: [String: String] = [:], databaseExtra: [String: String] = [:]
    ) throws -> SluiceProcess {
        try SluiceProcess(
            config: { port in
                TestConfig.ini(
                    port: port,
                    databases: [database: TestConfig.database(cluster, dbname: database, extra: databaseExtra)],
                    settings: ["auth_user": cluster.superuser].merging(settings) { _, new in new })
            },
            userlist: TestConfig.userlist([(cluster.superuser, "not-needed-on-loopback")]))
    }

    @Test("a SCRAM role the auth_file does not list logs in, and Sluice logs in for it with the proved keys")
    func scramPassThrough() throws {
        let cluster = try TestCluster.current()
        let role = try cluster.makeRole(prefix: "aq")
        let database = try cluster.makeDatabase(owner: role.name)
        let sluice = try Self.sluice(cluster: cluster, database: database)
        defer { sluice.stop() }
        let connection = try PQConn.connect(
            port: sluice.port, user: role.name, password: role.password, dbname: database)
        #expect(try connection.value("SELECT current_user") == role.name)
        let wrong = #expect(throws: PQError.self) {
            try PQConn.connect(port: sluice.port, user: role.name, password: "wrong", dbname: database)
        }
        #expect(wrong?.sqlState == "28P01")
        let unknown = #expect(throws: PQError.self) {
            try PQConn.connect(port: sluice.port, user: "no_such_role_\(role.name)", password: "x", dbname: database)
        }
        #expect(unknown?.sqlState == "28P01", "an unknown user must look like a wrong password")
        // Twenty clients at once, new connections each time: one look-up answers the waiting ones.
        try Pgbench.initialize(cluster, user: role.name, password: role.password, dbname: database)
        let result = try Pgbench.load(
            port: sluice.port, user: role.name, password: role.password, dbname: database,
            ["-C", "-c", "20", "-j", "2", "-t", "10", "-S"])
        Pgbench.expectClean(result, through: sluice, minimumProcessed: 199)
        #expect(!sluice.stderrText.contains(role.password))
    }

    @Test("new users logging in at once are looked up together, and each gets its own secret")
    func burstOfNewUsers() throws {
        let cluster = try TestCluster.current()
        let roles = try (0..<8).map { _ in try cluster.makeRole(prefix: "aqb") }
        let database = try cluster.makeDatabase(owner: roles[0].name)
        let sluice = try Self.sluice(cluster: cluster, database: database)
        defer { sluice.stop() }
        // Answers matched to the wrong user would fail those logins: each role has its own password.
        let clients = roles.map { role in
            BackgroundQuery(
                port: sluice.port, user: role.name, password: role.password, database: database,
                query: "SELECT current_user")
        }
        for (role, client) in zip(roles, clients) {
            #expect(client.wait(timeout: .seconds(20)) == role.name, "\(sluice.logTail())")
        }
    }

    @Test("a role past VALID UNTIL gets no secret from PgBouncer's query: refused like a wrong password")
    func expiredRole() throws {
        let cluster = try TestCluster.current()
        let role = try cluster.makeRole(prefix: "aqexp")
        let database = try cluster.makeDatabase(owner: role.name)
        let sluice = try Self.sluice(cluster: cluster, database: database, settings: ["auth_query_cache_ttl": "0"])
        defer { sluice.stop() }
        _ = try PQConn.connect(port: sluice.port, user: role.name, password: role.password, dbname: database)
        try cluster.superuserSQL("ALTER ROLE \(role.name) VALID UNTIL '2000-01-01'")
        let expired = #expect(throws: PQError.self) {
            try PQConn.connect(port: sluice.port, user: role.name, password: role.password, dbname: database)
        }
        #expect(expired?.sqlState == "28P01")
    }

    @Test("an md5 secret found by the query checks an md5 login (the server side logs in as a forced user)")
    func md5Secret() throws {
        let cluster = try TestCluster.current()
        let name = uniqueName("aqmd5")
        try cluster.superuserSQL(
            "SET password_encryption = 'md5'; CREATE ROLE \(name) LOGIN PASSWORD 'md5-secret'")
        let database = try cluster.makeDatabase(owner: cluster.superuser)
        let sluice = try Self.sluice(
            cluster: cluster, database: database, settings: ["auth_type": "md5"],
            databaseExtra: ["user": cluster.superuser])
        defer { sluice.stop() }
        let connection = try PQConn.connect(port: sluice.port, user: name, password: "md5-secret", dbname: database)
        #expect(try connection.value("SELECT 1") == "1")
        #expect(throws: PQError.self) {
            try PQConn.connect(port: sluice.port, user: name, password: "md5-wrong", dbname: database)
        }
    }

    @Test("an auth_user that cannot log in fails the waiting clients with 08001, and nothing hangs")
    func lookupConnectionFails() throws {
        let cluster = try TestCluster.current()
        let role = try cluster.makeRole(prefix: "aqfail")
        let database = try cluster.makeDatabase(owner: role.name)
        let lookup = try cluster.makeRole(prefix: "aqlookup")
        let sluice = try SluiceProcess(
            config: { port in
                TestConfig.ini(
                    port: port, databases: [database: TestConfig.database(cluster, dbname: database)],
                    settings: ["auth_user": lookup.name])
            },
            userlist: TestConfig.userlist([(lookup.name, "the wrong password")]))
        defer { sluice.stop() }
        let error = #expect(throws: PQError.self) {
            try PQConn.connect(port: sluice.port, user: role.name, password: role.password, dbname: database)
        }
        #expect(error?.sqlState == "08001" && error?.message.contains("could not look up the user") == true)
        #expect(error?.message.contains(lookup.name) == false, "the auth_user's name is not for clients")
        #expect(!sluice.stderrText.contains("the wrong password"))
    }
}
