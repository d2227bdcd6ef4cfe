import Testing

@testable import SluiceCore

@Suite("[databases] and [users] entries")
struct ConfigDatabaseTests {
    @Test("every database key Sluice implements is parsed into the model")
    func allKeys() throws {
        let pairs = [
            "host=10.0.0.5", "port=5433", "dbname=app", "user=svc", "password='p w''d'", "pool_size=7",
            "min_pool_size=0", "reserve_pool=0", "pool_mode=transaction", "max_db_connections=0",
            "max_db_client_connections=0", "server_lifetime=1800", "query_wait_timeout=12.5",
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
        expected.poolMode = .transaction
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
        arguments: [
            "host=10.0.0.5,10.0.0.6", "host=/var/run/postgresql", "auth_user=auth", "auth_query='SELECT 1'",
            "min_pool_size=1", "reserve_pool=2", "max_db_connections=30", "max_db_client_connections=300",
            "connect_query='SET search_path = app'",
        ])
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
            ("db = pool_mode=statement", "pool_mode = 'statement' is not supported yet"),
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
            "[users]\nalice = pool_mode=session pool_size=3 query_wait_timeout=9\nbob = max_user_connections=0\n"
                + "[sluice]\nlisten_addr=*\n")
        var alice = UserConfig(name: "alice")
        alice.poolMode = .session
        alice.poolSize = 3
        alice.queryWaitTimeout = 9
        #expect(config.users["alice"] == alice)
        #expect(config.users["bob"] == UserConfig(name: "bob"))
        #expect(config.warnings.contains { $0.line == 3 && $0.message.contains("max_user_connections") })
    }

    @Test(
        "[users] limits and timeouts Sluice cannot enforce are refused unless 0",
        arguments: [
            "max_user_connections=5", "max_user_client_connections=5", "reserve_pool_size=1", "query_timeout=30",
            "idle_transaction_timeout=60", "transaction_timeout=60", "client_idle_timeout=1",
        ])
    func userRefusals(setting: String) {
        let error = configError { _ = try parseConfig("[users]\nalice = \(setting)\n") }
        #expect(error?.line == 2)
        #expect(error?.message.contains("Sluice refuses to run weaker than the file asks") == true)
    }

    @Test("unknown [users] keys and statement mode are errors")
    func userErrors() {
        #expect(configError { _ = try parseConfig("[users]\nalice = dbname=x\n") }?.message.contains("unknown") == true)
        #expect(
            configError { _ = try parseConfig("[users]\nalice = pool_mode=statement\n") }?.message.contains(
                "not supported") == true)
    }
}
