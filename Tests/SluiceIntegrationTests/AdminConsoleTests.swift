import Foundation
import Synchronization
import Testing

/// One statement run on a connection of its own, on a thread of its own (libpq blocks, and the commands
/// under test answer late): `outcome` is nil until it has answered, then its command tag (`tag`) or its
/// single value, or the error.
final class BackgroundStatement: Sendable {
    private let answer = Mutex<String?>(nil)
    var outcome: String? { answer.withLock { $0 } }

    init(_ proxied: ProxiedDatabase, database: String? = nil, _ sql: String, tag: Bool = false) {
        let (port, user, password) = (proxied.sluice.port, proxied.role.name, proxied.role.password)
        let dbname = database ?? proxied.database
        Thread { [self] in
            let result: String
            do {
                let connection = try PQConn.connect(port: port, user: user, password: password, dbname: dbname)
                if tag {
                    _ = try connection.exec(sql)
                    result = connection.lastCommandTag
                } else {
                    result = try connection.value(sql) ?? "NULL"
                }
            } catch {
                result = "failed: \(error)"
            }
            self.answer.withLock { $0 = result }
        }.start()
    }
}

/// The admin console through libpq: PgBouncer's views with PgBouncer's columns, and its commands.
@Suite("Admin console")
struct AdminConsoleTests {
    /// Type OIDs the console uses.
    static let text: UInt32 = 25
    static let int4: UInt32 = 23
    static let int8: UInt32 = 20
    static let numeric: UInt32 = 1700

    /// PgBouncer 1.25's columns, written out here from its source rather than taken from Sluice's table, so
    /// a mistake in either shows up.
    static let expectedColumns: [String: [(String, UInt32)]] = {
        func columns(_ names: String, _ format: String) -> [(String, UInt32)] {
            let split = names.split(separator: " ").map(String.init)
            precondition(split.count == format.count)
            return zip(split, format).map { name, letter in
                (name, ["s": text, "i": int4, "q": int8, "N": numeric, "T": text][letter]!)
            }
        }
        let connection =
            "type user database replication state addr port local_addr local_port connect_time request_time wait "
            + "wait_us close_needed ptr link remote_pid tls application_name prepared_statements id"
        let stats =
            "server_assignment_count xact_count query_count bytes_received bytes_sent xact_time query_time wait_time "
            + "client_parse_count server_parse_count bind_count client_login_count"
        let statsColumns =
            "database total_server_assignment_count total_xact_count total_query_count total_received total_sent "
            + "total_xact_time total_query_time total_wait_time total_client_parse_count total_server_parse_count "
            + "total_bind_count total_client_login_count avg_server_assignment_count avg_xact_count "
            + "avg_query_count avg_recv avg_sent avg_xact_time avg_query_time avg_wait_time "
            + "avg_client_parse_count avg_server_parse_count avg_bind_count avg_client_login_count"
        return [
            "pools": columns(
                "database user cl_active cl_waiting cl_active_cancel_req cl_waiting_cancel_req sv_active "
                    + "sv_active_cancel sv_being_canceled sv_idle sv_used sv_tested sv_login maxwait maxwait_us "
                    + "pool_mode load_balance_hosts", "ssiiiiiiiiiiiiiss"),
            "clients": columns(connection, "ssssssisiTTiiississii"),
            "servers": columns(connection, "ssssssisiTTiiississii"),
            "databases": columns(
                "name host port database force_user pool_size min_pool_size reserve_pool_size server_lifetime "
                    + "pool_mode load_balance_hosts max_connections current_connections max_client_connections "
                    + "current_client_connections paused disabled", "ssissiiiissiiiiii"),
            "users": columns(
                "name pool_size reserve_pool_size pool_mode max_user_connections current_connections "
                    + "max_user_client_connections current_client_connections", "ssssiiii"),
            "stats": columns(statsColumns, "s" + String(repeating: "N", count: 24)),
            "stats_totals": columns("database " + stats, "s" + String(repeating: "N", count: 12)),
            "stats_averages": columns(
                "database server_assignment_count xact_count query_count bytes_received bytes_sent xact_time "
                    + "query_time wait_time avg_client_parse_count avg_server_parse_count avg_bind_count "
                    + "avg_client_login_count", "s" + String(repeating: "N", count: 12)),
            "totals": columns("name value", "sN"),
            "lists": columns("list items", "si"),
            "mem": columns("name size used free memtotal", "siiii"),
            "config": columns("key value default changeable", "ssss"),
            "state": columns("key value", "ss"),
            "version": columns("version", "s"),
            "peers": columns("peer_id host port pool_size", "isii"),
            "peer_pools": columns(
                "peer_id cl_active_cancel_req cl_waiting_cancel_req sv_active_cancel sv_login", "iiiii"),
            "dns_hosts": columns("hostname ttl addrs", "sqs"),
            "dns_zones": columns("zonename serial count", "sqi"),
            "sockets": columns(
                connection + " recv_pos pkt_pos pkt_remain send_pos send_remain pkt_avail send_avail",
                "ssssssisiTTiiississii" + "iiiiiii"),
        ]
    }()

