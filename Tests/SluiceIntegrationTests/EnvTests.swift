import Foundation
import Testing

/// Environment-only ("sidecar") mode: no config file, everything from DATABASE_URL and DB_*.
@Suite("Environment-only mode")
struct EnvTests {
    @Test("DATABASE_URL and DB_POOL_MAX alone run a pool; clients log in with SCRAM")
    func sidecarMode() throws {
        let cluster = try TestCluster.current()
        let role = try cluster.makeRole(prefix: "sidecar", connectionLimit: 3)
        let database = try cluster.makeDatabase(owner: role.name)
        let sluice = try SluiceProcess(environmentOnly: { _ in
            [
                "DATABASE_URL": "postgres://\(role.name):\(role.password)@\(cluster.host):\(cluster.port)/\(database)",
                "DB_POOL_MAX": "3",
                "DB_POOL_MODE": "transaction",
            ]
        })
        defer { sluice.stop() }

        do {
            let connection = try PQConn.connect(
                port: sluice.port, user: role.name, password: role.password, dbname: database)
            #expect(try connection.value("SELECT current_user") == role.name)
        } catch {
            Issue.record("login failed: \(error)\n--- sluice log ---\n\(sluice.logTail())")
        }

        let wrong = #expect(throws: PQError.self) {
            try PQConn.connect(port: sluice.port, user: role.name, password: "wrong", dbname: database)
        }
        #expect(wrong?.sqlState == "28P01", "\(String(describing: wrong))")

        // Twenty clients on a pool of three; the role's CONNECTION LIMIT 3 enforces the bound.
        try Pgbench.initialize(cluster, user: role.name, password: role.password, dbname: database)
        let result = try Pgbench.load(
            port: sluice.port, user: role.name, password: role.password, dbname: database,
            ["-n", "-S", "-c", "20", "-j", "2", "-T", "3"])
        #expect(result.succeeded, "\(result)\n--- sluice log ---\n\(sluice.logTail())")
        #expect(Pgbench.summary(of: result.stdout)?.failed == 0, "\(result)")
        #expect(try cluster.backendPIDs(of: role.name).count <= 3)
    }
}
