import Testing

@testable import SluiceCore

@Suite("Server caps across pools")
struct PoolCapsTests {
    @Test("max_db_connections bounds every pool of a database together")
    func databaseCap() {
        var caps = ServerConnectionCaps<String>()
        #expect(grant(&caps, "a", database: "db", databaseLimit: 2, user: "u1", userLimit: 0))
        #expect(grant(&caps, "b", database: "db", databaseLimit: 2, user: "u2", userLimit: 0))
        #expect(!grant(&caps, "b", database: "db", databaseLimit: 2, user: "u2", userLimit: 0))
        #expect(grant(&caps, "c", database: "other", databaseLimit: 2, user: "u2", userLimit: 0))
        #expect(caps.used(database: "db") == 2)
        #expect(caps.blockedPools(database: "db", user: "u1") == ["b"])
    }

    @Test("max_user_connections bounds every pool of a user together")
    func userCap() {
        var caps = ServerConnectionCaps<String>()
        #expect(grant(&caps, "a", database: "d1", databaseLimit: 0, user: "u", userLimit: 1))
        #expect(!grant(&caps, "b", database: "d2", databaseLimit: 0, user: "u", userLimit: 1))
        caps.release(database: "d1", user: "u")
        #expect(grant(&caps, "b", database: "d2", databaseLimit: 0, user: "u", userLimit: 1))
        #expect(!caps.hasBlocked(database: "d2", user: "u"), "a pool that got a slot is no longer blocked")
    }

    @Test("freed slots go to blocked pools in the order they were blocked")
    func fairness() {
        var caps = ServerConnectionCaps<String>()
        #expect(grant(&caps, "a", database: "db", databaseLimit: 1, user: "ua", userLimit: 0))
        #expect(!grant(&caps, "b", database: "db", databaseLimit: 1, user: "ub", userLimit: 0))
        #expect(!grant(&caps, "c", database: "db", databaseLimit: 1, user: "uc", userLimit: 0))
        #expect(!grant(&caps, "b", database: "db", databaseLimit: 1, user: "ub", userLimit: 0))
        #expect(caps.blockedPools(database: "db", user: "ua") == ["b", "c"], "asking twice keeps a pool's place")
        caps.release(database: "db", user: "ua")
        #expect(grant(&caps, "b", database: "db", databaseLimit: 1, user: "ub", userLimit: 0))
        #expect(caps.blockedPools(database: "db", user: "ub") == ["c"])
    }

    @Test("a pool blocked on both caps is listed once")
    func bothCaps() {
        var caps = ServerConnectionCaps<String>()
        #expect(grant(&caps, "a", database: "db", databaseLimit: 1, user: "u", userLimit: 1))
        #expect(!grant(&caps, "b", database: "db", databaseLimit: 1, user: "u", userLimit: 1))
        #expect(caps.blockedPools(database: "db", user: "u") == ["b"])
        caps.unblock("b", database: "db", user: "u")
        #expect(!caps.hasBlocked(database: "db", user: "u"))
    }

    @Test("slots are counted without a limit, so a limit set later sees the real count")
    func countsWithoutLimit() {
        var caps = ServerConnectionCaps<String>()
        for _ in 0..<3 { #expect(grant(&caps, "a", database: "db", databaseLimit: 0, user: "u", userLimit: 0)) }
        #expect(!grant(&caps, "a", database: "db", databaseLimit: 3, user: "u", userLimit: 0))
    }

    @Test("forgetUnused drops only budgets that hold no slot and block no pool")
    func forgetUnused() {
        var caps = ServerConnectionCaps<String>()
        #expect(grant(&caps, "a", database: "db", databaseLimit: 1, user: "u", userLimit: 0))
        #expect(!grant(&caps, "b", database: "db", databaseLimit: 1, user: "v", userLimit: 0))
        caps.forgetUnused(database: "db", user: "u")
        #expect(caps.used(database: "db") == 1 && caps.used(user: "u") == 1, "slots held: kept")
        caps.release(database: "db", user: "u")
        caps.forgetUnused(database: "db", user: "u")
        #expect(caps.blockedPools(database: "db", user: "u") == ["b"], "a blocked pool keeps its budget")
        #expect(grant(&caps, "b", database: "db", databaseLimit: 1, user: "v", userLimit: 0))
        caps.release(database: "db", user: "v")
        caps.forgetUnused(database: "db", user: "v")
        #expect(caps.used(database: "db") == 0 && caps.used(user: "v") == 0)
        #expect(grant(&caps, "c", database: "db", databaseLimit: 1, user: "v", userLimit: 0), "starts afresh")
    }

    @Test("per-database and per-user values win over the global ones when positive")
    func resolution() {
        var limits = PoolLimits()
        limits.maxDBConnections = 10
        limits.maxUserClientConnections = 7
        var database = DatabaseConfig(name: "db")
        #expect(limits.maxDBConnections(database) == 10)
        database.maxDBConnections = 3
        #expect(limits.maxDBConnections(database) == 3)
        var user = UserConfig(name: "u")
        user.maxUserClientConnections = 2
        #expect(limits.maxUserClientConnections(user) == 2)
        #expect(limits.maxUserClientConnections(nil) == 7)
        user.reservePoolSize = 4
        database.reservePoolSize = 1
        #expect(limits.reservePoolSize(database: database, user: user) == 4)
        #expect(limits.reservePoolSize(database: database, user: nil) == 1)
    }
}

/// Takes a slot outside `#expect`, which cannot call a mutating method itself.
private func grant(
    _ caps: inout ServerConnectionCaps<String>, _ pool: String, database: String, databaseLimit: Int, user: String,
    userLimit: Int
) -> Bool {
    caps.take(for: pool, database: database, databaseLimit: databaseLimit, user: user, userLimit: userLimit)
}
