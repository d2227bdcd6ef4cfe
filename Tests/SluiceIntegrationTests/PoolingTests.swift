import Foundation
import Testing

/// Transaction pooling: many clients on few servers, limits, waiting, and recovery.
@Suite("Transaction pooling")
struct PoolingTests {
    @Test(
        "200 pgbench clients share a pool of 10 with no failed transaction",
        arguments: ["simple", "extended"])
    func manyClientsFewServers(protocolMode: String) throws {
        // CONNECTION LIMIT 10 makes PostgreSQL itself refuse an eleventh server connection.
        let proxied = try ProxiedDatabase(
            settings: ["max_client_conn": "400"], poolSize: 10, connectionLimit: 10)
        defer { proxied.stop() }
        try Pgbench.initialize(
            proxied.cluster, user: proxied.role.name, password: proxied.role.password, dbname: proxied.database)

        let result = try Pgbench.load(
            port: proxied.sluice.port, user: proxied.role.name, password: proxied.role.password,
            dbname: proxied.database,
            ["-n", "-S", "-M", protocolMode, "-c", "200", "-j", "2", "-T", "5"],
            timeout: .seconds(90))
        Pgbench.expectClean(result, through: proxied.sluice, minimumProcessed: 200)
        #expect(try proxied.serverPIDs().count <= 10)
    }

