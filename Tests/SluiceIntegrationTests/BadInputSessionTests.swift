import Foundation
import Testing

/// Malformed input and abrupt disconnects after login. With a pool of one server, every test
/// also proves that the misbehaving client did not leak or poison the only server.
@Suite("Bad input: after login")
struct BadInputSessionTests {
    static let maxPacketSize = 65_536

    @Test(
        "a message longer than max_packet_size is refused with 08P01 before its body arrives",
        arguments: [false, true]
    )
    func oversizedMessage(insideTransaction: Bool) throws {
        try withRawSluice(poolSize: 1, settings: ["max_packet_size": "\(Self.maxPacketSize)"]) { target in
            let client = try target.connect()
            try Self.openTransaction(on: client, if: insideTransaction)
            var bytes: [UInt8] = [UInt8(ascii: "Q")]
            bytes.appendInt32(Int32(Self.maxPacketSize * 2))
            bytes.append(contentsOf: Array("SELECT '".utf8))
            bytes.append(contentsOf: [UInt8](repeating: UInt8(ascii: "x"), count: 1_000))
            try client.sendRaw(bytes)
            let replies = try client.waitForClose(timeout: .seconds(5))
            #expect(replies.count == 1 && replies.first?.sqlState == "08P01", "got \(replies)")
            try expectCleanServer(target.connect(timeout: .seconds(5)), within: .seconds(5))
        }
    }

    @Test("a message just under max_packet_size still works")
    func messageUnderTheLimit() throws {
        try withRawSluice(poolSize: 1, settings: ["max_packet_size": "\(Self.maxPacketSize)"]) { target in
            let client = try target.connect()
            let filler = String(repeating: "x", count: Self.maxPacketSize - 1_000)
            #expect(try client.queryValue("SELECT length('\(filler)')") == "\(filler.count)")
        }
    }

    @Test("a message with a length word below 4 is refused with 08P01", arguments: [0, 3, -1])
    func negativeOrTinyLength(length: Int32) throws {
        try withRawSluice(poolSize: 1) { target in
            let client = try target.connect()
            var bytes: [UInt8] = [UInt8(ascii: "Q")]
            bytes.appendInt32(length)
            try client.sendRaw(bytes)
            let replies = try client.waitForClose(timeout: .seconds(5))
            #expect(replies.count == 1 && replies.first?.sqlState == "08P01", "got \(replies)")
            try target.expectServing()
        }
    }

    @Test(
        "an unknown message type after login is refused like PostgreSQL does: FATAL 08P01",
        // 'p' is a PasswordMessage, which PostgreSQL only accepts during authentication.
        arguments: [UInt8(ascii: "y"), UInt8(ascii: "p"), 0, 0xff]
    )
    func unknownMessageType(type: UInt8) throws {
        try withRawSluice(poolSize: 1) { target in
            let client = try target.connect()
            // Inside a transaction, so that the only server must also be cleaned up.
            try Self.openTransaction(on: client, if: true)
            try client.send { $0.message(type: type, payload: [1, 2, 3]) }
            // PostgreSQL: FATAL 08P01 "invalid frontend message type 121", then it closes.
            let replies = try client.waitForClose(timeout: .seconds(5))
            let failure = try #require(replies.first, "closed without an ErrorResponse")
            #expect(failure.sqlState == "08P01", "got \(replies)")
            #expect(failure.severity == "FATAL", "got \(failure)")
            try expectCleanServer(target.connect(timeout: .seconds(5)), within: .seconds(5))
        }
    }

    @Test("a truncated message followed by a close leaks nothing", arguments: [false, true])
    func truncatedMessageThenClose(insideTransaction: Bool) throws {
        try withRawSluice(poolSize: 1) { target in
            let client = try target.connect()
            try Self.openTransaction(on: client, if: insideTransaction)
            var bytes: [UInt8] = [UInt8(ascii: "Q")]
            bytes.appendInt32(100)
            bytes.append(contentsOf: Array("SELECT 1".utf8))
            try client.sendRaw(bytes)
            sleep(for: .milliseconds(50))
            client.close()

            let next = try target.connect(timeout: .seconds(5))
            try expectCleanServer(next, within: .seconds(5))
        }
    }

    @Test("a client that vanishes mid-transaction leaves a clean server for the next one")
    func disconnectMidTransaction() throws {
        try withRawSluice(poolSize: 1) { target in
            let first = try target.connect()
            try first.simpleQuery("BEGIN")
            try first.simpleQuery("SET LOCAL statement_timeout = '7s'")
            try first.simpleQuery("SELECT txid_current()")
            try first.simpleQuery("CREATE TEMP TABLE vanished_client (id int) ON COMMIT DROP")
            let replies = try first.simpleQuery("SELECT 1")
            #expect(replies.last?.readyStatus == "T")
            first.close()

            let next = try target.connect(timeout: .seconds(5))
            try expectCleanServer(next, within: .seconds(5))
        }
    }

