import Foundation
import Testing

/// Several event loops sharing one set of pools: the pool size stays a global cap, waiting clients are
/// served in the order they asked whichever loop they arrived on, and a server connection serves
/// clients of every loop. Sluice hands accepted clients to its loops in turn, so consecutive
/// connections land on different loops.
@Suite("Several event loops")
struct MultiLoopTests {
    /// `workers` for a test, capped by `SLUICE_TEST_MAX_WORKERS`. The test command's ThreadSanitizer step
    /// sets it to the number of CPUs: with more busy threads than CPUs the sanitizer's runtime stalls
    /// Sluice's threads on each other for seconds (measured here: 3 loops on 2 CPUs, a few transactions a
    /// second; a normal build runs 4 loops on 1 CPU at full speed).
    static func workers(_ wanted: Int) -> String {
        let cap = ProcessInfo.processInfo.environment["SLUICE_TEST_MAX_WORKERS"].flatMap { Int($0) } ?? wanted
        return String(min(wanted, max(1, cap)))
    }

    @Test("workers = 2: one server serves the clients of both loops, first come first served")
    func oneServerServesEveryLoopInOrder() throws {
        try withRawSluice(poolSize: 1, settings: ["workers": Self.workers(2), "query_wait_timeout": "20"]) { target in
            let clients = try (0..<5).map { _ in try target.connect() }
            let holder = clients[0]
            try holder.send { $0.query("BEGIN") }
            _ = try holder.readUntilReadyForQuery()
            let holderPID = try holder.queryValue("SELECT pg_backend_pid()")
            // Each waiter asks while the only server is held; txid_current() numbers the transactions in
            // the order the server ran them.
            for waiter in clients.dropFirst() {
                try waiter.send { $0.query("SELECT pg_backend_pid() || ' ' || txid_current()") }
                sleep(for: .milliseconds(100))
            }
            try holder.send { $0.query("COMMIT") }
            _ = try holder.readUntilReadyForQuery()
            var order: [Int] = []
            for (index, waiter) in clients.dropFirst().enumerated() {
                let replies = try waiter.readUntilReadyForQuery()
                let row = try #require(replies.compactMap(\.dataRowColumns).first?.first ?? nil, "\(replies)")
                let fields = row.split(separator: " ")
                #expect(fields.first.map(String.init) == holderPID, "waiter \(index + 1) ran elsewhere: \(row)")
                order.append(Int(fields.last ?? "") ?? -1)
            }
            #expect(order == order.sorted() && Set(order).count == order.count, "served out of order: \(order)")
            #expect(try target.proxied.serverPIDs().count == 1)
            try target.expectServing()
        }
    }

    @Test(
        "the pool size is one cap across all loops: 100 pgbench clients, pool 4, PostgreSQL refusing a fifth",
        arguments: [2, 4])
    func poolSizeIsGlobal(loops: Int) throws {
        let workers = Self.workers(loops)
        let proxied = try ProxiedDatabase(
            settings: ["workers": workers, "max_client_conn": "200"], poolSize: 4, connectionLimit: 4)
        defer { proxied.stop() }
        try Pgbench.initialize(
            proxied.cluster, user: proxied.role.name, password: proxied.role.password, dbname: proxied.database)
        let result = try Pgbench.load(
            port: proxied.sluice.port, user: proxied.role.name, password: proxied.role.password,
            dbname: proxied.database, ["-n", "-S", "-M", "extended", "-c", "100", "-j", "2", "-T", "4"],
            timeout: .seconds(90))
        let summary = Pgbench.summary(of: result.stdout)
        #expect(result.succeeded, "\(result)\n--- sluice log ---\n\(proxied.sluice.logTail())")
        #expect(summary != nil && summary!.processed > 100, "\(result)")
        #expect(summary?.failed == 0, "\(result)")
        #expect(try proxied.serverPIDs().count <= 4)
        #expect(proxied.sluice.stderrText.contains("workers=\(workers)"), "\(proxied.sluice.logTail())")
    }

    @Test("a cancel request reaches the query whichever loop it and the query's client arrived on")
    func cancelAcrossLoops() throws {
        try withRawSluice(poolSize: 2, settings: ["workers": Self.workers(3)]) { target in
            for round in 0..<4 {
                let client = try target.connect()
                defer { client.terminate() }
                let key = try #require(client.backendKey)
                try client.send { $0.query("SELECT pg_sleep(20)") }
                sleep(for: .milliseconds(200))
                // Connections are handed to the loops in turn, so over the rounds the cancel arrives on
                // every loop relative to the client's.
                for _ in 0..<round { try RawClient(port: target.port).close() }
                let canceller = try RawClient(port: target.port)
                try canceller.send { $0.cancelRequest(processID: key.processID, secretKey: key.secretKey) }
                let clock = ContinuousClock()
                let started = clock.now
                let replies = try client.readUntilReadyForQuery(timeout: .seconds(10))
                #expect(replies.contains { $0.sqlState == "57014" }, "round \(round): \(replies)")
                #expect(clock.now - started < .seconds(5))
                canceller.close()
            }
            try target.expectServing()
        }
    }
}
