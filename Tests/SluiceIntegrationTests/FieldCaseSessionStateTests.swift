import Foundation
import Testing

/// Session state in transaction pooling: a client's settings follow it to whichever server runs its next
/// transaction and never reach another client; state that cannot move pins the client to its server.
@Suite("Field case F5: session state")
struct FieldCaseSessionStateTests {
    /// One event loop, so that which idle server a client gets depends only on the order servers came
    /// back (with two, each client prefers servers on its own loop).
    static let oneLoop = ["workers": "1"]

    @Test("F5: a SET inside a committed transaction stays with its client, not the next one on the server")
    func committedSetStaysWithItsClient() throws {
        let proxied = try ProxiedDatabase(poolSize: 1)
        defer { proxied.stop() }
        let a = try proxied.connect()
        let b = try proxied.connect()
        try a.exec("BEGIN; SET statement_timeout = '5s'; COMMIT;")
        for _ in 0..<3 {
            #expect(try b.value("SHOW statement_timeout") == "0")
            #expect(try a.value("SHOW statement_timeout") == "5s")
        }
    }

    @Test("F5, pg_dump's sequence: the RESET rolled back, the session's search_path stays with its client")
    func pgDumpSequence() throws {
        let proxied = try ProxiedDatabase(poolSize: 1)
        defer { proxied.stop() }
        let a = try proxied.connect()
        let b = try proxied.connect()
        try b.exec("CREATE TABLE visible_to_b (x int); INSERT INTO visible_to_b VALUES (1)")
        try a.exec("SET search_path = ''")
        try a.exec("BEGIN")
        try a.exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        try a.exec("RESET search_path")
        try a.exec("ROLLBACK")
        #expect(try b.value("SHOW search_path") == "\"$user\", public")
        #expect(try b.value("SELECT x FROM visible_to_b") == "1")
        #expect(try a.value("SHOW search_path") == "\"\"")
        #expect(try b.value("SHOW transaction_isolation") == "read committed")
        #expect(try a.value("SHOW search_path") == "\"\"")
    }

    @Test("settings follow their client to another server, and only the difference is replayed")
    func settingsFollowAcrossServers() throws {
        let proxied = try ProxiedDatabase(settings: Self.oneLoop, poolSize: 2)
        defer { proxied.stop() }
        let a = try proxied.connect()
        let holder = try proxied.connect()
        try a.exec("SET statement_timeout = '7s'; SET work_mem = '8MB'")
        try a.exec("SELECT set_config('app.tenant', 'tenant_42', false)")
        var pids = Set<String?>()
        for round in 0..<6 {
            // Every other round the server A used last is held, so A runs on the other one.
            let held = round % 2 == 0
            if held { try holder.exec("BEGIN; SELECT 1") }
            pids.insert(try a.value("SELECT pg_backend_pid()"))
            #expect(try a.value("SHOW statement_timeout") == "7s")
            #expect(try a.value("SHOW work_mem") == "8MB")
            #expect(try a.value("SELECT current_setting('app.tenant')") == "tenant_42")
            if held {
                #expect(try holder.value("SHOW statement_timeout") == "0")
                #expect(try holder.value("SELECT coalesce(current_setting('app.tenant', true), '')") == "")
                try holder.exec("COMMIT")
            }
        }
        #expect(pids.count == 2, "A should have run on both servers")
        try a.exec("RESET work_mem")
        try a.exec("SELECT set_config('app.tenant', '', false)")
        let other = try proxied.connect()
        for _ in 0..<4 {
            #expect(try a.value("SHOW work_mem") == "4MB")
            #expect(try other.value("SHOW statement_timeout") == "0")
            #expect(try other.value("SELECT coalesce(current_setting('app.tenant', true), '')") == "")
        }
    }

    @Test("a client that leaves right after a SET leaves its server to the pool, without the setting")
    func leavingAfterSet() throws {
        let proxied = try ProxiedDatabase(poolSize: 1)
        defer { proxied.stop() }
        for _ in 0..<5 {
            let a = try proxied.connect()
            let server = try a.value("SELECT pg_backend_pid()")
            try a.exec("SET statement_timeout = '1s'")
            a.close()
            let b = try proxied.connect()
            #expect(try b.value("SHOW statement_timeout") == "0")
            #expect(try b.value("SELECT pg_backend_pid()") == server, "the server should be kept, not replaced")
            b.close()
        }
    }

