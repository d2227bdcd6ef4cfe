import Foundation
import Testing

/// Each timeout measures its own interval (field case F8), and each fails the test when ignored.
@Suite("Timeouts")
struct TimeoutTests {
    @Test("F8: query_timeout bounds one query, not the transaction around it")
    func queryTimeoutIsPerQuery() throws {
        let proxied = try ProxiedDatabase(settings: ["query_timeout": "2"], poolSize: 1)
        defer { proxied.stop() }
        let client = try proxied.connect()
        _ = try client.exec("BEGIN")
        #expect(try client.value("SELECT 1") == "1")
        Thread.sleep(forTimeInterval: 4)  // client think time inside the transaction
        #expect(try client.value("SELECT 2") == "2")
        _ = try client.exec("COMMIT")

        let started = Date()
        let error = #expect(throws: PQError.self) { try client.exec("SELECT pg_sleep(3)") }
        #expect(error?.sqlState == "57014", "\(String(describing: error))")
        #expect(error?.message.contains("query_timeout") == true, "\(String(describing: error))")
        #expect(Date().timeIntervalSince(started) < 2.9)
        // The connection and the server are still good.
        #expect(try client.value("SELECT 'after'") == "after")
    }

    @Test("F8: idle_transaction_timeout counts idle gaps, never time spent running queries")
    func idleTransactionTimeoutIsPerGap() throws {
        let proxied = try ProxiedDatabase(settings: ["idle_transaction_timeout": "1"], poolSize: 1)
        defer { proxied.stop() }
        let client = try proxied.connect()
        _ = try client.exec("BEGIN; SELECT pg_sleep(1.5); SELECT pg_sleep(1.5)")
        _ = try client.exec("SELECT pg_sleep(1.5)")
        _ = try client.exec("COMMIT")

        _ = try client.exec("BEGIN")
        Thread.sleep(forTimeInterval: 2)
        let error = #expect(throws: PQError.self) { try client.exec("SELECT 1") }
        #expect(error != nil)
        // The abandoned transaction was rolled back and the single server serves the next client.
        let next = try proxied.connect()
        #expect(try next.value("SELECT txid_current_if_assigned() IS NULL") == "t")
    }

    @Test("query_wait_notify: a client queued that long hears a NOTICE once, then its answer when a server frees")
    func queryWaitNotify() throws {
        let proxied = try ProxiedDatabase(settings: ["query_wait_notify": "1"], poolSize: 1)
        defer { proxied.stop() }
        let holder = try proxied.connect()
        _ = try holder.exec("BEGIN")
        #expect(try holder.value("SELECT 1") == "1")
        let waiter = try RawClient.connect(
            port: proxied.sluice.port, user: proxied.role.name, password: proxied.role.password,
            database: proxied.database)
        try waiter.send { $0.query("SELECT 7") }
        let notice = try waiter.read(timeout: .seconds(5))
        #expect(notice.typeChar == "N" && notice.severity == "NOTICE", "\(notice)")
        #expect(notice.errorMessage?.contains("queued") == true, "\(notice)")
        // Told once per wait, however long it lasts.
        sleep(for: .seconds(2))
        _ = try holder.exec("COMMIT")
        let answer = try waiter.readUntilReadyForQuery()
        #expect(String(answer.map(\.typeChar)) == "TDCZ", "\(answer)")
        // A client served at once hears nothing.
        #expect(String(try waiter.simpleQuery("SELECT 8").map(\.typeChar)) == "TDCZ")
    }

    @Test("transaction_timeout ends a transaction that lasts too long in total")
    func transactionTimeout() throws {
        let proxied = try ProxiedDatabase(settings: ["transaction_timeout": "2"], poolSize: 1)
        defer { proxied.stop() }
        let client = try proxied.connect()
        _ = try client.exec("BEGIN")
        var failed = false
        for _ in 0..<8 where !failed {
            do {
                _ = try client.exec("SELECT pg_sleep(0.5)")
            } catch {
                failed = true
            }
        }
        #expect(failed, "a 4 s transaction outlived transaction_timeout = 2")
        let next = try proxied.connect()
        #expect(try next.value("SELECT 1") == "1")
    }

    @Test("client_idle_timeout disconnects a silent client outside a transaction")
    func clientIdleTimeout() throws {
        let proxied = try ProxiedDatabase(settings: ["client_idle_timeout": "1"], poolSize: 1)
        defer { proxied.stop() }
        let client = try proxied.connect()
        #expect(try client.value("SELECT 1") == "1")
        Thread.sleep(forTimeInterval: 2.5)
        #expect(throws: PQError.self) { try client.exec("SELECT 1") }
        #expect(proxied.sluice.logTail().contains("client_idle_timeout"))
    }

    @Test("a [users] override wins over the global timeout")
    func perUserOverride() throws {
        let cluster = try TestCluster.current()
        let role = try cluster.makeRole(prefix: "tmo")
        let database = try cluster.makeDatabase(owner: role.name)
        let entry = TestConfig.database(cluster, dbname: database)
        let sluice = try SluiceProcess(
            config: { port in
                TestConfig.ini(port: port, databases: [database: entry], settings: ["query_timeout": "30"])
                    + "\n[users]\n\(role.name) = query_timeout=1\n"
            },
            userlist: TestConfig.userlist([(role.name, role.password)]))
        defer { sluice.stop() }
        let client = try PQConn.connect(port: sluice.port, user: role.name, password: role.password, dbname: database)
        let error = #expect(throws: PQError.self) { try client.exec("SELECT pg_sleep(3)") }
        #expect(error?.sqlState == "57014", "\(String(describing: error))")
    }
}

@Suite("Login timeout")
struct LoginTimeoutTests {
    @Test("client_login_timeout closes a client that never finishes logging in")
    func clientLoginTimeout() throws {
        try withRawSluice(settings: ["client_login_timeout": "1"]) { target in
            let silent = try RawClient(port: target.port)
            // Half a startup packet, then nothing.
            try silent.sendRaw([0, 0, 0, 40, 0, 3])
            let replies = try silent.waitForClose(timeout: .seconds(4))
            #expect(replies.contains { $0.isError }, "got \(replies)")
            try target.expectServing()
        }
    }
}
