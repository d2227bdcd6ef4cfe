import Foundation
import Glibc
import Testing

/// Shutdown by signal: SIGTERM waits for clients, SIGINT for transactions, a second signal or
/// SIGQUIT exits at once.
@Suite("Shutdown signals")
struct SignalsTests {
    @Test("SIGTERM waits while a client is connected, then exits once it leaves")
    func sigtermWaitsForClients() throws {
        let proxied = try ProxiedDatabase()
        defer { proxied.stop() }
        let client = try proxied.connect()
        #expect(try client.value("SELECT 1") == "1")

        proxied.sluice.signal(SIGTERM)
        #expect(proxied.sluice.waitForExit(timeout: .seconds(1)) == nil, "exited while a client was connected")
        #expect(try client.value("SELECT 'still served'") == "still served")

        client.close()
        let status = proxied.sluice.waitForExit(timeout: .seconds(10))
        #expect(status == 0, "exit status \(String(describing: status)); log:\n\(proxied.sluice.logTail())")
    }

    @Test("a second SIGTERM exits at once, clients or not")
    func secondSigtermExitsAtOnce() throws {
        let proxied = try ProxiedDatabase()
        defer { proxied.stop() }
        let client = try proxied.connect()
        #expect(try client.value("SELECT 1") == "1")

        proxied.sluice.signal(SIGTERM)
        #expect(proxied.sluice.waitForExit(timeout: .milliseconds(500)) == nil)
        proxied.sluice.signal(SIGTERM)
        let status = proxied.sluice.waitForExit(timeout: .seconds(3))
        #expect(status != nil, "still running after the second SIGTERM")
        withExtendedLifetime(client) {}
    }

    @Test("SIGINT waits for an open transaction, then exits")
    func sigintWaitsForTransactions() throws {
        let proxied = try ProxiedDatabase()
        defer { proxied.stop() }
        let client = try proxied.connect()
        try client.exec("BEGIN")
        try client.exec("CREATE TABLE during_shutdown (n int)")

        proxied.sluice.signal(SIGINT)
        #expect(proxied.sluice.waitForExit(timeout: .seconds(1)) == nil, "exited in the middle of a transaction")
        try client.exec("INSERT INTO during_shutdown VALUES (1)")
        try client.exec("COMMIT")

        let status = proxied.sluice.waitForExit(timeout: .seconds(10))
        #expect(status == 0, "exit status \(String(describing: status)); log:\n\(proxied.sluice.logTail())")
        // The transaction really committed on the server.
        let count = try proxied.directSuperuser().value("SELECT count(*) FROM during_shutdown")
        #expect(count == "1")
    }

    @Test("SIGQUIT exits at once")
    func sigquitExitsAtOnce() throws {
        let proxied = try ProxiedDatabase()
        defer { proxied.stop() }
        let client = try proxied.connect()
        try client.exec("BEGIN")
        proxied.sluice.signal(SIGQUIT)
        #expect(proxied.sluice.waitForExit(timeout: .seconds(3)) != nil, "still running after SIGQUIT")
        withExtendedLifetime(client) {}
    }
}
