import Foundation
import Testing

/// Read/write routing against the test cluster's primary and its streaming replica: where statements land
/// is asked of PostgreSQL itself (`pg_is_in_recovery()` is true only on the standby).
@Suite("Read/write routing", .serialized)
struct RoutingTests {
    /// A routed database, with checks often enough that tests need not wait long for the monitor.
    static func routed(
        _ extra: [String: String] = [:], settings: [String: String] = [:]
    ) throws -> ProxiedDatabase {
        let cluster = try TestCluster.current()
        guard let replica = cluster.replicaPort else {
            throw HarnessError("SLUICE_TEST_REPLICA_PORT is not set: scripts/test starts a replica")
        }
        let proxied = try ProxiedDatabase(
            // The standby may refuse the monitor's first logins (the role is not replayed yet): a short ban.
            settings: ["routing_check_period": "0.2", "replica_ban_time": "1"].merging(settings) { _, new in new },
            databaseExtra: ["replicas": "\(cluster.host):\(replica)"].merging(extra) { _, new in new })
        // The role and database were made on the primary a moment ago: the standby has them once it has
        // replayed that, and the monitor has seen it answer.
        let ready = try waitUntil(timeout: .seconds(20)) {
            let probe = try proxied.connect()
            defer { probe.close() }
            return try probe.value("SELECT pg_is_in_recovery()") == "t"
        }
        guard ready else {
            proxied.stop()
            throw HarnessError("reads never reached the replica")
        }
        return proxied
    }

    @Test("F9: plain reads land on the replica; writes, locking reads and volatile calls on the primary")
    func readsAndWrites() throws {
        let proxied = try Self.routed()
        defer { proxied.stop() }
        let client = try proxied.connect()
        // A client that never writes: read-your-writes sends nobody else's reads to the primary.
        let reader = try proxied.connect()
        try client.exec("CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 0)")
        try client.exec("CREATE SEQUENCE s")
        try client.exec(
            "CREATE FUNCTION bump() RETURNS int LANGUAGE sql AS $$ UPDATE t SET v = v + 1 WHERE id = 1 RETURNING v $$")
        #expect(try reader.value("SELECT pg_is_in_recovery()") == "t")
        // Each of these fails with 25006 on a standby, so passing proves it ran on the primary.
        #expect(try client.value("WITH u AS (UPDATE t SET v = v + 1 WHERE id = 1 RETURNING v) SELECT v FROM u") == "1")
        #expect(try client.value("SELECT id FROM t FOR NO KEY UPDATE SKIP LOCKED") == "1")
        #expect(try client.value("SELECT id FROM t FOR UPDATE") == "1")
        #expect(try client.value("SELECT nextval('s')") == "1")
        #expect(try client.value("SELECT bump()") == "2")
        #expect(try reader.value("SELECT pg_is_in_recovery() /* sluice: primary */") == "f")
        // The extended protocol: a read with parameters, and a write.
        #expect(try reader.execParams("SELECT pg_is_in_recovery() AND $1::int = 1", ["1"]).first?.first == "t")
        #expect(try client.execParams("SELECT nextval($1)", ["s"]).first?.first == "2")
        try reader.prepare("is_standby", "SELECT pg_is_in_recovery()")
        #expect(try reader.execPrepared("is_standby").first?.first == "t")
        try client.prepare("next", "SELECT nextval('s')")
        #expect(try client.execPrepared("next").first?.first == "3")
        // What the parser cannot read goes to the primary, which reports the error.
        #expect(throws: PQError.self) { try reader.exec("SELEC pg_is_in_recovery()") }
        // After its own write, a client reads from the primary until the standby has replayed the write.
        try client.exec("INSERT INTO t VALUES (2, 0)")
        #expect(try client.value("SELECT count(*) FROM t") == "2")
    }

    @Test("Transactions: BEGIN READ ONLY runs on the replica, any other transaction on the primary")
    func transactions() throws {
        let proxied = try Self.routed()
        defer { proxied.stop() }
        let client = try proxied.connect()
        try client.exec("BEGIN READ ONLY")
        #expect(try client.value("SELECT pg_is_in_recovery()") == "t")
        try client.exec("COMMIT")
        try client.exec("BEGIN")
        try client.exec("SET TRANSACTION READ ONLY")
        #expect(try client.value("SELECT pg_is_in_recovery()") == "t")
        try client.exec("COMMIT")
        try client.exec("BEGIN")
        #expect(try client.value("SELECT pg_is_in_recovery()") == "f")
        #expect(try client.value("SHOW transaction_read_only") == "off")
        try client.exec("ROLLBACK")
        // A transaction that ends before any statement never reaches a server. (Another client: this one's
        // transaction on the primary may have written, so its reads wait for the standby to replay that.)
        let other = try proxied.connect()
        try other.exec("BEGIN")
        try other.exec("COMMIT")
        #expect(try other.value("SELECT pg_is_in_recovery()") == "t")
        try client.exec("START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY")
        #expect(try client.value("SELECT pg_is_in_recovery()") == "f")
        try client.exec("COMMIT")
    }