    @Test("transaction semantics: ROLLBACK, ROLLBACK TO SAVEPOINT, SET LOCAL, a failed COMMIT, RESET ALL")
    func transactionSemantics() throws {
        let proxied = try ProxiedDatabase(poolSize: 1)
        defer { proxied.stop() }
        let a = try proxied.connect()
        let b = try proxied.connect()
        try a.exec("BEGIN; SET statement_timeout = '3s'; ROLLBACK")
        #expect(try a.value("SHOW statement_timeout") == "0")
        try a.exec(
            "BEGIN; SET statement_timeout = '1s'; SAVEPOINT s; SET statement_timeout = '2s'; ROLLBACK TO s; COMMIT")
        #expect(try b.value("SHOW statement_timeout") == "0")
        #expect(try a.value("SHOW statement_timeout") == "1s")
        try a.exec("BEGIN; SET LOCAL work_mem = '16MB'; SELECT set_config('app.local', 'x', true); COMMIT")
        #expect(try b.value("SHOW work_mem") == "4MB")
        #expect(try a.value("SHOW work_mem") == "4MB")
        try a.exec("BEGIN")
        try a.exec("SET lock_timeout = '9s'")
        #expect(throws: PQError.self) { try a.exec("SELECT 1/0") }
        try a.exec("COMMIT")
        #expect(try a.value("SHOW lock_timeout") == "0")
        #expect(try b.value("SHOW lock_timeout") == "0")
        try a.exec("RESET ALL")
        #expect(try a.value("SHOW statement_timeout") == "0")
        #expect(try b.value("SHOW statement_timeout") == "0")
    }

    @Test("set_config with a bound value (extended protocol) and in a named statement is followed")
    func boundSetConfig() throws {
        let proxied = try ProxiedDatabase(poolSize: 1)
        defer { proxied.stop() }
        let a = try proxied.connect()
        let b = try proxied.connect()
        try a.execParams("SELECT set_config('app.user', $1, false)", ["alice"])
        #expect(try b.value("SELECT coalesce(current_setting('app.user', true), '')") == "")
        #expect(try a.value("SELECT current_setting('app.user')") == "alice")
        try a.prepare("set_search_path", "SELECT set_config('search_path', $1, false)")
        try a.execPrepared("set_search_path", ["pg_catalog"])
        #expect(try b.value("SHOW search_path") == "\"$user\", public")
        #expect(try a.value("SHOW search_path") == "pg_catalog")
    }

    @Test("with statement tracking off, a set_config in a named statement is still followed")
    func setConfigWithoutStatementTracking() throws {
        let proxied = try ProxiedDatabase(settings: ["max_prepared_statements": "0"], poolSize: 1)
        defer { proxied.stop() }
        let a = try proxied.connect()
        let b = try proxied.connect()
        try a.prepare("set_timeout", "SELECT set_config('statement_timeout', $1, false)")
        try a.execPrepared("set_timeout", ["6s"])
        #expect(try b.value("SHOW statement_timeout") == "0")
        try a.execParams("SELECT set_config('lock_timeout', $1, false)", ["2s"])
        #expect(try b.value("SHOW lock_timeout") == "0")
    }

    @Test("SET ROLE pins the client to its server; RESET ROLE frees it; nobody else ever runs as the role")
    func setRolePins() throws {
        let proxied = try ProxiedDatabase(settings: Self.oneLoop, poolSize: 2)
        defer { proxied.stop() }
        let setup = try proxied.directSuperuser()
        let reader = "sluice_f5_reader_\(UInt32.random(in: 0...UInt32.max))"
        try setup.exec("CREATE ROLE \(reader); GRANT \(reader) TO \(proxied.role.name)")
        defer { _ = try? setup.exec("DROP OWNED BY \(reader); DROP ROLE \(reader)") }
        let a = try proxied.connect()
        let b = try proxied.connect()
        try a.exec("SET ROLE \(reader)")
        let pinned = try a.value("SELECT pg_backend_pid()")
        for _ in 0..<5 {
            #expect(try b.value("SELECT current_user") == proxied.role.name)
            #expect(try b.value("SELECT pg_backend_pid()") != pinned)
            #expect(try a.value("SELECT current_user") == reader)
            #expect(try a.value("SELECT pg_backend_pid()") == pinned)
        }
        try a.exec("RESET ROLE")
        #expect(try a.value("SELECT current_user") == proxied.role.name)
        #expect(try servesOthers(pinned, a: a, b: b), "A's server should serve others once the role is reset")
    }

    /// Whether `b` ever runs on the server `a` was pinned to, with `a` taking a server now and then.
    private func servesOthers(_ pinned: String?, a: PQConn, b: PQConn) throws -> Bool {
        for _ in 0..<8 {
            try a.exec("BEGIN; SELECT 1")
            let during = try b.value("SELECT pg_backend_pid()")
            try a.exec("COMMIT")
            let after = try b.value("SELECT pg_backend_pid()")
            if during == pinned || after == pinned { return true }
        }
        return false
    }

