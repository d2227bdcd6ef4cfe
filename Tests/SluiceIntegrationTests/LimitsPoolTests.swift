import Foundation
import Testing

/// Reserve and minimum pools, `server_login_retry` and `server_round_robin` within one pool.
@Suite("Pool limits within a pool")
struct LimitsPoolTests {
    @Test("reserve_pool_size lends an extra server once a client has waited reserve_pool_timeout")
    func reservePool() throws {
        let proxied = try ProxiedDatabase(
            settings: ["reserve_pool_size": "1", "reserve_pool_timeout": "0.5", "query_wait_timeout": "20"],
            poolSize: 1)
        defer { proxied.stop() }
        let holder = try proxied.connect()
        try holder.exec("BEGIN")
        #expect(try holder.value("SELECT 1") == "1")

        let clock = ContinuousClock()
        let started = clock.now
        let waiter = BackgroundQuery(
            port: proxied.sluice.port, user: proxied.role.name, password: proxied.role.password,
            database: proxied.database)
        #expect(waiter.wait(timeout: .seconds(8)) == "served", "\(proxied.sluice.logTail())")
        let waited = clock.now - started
        #expect(waited >= .milliseconds(400), "the reserve must not be used before the timeout: \(waited)")
        #expect(try proxied.serverPIDs().count == 2, "one pool server plus one from the reserve")
        #expect(proxied.sluice.stderrText.contains("reserve_pool"))
        try holder.exec("COMMIT")
    }

    @Test("min_pool_size opens the minimum for a pool in use, and server_idle_timeout keeps it")
    func minPoolSize() throws {
        let proxied = try ProxiedDatabase(
            settings: ["min_pool_size": "3", "server_idle_timeout": "1"], poolSize: 5)
        defer { proxied.stop() }
        #expect(try proxied.serverPIDs().isEmpty, "no pool exists before a client comes")
        let client = try proxied.connect()
        #expect(try client.value("SELECT 1") == "1")
        let reached = waitUntil(timeout: .seconds(5)) { (try? proxied.serverPIDs().count) == 3 }
        #expect(reached, "servers: \((try? proxied.serverPIDs()) ?? []); \(proxied.sluice.logTail())")
        sleep(for: .seconds(2))
        #expect(try proxied.serverPIDs().count == 3, "idle timeout must not go under min_pool_size")
    }

    @Test("after a failed server login, new clients fail fast until server_login_retry passes")
    func serverLoginRetry() throws {
        let proxied = try ProxiedDatabase(settings: ["server_login_retry": "3"])
        defer { proxied.stop() }
        let role = proxied.role.name
        // Sluice still checks clients against the userlist's password; PostgreSQL now wants another.
        try proxied.cluster.superuserSQL("ALTER ROLE \(role) PASSWORD \(sqlLiteral(randomPassword()))")
        let first = #expect(throws: PQError.self) { try proxied.connect().exec("SELECT 1") }
        #expect(first?.sqlState == "28P01", "\(String(describing: first))")

        try proxied.cluster.superuserSQL("ALTER ROLE \(role) PASSWORD \(sqlLiteral(proxied.role.password))")
        let clock = ContinuousClock()
        let started = clock.now
        let fast = #expect(throws: PQError.self) { try proxied.connect().exec("SELECT 1") }
        #expect(clock.now - started < .seconds(2))
        #expect(fast?.message.contains("server_login_retry") == true, "\(String(describing: fast))")

        sleep(for: .seconds(3))
        #expect(try proxied.connect().value("SELECT 'recovered'") == "recovered", "\(proxied.sluice.logTail())")
    }

    @Test("a pool freed by pool_idle_timeout does not forget a failed server login within server_login_retry")
    func loginRetryOutlivesFreedPool() throws {
        let proxied = try ProxiedDatabase(
            settings: ["server_login_retry": "30", "pool_idle_timeout": "1", "server_idle_timeout": "1"])
        defer { proxied.stop() }
        try proxied.cluster.superuserSQL(
            "ALTER ROLE \(proxied.role.name) PASSWORD \(sqlLiteral(randomPassword()))")
        let first = #expect(throws: PQError.self) { try proxied.connect().exec("SELECT 1") }
        #expect(first?.sqlState == "28P01", "\(String(describing: first))")
        sleep(for: .seconds(3))
        let second = #expect(throws: PQError.self) { try proxied.connect().exec("SELECT 1") }
        #expect(second?.message.contains("server_login_retry") == true, "\(String(describing: second))")
    }

