import Testing

@testable import SluiceCore

@Suite("Environment overrides and sidecar mode")
struct ConfigEnvironmentTests {
    let url = "postgres://app:s%40cret@db.internal:5433/appdb"

    @Test("without a file, DATABASE_URL makes a SCRAM sidecar in transaction mode")
    func sidecar() throws {
        let config = try SluiceConfig.load(path: nil, environment: ["DATABASE_URL": url])
        #expect(config.sourceFile == nil)
        #expect(config.listenAddresses == ["127.0.0.1"])
        #expect(config.listenPort == 6432)
        #expect(config.poolMode == .transaction)
        #expect(config.maxClientConn == 10_000)
        #expect(config.authType == .scramSHA256)
        #expect(config.unixSocketDir == nil)
        #expect(config.userList["app"] == .plain("s@cret"))
        var database = DatabaseConfig(name: "appdb")
        database.host = "db.internal"
        database.port = 5433
        database.dbname = "appdb"
        database.user = "app"
        database.password = "s@cret"
        #expect(config.databases == ["appdb": database])
        #expect(config.warnings.isEmpty)
        // Everything else keeps PgBouncer's defaults.
        #expect(config.defaultPoolSize == 20)
        #expect(config.serverIdleTimeout == 600)
    }

    @Test("every override applies in sidecar mode")
    func sidecarOverrides() throws {
        let config = try SluiceConfig.load(
            path: nil,
            environment: [
                "DATABASE_URL": url, "DB_POOL_MAX": "5", "DB_IDLE_TIMEOUT": "30", "DB_CONNECT_TIMEOUT": "2.5",
                "LISTEN_ADDR": "0.0.0.0, ::", "LISTEN_PORT": "7432", "DB_POOL_MODE": "Session",
            ])
        #expect(config.defaultPoolSize == 5)
        #expect(config.serverIdleTimeout == 30)
        #expect(config.serverConnectTimeout == 2.5)
        #expect(config.listenAddresses == ["0.0.0.0", "::"])
        #expect(config.listenPort == 7432)
        #expect(config.poolMode == .session)
    }

    @Test("without a file or DATABASE_URL there is nothing to run")
    func nothingToRun() {
        let error = configError { _ = try SluiceConfig.load(path: nil, environment: ["DB_POOL_MAX": "5"]) }
        #expect(error?.file == "environment")
        #expect(error?.message.contains("DATABASE_URL is not set") == true)
    }

    @Test("sidecar mode needs a password in DATABASE_URL")
    func sidecarNeedsPassword() {
        let error = configError {
            _ = try SluiceConfig.load(path: nil, environment: ["DATABASE_URL": "postgres://app@db/appdb"])
        }
        #expect(error?.message.contains("has no password") == true)
    }

    @Test("the environment overrides the file")
    func fileAndEnvironment() throws {
        let config = try parseConfig(
            """
            [databases]
            appdb = host=old
            [sluice]
            listen_addr = 10.1.1.1
            listen_port = 6000
            default_pool_size = 50
            pool_mode = session
            auth_type = md5
            auth_file = users.txt
            """,
            files: ["/etc/sluice/users.txt": "\"app\" \"old\"\n\"other\" \"x\"\n"],
            environment: [
                "DATABASE_URL": url, "DB_POOL_MAX": "8", "LISTEN_PORT": "6001", "DB_POOL_MODE": "transaction",
                "LISTEN_ADDR": "127.0.0.2",
            ])
        #expect(config.databases["appdb"]?.host == "db.internal")
        #expect(config.userList["app"] == .plain("s@cret"))
        #expect(config.userList["other"] == .plain("x"))
        #expect(config.defaultPoolSize == 8)
        #expect(config.listenPort == 6001)
        #expect(config.listenAddresses == ["127.0.0.2"])
        #expect(config.poolMode == .transaction)
        #expect(config.authType == .md5)
    }

    @Test("empty variables count as unset")
    func emptyVariables() throws {
        let config = try parseConfig("[sluice]\nlisten_addr=*\n", environment: ["DB_POOL_MAX": "", "LISTEN_PORT": " "])
        #expect(config.defaultPoolSize == 20)
        #expect(config.listenPort == 6432)
    }

    @Test(
        "bad values name the variable",
        arguments: [
            ("DB_POOL_MAX", "lots"), ("DB_POOL_MAX", "-1"), ("DB_IDLE_TIMEOUT", "-1"), ("DB_IDLE_TIMEOUT", "10m"),
            ("DB_CONNECT_TIMEOUT", "soon"), ("LISTEN_PORT", "0"), ("LISTEN_PORT", "65536"), ("LISTEN_ADDR", ","),
            ("DB_POOL_MODE", "bulk"),
        ])
    func badValues(variable: String, value: String) {
        let error = configError { _ = try parseConfig("[sluice]\nlisten_addr=*\n", environment: [variable: value]) }
        #expect(error?.file == "environment")
        #expect(error?.line == nil)
        #expect(error?.message.hasPrefix(variable) == true, "\(String(describing: error))")
    }

    @Test("DATABASE_URL parts are percent-decoded and defaulted like libpq")
    func urlParsing() throws {
        let full = try DatabaseURL.parse(
            "postgresql://us%2Fer:p%3Aw%20d@[::1]:6543/my%20db?sslmode=disable&application_name=web")
        #expect(full.user == "us/er")
        #expect(full.password == "p:w d")
        #expect(full.host == "::1")
        #expect(full.port == 6543)
        #expect(full.dbname == "my db")
        #expect(full.applicationName == "web")
        let minimal = try DatabaseURL.parse("POSTGRES://bob@localhost")
        #expect(minimal.password == nil)
        #expect(minimal.port == 5432)
        #expect(minimal.dbname == "bob")
    }

    @Test(
        "bad DATABASE_URLs are refused without echoing the password",
        arguments: [
            ("mysql://u:topsecret@h/db", "must start with postgres://"),
            ("postgres://h/db", "has no user"),
            ("postgres://:topsecret@h/db", "empty user"),
            ("postgres://u:topsecret@/db", "has no host"),
            ("postgres://u:topsecret@h:99999/db", "port"),
            ("postgres://u:topsecret@h/db?sslmode=sometimes", "sslmode=sometimes is not an sslmode"),
            ("postgres://u:topsecret@h/db?connect_timeout=5", "parameter 'connect_timeout' is not supported"),
            ("postgres://u:top%ZZsecret@h/db", "malformed %-escape"),
            ("postgres://u:top%FFsecret@h/db", "not UTF-8"),
            ("postgres://u:topsecret@h1,h2/db", "several hosts"),
            ("postgres://u:topsecret@[::1/db", "unterminated"),
        ])
    func badURLs(text: String, fragment: String) {
        let error = configError { _ = try DatabaseURL.parse(text) }
        #expect(error?.message.contains(fragment) == true, "\(String(describing: error))")
        #expect(error?.description.contains("topsecret") == false)
        #expect(error?.message.hasPrefix("DATABASE_URL") == true)
    }
}
