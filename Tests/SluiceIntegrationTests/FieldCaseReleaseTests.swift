import Foundation
import Testing

/// Siblings of F2 and F3: every place where a transaction-pooling proxy decides "this server is
/// free again". With one server and a second client waiting, releasing too early shows up as the
/// waiter running inside someone else's transaction or receiving someone else's rows.
@Suite("Field cases: release boundaries")
struct FieldCaseReleaseTests {
    enum OpenTransaction: String, CaseIterable, Sendable {
        case simpleBegin = "BEGIN by simple query"
        case extendedBegin = "BEGIN by extended query"
        case failedTransaction = "failed transaction (ReadyForQuery 'E')"
        case beginInsideMultiStatementQuery = "BEGIN inside a multi-statement simple query"
    }

    @Test("a waiting client never runs inside another client's open transaction", arguments: OpenTransaction.allCases)
    func waiterNeverJoinsAnOpenTransaction(how: OpenTransaction) throws {
        try withRawSluice(poolSize: 1) { target in
            let holder = try target.connect()
            let waiter = try target.connect()
            let expectedStatus: Character
            switch how {
            case .simpleBegin:
                try holder.simpleQuery("BEGIN")
                try holder.simpleQuery("SELECT txid_current()")
                expectedStatus = "T"
            case .extendedBegin:
                try holder.send { $0.extendedQuery("BEGIN") }
                try holder.expect(types: "12CZ")
                try holder.send { $0.extendedQuery("SELECT txid_current()") }
                try holder.expect(types: "12DCZ")
                expectedStatus = "T"
            case .failedTransaction:
                try holder.simpleQuery("BEGIN")
                try holder.simpleQuery("SELECT txid_current()")
                try holder.send { $0.query("SELECT 1/0") }
                #expect(try holder.readUntilReadyForQuery().contains { $0.sqlState == "22012" })
                expectedStatus = "E"
            case .beginInsideMultiStatementQuery:
                try holder.simpleQuery("SELECT 1; BEGIN; SELECT txid_current()")
                expectedStatus = "T"
            }
            try waiter.send { $0.query("SELECT txid_current_if_assigned()") }
            // The waiter must still be waiting: the only server is inside the holder's transaction.
            try expectNothingMore(from: waiter, within: .milliseconds(400))

            try holder.send { $0.query("SELECT 'still mine'") }
            let inTransaction = try holder.readUntilReadyForQuery()
            #expect(inTransaction.last?.readyStatus == expectedStatus, "got \(inTransaction)")
            try holder.simpleQuery("ROLLBACK")

            let replies = try waiter.expect(types: "TDCZ")
            #expect(replies[1].dataRowColumns == [nil], "the waiter ran inside the holder's transaction: \(replies)")
            #expect(replies[3].readyStatus == "I")
        }
    }

    @Test("several simple queries in one write each get their own reply while another client waits")
    func pipelinedSimpleQueries() throws {
        try withRawSluice(poolSize: 1) { target in
            let first = try target.connect()
            let second = try target.connect()
            try first.send {
                $0.query("SELECT 'a1' FROM pg_sleep(0.3)")
                $0.query("SELECT 'a2'")
                $0.query("SELECT 'a3' FROM pg_sleep(0.1)")
            }
            sleep(for: .milliseconds(50))
            try second.send { $0.query("SELECT 'b'") }
            for expected in ["a1", "a2", "a3"] {
                let replies = try first.expect(types: "TDCZ")
                #expect(replies[1].dataRowColumns == [expected], "got \(replies)")
            }
            try expectNothingMore(from: first)
            #expect(try second.expect(types: "TDCZ")[1].dataRowColumns == ["b"])
            try expectNothingMore(from: second)
        }
    }

    @Test("a result of many megabytes, read slowly, arrives intact and nobody else sees it")
    func largeResultReadSlowly() throws {
        try withRawSluice(poolSize: 1) { target in
            let first = try target.connect()
            let second = try target.connect()
            let rows = 300
            let width = 32 * 1_000
            try first.send {
                $0.query("SELECT g, repeat(md5(g::text), \(width / 32)) FROM generate_series(1, \(rows)) AS g")
            }
            sleep(for: .milliseconds(100))
            try second.send { $0.query("SELECT 'b'") }
            try first.expect(types: "T")
            for row in 1...rows {
                let message = try first.read()
                let columns = try #require(message.dataRowColumns, "expected DataRow \(row), got \(message)")
                #expect(columns.first == "\(row)")
                #expect(columns.last??.count == width)
                if row % 50 == 0 { sleep(for: .milliseconds(50)) }
            }
            try first.expect(types: "CZ")
            #expect(try second.expect(types: "TDCZ")[1].dataRowColumns == ["b"])
        }
    }