    @Test("SET SESSION AUTHORIZATION, seen in the server's ParameterStatus, pins the client until reset")
    func sessionAuthorizationPins() throws {
        let proxied = try ProxiedDatabase(settings: Self.oneLoop, poolSize: 2)
        defer { proxied.stop() }
        let setup = try proxied.directSuperuser()
        let other = "sluice_f5_other_\(UInt32.random(in: 0...UInt32.max))"
        // Only a superuser may take another session user; the role becomes one for this test.
        try setup.exec("CREATE ROLE \(other); ALTER ROLE \(proxied.role.name) SUPERUSER")
        defer { _ = try? setup.exec("ALTER ROLE \(proxied.role.name) NOSUPERUSER; DROP ROLE \(other)") }
        let a = try proxied.connect()
        let b = try proxied.connect()
        // Inside a function, where Sluice's scan cannot see it.
        try a.exec("DO $$BEGIN EXECUTE 'SET SESSION AUTHORIZATION \(other)'; END$$")
        let pinned = try a.value("SELECT pg_backend_pid()")
        for _ in 0..<4 {
            #expect(try b.value("SELECT session_user") == proxied.role.name)
            #expect(try b.value("SELECT pg_backend_pid()") != pinned)
            #expect(try a.value("SELECT session_user") == other)
        }
        try a.exec("RESET SESSION AUTHORIZATION")
        #expect(try servesOthers(pinned, a: a, b: b), "A's server should serve others once reset")
    }

    @Test("LISTEN pins the client, and its notifications arrive between its transactions")
    func listenPins() throws {
        let proxied = try ProxiedDatabase(settings: Self.oneLoop, poolSize: 2)
        defer { proxied.stop() }
        let a = try proxied.connect()
        let b = try proxied.connect()
        try a.exec("LISTEN sluice_channel")
        let pinned = try a.value("SELECT pg_backend_pid()")
        for _ in 0..<3 {
            #expect(try b.value("SELECT pg_backend_pid()") != pinned)
        }
        try b.exec("NOTIFY sluice_channel, 'hello'")
        let received = try a.notifications()
        #expect(received.map(\.payload) == ["hello"])
        #expect(try a.value("SELECT pg_backend_pid()") == pinned)
        try a.exec("UNLISTEN *")
        #expect(try servesOthers(pinned, a: a, b: b), "A's server should serve others after UNLISTEN")
    }

    @Test("temporary tables, session advisory locks, WITH HOLD cursors and SQL PREPARE keep their client's server")
    func otherStatePins() throws {
        let proxied = try ProxiedDatabase(settings: Self.oneLoop, poolSize: 2)
        defer { proxied.stop() }
        let b = try proxied.connect()
        let cases: [(create: String, use: String, expected: String, end: String)] = [
            ("CREATE TEMP TABLE scratch AS SELECT 41 + 1 AS x", "SELECT x FROM scratch", "42", "DROP TABLE scratch"),
            (
                "SELECT pg_advisory_lock(4242)",
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()", "1",
                "SELECT pg_advisory_unlock(4242)"
            ),
            (
                "DECLARE held CURSOR WITH HOLD FOR SELECT 42", "SELECT count(*) FROM pg_cursors WHERE name = 'held'",
                "1", "CLOSE held"
            ),
            ("PREPARE sql_prepared AS SELECT 42", "EXECUTE sql_prepared", "42", "DEALLOCATE sql_prepared"),
        ]
        for item in cases {
            let a = try proxied.connect()
            try a.exec(item.create)
            let pinned = try a.value("SELECT pg_backend_pid()")
            for _ in 0..<3 {
                #expect(try b.value("SELECT pg_backend_pid()") != pinned, "\(item.create)")
                #expect(try a.value(item.use) == item.expected, "\(item.create)")
            }
            try a.exec(item.end)
            #expect(try servesOthers(pinned, a: a, b: b), "\(item.create): A's server should serve others again")
        }
        // A client that leaves while pinned takes its server with it: nobody inherits the lock.
        let c = try proxied.connect()
        try c.exec("SELECT pg_advisory_lock(77)")
        let cPID = try c.value("SELECT pg_backend_pid()")
        c.close()
        let closed = try waitUntil(timeout: .seconds(5)) { try !proxied.serverPIDs().contains(Int32(cPID ?? "") ?? 0) }
        #expect(closed, "the server of a client that left pinned should close")
        #expect(try b.value("SELECT pg_try_advisory_lock(77)") == "t")
    }

    @Test("changes Sluice cannot see (a DO block) are reset on release with server_reset_query_always")
    func invisibleChangesWithResetAlways() throws {
        let proxied = try ProxiedDatabase(settings: ["server_reset_query_always": "1"], poolSize: 1)
        defer { proxied.stop() }
        let a = try proxied.connect(extra: ["options": "-c work_mem=6MB"])
        let b = try proxied.connect()
        try a.exec("DO $$BEGIN PERFORM set_config('statement_timeout', '9s', false); END$$")
        #expect(try b.value("SHOW statement_timeout") == "0")
        #expect(try a.value("SHOW work_mem") == "6MB")
        #expect(try b.value("SHOW work_mem") == "4MB")
    }
}
