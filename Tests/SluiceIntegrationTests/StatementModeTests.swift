import Foundation
import Testing

@Suite("Statement pooling")
struct StatementModeTests {
    @Test("single statements run; a multi-statement transaction is refused with a clear error")
    func statementMode() throws {
        let proxied = try ProxiedDatabase(settings: ["pool_mode": "statement"], poolSize: 1)
        defer { proxied.stop() }
        let client = try proxied.connect()
        #expect(try client.value("SELECT 1") == "1")
        #expect(try client.execParams("SELECT $1::int + 1", ["41"]).first?.first == "42")
        let error = #expect(throws: PQError.self) {
            _ = try client.exec("BEGIN")
            _ = try client.exec("SELECT 1")
        }
        #expect(error?.message.contains("statement pooling") == true, "\(String(describing: error))")
        // The server went back clean: the next client is not inside that transaction.
        let next = try proxied.connect()
        #expect(try next.value("SELECT txid_current_if_assigned() IS NULL") == "t")
    }
}
