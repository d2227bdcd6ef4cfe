import Testing

@testable import SluiceCore

@Suite("auth_query")
struct AuthQueryTests {
    @Test("$1 becomes an escaped literal; $10 and text around it stay")
    func substitution() {
        #expect(AuthQuery.text("SELECT u, p FROM t WHERE u = $1", user: "app") == "SELECT u, p FROM t WHERE u = E'app'")
        #expect(AuthQuery.text("x = $1 OR y = $1", user: "o'k\\") == "x = E'o''k\\\\' OR y = E'o''k\\\\'")
        #expect(AuthQuery.text("SELECT $10, $1", user: "a") == "SELECT $10, E'a'")
        #expect(AuthQuery.text("SELECT 1$", user: "a") == "SELECT 1$")
    }

    @Test("the answer's secret: md5, SCRAM or plain; no row, NULL or empty means none")
    func answers() {
        let verifier =
            "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
            + ":wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
        if case .scram? = AuthQuery.secret(from: [["app", verifier]]) {} else { Issue.record("not a verifier") }
        #expect(
            AuthQuery.secret(from: [["app", "md5a3556571e93b0d20722ba62be61e8c2d"]])
                == .md5("md5a3556571e93b0d20722ba62be61e8c2d"))
        #expect(AuthQuery.secret(from: [["app", "hunter2"]]) == .plain("hunter2"))
        #expect(AuthQuery.secret(from: []) == nil)
        #expect(AuthQuery.secret(from: [["app", nil]]) == nil)
        #expect(AuthQuery.secret(from: [["app", ""]]) == nil)
        #expect(AuthQuery.secret(from: [["app"]]) == nil)
    }

    @Test("the cache answers while fresh, remembers unknown users, and stays bounded")
    func cache() {
        var cache = AuthQueryCache(ttl: 10, capacity: 50)
        let key = AuthQueryCache.Key(database: "db", user: "app")
        #expect(cache.lookup(key, now: 0) == nil)
        cache.store(.plain("x"), for: key, now: 0)
        #expect(cache.lookup(key, now: 9) == .some(.plain("x")))
        #expect(cache.lookup(key, now: 10) == nil)
        let unknown = AuthQueryCache.Key(database: "db", user: "nobody")
        cache.store(nil, for: unknown, now: 0)
        #expect(cache.lookup(unknown, now: 1) == .some(nil))
        for index in 0..<500 {
            cache.store(nil, for: .init(database: "db", user: "u\(index)"), now: Double(index) / 100)
        }
        #expect(cache.entries.count <= 50)
        var off = AuthQueryCache(ttl: 0)
        off.store(.plain("x"), for: key, now: 0)
        #expect(off.lookup(key, now: 0) == nil)
    }

    @Test("auth_user, auth_query and auth_dbname load, in the main section and per database")
    func configuration() throws {
        let config = try parseConfig(
            """
            [databases]
            app = host=127.0.0.1 auth_user=lookup auth_dbname=postgres auth_query='SELECT $1, NULL'
            [sluice]
            listen_addr = *
            auth_user = pgbouncer
            auth_query_cache_ttl = 0
            """)
        #expect(config.authUser == "pgbouncer")
        #expect(config.authQuery == AuthQuery.pgbouncerDefault)
        #expect(config.authQueryCacheTTL == 0)
        #expect(config.databases["app"]?.authUser == "lookup")
        #expect(config.databases["app"]?.authDBName == "postgres")
    }
}