    @Test("Session overrides: SET sluice.route, the startup option and the _ro alias")
    func overrides() throws {
        let proxied = try Self.routed()
        defer { proxied.stop() }
        let client = try proxied.connect()
        try client.exec("SET sluice.route = 'primary'")
        #expect(try client.value("SELECT pg_is_in_recovery()") == "f")
        #expect(try client.value("SHOW sluice.route") == "primary")
        try client.exec("SET sluice.route = auto")
        #expect(try client.value("SELECT pg_is_in_recovery()") == "t")
        #expect(throws: PQError.self) { try client.exec("SET sluice.route = 'sideways'") }
        let viaOption = try proxied.connect(extra: ["options": "-c sluice.route=primary"])
        #expect(try viaOption.value("SELECT pg_is_in_recovery()") == "f")
        let readOnly = try PQConn.connect(
            port: proxied.sluice.port, user: proxied.role.name, password: proxied.role.password,
            dbname: proxied.database + "_ro")
        #expect(try readOnly.value("SELECT pg_is_in_recovery()") == "t")
        #expect(readOnly.parameterStatus("in_hot_standby") == "on")
        #expect(client.parameterStatus("in_hot_standby") == "off")
        // libpq's own check of the session it reached.
        _ = try PQConn.connect(
            port: proxied.sluice.port, user: proxied.role.name, password: proxied.role.password,
            dbname: proxied.database + "_ro", extra: ["target_session_attrs": "standby"])
        #expect(throws: PQError.self) { try proxied.connect(extra: ["target_session_attrs": "standby"]) }
        #expect(throws: PQError.self) { try readOnly.exec("CREATE TABLE nope (x int)") }
    }

    @Test("F10: read-your-writes under a paused replica; reads return to it once it catches up")
    func readYourWritesWithPausedReplay() throws {
        let proxied = try Self.routed(settings: ["replica_max_lag_seconds": "2"])
        defer { proxied.stop() }
        let cluster = proxied.cluster
        let writer = try proxied.connect()
        try writer.exec("CREATE TABLE rows (id int)")
        let standby = try cluster.superuserConnection(replica: true)
        try standby.exec("SELECT pg_wal_replay_pause()")
        defer { _ = try? standby.exec("SELECT pg_wal_replay_resume()") }
        for id in 1...20 {
            try writer.exec("INSERT INTO rows VALUES (\(id))")
            #expect(try writer.value("SELECT count(*) FROM rows WHERE id = \(id)") == "1")
        }
        // Another client, with no writes of its own, still reads from the standby until the lag limit.
        let reader = try proxied.connect()
        let movedToPrimary = try waitUntil(timeout: .seconds(10)) {
            return try reader.value("SELECT pg_is_in_recovery()") == "f"
        }
        #expect(movedToPrimary, "reads left the lagging replica")
        #expect(try reader.value("SELECT count(*) FROM rows") == "20")
        try standby.exec("SELECT pg_wal_replay_resume()")
        let back = try waitUntil(timeout: .seconds(15)) { try reader.value("SELECT pg_is_in_recovery()") == "t" }
        #expect(back, "reads returned to the replica")
        #expect(try reader.value("SELECT count(*) FROM rows") == "20")
    }

    @Test("a statement a standby refuses with 25006 runs again on the primary, and goes there from then on")
    func standbyRefusalRetried() throws {
        // The operator vouches (wrongly) for a function that writes: the standby will refuse it.
        let proxied = try Self.routed(settings: ["routing_safe_functions": "note_it"])
        defer { proxied.stop() }
        let setup = try proxied.connect()
        try setup.exec("CREATE TABLE notes (n int)")
        try setup.exec(
            "CREATE FUNCTION note_it() RETURNS int LANGUAGE sql AS $$ INSERT INTO notes VALUES (1) RETURNING n $$")
        let client = try proxied.connect()
        // Until the standby has the function, it would fail there with 42883 instead: wait for it.
        let replayed = try waitUntil(timeout: .seconds(10)) {
            try client.value("SELECT count(*) FROM pg_proc WHERE proname = 'note_it'") == "1"
        }
        #expect(replayed)
        #expect(try client.value("SELECT note_it()") == "1")
        #expect(try client.value("SELECT note_it()") == "1")
        #expect(try setup.value("SELECT count(*) FROM notes") == "2")
        #expect(proxied.sluice.stderrText.contains("a replica refused a statement classified as a read"))
    }