    @Test("a client that stops reading a huge result does not stall other clients")
    func stalledReaderDoesNotStallOthers() throws {
        try withRawSluice(poolSize: 2) { target in
            let stalled = try target.connect()
            try stalled.send { $0.query("SELECT repeat('x', 1000000) FROM generate_series(1, 200)") }
            sleep(for: .milliseconds(300))
            // The stalled client holds one server and lots of buffered bytes; the other server serves.
            let other = try target.connect(timeout: .seconds(5))
            let started = ContinuousClock.now
            for _ in 0..<5 {
                #expect(try other.queryValue("SELECT 1", timeout: .seconds(5)) == "1")
            }
            #expect(ContinuousClock.now - started < .seconds(2))
            stalled.close()
            try target.expectServing()
        }
    }

    @Test("COPY TO STDOUT of many rows reaches only its client while another waits")
    func copyOutWhileAnotherWaits() throws {
        try withRawSluice(poolSize: 1) { target in
            let first = try target.connect()
            let second = try target.connect()
            try first.send { $0.query("COPY (SELECT g FROM generate_series(1, 20000) AS g) TO STDOUT") }
            sleep(for: .milliseconds(20))
            try second.send { $0.query("SELECT 'b'") }
            try first.expect(types: "H")
            var lines = 0
            while true {
                let message = try first.read()
                if message.typeChar == "d" {
                    lines += message.payload.filter { $0 == UInt8(ascii: "\n") }.count
                    continue
                }
                #expect(message.typeChar == "c", "got \(message)")
                break
            }
            #expect(lines == 20_000)
            let tail = try first.expect(types: "CZ")
            #expect(tail[0].commandTag == "COPY 20000")
            #expect(try second.expect(types: "TDCZ")[1].dataRowColumns == ["b"])
        }
    }

    @Test("COPY FROM STDIN in pieces keeps the server until CopyDone's ReadyForQuery")
    func copyInWhileAnotherWaits() throws {
        try withRawSluice(poolSize: 1) { target in
            let first = try target.connect()
            let second = try target.connect()
            try first.simpleQuery("CREATE TABLE copy_in_release (id int PRIMARY KEY)")
            try first.send { $0.query("COPY copy_in_release FROM STDIN") }
            try first.expect(types: "G")
            try second.send { $0.query("SELECT count(*) FROM copy_in_release") }
            for chunk in 0..<10 {
                let text = (0..<1_000).map { "\(chunk * 1_000 + $0)\n" }.joined()
                try first.send { $0.copyData(Array(text.utf8)) }
                sleep(for: .milliseconds(20))
            }
            try first.send { $0.copyDone() }
            #expect(try first.expect(types: "CZ")[0].commandTag == "COPY 10000")
            // The waiter ran after the COPY committed, never in the middle of it.
            #expect(try second.expect(types: "TDCZ")[1].dataRowColumns == ["10000"])
        }
    }

    @Test("Sync and Flush sent during COPY FROM STDIN are ignored, as PostgreSQL ignores them")
    func syncDuringCopyInIsIgnored() throws {
        try withRawSluice(poolSize: 1) { target in
            let first = try target.connect()
            let second = try target.connect()
            try first.simpleQuery("CREATE TABLE copy_in_sync (id int)")
            try first.send { $0.query("COPY copy_in_sync FROM STDIN") }
            try first.expect(types: "G")
            // The protocol docs: "The backend will ignore Flush and Sync messages received during
            // copy-in mode." libpq may send them without noticing that the command was a COPY.
            try first.send {
                $0.copyData(Array("1\n".utf8))
                $0.sync()
                $0.flush()
                $0.copyData(Array("2\n".utf8))
                $0.copyDone()
            }
            #expect(try first.expect(types: "CZ")[0].commandTag == "COPY 2")
            try expectNothingMore(from: first)
            // One ReadyForQuery was owed, one arrived: the server is free for the next client.
            let count = try second.queryValue("SELECT count(*) FROM copy_in_sync", timeout: .seconds(5))
            #expect(count == "2")
            #expect(try first.queryValue("SELECT 'first again'") == "first again")
        }
    }

    @Test(
        "COPY FROM STDIN over the extended protocol, as libpq sends it, frees the server after one ReadyForQuery",
        arguments: [true, false]
    )
    func extendedProtocolCopyIn(validRows: Bool) throws {
        try withRawSluice(poolSize: 1) { target in
            let first = try target.connect()
            let second = try target.connect()
            try first.simpleQuery("CREATE TABLE copy_in_extended (id int)")
            // PQsendQueryParams: the Sync goes out with the Execute and reaches the server in
            // copy-in mode, where it is ignored; PQputCopyEnd then sends CopyDone and another Sync.
            try first.send { $0.extendedQuery("COPY copy_in_extended FROM STDIN") }
            try first.expect(types: "12G")
            try first.send {
                $0.copyData(Array((validRows ? "1\n2\n" : "1\nnot a number\n").utf8))
                $0.copyDone()
                $0.sync()
            }
            let replies = try first.readUntilReadyForQuery()
            if validRows {
                #expect(replies.map(\.typeChar) == ["C", "Z"], "got \(replies)")
            } else {
                #expect(replies.contains { $0.sqlState == "22P02" }, "got \(replies)")
            }
            try expectNothingMore(from: first)
            let count = try second.queryValue("SELECT count(*) FROM copy_in_extended", timeout: .seconds(5))
            #expect(count == (validRows ? "2" : "0"))
            #expect(try first.queryValue("SELECT 'first again'") == "first again")
        }
    }