    @Test("server_round_robin lends the server idle longest instead of the one used last")
    func serverRoundRobin() throws {
        let proxied = try ProxiedDatabase(settings: ["server_round_robin": "1"], poolSize: 2)
        defer { proxied.stop() }
        let a = try proxied.connect()
        let b = try proxied.connect()
        try a.exec("BEGIN")
        let first = try a.value("SELECT pg_backend_pid()")
        try b.exec("BEGIN")
        let second = try b.value("SELECT pg_backend_pid()")
        #expect(first != second)
        try a.exec("COMMIT")  // idle longest
        try b.exec("COMMIT")  // used last
        let c = try proxied.connect()
        #expect(try c.value("SELECT pg_backend_pid()") == first, "LIFO would have lent \(second ?? "?")")
    }

    @Test("pool_idle_timeout frees a pool once it has had no client and no server; a new client gets a new pool")
    func poolIdleTimeout() throws {
        let proxied = try ProxiedDatabase(
            settings: ["admin_users": "@ROLE@", "pool_idle_timeout": "1", "server_idle_timeout": "1"])
        defer { proxied.stop() }
        let admin = try AdminConsoleTests.console(proxied)
        let pools = { try admin.exec("SHOW POOLS").compactMap { $0.first ?? nil } }
        do {
            let client = try proxied.connect()
            #expect(try client.value("SELECT 1") == "1")
            #expect(try pools().contains(proxied.database))
            // In use: a pool with a client stays however long it idles.
            sleep(for: .seconds(3))
            #expect(try pools().contains(proxied.database), "\(proxied.sluice.logTail())")
        }
        let freed = waitUntil(timeout: .seconds(8)) { (try? pools().contains(proxied.database)) == false }
        #expect(freed, "\((try? pools()) ?? []); \(proxied.sluice.logTail())")
        #expect(proxied.sluice.stderrText.contains("pool freed"))
        #expect(try proxied.connect().value("SELECT 2") == "2", "\(proxied.sluice.logTail())")
        #expect(try pools().contains(proxied.database))
    }

    @Test("autodb_idle_timeout frees pools made through the * entry, and only those")
    func autodbIdleTimeout() throws {
        let cluster = try TestCluster.current()
        let role = try cluster.makeRole(prefix: "autodb")
        let viaStar = try cluster.makeDatabase(owner: role.name)
        let named = try cluster.makeDatabase(owner: role.name)
        let sluice = try SluiceProcess(
            config: { port in
                TestConfig.ini(
                    port: port,
                    databases: [
                        "*": "host=\(cluster.host) port=\(cluster.port)",
                        named: TestConfig.database(cluster, dbname: named),
                    ],
                    settings: ["admin_users": role.name, "autodb_idle_timeout": "1", "server_idle_timeout": "1"])
            },
            userlist: TestConfig.userlist([(role.name, role.password)]))
        defer { sluice.stop() }
        let connect = { (database: String) in
            try PQConn.connect(port: sluice.port, user: role.name, password: role.password, dbname: database)
        }
        let admin = try connect("pgbouncer")
        let pools = { try admin.exec("SHOW POOLS").compactMap { $0.first ?? nil } }
        for database in [viaStar, named] { #expect(try connect(database).value("SELECT 1") == "1") }
        #expect(try Set(pools()).isSuperset(of: [viaStar, named]))
        let freed = waitUntil(timeout: .seconds(8)) { (try? pools().contains(viaStar)) == false }
        #expect(freed, "\((try? pools()) ?? []); \(sluice.logTail())")
        #expect(try pools().contains(named), "a configured database's pool is not an autodb pool")
        #expect(try connect(viaStar).value("SELECT 3") == "3")
    }
}