    @Test("SHOW BACKENDS and /metrics: each backend's role, reachability, lag and the reads and writes sent there")
    func monitoring() throws {
        let statsPort = try LoopbackPort.free()
        let proxied = try Self.routed(settings: ["stats_listen_port": String(statsPort), "admin_users": "@ROLE@"])
        defer { proxied.stop() }
        let cluster = proxied.cluster
        let client = try proxied.connect()
        for _ in 0..<3 { _ = try client.value("SELECT 1") }
        try client.exec("CREATE TABLE counted (x int)")
        let admin = try PQConn.connect(
            port: proxied.sluice.port, user: proxied.role.name, password: proxied.role.password, dbname: "pgbouncer")
        let rows = try admin.exec("SHOW BACKENDS")
        let replica = try #require(rows.first { $0[1] == String(cluster.replicaPort ?? 0) })
        let primary = try #require(rows.first { $0[1] == String(cluster.port) })
        // host, port, role, state, lag_ms, databases, …, lag_bytes, reads, writes
        #expect(replica[2] == "standby" && replica[3] == "up", "\(replica)")
        #expect(primary[2] == "primary" && primary[3] == "up", "\(primary)")
        #expect(replica[4] != nil && replica[12] != nil)
        #expect(Int(replica[13] ?? "") ?? 0 >= 3)
        #expect(Int(primary[14] ?? "") ?? 0 >= 1)

        let metrics = try HTTPProbe(port: statsPort).request("GET", "/metrics")
        let backend = "database=\"\(proxied.database)\",backend=\"\(cluster.host):\(cluster.replicaPort ?? 0)\""
        #expect(metrics.body.contains("sluice_backend_primary{\(backend)} 0"), "\(metrics.body)")
        #expect(metrics.body.contains("sluice_backend_serves_reads{\(backend)} 1"))
        #expect(metrics.body.contains("sluice_replica_lag_bytes{\(backend)}"))
        #expect(metrics.body.contains("sluice_routed_reads_total{\(backend)}"))
        // Per-pool series stay unique: the standby's pool is named by its address.
        #expect(metrics.body.contains("database=\"\(proxied.database)@\(cluster.host):\(cluster.replicaPort ?? 0)\""))
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/promtool") {
            let checked = try run("/usr/bin/promtool", ["check", "metrics"], stdin: metrics.body)
            #expect(checked.succeeded && checked.stdout.isEmpty && checked.stderr.isEmpty, "\(checked)")
        }
    }

    @Test("a reload that adds replicas starts routing, one that removes them stops it")
    func reload() throws {
        let cluster = try TestCluster.current()
        let replica = try #require(cluster.replicaPort)
        let proxied = try ProxiedDatabase(settings: ["routing_check_period": "0.2", "replica_ban_time": "1"])
        defer { proxied.stop() }
        let client = try proxied.connect()
        #expect(try client.value("SELECT pg_is_in_recovery()") == "f")
        let path = try #require(proxied.sluice.configPath)
        let plain = try String(contentsOfFile: path, encoding: .utf8)
        let entry = "dbname=\(proxied.database)"
        try plain.replacingOccurrences(of: entry, with: entry + " replicas=\(cluster.host):\(replica)")
            .write(toFile: path, atomically: true, encoding: .utf8)
        proxied.sluice.signal(SIGHUP)
        #expect(
            try waitUntil(timeout: .seconds(20)) { try client.value("SELECT pg_is_in_recovery()") == "t" },
            "reads reach the replica after the reload\n\(proxied.sluice.logTail())")
        try plain.write(toFile: path, atomically: true, encoding: .utf8)
        proxied.sluice.signal(SIGHUP)
        #expect(
            try waitUntil(timeout: .seconds(10)) { try client.value("SELECT pg_is_in_recovery()") == "f" },
            "reads stay on the primary once the replicas are gone")
        for _ in 0..<5 { #expect(try client.value("SELECT pg_is_in_recovery()") == "f") }
    }
}