    @Test("each client sees its own startup parameters in every transaction, whichever server runs it")
    func startupParametersFollowTheClient() throws {
        // One loop: with several, each client prefers the server its own loop drives and the two would
        // rarely swap servers, which is what this test needs to happen.
        let proxied = try ProxiedDatabase(settings: ["workers": "1"], poolSize: 2)
        defer { proxied.stop() }
        // libpq sends PGTZ, PGDATESTYLE and PGAPPNAME as startup parameters; psql lets two clients
        // with different values take turns in one test.
        let clients = [
            ("Asia/Tokyo", "SQL, DMY", "tokyo_client"),
            ("America/Lima", "ISO, MDY", "lima_client"),
        ]
        let sessions = try clients.map { timeZone, dateStyle, application in
            try PsqlSession(
                port: proxied.sluice.port, user: proxied.role.name, password: proxied.role.password,
                dbname: proxied.database,
                environment: ["PGTZ": timeZone, "PGDATESTYLE": dateStyle, "PGAPPNAME": application])
        }
        defer { sessions.forEach { $0.close() } }
        let probe =
            "SELECT pg_backend_pid(), current_setting('TimeZone'), current_setting('DateStyle'), "
            + "current_setting('application_name');"
        var serversSeen: [Set<String>] = [[], []]
        func check(_ index: Int) throws {
            let fields = try sessions[index].query(probe).split(separator: "|").map(String.init)
            let (timeZone, dateStyle, application) = clients[index]
            #expect(fields.dropFirst().elementsEqual([timeZone, dateStyle, application]), "client \(index): \(fields)")
            serversSeen[index].insert(fields.first ?? "")
        }

        // Vary who starts first and who commits first, so that under any hand-out order (oldest
        // idle server first, newest first) the two clients end up swapping servers.
        for round in 0..<8 {
            let first = round % 2
            let second = 1 - first
            try sessions[first].send("BEGIN;")
            try check(first)
            try sessions[second].send("BEGIN;")
            try check(second)
            let commitOrder = (round / 2) % 2 == 0 ? [first, second] : [second, first]
            for index in commitOrder {
                try check(index)
                try sessions[index].send("COMMIT;")
            }
            // Outside a transaction too: each statement may land on either server.
            try check(second)
            try check(first)
        }
        #expect(
            serversSeen.allSatisfy { $0.count == 2 },
            "each client should have run on both servers at some point: \(serversSeen)")
    }

    @Test("the ParameterStatus a client gets at login reflects its own startup parameters")
    func parameterStatusAtLogin() throws {
        let proxied = try ProxiedDatabase(poolSize: 1)
        defer { proxied.stop() }
        let first = try proxied.connect(extra: ["application_name": "first_app", "client_encoding": "LATIN1"])
        #expect(try first.value("SELECT 1") == "1")
        // The second client reuses the server the first one warmed up with other values.
        let second = try proxied.connect(extra: ["application_name": "second_app", "client_encoding": "UTF8"])
        #expect(second.parameterStatus("application_name") == "second_app")
        #expect(second.parameterStatus("client_encoding") == "UTF8")
        #expect(try second.value("SHOW application_name") == "second_app")
        #expect(try second.value("SHOW client_encoding") == "UTF8")
        #expect(first.parameterStatus("application_name") == "first_app")
        #expect(try first.value("SHOW client_encoding") == "LATIN1")
    }

    @Test("a client over max_client_conn is refused at once with an error")
    func maxClientConnections() throws {
        let proxied = try ProxiedDatabase(settings: ["max_client_conn": "3"])
        defer { proxied.stop() }
        // The harness's readiness probe may still be counted for a moment.
        sleep(for: .milliseconds(200))
        let held = try (0..<3).map { _ in try proxied.connect() }
        for connection in held {
            #expect(try connection.value("SELECT 1") == "1")
        }
        let clock = ContinuousClock()
        let started = clock.now
        let error = #expect(throws: PQError.self) { try proxied.connect(timeout: .seconds(10)) }
        #expect(clock.now - started < .seconds(3), "the refusal should come at once")
        #expect(error?.sqlState != nil, "the client should get an ErrorResponse: \(String(describing: error))")

        held[0].close()
        let admitted = waitUntil(timeout: .seconds(5)) { (try? proxied.connect()) != nil }
        #expect(admitted, "a slot freed by a leaving client should admit a new one")
    }

    @Test("a client waiting longer than query_wait_timeout for a server gets an error")
    func queryWaitTimeout() throws {
        let proxied = try ProxiedDatabase(settings: ["query_wait_timeout": "1"], poolSize: 1)
        defer { proxied.stop() }
        let holder = try proxied.connect()
        try holder.exec("BEGIN")
        #expect(try holder.value("SELECT 1") == "1")

        let clock = ContinuousClock()
        let started = clock.now
        #expect(throws: PQError.self) {
            let waiter = try proxied.connect(timeout: .seconds(15))
            try waiter.exec("SELECT 1")
        }
        let waited = clock.now - started
        #expect(waited >= .milliseconds(800) && waited < .seconds(8), "waited \(waited)")

        try holder.exec("COMMIT")
        #expect(try holder.value("SELECT 2") == "2")
        #expect(try proxied.connect().value("SELECT 3") == "3")
    }

    @Test("a server killed mid-transaction fails that client, and the pool heals")
    func serverKilledInTransaction() throws {
        let proxied = try ProxiedDatabase(poolSize: 1)
        defer { proxied.stop() }
        let victim = try proxied.connect()
        try victim.exec("BEGIN")
        let pid = try #require(try victim.value("SELECT pg_backend_pid()").flatMap { Int32($0) })
        try proxied.cluster.terminateBackend(pid)

        #expect(throws: PQError.self) { try victim.exec("SELECT 1") }

        let next = try proxied.connect()
        #expect(try next.value("SELECT 'healed'") == "healed", "\(proxied.sluice.logTail())")
        let newPID = try next.value("SELECT pg_backend_pid()").flatMap { Int32($0) }
        #expect(newPID != pid)
    }

    @Test("an idle server killed behind Sluice's back is replaced before a client needs it")
    func idleServerKilled() throws {
        let proxied = try ProxiedDatabase(poolSize: 1)
        defer { proxied.stop() }
        let client = try proxied.connect()
        let pid = try #require(try client.value("SELECT pg_backend_pid()").flatMap { Int32($0) })
        try proxied.cluster.terminateBackend(pid)
        waitUntil(timeout: .seconds(5)) { (try? proxied.serverPIDs().contains(pid)) == false }
        sleep(for: .milliseconds(200))

        #expect(try client.value("SELECT 'fresh server'") == "fresh server", "\(proxied.sluice.logTail())")
        #expect(try client.value("SELECT pg_backend_pid()").flatMap { Int32($0) } != pid)
    }
}
