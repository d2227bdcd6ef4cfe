import Foundation
import Synchronization
import Testing

/// Caps that span pools: server connections per database and per user queue clients; client
/// connections per database and per user refuse them at login.
@Suite("Pool limits across pools")
struct LimitsTests {
    @Test("max_db_connections makes a second pool of the database wait, then hands it a freed server")
    func maxDBConnections() throws {
        let setup = try TwoPools(sameDatabase: true, settings: ["max_db_connections": "2"])
        defer { setup.stop() }
        let holders = try (0..<2).map { _ in try setup.connect(0) }
        for holder in holders {
            try holder.exec("BEGIN")
            #expect(try holder.value("SELECT 1") == "1")
        }
        let waiter = setup.startWaiter(1)
        sleep(for: .seconds(1))
        #expect(waiter.outcome == nil, "the other pool must wait while the database has 2 servers")
        #expect(try setup.serverCount(database: setup.databases[0]) == 2)

        try holders[0].exec("COMMIT")
        #expect(waiter.wait(timeout: .seconds(10)) == "served", "\(setup.sluice.logTail())")
        #expect(try setup.serverCount(database: setup.databases[0]) <= 2)
    }

    @Test("max_user_connections in [users] makes a user's second pool wait for a server")
    func maxUserConnections() throws {
        let setup = try TwoPools(sameDatabase: false, userSettings: "max_user_connections=1")
        defer { setup.stop() }
        let holder = try setup.connect(0)
        try holder.exec("BEGIN")
        #expect(try holder.value("SELECT 1") == "1")
        let waiter = setup.startWaiter(1)
        sleep(for: .seconds(1))
        #expect(waiter.outcome == nil, "the user's second pool must wait while the user has 1 server")
        #expect(try setup.cluster.backendPIDs(of: setup.roles[0].name).count == 1)

        try holder.exec("COMMIT")
        #expect(waiter.wait(timeout: .seconds(10)) == "served", "\(setup.sluice.logTail())")
        #expect(try setup.cluster.backendPIDs(of: setup.roles[0].name).count <= 1)
    }

    @Test("max_db_client_connections refuses the next client of the database with PgBouncer's message")
    func maxDBClientConnections() throws {
        let proxied = try ProxiedDatabase(databaseExtra: ["max_db_client_connections": "2"])
        defer { proxied.stop() }
        sleep(for: .milliseconds(200))  // the harness's readiness probe may still be counted
        let held = try (0..<2).map { _ in try proxied.connect() }
        let error = #expect(throws: PQError.self) { try proxied.connect() }
        #expect(error?.message.contains("max_db_client_connections") == true, "\(String(describing: error))")
        held[0].close()
        #expect(waitUntil(timeout: .seconds(5)) { (try? proxied.connect()) != nil }, "a freed slot admits a client")
    }

    @Test("max_user_client_connections refuses the user's next client with PgBouncer's message")
    func maxUserClientConnections() throws {
        let proxied = try ProxiedDatabase(settings: ["max_user_client_connections": "2"])
        defer { proxied.stop() }
        sleep(for: .milliseconds(200))
        let held = try (0..<2).map { _ in try proxied.connect() }
        let error = #expect(throws: PQError.self) { try proxied.connect() }
        #expect(error?.message.contains("max_user_client_connections") == true, "\(String(describing: error))")
        #expect(error?.sqlState == "53300")
        held[1].close()
        #expect(waitUntil(timeout: .seconds(5)) { (try? proxied.connect()) != nil }, "a freed slot admits a client")
    }
}

/// Two roles, each with a database or sharing one, behind one Sluice: two pools that share a cap.
struct TwoPools {
    let cluster: TestCluster
    let roles: [(name: String, password: String)]
    /// The database each pool's client asks for.
    let databases: [String]
    /// The user each pool's client logs in as.
    let users: [String]
    let sluice: SluiceProcess

    /// - Parameter sameDatabase: two roles on one database (two pools of one database), or one role on
    ///   two databases (two pools of one user).
    init(sameDatabase: Bool, settings: [String: String] = [:], userSettings: String? = nil) throws {
        let cluster = try TestCluster.current()
        self.cluster = cluster
        let owner = try cluster.makeRole(prefix: "limits")
        if sameDatabase {
            let other = try cluster.makeRole(prefix: "limits")
            let database = try cluster.makeDatabase(owner: owner.name)
            roles = [owner, other]
            databases = [database, database]
            users = [owner.name, other.name]
        } else {
            roles = [owner]
            databases = [try cluster.makeDatabase(owner: owner.name), try cluster.makeDatabase(owner: owner.name)]
            users = [owner.name, owner.name]
        }
        var entries: [String: String] = [:]
        for database in Set(databases) {
            entries[database] = TestConfig.database(cluster, dbname: database, extra: ["pool_size": "5"])
        }
        let names = Set(users)
        let userLines = userSettings.map { setting in
            "\n[users]\n" + names.map { "\($0) = \(setting)" }.joined(separator: "\n") + "\n"
        }
        let roles = self.roles
        sluice = try SluiceProcess(
            config: { port in
                TestConfig.ini(port: port, databases: entries, settings: settings) + (userLines ?? "")
            },
            userlist: TestConfig.userlist(roles.map { ($0.name, $0.password) }))
    }

    private func password(of user: String) -> String {
        roles.first { $0.name == user }?.password ?? ""
    }

    /// A client of pool `index`.
    func connect(_ index: Int) throws -> PQConn {
        try PQConn.connect(
            port: sluice.port, user: users[index], password: password(of: users[index]), dbname: databases[index])
    }

    /// A client of pool `index` that connects and runs one query on its own thread.
    func startWaiter(_ index: Int) -> BackgroundQuery {
        BackgroundQuery(
            port: sluice.port, user: users[index], password: password(of: users[index]), database: databases[index])
    }

    /// Server connections PostgreSQL counts on a database.
    func serverCount(database: String) throws -> Int {
        Int(try cluster.superuserSQL("SELECT count(*) FROM pg_stat_activity WHERE datname = \(sqlLiteral(database))"))
            ?? -1
    }

    func stop() {
        sluice.stop()
    }
}

/// One client that logs in and runs `SELECT 'served'` on a thread of its own, since libpq blocks.
final class BackgroundQuery: Sendable {
    private let result = Mutex<String?>(nil)

    init(port: Int, user: String, password: String, database: String, query: String = "SELECT 'served'") {
        let thread = Thread { [self] in
            let outcome: String
            do {
                let connection = try PQConn.connect(
                    port: port, user: user, password: password, dbname: database, timeout: .seconds(30))
                outcome = try connection.value(query) ?? "NULL"
            } catch {
                outcome = "failed: \(error)"
            }
            self.result.withLock { $0 = outcome }
        }
        thread.start()
    }

    /// The query's result, or "failed: …"; nil while it still waits.
    var outcome: String? { result.withLock { $0 } }

    /// Waits for the outcome.
    func wait(timeout: Duration) -> String? {
        waitUntil(timeout: timeout) { outcome != nil }
        return outcome
    }
}
