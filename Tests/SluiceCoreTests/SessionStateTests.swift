import SluiceCore
import Testing

@Suite("Session text scan")
struct SessionTextScanTests {
    private func scan(_ sql: String) -> SessionTextScan { SessionTextScan(Array(sql.utf8)) }

    @Test(
        "statements that change session settings",
        arguments: [
            "SET statement_timeout = '5s'", "set search_path to a, b", "  SET SESSION work_mem = 1",
            "RESET ALL", "reset search_path", "DISCARD ALL", "SET ROLE reader", "SET SESSION AUTHORIZATION x",
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", "SELECT 1; SET x.y = 1",
            "/* leading */ -- comment\nSET a.b TO 1", "SELECT set_config('a.b', 'c', false)",
            "SELECT pg_catalog.set_config('search_path', $1, false)", "SELECT set_config($1, $2, $3)",
            "select SET_CONFIG('a.b', 'c', is_local => false)", "SET TIME ZONE 'UTC'",
        ])
    func settings(_ sql: String) {
        #expect(scan(sql).effects.contains(.settings), "\(sql)")
    }

    @Test(
        "statements that leave the session's settings alone",
        arguments: [
            "SELECT 1", "UPDATE t SET x = 1", "SET LOCAL work_mem = '1MB'",
            "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
            "SET CONSTRAINTS ALL DEFERRED", "SELECT 'SET x = 1'", "SELECT 1 -- ; SET x = 1", "SELECT $$; SET x = 1$$",
            "SELECT $tag$ $$; RESET ALL $tag$", "SELECT \"set\" FROM t",
            "/* ; SET x = 1 /* nested */ ; RESET ALL */ SELECT 1",
            "SELECT set_config('a.b', 'c', true)", "SELECT e'\\'; SET x = 1'",
            "INSERT INTO t VALUES ('it''s; RESET ALL')",
            "SELECT set_config FROM t",
        ])
    func noSettings(_ sql: String) {
        #expect(!scan(sql).effects.contains(.settings), "\(sql)")
    }

    @Test("custom setting names are collected, lower-cased, once")
    func customNames() {
        #expect(scan("SET app.Tenant = 1; RESET app.tenant").customNames == ["app.tenant"])
        #expect(scan("SET \"App\".\"X\" TO 1").customNames == ["app.x"])
        #expect(
            scan("SELECT set_config('app.user', $1, false), set_config('app.role', 'r', false)").customNames == [
                "app.user", "app.role",
            ])
        #expect(scan("RESET app.x; SELECT 1").customNames == ["app.x"])
        #expect(scan("reset App.Y").customNames == ["app.y"])
        #expect(scan("SELECT set_config('app.it''s', 'x', false)").customNames == ["app.it's"])
        #expect(scan("SET search_path = a").customNames.isEmpty)
        #expect(scan("SELECT set_config('app.local', 'x', true)").customNames.isEmpty)
    }

    @Test("state that pins a client to its server, and what may end it")
    func pins() {
        #expect(scan("LISTEN ch").effects == [.listen])
        #expect(scan("CREATE TEMP TABLE t (x int)").effects == [.temporaryObject])
        #expect(scan("create global temporary table t (x int)").effects == [.temporaryObject])
        #expect(scan("SELECT * INTO TEMP t FROM u").effects == [.temporaryObject])
        #expect(scan("CREATE TABLE temp (x int)").effects == [.temporaryObject])
        #expect(scan("SELECT temp FROM weather").effects == [])
        #expect(scan("SELECT pg_advisory_lock(1)").effects == [.advisoryLock])
        #expect(scan("SELECT pg_try_advisory_lock_shared(1, 2)").effects == [.advisoryLock])
        #expect(scan("SELECT pg_advisory_xact_lock(1)").effects == [])
        #expect(scan("SELECT pg_advisory_unlock_all()").effects == [.mayRelease])
        #expect(scan("DECLARE c CURSOR WITH HOLD FOR SELECT 1").effects == [.holdCursor])
        #expect(scan("DECLARE c CURSOR FOR SELECT 1").effects == [])
        #expect(scan("PREPARE p AS SELECT 1").effects == [.sqlPrepare])
        for release in ["UNLISTEN *", "DEALLOCATE p", "CLOSE c", "DROP TABLE t"] {
            #expect(scan(release).effects == [.mayRelease], "\(release)")
        }
        #expect(scan("DISCARD TEMP").effects == [.settings, .mayRelease])
    }

    @Test("the quick test never says no where the lexer finds something")
    func quickTestIsSound() {
        let pieces = [
            "SELECT", "set", "SET", "reset", "LOCAL", "app.x", "=", "1", ";", " ", "\n", "/* c */", "-- c\n", "'s;t'",
            "$$ SET x $$", "\"q\"", "(", ")", ",", "into", "INTO", "temp", "TEMPORARY", "set_config",
            "pg_advisory_lock",
            "pg_try_advisory_lock_shared", "pg_advisory_unlock", "listen", "create", "DROP", "declare", "hold",
            "E'\\''",
            "prepare", "Close", "discard", "true", "false", "$1", "x_y", "select_into", "iNtO", "tempo", "\u{0}",
        ]
        var generator = SystemRandomNumberGenerator()
        var checked = 0
        for _ in 0..<20_000 {
            let length = Int.random(in: 1...8, using: &generator)
            var sql = ""
            for _ in 0..<length { sql += pieces.randomElement(using: &generator)! + " " }
            let bytes = Array(sql.utf8)
            let full = bytes.withUnsafeBytes { SessionTextScan($0, quickTest: false) }
            let quick = bytes.withUnsafeBytes { SessionTextScan($0) }
            #expect(quick.effects == full.effects, "\(sql)")
            #expect(quick.customNames == full.customNames, "\(sql)")
            if !full.effects.isEmpty { checked += 1 }
            if quick.effects != full.effects { break }
        }
        #expect(checked > 1000)
    }

    @Test("a zero byte ends the text (a Parse's parameter types follow it)")
    func stopsAtZero() {
        #expect(scan("SELECT 1\u{0}SET x = 1").effects == [])
    }

    @Test("unterminated quotes and comments end the scan without a crash")
    func unterminated() {
        for sql in ["SELECT 'abc", "SELECT \"abc", "SELECT $a$ abc", "SELECT /* abc", "SELECT e'\\", "SET", "SET app."]
        {
            _ = scan(sql)
        }
    }
}

