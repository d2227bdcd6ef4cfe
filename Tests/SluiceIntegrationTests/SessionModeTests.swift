import Foundation
import Synchronization
import Testing

/// Session pooling: a client keeps its server until it leaves; the server is reset before reuse.
@Suite("Session pooling")
struct SessionModeTests {
    @Test("a client keeps its server and session state across transactions")
    func sessionStateSurvivesTransactions() throws {
        let proxied = try ProxiedDatabase(settings: ["pool_mode": "session"], poolSize: 2)
        defer { proxied.stop() }
        let client = try proxied.connect()
        let pid = try client.value("SELECT pg_backend_pid()")
        try client.exec("CREATE TEMP TABLE scratch (n int)")
        try client.exec("BEGIN; INSERT INTO scratch VALUES (1); COMMIT")
        try client.exec("BEGIN")
        try client.exec("INSERT INTO scratch VALUES (2)")
        try client.exec("COMMIT")
        try client.exec("SET work_mem = '7MB'")
        try client.prepare("count_scratch", "SELECT count(*) FROM scratch")
        #expect(try client.execPrepared("count_scratch") == [["2"]])
        #expect(try client.value("SHOW work_mem") == "7MB")
        #expect(try client.value("SELECT pg_backend_pid()") == pid)
    }

    @Test("the next client on the same server finds it reset (DISCARD ALL)")
    func serverIsResetBetweenClients() throws {
        let proxied = try ProxiedDatabase(settings: ["pool_mode": "session"], poolSize: 1)
        defer { proxied.stop() }
        let first = try proxied.connect()
        let pid = try first.value("SELECT pg_backend_pid()")
        try first.exec("CREATE TEMP TABLE leftover (n int)")
        try first.exec("SET work_mem = '7MB'")
        try first.prepare("leftover_statement", "SELECT 1")
        first.close()

        // Pool size 1: the second client must get the very same server, once it is released.
        let second = try proxied.connect()
        #expect(try second.value("SELECT pg_backend_pid()") == pid, "the server should have been reused")
        #expect(try second.value("SELECT to_regclass('pg_temp.leftover') IS NULL") == "t")
        #expect(try second.value("SHOW work_mem") != "7MB")
        #expect(try second.value("SELECT count(*) FROM pg_prepared_statements") == "0")
    }

    @Test("with every server taken, a new client waits until one is released")
    func waitsForAServer() throws {
        let proxied = try ProxiedDatabase(settings: ["pool_mode": "session"], poolSize: 1)
        defer { proxied.stop() }
        let holder = try proxied.connect()
        #expect(try holder.value("SELECT 1") == "1")

        // The waiter blocks inside libpq, so it runs on its own thread.
        let outcome = Mutex<String?>(nil)
        let (port, user, password, database) = (
            proxied.sluice.port, proxied.role.name, proxied.role.password, proxied.database
        )
        let waiter = Thread {
            let result: String
            do {
                let connection = try PQConn.connect(port: port, user: user, password: password, dbname: database)
                result = try connection.value("SELECT 'served'") ?? "NULL"
            } catch {
                result = "failed: \(error)"
            }
            outcome.withLock { $0 = result }
        }
        waiter.start()

        sleep(for: .seconds(1))
        #expect(outcome.withLock { $0 } == nil, "the waiter should not be served while the only server is taken")
        holder.close()
        let served = waitUntil(timeout: .seconds(10)) { outcome.withLock { $0 } != nil }
        #expect(served)
        #expect(outcome.withLock { $0 } == "served")
    }
}
