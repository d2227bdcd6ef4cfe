import Testing

@testable import SluiceCore

@Suite("[databases] and [users] entries")
struct ConfigDatabaseTests {
    @Test("every database key Sluice implements is parsed into the model")
    func allKeys() throws {
        let pairs = [
            "host=10.0.0.5", "port=5433", "dbname=app", "user=svc", "password='p w''d'", "pool_size=7",
            "min_pool_size=2", "reserve_pool=3", "pool_mode=transaction", "max_db_connections=30",
            "max_db_client_connections=300", "server_lifetime=1800", "query_wait_timeout=12.5",
            "load_balance_hosts=disable",
            "client_encoding=UTF8", "datestyle=ISO", "timezone=UTC", "application_name=billing",
            "target_session_attrs=any",
        ]
        let config = try parseConfig(
            "[databases]\nappdb = \(pairs.joined(separator: " "))\n[sluice]\nlisten_addr = 127.0.0.1\n")
        var expected = DatabaseConfig(name: "appdb")
        expected.host = "10.0.0.5"
        expected.port = 5433
        expected.dbname = "app"
        expected.user = "svc"
        expected.password = "p w'd"
        expected.poolSize = 7
        expected.minPoolSize = 2
        expected.reservePoolSize = 3
        expected.poolMode = .transaction
        expected.maxDBConnections = 30
        expected.maxDBClientConnections = 300
        expected.serverLifetime = 1800
        expected.queryWaitTimeout = 12.5
        expected.loadBalanceHosts = .disable
        expected.clientEncoding = "UTF8"
        expected.dateStyle = "ISO"
        expected.timeZone = "UTC"
        expected.applicationName = "billing"
        #expect(config.databases["appdb"] == expected)
    }

    @Test(
        "database keys Sluice does not enforce yet stop startup unless off",
        arguments: ["connect_query='SET search_path = app'"])
    func refusedKeys(setting: String) throws {
        #expect(throws: ConfigError.self) {
            try parseConfig("[databases]\nappdb = \(setting)\n[sluice]\nlisten_addr = 127.0.0.1\n")
        }
    }

    @Test("an empty entry inherits everything and keys are case-insensitive")
    func emptyEntry() throws {
        let config = try parseConfig("[databases]\nfoodb =\nBarDB = HOST=h DbName=x\n[sluice]\nlisten_addr=*\n")
        #expect(config.databases["foodb"] == DatabaseConfig(name: "foodb"))
        #expect(config.databases["BarDB"]?.host == "h")
        #expect(config.databases["BarDB"]?.dbname == "x")
        #expect(config.databases["bardb"] == nil)
    }

    @Test("quoted names allow any character and a doubled quote")
    func quotedNames() throws {
        let config = try parseConfig(
            "[databases]\n\"my \"\"odd\"\" db\" = host=h\nmy-db.v2 = host=i\n[sluice]\nlisten_addr=*\n")
        #expect(config.databases["my \"odd\" db"]?.host == "h")
        #expect(config.databases["my-db.v2"]?.host == "i")
    }

    @Test("the * entry is the fallback for any other name")
    func fallback() throws {
        let config = try parseConfig(
            "[databases]\n* = host=shared port=6000\nexact = host=own\n[sluice]\nlisten_addr=*\n")
        #expect(config.database(named: "exact")?.host == "own")
        let other = try #require(config.database(named: "anything"))
        #expect(other.name == "anything")
        #expect(other.host == "shared")
        #expect(other.serverDatabaseName(requested: "anything") == "anything")
    }

    @Test("a later entry with the same name replaces the earlier one")
    func duplicateDatabase() throws {
        let config = try parseConfig("[databases]\nx = host=a port=1\nx = host=b\n[sluice]\nlisten_addr=*\n")
        #expect(config.databases["x"]?.host == "b")
        #expect(config.databases["x"]?.port == nil)
    }

    @Test(
        "bad database entries name the file, the line and the database",
        arguments: [
            ("pgbouncer = host=x", "reserved for the admin console"),
            ("sluice = host=x", "reserved for the admin console"),
            ("db = host=x colour=blue", "unknown parameter 'colour'"),
            ("db = port=http", "port = 'http' must be an integer in 1...65535"),
            ("db = pool_size=-3", "pool_size = '-3' must be an integer"),
            ("db = pool_mode=party", "is not one of session, transaction, statement"),
            ("db = load_balance_hosts=random", "is not one of round-robin, disable"),
            ("db = target_session_attrs=read-write", "is not supported yet"),
            ("db = password='unterminated", "unterminated quoted value for 'password'"),
            ("db = host=", "empty value for 'host'"),
            ("db = host", "expected 'key=value' at character 1"),
            ("db = server_lifetime=-1", "non-negative number of seconds"),
        ])
    func badDatabases(line: String, fragment: String) {
        let error = configError { _ = try parseConfig("[sluice]\nlisten_addr=*\n[databases]\n\(line)\n") }
        #expect(error?.line == 4)
        #expect(error?.file == "/etc/sluice/sluice.ini")
        #expect(error?.message.contains(fragment) == true, "\(String(describing: error))")
    }

    @Test("errors never quote a database password")
    func passwordNotEchoed() {
        let error = configError { _ = try parseConfig("[databases]\ndb = password='hunter2 port=x\n") }
        #expect(error != nil)
        #expect(error?.description.contains("hunter2") == false)
        var database = DatabaseConfig(name: "db")
        database.password = "hunter2"
        #expect(!"\(database)".contains("hunter2"))
    }

    @Test("query_wait_timeout=-1 means not set, as in PgBouncer")
    func unsetTimeout() throws {
        let config = try parseConfig("[databases]\ndb = query_wait_timeout=-1\n[sluice]\nlisten_addr=*\n")
        #expect(config.databases["db"]?.queryWaitTimeout == nil)
    }

    @Test("[users] entries set pool mode, size and wait timeout")
    func users() throws {
        let config = try parseConfig(
            "[users]\nalice = pool_mode=session pool_size=3 query_wait_timeout=9\n"
                + "bob = max_user_connections=4 max_user_client_connections=8 reserve_pool_size=2\n"
                + "[sluice]\nlisten_addr=*\n")
        var alice = UserConfig(name: "alice")
        alice.poolMode = .session
        alice.poolSize = 3
        alice.queryWaitTimeout = 9
        #expect(config.users["alice"] == alice)
        var bob = UserConfig(name: "bob")
        bob.maxUserConnections = 4
        bob.maxUserClientConnections = 8
        bob.reservePoolSize = 2
        #expect(config.users["bob"] == bob)
    }

    @Test("unknown [users] keys are errors; timeouts and statement mode load")
    func userErrors() throws {
        #expect(configError { _ = try parseConfig("[users]\nalice = dbname=x\n") }?.message.contains("unknown") == true)
        let config = try parseConfig(
            "[users]\nalice = pool_mode=statement query_timeout=3 idle_transaction_timeout=4 transaction_timeout=5 "
                + "client_idle_timeout=6\n[sluice]\nlisten_addr=*\n")
        let alice = try #require(config.users["alice"])
        #expect(alice.poolMode == .statement)
        let timeouts = ClientTimeouts().overridden(by: alice)
        #expect(
            [
                timeouts.queryTimeout, timeouts.idleTransactionTimeout, timeouts.transactionTimeout,
                timeouts.clientIdleTimeout,
            ]
                == [3, 4, 5, 6])
    }
}