@Suite("Session check")
struct SessionCheckTests {
    @Test("the check asks for the settings, custom names already known, and pins to re-examine")
    func query() {
        let check = SessionCheck(
            pending: [.settings], customNames: ["app.a"], pins: [.listen],
            known: ["app.b": ("app.b", "1"), "search_path": ("search_path", "x")])
        #expect(check.effects == [.settings, .listen])
        #expect(Set(check.customNames) == ["app.a", "app.b"])
        #expect(check.query.contains("current_setting('app.b', true)"))
        #expect(check.query.contains("pg_listening_channels"))
        #expect(!check.query.contains("pg_locks"))
        #expect(check.checkedPins == [.role, .listen])
    }

    @Test("nothing to ask after statements that only end pins the server does not have")
    func nothingToAsk() {
        let check = SessionCheck(pending: [.mayRelease], customNames: [], pins: [], known: [:])
        #expect(!check.isNeeded)
    }

    @Test("rows make the settings and pins; reported and emptied custom settings are left out")
    func rows() throws {
        func row(_ name: String?, _ value: String?) -> ArraySlice<UInt8> {
            var bytes: [UInt8] = [0, 2]
            for column in [name, value] {
                guard let column else {
                    bytes += [0xFF, 0xFF, 0xFF, 0xFF]
                    continue
                }
                let utf8 = Array(column.utf8)
                withUnsafeBytes(of: UInt32(utf8.count).bigEndian) { bytes += $0 }
                bytes += utf8
            }
            return bytes[...]
        }
        var result = SessionCheckResult()
        let excluded: Set<String> = ["timezone"]
        try result.addRow(row("statement_timeout", "5000"), excluded: excluded)
        try result.addRow(row("TimeZone", "UTC"), excluded: excluded)
        try result.addRow(row("app.a", ""), excluded: excluded)
        try result.addRow(row("app.b", nil), excluded: excluded)
        try result.addRow(row("app.c", "x"), excluded: excluded)
        try result.addRow(row(nil, "role"), excluded: excluded)
        try result.addRow(row(nil, "temporary"), excluded: excluded)
        #expect(result.settings.keys.sorted() == ["app.c", "statement_timeout"])
        #expect(result.pins == [.role, .temporaryObject])
        #expect(throws: SessionCheckError.self) { try result.addRow(row(nil, "bogus"), excluded: excluded) }
    }

    @Test("restoring replays exactly the difference")
    func restore() {
        let client: SessionSettings = ["search_path": ("search_path", "a"), "app.x": ("app.x", "it's")]
        let server: SessionSettings = ["search_path": ("search_path", "a"), "work_mem": ("work_mem", "1024")]
        let sql = client.restoreStatements(comparedTo: server)
        #expect(sql == "RESET \"work_mem\";SELECT pg_catalog.set_config('app.x', 'it''s', false);")
        #expect(client.restoreStatements(comparedTo: client).isEmpty)
    }
}

@Suite("DEALLOCATE of one statement")
struct DeallocatedNameTests {
    private func name(_ sql: String) -> String? {
        Array(sql.utf8).withUnsafeBytes { StatementRelease.deallocatedName($0) }
    }

    @Test("the name as PostgreSQL reads it, or nil for anything but one DEALLOCATE of a name")
    func names() {
        #expect(name("DEALLOCATE _pg3_0") == "_pg3_0")
        #expect(name("deallocate prepare Foo;") == "foo")
        #expect(name("  DEALLOCATE \"Mixed\"\"Name\" ; -- done") == "Mixed\"Name")
        #expect(name("DEALLOCATE ALL") == nil)
        #expect(name("DEALLOCATE PREPARE ALL") == nil)
        #expect(name("DEALLOCATE a; SELECT 1") == nil)
        #expect(name("SELECT 1") == nil)
        #expect(name("DEALLOCATE") == nil)
        #expect(name("DEALLOCATE a b") == nil)
    }
}
