import Foundation
import Testing

/// CancelRequest through Sluice: the key it hands out must cancel exactly that client's running
/// statement, and nothing else.
@Suite("Raw protocol: CancelRequest")
struct RawProtocolCancelTests {
    @Test("a CancelRequest with the client's key cancels its running pg_sleep(5) quickly")
    func cancelRunningStatement() throws {
        try withRawSluice(poolSize: 1) { target in
            let client = try target.connect()
            let key = try #require(client.backendKey, "Sluice sent no BackendKeyData")
            try client.send { $0.query("SELECT pg_sleep(5)") }
            sleep(for: .milliseconds(300))

            let started = ContinuousClock.now
            let canceller = try RawClient(port: target.port)
            try canceller.send { $0.cancelRequest(processID: key.processID, secretKey: key.secretKey) }
            // PostgreSQL answers a CancelRequest by closing the connection without a word.
            let cancelReplies = try canceller.waitForClose(timeout: .seconds(5))
            #expect(cancelReplies.isEmpty, "a CancelRequest gets no reply: \(cancelReplies)")

            let replies = try client.readUntilReadyForQuery(timeout: .seconds(10))
            let elapsed = ContinuousClock.now - started
            #expect(replies.contains { $0.sqlState == "57014" }, "statement was not cancelled: \(replies)")
            #expect(elapsed < .seconds(2), "cancel took \(elapsed)")
            #expect(replies.last?.readyStatus == "I")
            #expect(try client.queryValue("SELECT 1") == "1")
        }
    }

    @Test("a CancelRequest with a random key is harmless")
    func cancelWithRandomKey() throws {
        try withRawSluice(poolSize: 1) { target in
            let client = try target.connect()
            let key = try #require(client.backendKey, "Sluice sent no BackendKeyData")
            try client.send { $0.query("SELECT 'survived' FROM pg_sleep(0.5)") }
            sleep(for: .milliseconds(100))

            var rng = SystemRandomNumberGenerator()
            for _ in 0..<20 {
                var pid = Int32.random(in: 1...Int32.max, using: &rng)
                var secret = (0..<4).map { _ in UInt8.random(in: 0...255, using: &rng) }
                if pid == key.processID && secret == key.secretKey {
                    pid &+= 1
                    secret[0] &+= 1
                }
                let canceller = try RawClient(port: target.port)
                try canceller.send { $0.cancelRequest(processID: pid, secretKey: secret) }
                #expect(try canceller.waitForClose(timeout: .seconds(5)).isEmpty)
            }
            // The same process id with a wrong secret must not work either.
            let guesser = try RawClient(port: target.port)
            try guesser.send {
                $0.cancelRequest(processID: key.processID, secretKey: key.secretKey.map { $0 ^ 0x5a })
            }
            try guesser.waitForClose(timeout: .seconds(5))

            let replies = try client.readUntilReadyForQuery()
            #expect(!replies.contains { $0.isError }, "the running statement was disturbed: \(replies)")
            #expect(replies.compactMap(\.dataRowColumns) == [["survived"]])
            try target.expectServing()
        }
    }

    @Test("a CancelRequest for an idle client changes nothing")
    func cancelIdleClient() throws {
        try withRawSluice(poolSize: 1) { target in
            let client = try target.connect()
            let key = try #require(client.backendKey, "Sluice sent no BackendKeyData")
            let canceller = try RawClient(port: target.port)
            try canceller.send { $0.cancelRequest(processID: key.processID, secretKey: key.secretKey) }
            try canceller.waitForClose(timeout: .seconds(5))
            sleep(for: .milliseconds(200))
            // Nothing ran, so nothing may be cancelled now or on the next statement.
            let replies = try client.simpleQuery("SELECT 'still fine' FROM pg_sleep(0.3)")
            #expect(replies.compactMap(\.dataRowColumns) == [["still fine"]])
        }
    }
}