    static func console(_ proxied: ProxiedDatabase) throws -> PQConn {
        try PQConn.connect(
            port: proxied.sluice.port, user: proxied.role.name, password: proxied.role.password, dbname: "pgbouncer")
    }

    @Test("every PgBouncer SHOW view has PgBouncer 1.25's column names, order and types")
    func columnsMatchPgBouncer() throws {
        let proxied = try ProxiedDatabase(settings: ["admin_users": "@ROLE@"], poolSize: 2)
        defer { proxied.stop() }
        let admin = try Self.console(proxied)
        let client = try proxied.connect()
        #expect(try client.value("SELECT 1") == "1")
        #expect(admin.parameterStatus("server_version") == "1.25.2/bouncer")
        for (view, expected) in Self.expectedColumns.sorted(by: { $0.key < $1.key }) {
            _ = try admin.exec("SHOW \(view.uppercased())")
            let got = admin.lastColumns
            #expect(got.map(\.name) == expected.map(\.0), "SHOW \(view)")
            #expect(got.map(\.type) == expected.map(\.1), "SHOW \(view) types")
        }
        // SHOW ACTIVE_SOCKETS shares SOCKETS' columns; Sluice's own views answer too.
        for view in ["active_sockets", "backends", "latency", "help"] { _ = try admin.exec("show \(view);") }
        #expect(try admin.value("SHOW VERSION")?.hasPrefix("PgBouncer 1.25.2") == true)
    }

