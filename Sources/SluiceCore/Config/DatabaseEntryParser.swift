/// Parses the values of `[databases]` and `[users]` entries.
enum DatabaseEntryParser {
    /// Database names that belong to the admin console.
    static let reservedNames: Set<String> = ["pgbouncer", "sluice"]

    /// One `name = key=value …` line of `[databases]`.
    static func parse(name: String, value: String, file: String, line: Int) throws(ConfigError) -> DatabaseConfig {
        func fail(_ message: String) -> ConfigError {
            ConfigError(file: file, line: line, message: "database \"\(name)\": \(message)")
        }
        guard !name.isEmpty else { throw ConfigError(file: file, line: line, message: "empty database name") }
        guard !reservedNames.contains(name) else {
            throw fail("the name is reserved for the admin console")
        }
        let pairs: [(key: String, value: String)]
        do {
            pairs = try ConnectionString.parse(value)
        } catch {
            throw fail(error.message)
        }

        var database = DatabaseConfig(name: name)
        for (key, text) in pairs {
            let reader = EntryValueReader(key: key, text: text, fail: fail)
            switch key {
            case "dbname": database.dbname = text
            case "host":
                // A comma list of host names, addresses, socket directories (`/dir`) or abstract
                // socket names (`@name`), as PgBouncer takes it.
                let hosts = text.split(separator: ",", omittingEmptySubsequences: false).map {
                    $0.configTrimmed()
                }
                if let bad = hosts.first(where: { $0.isEmpty || $0.utf8.count + "/.s.PGSQL.65535".utf8.count > 107 }) {
                    throw fail(
                        bad.isEmpty
                            ? "host = '\(text)' has an empty entry"
                            : "host = '\(text)': the socket path for '\(bad)' is too long")
                }
                database.host = hosts.joined(separator: ",")
            case "port": database.port = try reader.integer(1...65535)
            case "user": database.user = text
            case "password": database.password = text
            case "auth_user": database.authUser = text
            case "auth_query": database.authQuery = text
            case "auth_dbname": database.authDBName = text
            case "pool_size": database.poolSize = try reader.integer(0...Int(Int32.max))
            case "min_pool_size": database.minPoolSize = try reader.integer(0...Int(Int32.max))
            case "reserve_pool_size", "reserve_pool": database.reservePoolSize = try reader.integer(0...Int(Int32.max))
            case "pool_mode": database.poolMode = try reader.poolMode()
            case "max_db_connections": database.maxDBConnections = try reader.integer(0...Int(Int32.max))
            case "max_db_client_connections":
                database.maxDBClientConnections = try reader.integer(0...Int(Int32.max))
            case "server_lifetime": database.serverLifetime = try reader.seconds()
            case "query_wait_timeout": database.queryWaitTimeout = try reader.optionalSeconds()
            case "load_balance_hosts":
                guard let mode = LoadBalanceHosts(rawValue: text.lowercased()) else {
                    throw fail("load_balance_hosts = '\(text)' is not one of round-robin, disable")
                }
                database.loadBalanceHosts = mode
            case "target_session_attrs":
                // Only "any" is what Sluice does anyway; the others filter servers Sluice cannot classify yet.
                guard text.lowercased() == "any" else {
                    throw fail(
                        "target_session_attrs = '\(text)' is not supported yet; "
                            + "Sluice refuses to run weaker than the file asks")
                }
            case "connect_query":
                guard text.isEmpty else { throw fail(refusal(key, text)) }
            case "client_encoding": database.clientEncoding = text
            case "datestyle": database.dateStyle = text
            case "timezone": database.timeZone = text
            case "application_name": database.applicationName = text
            case "replicas":
                var addresses: [BackendAddress] = []
                for entry in text.split(separator: ",", omittingEmptySubsequences: false) {
                    guard let address = BackendAddress(parsing: entry.configTrimmed()) else {
                        throw fail("replicas = '\(text)': '\(entry.configTrimmed())' is not host:port")
                    }
                    addresses.append(address)
                }
                database.replicas = addresses
            case "routing": database.routing = try reader.boolean()
            case "replica_load_balance":
                guard let mode = ReplicaLoadBalance(rawValue: text.lowercased()) else {
                    throw fail("replica_load_balance = '\(text)' is not one of round_robin, least_outstanding")
                }
                database.replicaLoadBalance = mode
            case "primary_reads": database.primaryReads = try reader.boolean()
            case "replica_max_lag_bytes": database.replicaMaxLagBytes = UInt64(try reader.integer(0...Int.max))
            case "replica_max_lag_seconds": database.replicaMaxLagSeconds = try reader.seconds()
            case "read_your_writes":
                guard let mode = ReadYourWrites(rawValue: text.lowercased()) else {
                    throw fail("read_your_writes = '\(text)' is not one of off, connection, pool")
                }
                database.readYourWrites = mode
            default:
                throw fail("unknown parameter '\(key)'")
            }
        }
        return database
    }

