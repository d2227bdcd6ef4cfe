import Testing

@testable import SluiceCore

@Suite("Admin console commands")
struct AdminCommandTests {
    @Test("commands are read case-insensitively, with an optional semicolon, SELECT standing for SHOW")
    func parsesCommands() throws {
        #expect(try AdminCommand.parse("show pools;") == .show("pools"))
        #expect(try AdminCommand.parse("  SELECT Stats_Totals  ") == .show("stats_totals"))
        #expect(try AdminCommand.parse("PAUSE") == .pause(database: nil))
        #expect(try AdminCommand.parse("pause app;;") == .pause(database: "app"))
        #expect(try AdminCommand.parse("RESUME \"My DB\"") == .resume(database: "My DB"))
        #expect(try AdminCommand.parse("kill_client 42") == .killClient(id: 42))
        #expect(try AdminCommand.parse("shutdown wait_for_clients") == .shutdown(.forClients))
        #expect(try AdminCommand.parse("SHUTDOWN") == .shutdown(.immediately))
        #expect(try AdminCommand.parse("wait_close") == .waitClose(database: nil))
        #expect(try AdminCommand.parse(" ; ") == .empty)
    }

    @Test("SET takes = or TO, quoted or bare values, and keeps the value's case")
    func parsesSet() throws {
        #expect(try AdminCommand.parse("SET default_pool_size = 30") == .set(key: "default_pool_size", value: "30"))
        #expect(try AdminCommand.parse("set DateStyle to 'ISO'") == .set(key: "datestyle", value: "ISO"))
        #expect(
            try AdminCommand.parse("SET server_reset_query='DISCARD ALL'")
                == .set(
                    key: "server_reset_query", value: "DISCARD ALL"))
        #expect(
            try AdminCommand.parse("SET application_name = 'it''s'") == .set(key: "application_name", value: "it's"))
    }

    @Test("what is not a command gets a message naming the problem")
    func rejectsNonsense() {
        #expect(throws: AdminCommandError.self) { try AdminCommand.parse("DROP TABLE x") }
        #expect(throws: AdminCommandError.self) { try AdminCommand.parse("SHOW") }
        #expect(throws: AdminCommandError.self) { try AdminCommand.parse("KILL_CLIENT x") }
        #expect(throws: AdminCommandError.self) { try AdminCommand.parse("PAUSE a b") }
        #expect(throws: AdminCommandError.self) { try AdminCommand.parse("SET x") }
        #expect(throws: AdminCommandError.self) { try AdminCommand.parse("SHUTDOWN NOW") }
    }

    @Test("only SHOW and drivers' session SETs are read-only, for stats_users")
    func readOnly() throws {
        #expect(try AdminCommand.parse("SHOW POOLS").isReadOnly)
        #expect(try AdminCommand.parse("SET client_encoding = 'UTF8'").isReadOnly)
        #expect(try !AdminCommand.parse("SET default_pool_size = 3").isReadOnly)
        #expect(try !AdminCommand.parse("PAUSE").isReadOnly)
        #expect(try !AdminCommand.parse("RELOAD").isReadOnly)
    }

    @Test("a result encodes as RowDescription with PgBouncer's type OIDs, DataRows with NULLs, CommandComplete")
    func encodesResult() throws {
        let result = AdminResult(
            columns: AdminResult.columns(["name", "count", "total"], format: "siN"), rows: [["a", "1", nil]])
        var buffer = ByteBuffer()
        result.encode(into: &buffer)
        var messages: [(code: UInt8, body: [UInt8])] = []
        let bytes = Array(buffer.readableView)
        var at = 0
        while at < bytes.count {
            let length = bytes[(at + 1)..<(at + 5)].reduce(0) { $0 << 8 | Int($1) }
            messages.append((bytes[at], Array(bytes[(at + 5)..<(at + 1 + length)])))
            at += 1 + length
        }
        #expect(messages.map(\.code) == [UInt8(ascii: "T"), UInt8(ascii: "D"), UInt8(ascii: "C")])
        // RowDescription: count, then per column name, table, attribute, type OID, size, modifier, format.
        var oids: [UInt32] = []
        var fields = messages[0].body[2...]
        for _ in 0..<3 {
            let nameEnd = fields.firstIndex(of: 0)!
            let oidStart = nameEnd + 1 + 6
            oids.append(fields[oidStart..<(oidStart + 4)].reduce(0) { $0 << 8 | UInt32($1) })
            fields = fields[(oidStart + 12)...]
        }
        #expect(oids == [25, 23, 1700])
        // DataRow: three values, the last NULL (length -1).
        #expect(Array(messages[1].body.suffix(4)) == [0xFF, 0xFF, 0xFF, 0xFF])
        #expect(messages[2].body == Array("SHOW".utf8) + [0])
    }

    @Test("the console's SET changes a reloadable key as a file line would, and records it for SHOW CONFIG")
    func configSet() throws {
        let config = SluiceConfig.pgbouncerDefaults
        let changed = try config.setting("default_pool_size", to: "33")
        #expect(changed.defaultPoolSize == 33 && changed.settingValues["default_pool_size"] == "33")
        #expect(throws: ConfigError.self) { try config.setting("listen_port", to: "7000") }
        #expect(throws: ConfigError.self) { try config.setting("default_pool_size", to: "many") }
        #expect(throws: ConfigError.self) { try config.setting("no_such_key", to: "1") }
    }

    @Test("a stats port counts as loopback only at one loopback address written as such")
    func loopbackLiteral() {
        for address in ["127.0.0.1", "127.1.2.3", "::1", "localhost", "LOCALHOST"] {
            #expect(SluiceConfig.isLoopbackLiteral(address), "\(address)")
        }
        for address in [
            "127.0.0.1,0.0.0.0", "127.0.0.1.nip.io", "127.0.0.1 0.0.0.0", "0.0.0.0", "*", "127.0.0.256", "127..0.1",
        ] {
            #expect(!SluiceConfig.isLoopbackLiteral(address), "\(address)")
        }
    }
}