    @Test("the views describe what is happening: a pool with its client and server, the stats of the queries")
    func viewsDescribeTheTraffic() throws {
        let proxied = try ProxiedDatabase(
            settings: ["admin_users": "@ROLE@", "health_check_period": "1", "stats_period": "1"], poolSize: 2)
        defer { proxied.stop() }
        let admin = try Self.console(proxied)
        func rows(_ view: String) throws -> [[String: String?]] {
            let table = try admin.exec("SHOW \(view)")
            let names = admin.lastColumns.map(\.name)
            return table.map { Dictionary(uniqueKeysWithValues: zip(names, $0)) }
        }
        let client = try proxied.connect(extra: ["application_name": "viewer"])
        // The server that logged in for the client's welcome may still be settling (its TLS session, the
        // client's settings); once it is idle, the transaction gets it rather than a second one.
        #expect(
            waitUntil(timeout: .seconds(10)) {
                (try? rows("POOLS").first { $0["database"] == proxied.database }?["sv_idle"]) == "1"
            })
        _ = try client.exec("BEGIN")
        _ = try client.exec("SELECT 1")
        let pools = try rows("POOLS")
        let pool = try #require(pools.first { $0["database"] == proxied.database })
        #expect(pool["user"] == proxied.role.name)
        #expect(pool["cl_active"] == "1" && pool["sv_active"] == "1" && pool["pool_mode"] == "transaction", "\(pool)")
        let clients = try rows("CLIENTS")
        let mine = try #require(clients.first { $0["application_name"] == "viewer" })
        #expect(mine["state"] == "active" && mine["database"] == proxied.database, "\(mine)")
        // The health check's own connection may be listed too (state "tested", no link): the client's is the
        // linked one.
        let servers = try rows("SERVERS")
        let server = try #require(servers.first { $0["database"] == proxied.database && $0["link"] == mine["ptr"] })
        #expect(server["state"] == "active", "\(server) \(mine)")
        let pids = try proxied.serverPIDs()
        #expect(pids.map(String.init).contains(server["remote_pid"]!!), "\(server) \(pids)")
        _ = try client.exec("COMMIT")
        #expect(try rows("SERVERS").first { $0["remote_pid"] == server["remote_pid"] }?["state"] == "idle")
        // The health check's connection, open for a moment every second (longer with TLS under the sanitizer),
        // counts too while it lasts: the counts are read once it is gone.
        var databases = try rows("DATABASES")
        #expect(
            waitUntil(timeout: .seconds(10)) {
                databases = (try? rows("DATABASES")) ?? databases
                let lists = try? admin.exec("SHOW LISTS").first { $0[0] == "used_servers" }?[1]
                return databases.first { $0["name"] == proxied.database }?["current_connections"] == "1"
                    && lists == "1"
            })
        let database = try #require(databases.first { $0["name"] == proxied.database })
        #expect(database["pool_size"] == "2" && database["current_connections"] == "1", "\(database)")
        #expect(databases.contains { $0["name"] == "pgbouncer" })
        let totals = try #require(try rows("STATS_TOTALS").first { $0["database"] == proxied.database })
        #expect(totals["xact_count"] == "1" && totals["query_count"] == "3", "\(totals)")
        // The pool's first login borrowed a server to learn the welcome, then the transaction got one.
        #expect(totals["client_login_count"] == "1" && totals["server_assignment_count"] == "2", "\(totals)")
        var lists: [String: String] = [:]
        #expect(
            waitUntil(timeout: .seconds(10)) {
                let rows = (try? admin.exec("SHOW LISTS")) ?? []
                lists = Dictionary(uniqueKeysWithValues: rows.map { ($0[0]!, $0[1]!) })
                return lists["used_servers"] == "1"
            })
        #expect(lists["pools"] == "1" && lists["used_servers"] == "1" && lists["used_clients"] == "2", "\(lists)")
        let config = try rows("CONFIG")
        #expect(config.first { $0["key"] == "default_pool_size" }?["value"] == "5")
        #expect(config.map { $0["key"]!! } == config.map { $0["key"]!! }.sorted())
        let state = Dictionary(uniqueKeysWithValues: try admin.exec("SHOW STATE").map { ($0[0]!, $0[1]!) })
        #expect(state == ["active": "yes", "paused": "no", "suspended": "no"])
        #expect(waitUntil(timeout: .seconds(5)) { (try? rows("BACKENDS").first?["state"]) == "up" })
        let backend = try #require(try rows("BACKENDS").first)
        #expect(backend["role"] == "primary" && backend["databases"] == proxied.database, "\(backend)")
        #expect(backend["last_check"] != nil && backend["last_error"] == .some(nil), "\(backend)")
        // Percentiles describe the last whole stats_period.
        var latency: [String: String?] = [:]
        #expect(
            waitUntil(timeout: .seconds(5)) {
                latency = (try? rows("LATENCY").first { $0["database"] == proxied.database }) ?? [:]
                return latency["xact_count"] == "1"
            })
        #expect(latency["xact_p50_us"] != .some(nil) && latency["query_p99_us"] != .some(nil), "\(latency)")
    }

    @Test("PAUSE answers only once the server running a transaction is released; RESUME lets waiting clients on")
    func pauseWaitsForTransactions() throws {
        let proxied = try ProxiedDatabase(settings: ["admin_users": "@ROLE@"], poolSize: 2)
        defer { proxied.stop() }
        let busy = try proxied.connect()
        _ = try busy.exec("BEGIN")
        _ = try busy.exec("SELECT 1")
        let admin = try Self.console(proxied)
        let pause = BackgroundStatement(proxied, database: "pgbouncer", "PAUSE", tag: true)
        sleep(for: .seconds(1))
        #expect(pause.outcome == nil, "PAUSE must wait for the open transaction")
        #expect(try admin.exec("SHOW STATE").first { $0[0] == "paused" }?[1] == "yes")
        _ = try busy.exec("COMMIT")
        #expect(waitUntil(timeout: .seconds(5)) { pause.outcome != nil })
        #expect(pause.outcome == "PAUSE")
        #expect(try proxied.serverPIDs().isEmpty, "a paused Sluice holds no servers")

        // A query sent while paused waits, and runs after RESUME.
        let waited = BackgroundStatement(proxied, "SELECT 'after resume'")
        sleep(for: .seconds(1))
        #expect(waited.outcome == nil)
        _ = try admin.exec("RESUME")
        #expect(admin.lastCommandTag == "RESUME")
        #expect(waitUntil(timeout: .seconds(5)) { waited.outcome != nil })
        #expect(waited.outcome == "after resume")
        #expect(try busy.value("SELECT 2") == "2")
    }

    @Test("a PAUSE still waiting when another admin resumes is answered with an error, not left hanging")
    func resumeAnswersPendingPause() throws {
        let proxied = try ProxiedDatabase(settings: ["admin_users": "@ROLE@"], poolSize: 2)
        defer { proxied.stop() }
        let busy = try proxied.connect()
        _ = try busy.exec("BEGIN")
        let database = proxied.database
        let pause = BackgroundStatement(proxied, database: "pgbouncer", "PAUSE \(database)", tag: true)
        sleep(for: .seconds(1))
        let admin = try Self.console(proxied)
        _ = try admin.exec("RESUME \(database)")
        #expect(waitUntil(timeout: .seconds(5)) { pause.outcome != nil })
        #expect(pause.outcome?.contains("canceled") == true, "\(pause.outcome ?? "")")
        #expect(throws: PQError.self) { try admin.exec("RESUME \(database)") }
        _ = try busy.exec("COMMIT")
    }

    @Test("KILL drops the database's clients at once and holds new ones until RESUME; KILL_CLIENT drops one")
    func killAndKillClient() throws {
        let proxied = try ProxiedDatabase(settings: ["admin_users": "@ROLE@"], poolSize: 2)
        defer { proxied.stop() }
        let victim = try proxied.connect(extra: ["application_name": "victim"])
        #expect(try victim.value("SELECT 1") == "1")
        let admin = try Self.console(proxied)
        let clients = try admin.exec("SHOW CLIENTS")
        let names = admin.lastColumns.map(\.name)
        let idColumn = try #require(names.firstIndex(of: "id"))
        let appColumn = try #require(names.firstIndex(of: "application_name"))
        let id = try #require(clients.first { $0[appColumn] == "victim" }?[idColumn] ?? nil)
        _ = try admin.exec("KILL_CLIENT \(id)")
        #expect(admin.lastCommandTag == "KILL_CLIENT")
        #expect(throws: PQError.self) { try victim.exec("SELECT 1") }
        #expect(throws: PQError.self) { try admin.exec("KILL_CLIENT 999999") }

        let other = try proxied.connect()
        #expect(try other.value("SELECT 1") == "1")
        _ = try admin.exec("KILL \(proxied.database)")
        #expect(throws: PQError.self) { try other.exec("SELECT 1") }
        #expect(waitUntil(timeout: .seconds(5)) { (try? proxied.serverPIDs().isEmpty) ?? false })
        let served = BackgroundStatement(proxied, "SELECT 'served'")
        sleep(for: .milliseconds(700))
        #expect(served.outcome == nil, "a killed database holds new clients until RESUME")
        _ = try admin.exec("RESUME \(proxied.database)")
        #expect(waitUntil(timeout: .seconds(5)) { served.outcome != nil })
        #expect(served.outcome == "served")
    }

    @Test("RELOAD picks up a changed pool size; SET changes a key; RECONNECT and WAIT_CLOSE finish")
    func reloadSetReconnect() throws {
        let proxied = try ProxiedDatabase(settings: ["admin_users": "@ROLE@"], poolSize: 2)
        defer { proxied.stop() }
        let admin = try Self.console(proxied)
        let client = try proxied.connect()
        #expect(try client.value("SELECT 1") == "1")
        func poolSize() throws -> String? {
            let rows = try admin.exec("SHOW DATABASES")
            let names = admin.lastColumns.map(\.name)
            let index = names.firstIndex(of: "pool_size")!
            return rows.first { $0[0] == proxied.database }?[index] ?? nil
        }
        #expect(try poolSize() == "2")
        let path = try #require(proxied.sluice.configPath)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        try text.replacingOccurrences(of: "pool_size=2", with: "pool_size=4").write(
            toFile: path, atomically: true, encoding: .utf8)
        _ = try admin.exec("RELOAD")
        #expect(admin.lastCommandTag == "RELOAD")
        #expect(try poolSize() == "4")

        _ = try admin.exec("SET default_pool_size = 9")
        #expect(admin.lastCommandTag == "SET")
        let config = try admin.exec("SHOW CONFIG")
        #expect(config.first { $0[0] == "default_pool_size" }?[1] == "9")
        #expect(throws: PQError.self) { try admin.exec("SET listen_port = 1") }
        #expect(throws: PQError.self) { try admin.exec("SET no_such_key = 1") }
        _ = try admin.exec("SET client_encoding = 'UTF8'")

        let before = try proxied.serverPIDs()
        #expect(before.count == 1)
        _ = try admin.exec("RECONNECT \(proxied.database)")
        _ = try admin.exec("WAIT_CLOSE \(proxied.database)")
        #expect(admin.lastCommandTag == "WAIT_CLOSE")
        #expect(try client.value("SELECT 2") == "2")
        #expect(Set(try proxied.serverPIDs()).isDisjoint(with: before), "RECONNECT replaced the server")
    }

    @Test("who may use the console: stats_users only look, others are refused with 42501; bad input gets errors")
    func accessAndBadInput() throws {
        let stats = try ProxiedDatabase(settings: ["stats_users": "@ROLE@"], poolSize: 1)
        defer { stats.stop() }
        let looker = try Self.console(stats)
        #expect(try !looker.exec("SHOW POOLS").isEmpty || looker.lastColumns.count == 17)
        do {
            _ = try looker.exec("PAUSE")
            Issue.record("a stats user paused Sluice")
        } catch let error as PQError {
            #expect(error.sqlState == "42501", "\(error)")
        }
        do {
            _ = try looker.exec("FROB")
            Issue.record("an unknown command succeeded")
        } catch let error as PQError {
            #expect(error.sqlState == "42601", "\(error)")
        }
        do {
            _ = try looker.execParams("SHOW POOLS")
            Issue.record("the extended protocol was accepted")
        } catch let error as PQError {
            #expect(error.message.contains("extended query protocol"), "\(error)")
        }
        #expect(try looker.value("SHOW client_encoding") == "UTF8", "the console still answers after errors")
        _ = try looker.exec("")

        let nobody = try ProxiedDatabase(poolSize: 1)
        defer { nobody.stop() }
        do {
            _ = try Self.console(nobody)
            Issue.record("a user in neither list got in")
        } catch let error as PQError {
            #expect(error.sqlState == "42501", "\(error)")
        }
        // A wrong password is a wrong password, whatever the lists say.
        #expect(throws: PQError.self) {
            try PQConn.connect(port: stats.sluice.port, user: stats.role.name, password: "wrong", dbname: "pgbouncer")
        }
    }

    @Test("DISABLE refuses new clients of a database until ENABLE; existing ones carry on")
    func disableEnable() throws {
        let proxied = try ProxiedDatabase(settings: ["admin_users": "@ROLE@"], poolSize: 1)
        defer { proxied.stop() }
        let admin = try Self.console(proxied)
        let existing = try proxied.connect()
        _ = try admin.exec("DISABLE \(proxied.database)")
        #expect(throws: PQError.self) { try proxied.connect() }
        #expect(try existing.value("SELECT 1") == "1")
        _ = try admin.exec("ENABLE \(proxied.database)")
        #expect(try proxied.connect().value("SELECT 1") == "1")
        #expect(throws: PQError.self) { try admin.exec("DISABLE no_such_database") }
    }

    @Test("PyPI's prometheus-pgbouncer-exporter 2.x scrapes the console as a stats user and exports pool metrics")
    func pgbouncerExporter() throws {
        let proxied = try ProxiedDatabase(settings: ["stats_users": "@ROLE@"], poolSize: 3)
        defer { proxied.stop() }
        let client = try proxied.connect()
        _ = try client.exec("BEGIN")
        _ = try client.exec("SELECT 1")
        let script = DriverTests.driversDirectory.appendingPathComponent("pgbouncer_exporter_check.py").path
        let dsn =
            "postgresql://\(proxied.role.name):\(proxied.role.password)@127.0.0.1:\(proxied.sluice.port)/pgbouncer"
        let result = try run(DriverTests.python(), [script, dsn])
        #expect(result.succeeded, "\(result)")
        let metrics = result.stdout.split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        }
        func value(_ name: String, database: String) -> Double? {
            metrics.first { metric in
                metric["name"] as? String == name
                    && (metric["labels"] as? [String: Any])?["database"] as? String == database
            }?["value"] as? Double
        }
        #expect(value("pgbouncer_pools_client_active_connections", database: proxied.database) == 1, "\(result)")
        #expect(value("pgbouncer_pools_server_active_connections", database: proxied.database) == 1)
        #expect(value("pgbouncer_databases_database_pool_size", database: proxied.database) == 3)
        #expect(value("pgbouncer_stats_queries_total", database: proxied.database) != nil)
        #expect(metrics.contains { $0["name"] as? String == "pgbouncer_config_max_client_conn" })
        _ = try client.exec("COMMIT")
    }

    @Test("psql reaches the console: SHOW HELP's notice, a view, a command with its notice, errors that say why")
    func psql() throws {
        let proxied = try ProxiedDatabase(settings: ["admin_users": "@ROLE@"], poolSize: 2)
        defer { proxied.stop() }
        func psql(_ commands: [String]) throws -> RunResult {
            try run(
                "psql",
                [
                    "-X", "-h", "127.0.0.1", "-p", String(proxied.sluice.port), "-U", proxied.role.name, "-d",
                    "pgbouncer",
                ]
                    + commands.flatMap { ["-c", $0] }, environment: ["PGPASSWORD": proxied.role.password])
        }
        let shown = try psql(["SHOW HELP", "SHOW POOLS", "show lists", "RECONNECT"])
        #expect(shown.succeeded, "\(shown)")
        #expect(shown.stderr.contains("SHOW HELP|CONFIG") && shown.stdout.contains("cl_active"), "\(shown)")
        #expect(shown.stdout.contains("used_clients") && shown.stderr.contains("server connections close"), "\(shown)")
        let refused = try psql(["PAUSE no_such_database"])
        #expect(!refused.succeeded && refused.stderr.contains("no such database"), "\(refused)")
    }

    @Test("the memory Sluice holds for a client's prepared statements shows in SHOW CLIENTS and SHOW MEM")
    func statementMemoryVisible() throws {
        let proxied = try ProxiedDatabase(settings: ["admin_users": "@ROLE@"], poolSize: 2)
        defer { proxied.stop() }
        let client = try proxied.connect(extra: ["application_name": "preparer"])
        for i in 0..<3 { try client.prepare("s\(i)", "SELECT \(i) + $1::int") }
        let admin = try Self.console(proxied)
        let clients = try admin.exec("SHOW CLIENTS")
        let names = admin.lastColumns.map(\.name)
        let mine = try #require(clients.first { $0[names.firstIndex(of: "application_name")!] == "preparer" })
        #expect(mine[names.firstIndex(of: "prepared_statements")!] == "3", "\(mine)")
        let mem = Dictionary(uniqueKeysWithValues: try admin.exec("SHOW MEM").map { ($0[0]!, $0) })
        let statements = try #require(mem["client_prepared_statement_cache"])
        #expect(statements[2] == "3" && Int(statements[4] ?? "") ?? 0 > 3 * 20, "\(statements)")
        #expect(Int(mem["client_cache"]?[1] ?? "") ?? 0 > 0, "\(mem)")
    }

    @Test("SHUTDOWN WAIT_FOR_CLIENTS refuses new clients and exits once the last one leaves; SHUTDOWN exits at once")
    func shutdown() throws {
        let proxied = try ProxiedDatabase(settings: ["admin_users": "@ROLE@"], poolSize: 2)
        defer { proxied.stop() }
        let client = try proxied.connect()
        let admin = try Self.console(proxied)
        _ = try admin.exec("SHUTDOWN WAIT_FOR_CLIENTS")
        #expect(admin.lastCommandTag == "SHUTDOWN")
        #expect(throws: PQError.self) { try proxied.connect() }
        #expect(try client.value("SELECT 1") == "1", "connected clients carry on")
        #expect(proxied.sluice.isRunning)
        client.close()
        admin.close()
        #expect(proxied.sluice.waitForExit(timeout: .seconds(10)) == 0, "\(proxied.sluice.logTail())")

        let again = try ProxiedDatabase(settings: ["admin_users": "@ROLE@"], poolSize: 2)
        defer { again.stop() }
        let other = try again.connect()
        _ = try Self.console(again).exec("SHUTDOWN")
        #expect(again.sluice.waitForExit(timeout: .seconds(10)) == 0, "\(again.sluice.logTail())")
        #expect(throws: PQError.self) { try other.exec("SELECT 1") }
    }

    @Test("user pgbouncer on the Unix socket, from Sluice's own account, is an admin without a password")
    func socketOwnerIsAdmin() throws {
        let proxied = try ProxiedDatabase(settings: ["unix_socket_dir": "/tmp"], poolSize: 1)
        defer { proxied.stop() }
        let owner = try PQConn.connect(host: "/tmp", port: proxied.sluice.port, user: "pgbouncer", dbname: "pgbouncer")
        _ = try owner.exec("RECONNECT")
        #expect(owner.lastCommandTag == "RECONNECT")
        // The same user over TCP is an ordinary user: not in the auth_file, so it cannot log in.
        #expect(throws: PQError.self) {
            try PQConn.connect(port: proxied.sluice.port, user: "pgbouncer", password: "x", dbname: "pgbouncer")
        }
    }
}
