import Foundation
import Testing

/// Startup parameters a driver sends are in force in every transaction, whichever server runs it.
@Suite("Startup parameters")
struct StartupParameterTests {
    @Test("options -c search_path follows each client across servers, so no tenant sees another's schema")
    func searchPathFollowsTheClient() throws {
        let proxied = try ProxiedDatabase(poolSize: 1)
        defer { proxied.stop() }
        let setup = try proxied.directSuperuser()
        let owner = proxied.role.name
        for tenant in ["a", "b"] {
            _ = try setup.exec(
                "CREATE SCHEMA tenant_\(tenant) AUTHORIZATION \(owner);"
                    + "CREATE TABLE tenant_\(tenant).t AS SELECT '\(tenant)' AS who;"
                    + "ALTER TABLE tenant_\(tenant).t OWNER TO \(owner);")
        }
        let a = try proxied.connect(extra: ["options": "-c search_path=tenant_a"])
        let b = try proxied.connect(extra: ["options": "-csearch_path=tenant_b"])
        let plain = try proxied.connect()
        // A list, as PostgreSQL reads it from options: two schemas, not one named "tenant_b,public".
        let list = try proxied.connect(extra: ["options": "-c search_path=tenant_b,public"])
        for _ in 0..<5 {
            #expect(try list.value("SELECT who FROM t") == "b")
            #expect(try list.value("SHOW search_path") == "tenant_b,public")
            #expect(try a.value("SELECT who FROM t") == "a")
            #expect(try b.value("SELECT who FROM t") == "b")
            #expect(try plain.value("SHOW search_path") == "\"$user\", public")
        }
    }

    @Test("extra_float_digits and other settings drivers send at startup are applied")
    func driverSettings() throws {
        let proxied = try ProxiedDatabase(poolSize: 1)
        defer { proxied.stop() }
        // A raw startup parameter, as the JDBC driver sends it.
        let jdbcLike = try proxied.connect(extra: ["options": "--extra-float-digits=3 -c statement_timeout=1234"])
        let other = try proxied.connect()
        for _ in 0..<3 {
            #expect(try jdbcLike.value("SHOW extra_float_digits") == "3")
            #expect(try jdbcLike.value("SHOW statement_timeout") == "1234ms")
            #expect(try other.value("SHOW extra_float_digits") == "1")
            #expect(try other.value("SHOW statement_timeout") == "0")
        }
    }

    @Test("a setting the server rejects fails the client with the server's SQLSTATE, never silently")
    func badSetting() throws {
        let proxied = try ProxiedDatabase(poolSize: 1)
        defer { proxied.stop() }
        var error: PQError?
        do {
            let client = try proxied.connect(extra: ["options": "-c no_such_setting_xyz=1"])
            _ = try client.exec("SELECT 1")
        } catch let e as PQError {
            error = e
        }
        #expect(error?.sqlState == "42704", "\(String(describing: error))")
        let next = try proxied.connect()
        #expect(try next.value("SELECT 1") == "1")
    }

    @Test("backend switches other than -c are refused with 08P01")
    func otherSwitchesRefused() throws {
        let proxied = try ProxiedDatabase(poolSize: 1)
        defer { proxied.stop() }
        let error = #expect(throws: PQError.self) { try proxied.connect(extra: ["options": "-B 100"]) }
        #expect(error?.sqlState == "08P01", "\(String(describing: error))")
    }
}

@Suite("Tracked parameters")
struct TrackedParameterTests {
    @Test("track_extra_parameters: a client's SET IntervalStyle follows it and never reaches the next client")
    func intervalStyleIsTracked() throws {
        let proxied = try ProxiedDatabase(settings: ["track_extra_parameters": "IntervalStyle"], poolSize: 1)
        defer { proxied.stop() }
        let a = try proxied.connect()
        let b = try proxied.connect()
        _ = try a.exec("SET IntervalStyle = 'iso_8601'")
        for _ in 0..<3 {
            #expect(try b.value("SHOW IntervalStyle") == "postgres")
            #expect(try a.value("SHOW IntervalStyle") == "iso_8601")
        }
    }
}
