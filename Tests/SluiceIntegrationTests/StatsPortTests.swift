import Foundation
import Glibc
import Testing

/// The HTTP stats port: health for the application's readiness check, JSON statistics, Prometheus metrics.
@Suite("Stats port")
struct StatsPortTests {
    /// A database served by the test cluster, and one whose server does not exist.
    static func twoDatabases(token: String? = nil) throws -> (SluiceProcess, HTTPProbe, PQConn, String) {
        let cluster = try TestCluster.current()
        let role = try cluster.makeRole(prefix: "stats")
        let database = try cluster.makeDatabase(owner: role.name)
        let nobody = try LoopbackPort.free()
        let statsPort = try LoopbackPort.free()
        var settings = [
            "stats_listen_port": String(statsPort), "health_check_period": "0.5", "stats_period": "1",
            "server_connect_timeout": "2",
        ]
        if let token { settings["stats_auth_token"] = token }
        let sluice = try SluiceProcess(
            config: { port in
                TestConfig.ini(
                    port: port,
                    databases: [
                        "good": "host=\(cluster.host) port=\(cluster.port) dbname=\(database)",
                        "bad": "host=127.0.0.1 port=\(nobody) dbname=nowhere",
                    ], settings: settings)
            },
            userlist: TestConfig.userlist([(role.name, role.password)]))
        let client = try PQConn.connect(port: sluice.port, user: role.name, password: role.password, dbname: "good")
        return (sluice, HTTPProbe(port: statsPort), client, role.name)
    }

    @Test("made-up user names in startup packets leave no pool behind and never become the health check's user")
    func unauthenticatedNamesLeaveNothing() throws {
        let (sluice, probe, client, role) = try Self.twoDatabases()
        defer { sluice.stop() }
        #expect(try client.value("SELECT 1") == "1")
        // Sorted first, so a check that took any pool's user would take this one. Held at the password
        // request: no pool exists for them even while they are connected.
        var raws: [RawClient] = []
        for name in ["AAAA", "AAAB", "AAAC"] {
            let raw = try RawClient(port: sluice.port)
            try raw.send { $0.startup([("user", name), ("database", "good")]) }
            _ = try raw.read()
            raws.append(raw)
        }
        let during = try probe.request("GET", "/stats")
        #expect(!during.body.contains("AAAA"), "\(during.body)")
        for raw in raws { raw.close() }
        sleep(for: .seconds(2))
        let health = try probe.request("GET", "/health/database?database=good")
        #expect(health.status == 200, "\(health.body)\n\(sluice.logTail())")
        let stats = try probe.request("GET", "/stats")
        #expect(stats.body.contains(role) && !stats.body.contains("AAAA"), "\(stats.body)")
    }

    @Test("a freed pool takes no credential with it: health checks keep the user that worked, with its proven keys")
    func provenKeysOutliveFreedPools() throws {
        let cluster = try TestCluster.current()
        let role = try cluster.makeRole(prefix: "proven")
        let database = try cluster.makeDatabase(owner: role.name)
        let statsPort = try LoopbackPort.free()
        let verifier = try cluster.scramSecret(of: role.name)
        let sluice = try SluiceProcess(
            config: { port in
                TestConfig.ini(
                    port: port, databases: ["good": "host=\(cluster.host) port=\(cluster.port) dbname=\(database)"],
                    settings: [
                        "stats_listen_port": String(statsPort), "health_check_period": "0.5",
                        "pool_idle_timeout": "1", "server_idle_timeout": "1",
                    ])
            },
            // Sorted first, with a password Sluice could log in with but no role behind it: a check that fell
            // back to the first auth_file user would fail.
            userlist: TestConfig.userlist([("aaa_no_such_role", "pw"), (role.name, verifier)]))
        defer { sluice.stop() }
        let probe = HTTPProbe(port: statsPort)
        do {
            let client = try PQConn.connect(port: sluice.port, user: role.name, password: role.password, dbname: "good")
            #expect(try client.value("SELECT 1") == "1")
        }
        let freed = waitUntil(timeout: .seconds(10)) { sluice.stderrText.contains("pool freed") }
        #expect(freed, "\(sluice.logTail())")
        sleep(for: .seconds(2))
        let health = try probe.request("GET", "/health/database?database=good")
        #expect(health.status == 200, "\(health.body)\n\(sluice.logTail())")
    }