    @Test("a client that vanishes while its statement runs leaves a clean server for the next one")
    func disconnectDuringStatement() throws {
        try withRawSluice(poolSize: 1) { target in
            let first = try target.connect()
            try first.simpleQuery("BEGIN")
            try first.send { $0.query("SELECT pg_sleep(1)") }
            sleep(for: .milliseconds(100))
            first.close()

            let next = try target.connect(timeout: .seconds(5))
            try expectCleanServer(next, within: .seconds(5))
        }
    }

    @Test("a client that vanishes in the middle of a pipelined batch leaves a clean server")
    func disconnectMidPipeline() throws {
        try withRawSluice(poolSize: 1) { target in
            let first = try target.connect()
            try first.send {
                $0.query("BEGIN")
                $0.parse("SELECT pg_sleep(0.3)")
                $0.bind()
                $0.execute()
                // No Sync: the server waits for more.
            }
            try first.expect(types: "CZ")
            first.close()

            let next = try target.connect(timeout: .seconds(5))
            try expectCleanServer(next, within: .seconds(5))
        }
    }

    @Test("a client that vanishes during COPY FROM STDIN leaves a clean server")
    func disconnectDuringCopy() throws {
        try withRawSluice(poolSize: 1) { target in
            let first = try target.connect()
            try first.simpleQuery("CREATE TEMP TABLE copy_target (id int)")
            try first.send { $0.query("COPY copy_target FROM STDIN") }
            try first.expect(types: "G")
            try first.send { $0.copyData(Array("1\n2\n".utf8)) }
            sleep(for: .milliseconds(50))
            first.close()

            let next = try target.connect(timeout: .seconds(5))
            try expectCleanServer(next, within: .seconds(5))
        }
    }

    @Test("a client that vanishes while a huge result streams to it leaves a usable pool")
    func disconnectDuringHugeResult() throws {
        try withRawSluice(poolSize: 1) { target in
            let first = try target.connect()
            try first.send { $0.query("SELECT repeat('x', 1000000) FROM generate_series(1, 500)") }
            try first.expect(types: "T")
            _ = try first.read()
            first.close()

            // Sluice must cancel or drop the server's remaining ~500 MB, not make us wait for it.
            let next = try target.connect(timeout: .seconds(5))
            try expectCleanServer(next, within: .seconds(10))
        }
    }

    @Test("Terminate in the middle of a transaction leaves a clean server")
    func terminateMidTransaction() throws {
        try withRawSluice(poolSize: 1) { target in
            let first = try target.connect()
            try first.simpleQuery("BEGIN")
            try first.simpleQuery("SET LOCAL statement_timeout = '7s'")
            try first.simpleQuery("SELECT txid_current()")
            try first.send {
                $0.terminate()
                // Anything after Terminate must be ignored, not executed.
                $0.query("COMMIT")
            }
            try first.waitForClose(timeout: .seconds(5))

            let next = try target.connect(timeout: .seconds(5))
            try expectCleanServer(next, within: .seconds(5))
        }
    }

    @Test("a client that gives up while queued for a server leaves no trace")
    func disconnectWhileQueued() throws {
        try withRawSluice(poolSize: 1) { target in
            let holder = try target.connect()
            try holder.send { $0.query("SELECT 'held' FROM pg_sleep(0.5)") }
            for _ in 0..<3 {
                let quitter = try target.connect()
                try quitter.send { $0.query("SELECT 'never ran'") }
                sleep(for: .milliseconds(20))
                quitter.close()
            }
            #expect(try holder.expect(types: "TDCZ")[1].dataRowColumns == ["held"])
            let next = try target.connect(timeout: .seconds(5))
            try expectCleanServer(next, within: .seconds(5))
            try expectNothingMore(from: holder)
        }
    }

    /// BEGIN, a transaction id and a transaction-local setting: what the next client must not see.
    private static func openTransaction(on client: RawClient, if wanted: Bool) throws {
        guard wanted else { return }
        try client.simpleQuery("BEGIN")
        try client.simpleQuery("SET LOCAL statement_timeout = '7s'")
        try client.simpleQuery("SELECT txid_current()")
    }

    /// A server fit for a new client: idle (not in a transaction), no transaction id assigned,
    /// and no setting left over from the previous client's transaction.
    private func expectCleanServer(_ client: RawClient, within timeout: Duration) throws {
        let replies = try client.simpleQuery("SELECT 1", timeout: timeout)
        #expect(replies.compactMap(\.dataRowColumns) == [["1"]])
        #expect(replies.last?.readyStatus == "I", "the next client landed in a transaction: \(replies)")
        #expect(try client.queryValue("SELECT txid_current_if_assigned()") == nil)
        #expect(try client.queryValue("SHOW statement_timeout") == "0")
    }
}
