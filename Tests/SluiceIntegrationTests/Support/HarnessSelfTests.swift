import Foundation
import Testing

/// The harness checked against PostgreSQL itself: if these fail, the proxy tests cannot be trusted.
@Suite("Harness, straight against PostgreSQL")
struct HarnessSelfTests {
    @Test("libpq reports the SQLSTATE of a failed login")
    func loginErrorsCarrySQLState() throws {
        let cluster = try TestCluster.current()
        let role = try cluster.makeRole(prefix: "harness")
        let error = #expect(throws: PQError.self) {
            try PQConn.connect(port: cluster.port, user: role.name, password: "wrong", dbname: "postgres")
        }
        #expect(error?.sqlState == "28P01")
        #expect(error?.duringConnect == true)
    }

    @Test("queries return rows, and statement errors carry their SQLSTATE")
    func queriesAndErrors() throws {
        let cluster = try TestCluster.current()
        let role = try cluster.makeRole(prefix: "harness")
        let database = try cluster.makeDatabase(owner: role.name)
        let connection = try PQConn.connect(
            port: cluster.port, user: role.name, password: role.password, dbname: database)
        #expect(try connection.exec("SELECT 1, NULL::text") == [["1", nil]])
        #expect(try connection.execParams("SELECT $1::int + 1", ["41"]) == [["42"]])
        try connection.prepare("add", "SELECT $1::int + $2::int")
        #expect(try connection.execPrepared("add", ["1", "2"]) == [["3"]])
        let error = #expect(throws: PQError.self) { try connection.exec("SELECT * FROM no_such_table") }
        #expect(error?.sqlState == "42P01")
        #expect(try connection.value("SELECT current_user") == role.name)
        let laterError = #expect(throws: PQError.self) { try connection.exec("SELECT 1; SELECT 1/0; SELECT 2") }
        #expect(laterError?.sqlState == "22012")
        #expect(try connection.exec("SELECT 1; SELECT 2") == [["2"]])
    }

    @Test("a statement that outlives queryTimeout throws and closes the connection")
    func queryTimeout() throws {
        let cluster = try TestCluster.current()
        let connection = try cluster.superuserConnection()
        connection.queryTimeout = .milliseconds(300)
        #expect(throws: PQError.self) { try connection.exec("SELECT pg_sleep(5)") }
        #expect(!connection.isOK)
    }

    @Test("psql and pgbench run, and psql sessions interleave")
    func clientPrograms() throws {
        let cluster = try TestCluster.current()
        let role = try cluster.makeRole(prefix: "harness")
        let database = try cluster.makeDatabase(owner: role.name)
        let result = try run(
            "psql",
            ["-X", "-At", "-h", "127.0.0.1", "-p", String(cluster.port), "-U", role.name, "-c", "SELECT 7", database],
            environment: ["PGPASSWORD": role.password])
        #expect(result.succeeded && result.stdout == "7\n", "\(result)")

        let tokyo = try PsqlSession(
            port: cluster.port, user: role.name, password: role.password, dbname: database,
            environment: ["PGTZ": "Asia/Tokyo"])
        let lima = try PsqlSession(
            port: cluster.port, user: role.name, password: role.password, dbname: database,
            environment: ["PGTZ": "America/Lima"])
        try tokyo.send("BEGIN;")
        #expect(try lima.query("SHOW TimeZone;") == "America/Lima")
        #expect(try tokyo.query("SHOW TimeZone;") == "Asia/Tokyo")
        try tokyo.send("COMMIT;")

        try Pgbench.initialize(cluster, user: role.name, password: role.password, dbname: database)
        let bench = try Pgbench.load(
            port: cluster.port, user: role.name, password: role.password, dbname: database,
            ["-S", "-c", "4", "-t", "20"])
        let summary = Pgbench.summary(of: bench.stdout)
        #expect(bench.succeeded, "\(bench)")
        #expect(summary?.processed == 80 && summary?.failed == 0, "\(bench)")
    }
}