    @Test("a name reached through * that PostgreSQL does not know is never health-checked")
    func unknownStarDatabaseIsNotChecked() throws {
        let cluster = try TestCluster.current()
        let role = try cluster.makeRole(prefix: "star")
        let database = try cluster.makeDatabase(owner: role.name)
        let statsPort = try LoopbackPort.free()
        let sluice = try SluiceProcess(
            config: { port in
                TestConfig.ini(
                    port: port,
                    databases: [
                        database: TestConfig.database(cluster, dbname: database),
                        "*": "host=\(cluster.host) port=\(cluster.port)",
                    ],
                    settings: ["stats_listen_port": String(statsPort), "health_check_period": "0.5"])
            },
            userlist: TestConfig.userlist([(role.name, role.password)]))
        defer { sluice.stop() }
        let probe = HTTPProbe(port: statsPort)
        let typo = #expect(throws: PQError.self) {
            try PQConn.connect(
                port: sluice.port, user: role.name, password: role.password, dbname: "no_such_db_\(role.name)")
        }
        #expect(typo?.sqlState == "3D000", "\(String(describing: typo))")
        #expect(
            try PQConn.connect(port: sluice.port, user: role.name, password: role.password, dbname: database)
                .value("SELECT 1") == "1")
        sleep(for: .seconds(2))
        let health = try probe.request("GET", "/health/database")
        #expect(health.status == 200, "\(health.body)\n\(sluice.logTail())")
        #expect(!health.body.contains("no_such_db"), "\(health.body)")
    }

    @Test("/health/database: 503 while a database is down, naming each state; narrowed to one database it can be 200")
    func healthReportsEachDatabase() throws {
        let (sluice, probe, client, _) = try Self.twoDatabases()
        defer { sluice.stop() }
        #expect(try client.value("SELECT 1") == "1")
        let live = try probe.request("GET", "/health")
        #expect(live.status == 200 && live.json["status"] as? String == "ok", "\(live)")
        #expect(live.headers["content-type"]?.hasPrefix("application/json") == true)

        var all = try probe.request("GET", "/health/database")
        #expect(
            waitUntil(timeout: .seconds(10)) {
                all = (try? probe.request("GET", "/health/database")) ?? all
                let states = (all.json["databases"] as? [[String: Any]] ?? []).map { $0["state"] as? String }
                return states.count == 2 && !states.contains("unknown")
            })
        #expect(all.status == 503 && all.json["status"] as? String == "unavailable", "\(all)")
        let entries = all.json["databases"] as? [[String: Any]] ?? []
        let states = Dictionary(uniqueKeysWithValues: entries.map { ($0["name"] as! String, $0["state"] as! String) })
        #expect(states == ["good": "up", "bad": "down"], "\(all.body)")
        #expect(
            !all.body.contains("127.0.0.1") && !all.body.contains("error"), "no addresses or errors without a token")
        let good = try #require(entries.first { $0["name"] as? String == "good" })
        let pool = good["pool"] as? [String: Any] ?? [:]
        #expect(pool["max"] as? Int == 5 && good["waiting_clients"] as? Int == 0, "\(good)")

        let narrowed = try probe.request("GET", "/health/database?database=good")
        #expect(narrowed.status == 200, "\(narrowed)")
        #expect(try probe.request("GET", "/health/database?database=bad").status == 503)
        #expect(try probe.request("GET", "/health/database?database=nosuch").status == 404)
    }

    @Test("/metrics passes promtool and counts the traffic; /stats gives percentiles; a token guards both")
    func metricsAndStats() throws {
        let (sluice, probe, client, user) = try Self.twoDatabases(token: "s3cret")
        defer { sluice.stop() }
        for _ in 0..<5 { #expect(try client.value("SELECT 1") == "1") }
        #expect(throws: PQError.self) { try client.exec("SELECT 1/0") }
        #expect(try probe.request("GET", "/metrics").status == 401)
        #expect(try probe.request("GET", "/metrics", token: "wrong").status == 401)
        #expect(try probe.request("GET", "/health").status == 200, "health needs no token")

        let metrics = try probe.request("GET", "/metrics", token: "s3cret")
        #expect(metrics.status == 200)
        #expect(metrics.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
        let labels = "database=\"good\",user=\"\(user)\""
        #expect(metrics.body.contains("sluice_queries_total{\(labels)} 6"), "\(metrics.body)")
        #expect(metrics.body.contains("sluice_errors_total{\(labels)} 1"))
        #expect(metrics.body.contains("sluice_client_connections{\(labels),state=\"idle\"} 1"))
        #expect(metrics.body.contains("sluice_query_duration_seconds_count{\(labels)} 6"))
        #expect(metrics.body.contains("sluice_pool_size{\(labels)} 5"))
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/promtool") {
            let checked = try run("/usr/bin/promtool", ["check", "metrics"], stdin: metrics.body)
            #expect(checked.succeeded && checked.stdout.isEmpty && checked.stderr.isEmpty, "\(checked)")
        } else {
            Issue.record("promtool is not installed; scripts/test installs Debian's prometheus package")
        }

        var stats = try probe.request("GET", "/stats", token: "s3cret")
        #expect(stats.status == 200)
        // Percentiles describe the last whole stats_period (one second here).
        #expect(
            waitUntil(timeout: .seconds(5)) {
                stats = (try? probe.request("GET", "/stats", token: "s3cret")) ?? stats
                let pools = stats.json["pools"] as? [[String: Any]] ?? []
                let last = pools.first?["last_period"] as? [String: Any]
                return (last?["query_us"] as? [String: Any])?["count"] as? Int == 6
            })
        let pool = try #require((stats.json["pools"] as? [[String: Any]])?.first)
        let query = (pool["last_period"] as? [String: Any])?["query_us"] as? [String: Any] ?? [:]
        #expect((query["p50"] as? Int ?? 0) > 0 && (query["p99"] as? Int ?? 0) >= (query["p50"] as? Int ?? 0))
        #expect((pool["totals"] as? [String: Any])?["errors"] as? Int == 1, "\(pool)")
    }

    @Test("HEAD, wrong methods, unknown paths, malformed and oversized requests get the right status")
    func badRequests() throws {
        let (sluice, probe, _, _) = try Self.twoDatabases()
        defer { sluice.stop() }
        let head = try probe.request("HEAD", "/health")
        #expect(head.status == 200 && head.body.isEmpty && head.headers["content-length"] != "0", "\(head)")
        let post = try probe.request("POST", "/health")
        #expect(post.status == 405 && post.headers["allow"] == "GET, HEAD", "\(post)")
        #expect(try probe.request("GET", "/nope").status == 404)
        #expect(try probe.raw("GARBAGE\r\n\r\n").status == 400)
        #expect(try probe.raw("GET /health HTTP/2.0\r\n\r\n").status == 505)
        let huge = "GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + String(repeating: "a", count: 20_000) + "\r\n\r\n"
        #expect(try probe.raw(huge).status == 431)
        #expect(try probe.raw("POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello").status == 413)
        // PostgreSQL's own startup packet on the wrong port is turned away too.
        let startup = String(decoding: [0, 0, 0, 8, 4, 0xD2, 0x16, 0x2F], as: UTF8.self)
        #expect(try probe.raw(startup).status == 400)
    }

    @Test("a client that connects and says nothing is answered 408 and closed; meanwhile others are served at once")
    func silentClientDoesNotStall() throws {
        let (sluice, probe, client, _) = try Self.twoDatabases()
        defer { sluice.stop() }
        let silent = try (0..<5).map { _ in try probe.open() }
        defer { for fd in silent { close(fd) } }
        let started = ContinuousClock.now
        #expect(try probe.request("GET", "/health").status == 200)
        #expect(try client.value("SELECT 1") == "1")
        #expect(ContinuousClock.now - started < .seconds(1))
        let answer = try probe.parse(probe.readAll(silent[0], timeout: .seconds(10)))
        #expect(answer.status == 408)
    }

    @Test("a stats port on a non-loopback address without a token stops startup with a clear error")
    func exposedWithoutTokenRefused() throws {
        let cluster = try TestCluster.current()
        let role = try cluster.makeRole(prefix: "expo")
        #expect(throws: (any Error).self) {
            let sluice = try SluiceProcess(
                config: { port in
                    TestConfig.ini(
                        port: port, databases: ["x": "host=\(cluster.host) port=\(cluster.port) dbname=postgres"],
                        settings: ["stats_listen_addr": "0.0.0.0", "stats_listen_port": "9"])
                },
                userlist: TestConfig.userlist([(role.name, role.password)]))
            sluice.stop()
        }
    }

    @Test("the shipped alert rules load in promtool and fire where their unit tests say")
    func alertRules() throws {
        let monitoring = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("monitoring")
        let rules = monitoring.appendingPathComponent("sluice-alerts.yml").path
        let tests = monitoring.appendingPathComponent("sluice-alerts.test.yml").path
        let checked = try run("/usr/bin/promtool", ["check", "rules", rules])
        #expect(checked.succeeded && checked.stdout.contains("SUCCESS"), "\(checked)")
        // promtool resolves rule_files relative to the test file.
        let tested = try run("/usr/bin/promtool", ["test", "rules", tests])
        #expect(tested.succeeded, "\(tested)")
    }

    // TODO: that a configured stats port which is taken stops startup passed here but not once under
    // ThreadSanitizer (the second Sluice started); it needs a deterministic test before it is claimed.
    @Test("the default stats port taken by another process is a warning, and Sluice serves without it")
    func portTaken() throws {
        let cluster = try TestCluster.current()
        let role = try cluster.makeRole(prefix: "taken")
        // Whoever holds 127.0.0.1:9632 (this listener, or another process), the default port is taken.
        let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(holder) }
        // Connections to the port that just closed (a demo, another test) leave it in TIME_WAIT, which a
        // bind without SO_REUSEADDR refuses.
        var one: Int32 = 1
        _ = setsockopt(holder, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(9632).bigEndian)
        address.sin_addr.s_addr = in_addr_t(UInt32(0x7f00_0001).bigEndian)
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(holder, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        _ = listen(holder, 1)
        let databases = ["x": "host=\(cluster.host) port=\(cluster.port) dbname=postgres"]
        let sluice = try SluiceProcess(
            config: { port in
                TestConfig.ini(port: port, databases: databases, settings: ["stats_listen_port": TestConfig.omitted])
            },
            userlist: TestConfig.userlist([(role.name, role.password)]))
        defer { sluice.stop() }
        // The warning may be written just after the client port starts accepting, which is what startup waits for.
        #expect(
            waitUntil(timeout: .seconds(5)) { sluice.stderrText.contains("the default stats port is taken") },
            "\(sluice.logTail())")

    }
}
