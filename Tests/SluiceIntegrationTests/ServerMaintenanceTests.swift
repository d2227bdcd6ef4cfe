import Foundation
import Testing

/// Keeping servers healthy and in step with the configuration.
@Suite("Server maintenance")
struct ServerMaintenanceTests {
    @Test("server_check_delay: a long-idle server that stopped answering is checked and replaced, not lent")
    func serverCheck() throws {
        let proxied = try ProxiedDatabase(
            settings: ["server_check_delay": "0", "server_connect_timeout": "2"], poolSize: 2)
        defer { proxied.stop() }
        let client = try proxied.connect()
        #expect(try client.value("SELECT 1") == "1")
        let pids = try proxied.serverPIDs()
        #expect(pids.count == 1)
        // A backend that no longer answers, as behind a dead network path.
        kill(pids[0], SIGSTOP)
        defer {
            kill(pids[0], SIGCONT)
            _ = try? proxied.directSuperuser().exec("SELECT pg_terminate_backend(\(pids[0]))")
        }
        let started = Date()
        #expect(try client.value("SELECT 2") == "2")
        #expect(Date().timeIntervalSince(started) < 8)
        #expect(proxied.sluice.logTail().contains("server_check_query"))
    }

    @Test("a named statement a client prepared is never run by the next client of that server")
    func preparedStatementsDoNotCross() throws {
        try withRawSluice(poolSize: 1) { target in
            let a = try target.connect()
            let b = try target.connect()
            try a.send {
                $0.parse("SELECT 'secret of A: ' || $1::text", name: "s1")
                $0.sync()
            }
            _ = try a.expect(types: "1Z")
            try b.send {
                $0.bind(statement: "s1", parameters: ["hello from B"])
                $0.execute()
                $0.sync()
            }
            let replies = try b.readUntilReadyForQuery()
            #expect(!replies.contains { $0.dataRowColumns != nil }, "B ran A's statement: \(replies)")
            #expect(replies.first { $0.isError }?.sqlState == "26000", "\(replies)")
        }
    }

    @Test("a client killed in the middle of COPY inside a transaction frees its server")
    func deadClientMidCopy() throws {
        try withRawSluice(poolSize: 1) { target in
            for _ in 0..<5 {
                let a = try target.connect()
                _ = try a.simpleQuery("CREATE TABLE IF NOT EXISTS copy_dead (id int)")
                _ = try a.simpleQuery("BEGIN")
                try a.send { $0.query("COPY copy_dead FROM STDIN") }
                _ = try a.expect(types: "G")
                let rows = Array(String(repeating: "1\n", count: 100_000).utf8)
                // Half a CopyData message, then gone.
                var header: [UInt8] = [UInt8(ascii: "d")]
                let length = UInt32(rows.count + 4)
                header += [
                    UInt8(length >> 24), UInt8((length >> 16) & 0xFF), UInt8((length >> 8) & 0xFF),
                    UInt8(length & 0xFF),
                ]
                try a.sendRaw(header + rows.prefix(rows.count / 2))
                a.close()
                try target.expectServing()
            }
        }
    }

    @Test("reload: a lowered pool size closes idle servers above it; a changed dbname reaches new servers")
    func reloadReachesExistingPools() throws {
        let cluster = try TestCluster.current()
        let role = try cluster.makeRole(prefix: "rld")
        let first = try cluster.makeDatabase(owner: role.name)
        let second = try cluster.makeDatabase(owner: role.name)
        func ini(_ port: Int, dbname: String, size: Int) -> String {
            TestConfig.ini(
                port: port, databases: ["app": TestConfig.database(cluster, dbname: dbname)],
                settings: ["default_pool_size": String(size)])
        }
        var listenPort = 0
        let sluice = try SluiceProcess(
            config: { port in
                listenPort = port
                return ini(port, dbname: first, size: 3)
            },
            userlist: TestConfig.userlist([(role.name, role.password)]))
        defer { sluice.stop() }
        let clients = try (0..<3).map { _ in
            try PQConn.connect(port: sluice.port, user: role.name, password: role.password, dbname: "app")
        }
        for c in clients { _ = try c.exec("BEGIN") }
        for c in clients { _ = try c.exec("COMMIT") }
        #expect(try cluster.backendPIDs(of: role.name).count == 3)

        let path = try #require(sluice.configPath)
        try ini(listenPort, dbname: second, size: 1).write(toFile: path, atomically: true, encoding: .utf8)
        sluice.signal(SIGHUP)
        Thread.sleep(forTimeInterval: 1)
        #expect(try cluster.backendPIDs(of: role.name).count <= 1)
        #expect(try clients[0].value("SELECT current_database()") == second)
    }

    @Test("reload: a corrected server address is tried at once, not after server_login_retry")
    func reloadedAddressEndsLoginRetry() throws {
        let cluster = try TestCluster.current()
        let role = try cluster.makeRole(prefix: "rtry")
        let database = try cluster.makeDatabase(owner: role.name)
        let nobody = try LoopbackPort.free()
        func ini(_ port: Int, serverPort: Int) -> String {
            TestConfig.ini(
                port: port, databases: ["app": "host=\(cluster.host) port=\(serverPort) dbname=\(database)"],
                settings: ["server_login_retry": "60"])
        }
        var listenPort = 0
        let sluice = try SluiceProcess(
            config: { port in
                listenPort = port
                return ini(port, serverPort: nobody)
            },
            userlist: TestConfig.userlist([(role.name, role.password)]))
        defer { sluice.stop() }
        #expect(throws: PQError.self) {
            try PQConn.connect(port: sluice.port, user: role.name, password: role.password, dbname: "app")
        }
        let path = try #require(sluice.configPath)
        try ini(listenPort, serverPort: cluster.port).write(toFile: path, atomically: true, encoding: .utf8)
        sluice.signal(SIGHUP)
        let served = waitUntil(timeout: .seconds(5)) {
            let client = try? PQConn.connect(port: sluice.port, user: role.name, password: role.password, dbname: "app")
            return (try? client?.value("SELECT 1")) == "1"
        }
        #expect(served, "clients were still turned away after the address was corrected: \(sluice.logTail())")
    }
}