    /// One `name = key=value …` line of `[users]`.
    ///
    /// Limits and timeouts Sluice does not enforce yet are accepted only at 0 (PgBouncer's
    /// "not set"), like their main-section counterparts.
    static func parseUser(
        name: String, value: String, file: String, line: Int
    ) throws(ConfigError) -> UserConfig {
        func fail(_ message: String) -> ConfigError {
            ConfigError(file: file, line: line, message: "user \"\(name)\": \(message)")
        }
        guard !name.isEmpty else { throw ConfigError(file: file, line: line, message: "empty user name") }
        let pairs: [(key: String, value: String)]
        do {
            pairs = try ConnectionString.parse(value)
        } catch {
            throw fail(error.message)
        }

        var user = UserConfig(name: name)
        for (key, text) in pairs {
            let reader = EntryValueReader(key: key, text: text, fail: fail)
            switch key {
            case "pool_mode": user.poolMode = try reader.poolMode()
            case "pool_size": user.poolSize = try reader.integer(0...Int(Int32.max))
            case "query_wait_timeout": user.queryWaitTimeout = try reader.optionalSeconds()
            case "reserve_pool_size": user.reservePoolSize = try reader.integer(0...Int(Int32.max))
            case "max_user_connections": user.maxUserConnections = try reader.integer(0...Int(Int32.max))
            case "max_user_client_connections": user.maxUserClientConnections = try reader.integer(0...Int(Int32.max))
            case "query_timeout": user.queryTimeout = try reader.seconds()
            case "idle_transaction_timeout": user.idleTransactionTimeout = try reader.seconds()
            case "transaction_timeout": user.transactionTimeout = try reader.seconds()
            case "client_idle_timeout": user.clientIdleTimeout = try reader.seconds()
            default:
                throw fail("unknown parameter '\(key)'")
            }
        }
        return user
    }

    private static func refusal(_ key: String, _ text: String) -> String {
        "\(key) = '\(text)' is not supported yet; Sluice refuses to run weaker than the file asks"
    }
}

/// Typed reading of one `key=value` of an entry, with errors that name the key.
private struct EntryValueReader {
    var key: String
    var text: String
    var fail: (String) -> ConfigError

    func integer(_ range: ClosedRange<Int>) throws(ConfigError) -> Int {
        guard let number = ConfigValue.integer(text), range.contains(number) else {
            throw fail("\(key) = '\(text)' must be an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return number
    }

    func seconds() throws(ConfigError) -> Double {
        guard let number = ConfigValue.seconds(text) else {
            throw fail("\(key) = '\(text)' is not a non-negative number of seconds")
        }
        return number
    }

    /// Seconds, where PgBouncer's -1 means "not set" and yields nil.
    func optionalSeconds() throws(ConfigError) -> Double? {
        if ConfigValue.integer(text) == -1 { return nil }
        return try seconds()
    }

    func boolean() throws(ConfigError) -> Bool {
        guard let value = ConfigValue.boolean(text) else {
            throw fail("\(key) = '\(text)' is not a boolean (0/1, on/off, yes/no, true/false)")
        }
        return value
    }

    func poolMode() throws(ConfigError) -> PoolMode {
        guard let mode = PoolMode(rawValue: text.lowercased()) else {
            throw fail("pool_mode = '\(text)' is not one of session, transaction, statement")
        }
        return mode
    }
}