    @Test("extended messages ended by a simple Query instead of a Sync free the server at the Query's ReadyForQuery")
    func extendedBatchEndedByQuery() throws {
        try withRawSluice(poolSize: 1) { target in
            let first = try target.connect()
            let second = try target.connect()
            // No Sync: the Query's implicit transaction takes in the Execute, and its ReadyForQuery
            // (idle) is the end of everything PostgreSQL owes.
            try first.send {
                $0.parse("SELECT 'extended'")
                $0.bind()
                $0.execute()
                $0.query("SELECT 'simple'")
            }
            let replies = try first.expect(types: "12DCTDCZ")
            #expect(replies[2].dataRowColumns == ["extended"])
            #expect(replies[5].dataRowColumns == ["simple"])
            #expect(replies[7].readyStatus == "I")
            try expectNothingMore(from: first)
            #expect(try second.queryValue("SELECT 'second'", timeout: .seconds(5)) == "second")
            #expect(try first.queryValue("SELECT 'first again'") == "first again")
        }
    }

    @Test("extended messages ended by a FunctionCall instead of a Sync free the server at its ReadyForQuery")
    func extendedBatchEndedByFunctionCall() throws {
        try withRawSluice(poolSize: 1) { target in
            let first = try target.connect()
            let second = try target.connect()
            // A FunctionCall (libpq's PQfn, used by the large-object API) finishes its transaction
            // like a simple Query does, taking the unsynced Execute with it.
            try first.send {
                $0.parse("SELECT 'extended'")
                $0.bind()
                $0.execute()
                $0.functionCall(oid: 177, arguments: ["2", "3"])
            }
            let replies = try first.expect(types: "12DCVZ")
            #expect(replies[2].dataRowColumns == ["extended"])
            #expect(replies[5].readyStatus == "I")
            try expectNothingMore(from: first)
            #expect(try second.queryValue("SELECT 'second'", timeout: .seconds(5)) == "second")
        }
    }

    @Test("a server that dies under an open transaction ends the client's session; it never resumes elsewhere")
    func serverDiesInsideTransaction() throws {
        try withRawSluice(poolSize: 1) { target in
            let client = try target.connect()
            try client.simpleQuery("BEGIN")
            try client.simpleQuery("CREATE TEMP TABLE doomed (id int)")
            let pid = try #require(client.queryValue("SELECT pg_backend_pid()").flatMap { Int32($0) })
            try target.proxied.cluster.terminateBackend(pid)
            sleep(for: .milliseconds(200))
            // Running on a fresh server would silently drop half a transaction.
            try client.send { $0.query("INSERT INTO doomed VALUES (1)") }
            let replies = try client.waitForClose(timeout: .seconds(5))
            #expect(!replies.contains { $0.commandTag != nil }, "the statement ran somewhere: \(replies)")
            #expect(replies.contains { $0.isError }, "closed without telling the client why: \(replies)")
            try target.expectServing()
        }
    }

    @Test("a server that dies while idle is replaced without the next client noticing")
    func serverDiesWhileIdle() throws {
        try withRawSluice(poolSize: 1) { target in
            let client = try target.connect()
            let pid = try #require(client.queryValue("SELECT pg_backend_pid()").flatMap { Int32($0) })
            try target.proxied.cluster.terminateBackend(pid)
            sleep(for: .milliseconds(200))
            let replies = try client.simpleQuery("SELECT pg_backend_pid()", timeout: .seconds(5))
            let newPID = replies.compactMap { $0.dataRowColumns?.first ?? nil }.first
            #expect(newPID != nil && newPID != "\(pid)")
        }
    }

    @Test("a stray CopyDone or CopyFail outside COPY never cancels an owed ReadyForQuery", arguments: [false, true])
    func strayCopyEndOutsideCopy(useCopyFail: Bool) throws {
        try withRawSluice(poolSize: 1) { target in
            let first = try target.connect()
            let second = try target.connect()
            // PostgreSQL accepts and ignores CopyDone/CopyFail outside COPY; clients send them when
            // a COPY ended early on the server. Here one trails an ordinary Execute and Sync.
            try first.send {
                $0.extendedQuery("SELECT 'first' FROM pg_sleep(0.2)")
                if useCopyFail { $0.copyFail("late") } else { $0.copyDone() }
                $0.query("SELECT 'second'")
            }
            sleep(for: .milliseconds(50))
            try second.send { $0.query("SELECT 'other client'") }
            #expect(try first.expect(types: "12DCZ")[2].dataRowColumns == ["first"])
            #expect(try first.expect(types: "TDCZ")[1].dataRowColumns == ["second"])
            try expectNothingMore(from: first)
            let other = try second.expect(types: "TDCZ")
            #expect(other[1].dataRowColumns == ["other client"])
        }
    }
}
