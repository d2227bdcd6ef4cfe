import Foundation
import Testing

/// Protocol-level named statements in transaction pooling: a client's statements follow it to
/// whichever server it gets, hidden from it, shared between clients, and bounded per server.
@Suite("Prepared statements in transaction pooling")
struct PreparedStatementTests {
    @Test("F4: pgbench -M prepared, two independent SELECTs per script, 4 clients on 2 servers, no failure")
    func fieldCaseF4() throws {
        let proxied = try ProxiedDatabase(poolSize: 2, connectionLimit: 2)
        defer { proxied.stop() }
        try Pgbench.initialize(
            proxied.cluster, user: proxied.role.name, password: proxied.role.password, dbname: proxied.database)
        let script = FileManager.default.temporaryDirectory.appendingPathComponent("f4-\(UUID().uuidString).sql")
        try """
        \\set aid random(1, 100000)
        SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
        SELECT count(*) FROM pgbench_branches WHERE bid = 1;
        """.write(to: script, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: script) }
        let result = try Pgbench.load(
            port: proxied.sluice.port, user: proxied.role.name, password: proxied.role.password,
            dbname: proxied.database, ["-n", "-M", "prepared", "-f", script.path, "-c", "4", "-j", "2", "-T", "4"],
            timeout: .seconds(60))
        Pgbench.expectClean(result, through: proxied.sluice, minimumProcessed: 100)
    }

    @Test("pgbench -M prepared, two scripts with several statements per transaction, 16 clients on 4 servers")
    func pgbenchPreparedManyClients() throws {
        let proxied = try ProxiedDatabase(settings: ["max_client_conn": "100"], poolSize: 4, connectionLimit: 4)
        defer { proxied.stop() }
        try Pgbench.initialize(
            proxied.cluster, user: proxied.role.name, password: proxied.role.password, dbname: proxied.database)
        // One thread per client: pgbench 15 prepares a script's statements with blocking calls the first time
        // a client runs it, which stalls every client of that thread. Clients of the thread that are inside a
        // transaction keep their servers meanwhile; with more of them than servers, the blocked call would
        // wait for a server forever. Any pooler with a bounded pool has that client-side deadlock.
        let result = try Pgbench.load(
            port: proxied.sluice.port, user: proxied.role.name, password: proxied.role.password,
            dbname: proxied.database,
            ["-n", "-M", "prepared", "-b", "tpcb-like", "-b", "select-only", "-c", "16", "-j", "16", "-T", "5"],
            timeout: .seconds(90))
        Pgbench.expectClean(result, through: proxied.sluice, minimumProcessed: 100)
    }

    @Test("a statement follows its client to another server, and Sluice's Parse there stays hidden")
    func statementFollowsClient() throws {
        try withRawSluice(poolSize: 2) { target in
            let a = try target.connect()
            let b = try target.connect()
            try a.send {
                $0.parse("SELECT 'A:' || $1::text", name: "follow")
                $0.sync()
            }
            _ = try a.expect(types: "1Z")
            // B takes the server A just used and keeps it: A's next request runs on the other one.
            _ = try b.simpleQuery("BEGIN")
            let firstServer = try b.simpleQuery("SELECT pg_backend_pid()").compactMap(\.dataRowColumns).first
            try a.send {
                $0.describeStatement("follow")
                $0.bind(statement: "follow", parameters: ["x"])
                $0.execute()
                $0.sync()
            }
            let replies = try a.expect(types: "tT2DCZ")
            #expect(replies[3].dataRowColumns == ["A:x"])
            let secondServer = try a.simpleQuery("SELECT pg_backend_pid()").compactMap(\.dataRowColumns).first
            #expect(firstServer != secondServer, "the test needs A on another server")
            _ = try b.simpleQuery("COMMIT")
        }
    }

    @Test("clients preparing the same statement under different names share one copy on the server")
    func statementsShared() throws {
        try withRawSluice(poolSize: 1) { target in
            let a = try target.connect()
            let b = try target.connect()
            let sql = "SELECT $1::int * 2 AS shared_statement"
            try a.send {
                $0.parse(sql, name: "from_a", parameterTypes: [23])
                $0.sync()
            }
            _ = try a.expect(types: "1Z")
            try b.send {
                $0.parse(sql, name: "from_b", parameterTypes: [23])
                $0.bind(statement: "from_b", parameters: ["21"])
                $0.execute()
                $0.sync()
            }
            #expect(try b.expect(types: "12DCZ")[2].dataRowColumns == ["42"])
            let count = try b.simpleQuery(
                "SELECT count(*) FROM pg_prepared_statements WHERE statement = '\(sql)'"
            ).compactMap(\.dataRowColumns).first
            #expect(count == ["1"])
            // A's name still works, on the same copy.
            try a.send {
                $0.bind(statement: "from_a", parameters: ["5"])
                $0.execute()
                $0.sync()
            }
            #expect(try a.expect(types: "2DCZ")[1].dataRowColumns == ["10"])
        }
    }

    @Test("max_prepared_statements bounds what a server keeps; evicted statements come back when used")
    func evictionBound() throws {
        try withRawSluice(poolSize: 1, settings: ["max_prepared_statements": "2"]) { target in
            let client = try target.connect()
            for i in 1...4 {
                try client.send {
                    $0.parse("SELECT \(i) AS bounded", name: "s\(i)")
                    $0.sync()
                }
                _ = try client.expect(types: "1Z")
            }
            for round in 0..<2 {
                for i in 1...4 {
                    try client.send {
                        $0.bind(statement: "s\(i)")
                        $0.execute()
                        $0.sync()
                    }
                    #expect(try client.expect(types: "2DCZ")[1].dataRowColumns == ["\(i)"], "round \(round)")
                }
            }
            let kept = try client.simpleQuery("SELECT count(*) FROM pg_prepared_statements")
                .compactMap(\.dataRowColumns).first
            #expect(kept == ["2"])
        }
    }

    @Test("a statement that cannot be prepared on the new server fails like on a direct connection, then recovers")
    func hiddenParseFails() throws {
        try withRawSluice(poolSize: 2) { target in
            let a = try target.connect()
            let b = try target.connect()
            _ = try a.simpleQuery("CREATE TABLE vanishing (id int)")
            try a.send {
                $0.parse("SELECT id FROM vanishing", name: "uses_vanishing")
                $0.sync()
            }
            _ = try a.expect(types: "1Z")
            _ = try b.simpleQuery("BEGIN")
            _ = try b.simpleQuery("SELECT 1")
            _ = try target.proxied.directSuperuser().exec("DROP TABLE vanishing")
            try a.send {
                $0.bind(statement: "uses_vanishing")
                $0.execute()
                $0.sync()
            }
            let failed = try a.expect(types: "EZ")
            #expect(failed[0].sqlState == "42P01")
            _ = try a.simpleQuery("CREATE TABLE vanishing (id int)")
            try a.send {
                $0.bind(statement: "uses_vanishing")
                $0.execute()
                $0.sync()
            }
            _ = try a.expect(types: "2CZ")
            _ = try b.simpleQuery("COMMIT")
        }
    }

    @Test("SQL DEALLOCATE of a protocol-level statement answers as PostgreSQL does, on any server")
    func sqlDeallocate() throws {
        try withRawSluice(poolSize: 2, settings: ["workers": "1"]) { target in
            let a = try target.connect()
            let b = try target.connect()
            try a.send {
                $0.parse("SELECT 1", name: "Mixed_Case")
                $0.parse("SELECT 2", name: "second")
                $0.sync()
            }
            _ = try a.expect(types: "11Z")
            // On the server that has the statement.
            var replies = try a.simpleQuery("DEALLOCATE \"Mixed_Case\"")
            #expect(replies.map(\.typeChar) == ["C", "Z"])
            #expect(replies.first?.commandTag == "DEALLOCATE")
            // On another server: B holds the one A used.
            _ = try b.simpleQuery("BEGIN")
            _ = try b.simpleQuery("SELECT 1")
            replies = try a.simpleQuery("  deallocate prepare SECOND ; ")
            #expect(replies.map(\.typeChar) == ["C", "Z"])
            #expect(replies.first?.commandTag == "DEALLOCATE")
            _ = try b.simpleQuery("COMMIT")
            // Gone, as on a direct connection: Bind fails with 26000, and the name can be prepared again.
            try a.send {
                $0.bind(statement: "second", parameters: [])
                $0.execute()
                $0.sync()
            }
            replies = try a.expect(types: "EZ")
            #expect(replies.first?.sqlState == "26000")
            try a.send {
                $0.parse("SELECT 3", name: "second")
                $0.bind(statement: "second", parameters: [])
                $0.execute()
                $0.sync()
            }
            replies = try a.expect(types: "12DCZ")
            #expect(replies[2].dataRowColumns == ["3"])
            // A name the client never prepared gets PostgreSQL's own error.
            try a.send { $0.query("DEALLOCATE nothing_here") }
            #expect(try a.expect(types: "EZ").first?.sqlState == "26000")
        }
    }

    @Test("a reload to max_prepared_statements = 0 keeps tracking a client that has statements")
    func reloadToZeroKeepsTracking() throws {
        try withRawSluice(poolSize: 2, settings: ["workers": "1"]) { target in
            let a = try target.connect()
            let b = try target.connect()
            try a.send {
                $0.parse("SELECT 'kept'", name: "kept")
                $0.sync()
            }
            _ = try a.expect(types: "1Z")
            let path = try #require(target.proxied.sluice.configPath)
            // The main section is last: a line appended lands in it.
            let text = try String(contentsOfFile: path, encoding: .utf8) + "max_prepared_statements = 0\n"
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            target.proxied.sluice.signal(SIGHUP)
            Thread.sleep(forTimeInterval: 0.5)
            // On the other server too, the statement is found under its server name.
            _ = try b.simpleQuery("BEGIN")
            _ = try b.simpleQuery("SELECT 1")
            try a.send {
                $0.bind(statement: "kept", parameters: [])
                $0.execute()
                $0.sync()
            }
            #expect(try a.expect(types: "2DCZ")[1].dataRowColumns == ["kept"])
            _ = try b.simpleQuery("COMMIT")
        }
    }

    @Test("max_client_prepared_statements bounds what one client holds; closing one makes room")
    func clientStatementBound() throws {
        try withRawSluice(poolSize: 1, settings: ["max_client_prepared_statements": "2"]) { target in
            let a = try target.connect()
            try a.send {
                $0.parse("SELECT 1", name: "s1")
                $0.parse("SELECT 2", name: "s2")
                $0.parse("SELECT 3", name: "s3")
                $0.sync()
            }
            let replies = try a.expect(types: "11EZ")
            #expect(replies[2].sqlState == "53400")
            try a.send {
                $0.closeStatement("s1")
                $0.parse("SELECT 3", name: "s3")
                $0.bind(statement: "s3", parameters: [])
                $0.execute()
                $0.sync()
            }
            #expect(try a.expect(types: "312DCZ")[3].dataRowColumns == ["3"])
        }
    }

    @Test("session pooling forwards statement names as they came")
    func sessionModeUntouched() throws {
        try withRawSluice(poolSize: 1, settings: ["pool_mode": "session"]) { target in
            let client = try target.connect()
            try client.send {
                $0.parse("SELECT 'session'", name: "as_named")
                $0.sync()
            }
            _ = try client.expect(types: "1Z")
            let names = try client.simpleQuery("SELECT name FROM pg_prepared_statements")
                .compactMap(\.dataRowColumns)
            #expect(names == [["as_named"]])
        }
    }
}