@Suite("Routing keys of [databases] entries and the main section")
struct ConfigRoutingTests {
    @Test("replicas and the per-database routing keys")
    func databaseKeys() throws {
        let config = try parseConfig(
            """
            [databases]
            app = host=10.0.0.1 replicas=10.0.0.2:5433,[::1]:5434,db3 replica_load_balance=least_outstanding \
            primary_reads=1 replica_max_lag_bytes=1000 replica_max_lag_seconds=2.5 read_your_writes=pool
            off = host=10.0.0.1 replicas=10.0.0.2 routing=off
            [sluice]
            listen_addr = 127.0.0.1
            read_your_writes = off
            replica_ban_time = 5
            routing_check_period = 0.5
            routing_safe_functions = my_random, audit.peek
            """)
        let app = try #require(config.databases["app"])
        #expect(
            app.replicas == [
                BackendAddress(host: "10.0.0.2", port: 5433), BackendAddress(host: "::1", port: 5434),
                BackendAddress(host: "db3", port: 5432),
            ])
        #expect(app.routesReads)
        #expect(app.replicaLoadBalance == .leastOutstanding)
        #expect(app.primaryReads == true)
        #expect(app.replicaMaxLagBytes == 1000)
        #expect(app.replicaMaxLagSeconds == 2.5)
        #expect(app.readYourWrites == .pool)
        #expect(config.databases["off"]?.routesReads == false)
        #expect(config.readYourWrites == .off)
        #expect(config.routingPolicy.banTime == 5)
        #expect(config.routingCheckPeriod == 0.5)
        #expect(config.routingSafeFunctions == ["my_random", "audit.peek"])
    }

    @Test("a bad replica list or routing value names the file and line")
    func badValues() {
        for entry in [
            "replicas=10.0.0.2:0", "replicas=a,,b", "routing=maybe", "replica_load_balance=random",
            "read_your_writes=always",
        ] {
            let error = configError { _ = try parseConfig("[databases]\napp = host=h \(entry)\n") }
            #expect(error?.line == 2, "\(entry)")
            #expect(error?.message.contains("app") == true, "\(entry)")
        }
    }
}
