import Foundation
import Testing

/// What an idle, logged-in client costs, and the sharing that keeps it small staying invisible to
/// clients: shared parameters, log lines made per line, references between clients and servers.
@Suite("Idle clients")
struct IdleMemoryTests {
    /// Resident memory of a process, in bytes.
    private static func residentBytes(of pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let fields = line.split(separator: " ")
            if fields.count >= 2, let kilobytes = Int(fields[1]) { return kilobytes * 1024 }
        }
        return nil
    }

    @Test("an idle client that ran one transaction costs less memory than PgBouncer 1.18's (about 1 KB)")
    func memoryPerIdleClient() throws {
        let proxied = try ProxiedDatabase(settings: ["max_client_conn": "1000"], poolSize: 5)
        defer { proxied.stop() }
        func openIdleClients(_ count: Int) throws -> [PQConn] {
            try (0..<count).map { _ in
                let client = try proxied.connect()
                #expect(try client.value("SELECT 1") == "1")
                return client
            }
        }
        // The first clients page in the login code and grow the registries: a one-off cost, left out.
        let warm = try openIdleClients(100)
        defer { warm.forEach { $0.close() } }
        sleep(for: .milliseconds(300))
        let before = try #require(Self.residentBytes(of: proxied.sluice.pid))
        let count = 600
        let idle = try openIdleClients(count)
        defer { idle.forEach { $0.close() } }
        sleep(for: .milliseconds(300))
        let after = try #require(Self.residentBytes(of: proxied.sluice.pid))
        let perClient = (after - before) / count
        #expect(perClient < 1000, "\(perClient) bytes per idle client (RSS \(before) -> \(after))")
        // Still a working proxy, with every idle client able to run its next transaction.
        for client in [warm[0], idle[0], idle[count - 1]] {
            #expect(try client.value("SELECT 2") == "2")
        }
    }

    @Test("clients that logged in with the same parameters share them until one changes its own")
    func sharedParametersStayPerClient() throws {
        // One loop and one server: every client runs on the server the others changed.
        let proxied = try ProxiedDatabase(settings: ["workers": "1"], poolSize: 1)
        defer { proxied.stop() }
        let first = try proxied.connect()
        let second = try proxied.connect()
        #expect(try first.value("SHOW application_name") == "")
        #expect(try second.value("SHOW application_name") == "")
        // Outside a transaction, SET reaches Sluice as a ParameterStatus and becomes the first client's
        // own value; the second client's must not change with it.
        _ = try first.exec("SET application_name = 'changed_by_first'")
        #expect(try second.value("SHOW application_name") == "")
        #expect(try first.value("SHOW application_name") == "changed_by_first")
        // A client logging in now shares the second one's set.
        let third = try proxied.connect()
        #expect(third.parameterStatus("application_name") == "")
        #expect(try third.value("SHOW application_name") == "")
        _ = try third.exec("SET application_name = 'changed_by_third'")
        #expect(try second.value("SHOW application_name") == "")
        #expect(try first.value("SHOW application_name") == "changed_by_first")
        #expect(try third.value("SHOW application_name") == "changed_by_third")
    }

    @Test("a client's log lines carry client, peer, db and user, in that order")
    func clientLogKeys() throws {
        let proxied = try ProxiedDatabase(settings: ["log_connections": "1"])
        defer { proxied.stop() }
        let client = try proxied.connect()
        #expect(try client.value("SELECT 1") == "1")
        #expect(throws: PQError.self) { try proxied.connect(password: "not the password") }
        let keys =
            #"client=C[0-9]+ peer=127\.0\.0\.1:[0-9]+ "#
            + "db=\(NSRegularExpression.escapedPattern(for: proxied.database)) "
            + "user=\(NSRegularExpression.escapedPattern(for: proxied.role.name))"
        let login = try Regex("level=info msg=login " + keys + " pool_mode=transaction")
        let failure = try Regex(#"level=warning msg="authentication failed" "# + keys + " sqlstate=28P01")
        var log = ""
        let found = waitUntil(timeout: .seconds(5)) {
            log = proxied.sluice.stderrText
            return log.contains(login) && log.contains(failure)
        }
        #expect(found, "\(log)")
    }

    @Test("a client that leaves while its server is being checked does not keep the server from the next one")
    func clientLeavesDuringServerCheck() throws {
        try withRawSluice(
            poolSize: 1,
            settings: ["server_check_delay": "0", "server_check_query": "select pg_sleep(0.5)"]
        ) { target in
            let leaving = try target.connect()
            // A fresh server is lent unchecked; from its second loan on it is checked first.
            #expect(try leaving.queryValue("SELECT 1") == "1")
            try leaving.send { $0.query("SELECT 2") }
            sleep(for: .milliseconds(200))
            leaving.close()
            let next = try target.connect()
            defer { next.terminate() }
            #expect(try next.queryValue("SELECT 3", timeout: .seconds(10)) == "3")
            try target.expectServing()
        }
    }
}
