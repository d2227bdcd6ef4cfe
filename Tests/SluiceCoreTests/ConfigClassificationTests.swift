import Foundation
import Testing

@testable import SluiceCore

@Suite("Classification of PgBouncer's settings")
struct ConfigClassificationTests {
    @Test("the table lists PgBouncer's 101 keys once each, plus Sluice's own")
    func tableShape() {
        let names = ConfigKey.all.map(\.name)
        #expect(Set(names).count == names.count)
        #expect(names == names.sorted())
        #expect(ConfigKey.all.filter { !$0.isSluiceOnly }.count == 101)
        #expect(
            ConfigKey.all.filter(\.isSluiceOnly).map(\.name) == [
                "auth_query_cache_ttl", "health_check_period", "login_failure_exempt_loopback", "login_failure_limit",
                "login_failure_window",
                "max_client_prepared_statements", "primary_reads", "primary_wait_timeout",
                "read_your_writes", "replica_ban_time", "replica_load_balance", "replica_max_lag_bytes",
                "replica_max_lag_seconds", "routing_check_period", "routing_safe_functions", "routing_unsafe_functions",
                "stats_auth_token", "stats_listen_addr", "stats_listen_port", "workers",
            ])
        #expect(ConfigKey.named("LISTEN_PORT")?.name == "listen_port")
    }

    @Test("every key loads at its default value", arguments: ConfigKey.all)
    func defaultValueLoads(key: ConfigKey) throws {
        let config = try parseConfig("[sluice]\nlisten_addr = 127.0.0.1\n\(key.name) = \(key.defaultValue)\n")
        let warned = config.warnings.contains { $0.line == 3 }
        switch key.kind {
        case .implemented:
            #expect(!warned)
        case .cosmetic, .restrictive:
            #expect(warned)
        }
    }

    @Test("the implemented defaults in the table match the model's defaults")
    func implementedDefaultsAgree() throws {
        var text = "[sluice]\n"
        for key in ConfigKey.all where key.kind == .implemented {
            text += "\(key.name) = \(key.defaultValue)\n"
        }
        var config = try parseConfig(text + "listen_addr = 127.0.0.1\n")
        config.warnings = []
        config.sourceFile = nil
        // What SHOW CONFIG shows: every key as written.
        #expect(config.settingValues.count == ConfigKey.all.count { $0.kind == .implemented })
        #expect(config.settingValues["default_pool_size"] == "20")
        config.settingValues = [:]
        var expected = SluiceConfig.pgbouncerDefaults
        expected.listenAddresses = ["127.0.0.1"]
        #expect(config == expected)
    }

    @Test("cosmetic keys warn once whatever their value")
    func cosmeticWarns() throws {
        let config = try parseConfig("[sluice]\nlisten_addr=*\nsyslog = 1\nsbuf_loopcnt = 10\nsbuf_loopcnt = 15\n")
        let messages = config.warnings.filter { $0.line != nil }
        #expect(messages.count == 2)
        #expect(messages[0].message == "syslog is not implemented by Sluice and is ignored")
        #expect(messages[1].line == 5)
    }

    @Test(
        "restrictive keys at a non-default value are refused with file and line",
        arguments: [
            "auth_ident_file = /etc/ident.conf", "disable_pqexec = 1", "user = postgres", "peer_id = 1",
        ])
    func restrictiveRefused(line: String) {
        let error = configError { _ = try parseConfig("[sluice]\nlisten_addr=*\n\(line)\n") }
        #expect(error?.file == "/etc/sluice/sluice.ini")
        #expect(error?.line == 3)
        #expect(
            error?.message.hasSuffix("is not supported yet; Sluice refuses to run weaker than the file asks") == true,
            "\(String(describing: error))")
    }

    @Test("the refusal quotes key and value")
    func refusalText() {
        let error = configError { _ = try parseConfig("[sluice]\npeer_id = 30\n") }
        #expect(
            error?.description
                == "/etc/sluice/sluice.ini:2: peer_id = '30' is not supported yet; "
                + "Sluice refuses to run weaker than the file asks")
    }

    @Test("sensitive values are not echoed")
    func sensitive() {
        let error = configError { _ = try parseConfig("[sluice]\nauth_ldap_options = ldapbindpasswd=hunter2\n") }
        #expect(error?.description.contains("hunter2") == false)
        #expect(error?.message.contains("auth_ldap_options = <redacted>") == true)
    }

    @Test(
        "restrictive keys at their default, or a value that permits what Sluice does, only warn",
        arguments: [
            "peer_id = 0", "disable_pqexec = 0",
        ])
    func restrictiveAtDefault(line: String) throws {
        let config = try parseConfig("[sluice]\nlisten_addr=*\n\(line)\n")
        #expect(config.warnings.contains { $0.line == 3 })
    }

    @Test(
        "auth types Sluice does not implement are refused",
        arguments: ["pam", "ldap"])
    func authTypes(type: String) {
        let error = configError { _ = try parseConfig("[sluice]\nauth_type = \(type)\n") }
        #expect(error?.line == 2)
        #expect(error?.message.contains("is not supported yet") == true)
    }

    @Test("implemented auth types load, case-insensitively")
    func implementedAuthTypes() throws {
        #expect(try parseConfig("[sluice]\nlisten_addr=*\nauth_type = SCRAM-SHA-256\n").authType == .scramSHA256)
        #expect(try parseConfig("[sluice]\nlisten_addr=*\nauth_type = trust\n").authType == .trust)
        #expect(try parseConfig("[sluice]\nlisten_addr=*\nauth_type = plain\n").authType == .plain)
    }

    @Test("bad values are errors with their line")
    func badValues() {
        #expect(configError { _ = try parseConfig("[sluice]\nstats_period = soon\n") }?.line == 2)
        #expect(configError { _ = try parseConfig("[sluice]\nclient_tls_sslmode = sometimes\n") }?.line == 2)
        #expect(configError { _ = try parseConfig("[sluice]\nserver_tls_protocols = sslv3\n") }?.line == 2)
    }

    @Test("docs/configuration.md describes every key")
    func documented() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let docs = try String(contentsOf: root.appendingPathComponent("docs/configuration.md"), encoding: .utf8)
        for key in ConfigKey.all {
            #expect(docs.contains("`\(key.name)`"), "docs/configuration.md does not mention \(key.name)")
        }
        for variable in SluiceConfig.environmentVariables {
            #expect(docs.contains("`\(variable)`"), "docs/configuration.md does not mention \(variable)")
        }
    }

    @Test("max_prepared_statements: 200 by default, 0 turns tracking off, negative is refused with its line")
    func maxPreparedStatements() throws {
        #expect(try parseConfig("[sluice]\nlisten_addr=*\n").maxPreparedStatements == 200)
        #expect(try parseConfig("[sluice]\nlisten_addr=*\nmax_prepared_statements = 0\n").maxPreparedStatements == 0)
        let error = configError { _ = try parseConfig("[sluice]\nlisten_addr=*\nmax_prepared_statements = -1\n") }
        #expect(error?.line == 3)
    }
}
