import Foundation
import Testing

/// F1-F3 from the field cases: how Sluice frames, pipelines and releases servers when a client
/// packs several protocol messages into one write or holds a server across a Flush. Every test
/// uses a pool of one server so that a second client must wait for the first one's server.
@Suite("Field cases: framing and release boundaries")
struct FieldCaseFramingTests {
    // MARK: F1

    @Test("F1: a simple query and an extended batch in one write get every reply, in order")
    func simpleQueryAndExtendedBatchInOneWrite() throws {
        try withRawSluice(poolSize: 1) { target in
            let client = try target.connect()
            try client.send {
                $0.query("SET statement_timeout = 30000")
                $0.parse("SELECT $1::int + 1")
                $0.describeStatement()
                $0.bind(parameters: ["41"])
                $0.execute()
                $0.sync()
            }
            let replies = try client.expect(types: "CZ1tT2DCZ")
            #expect(replies[0].commandTag == "SET")
            #expect(replies[6].dataRowColumns == ["42"])
            #expect(replies[7].commandTag == "SELECT 1")
            try expectNothingMore(from: client)
            #expect(try client.queryValue("SELECT 1") == "1")
        }
    }

    @Test("F1 sibling: an extended batch followed by a simple query in one write")
    func extendedBatchThenSimpleQueryInOneWrite() throws {
        try withRawSluice(poolSize: 1) { target in
            let client = try target.connect()
            try client.send {
                $0.parse("SELECT 'extended'")
                $0.bind()
                $0.execute()
                $0.sync()
                $0.query("SELECT 'simple'")
            }
            let replies = try client.expect(types: "12DCZTDCZ")
            #expect(replies[2].dataRowColumns == ["extended"])
            #expect(replies[6].dataRowColumns == ["simple"])
            try expectNothingMore(from: client)
        }
    }

    @Test("F1 sibling: the same batch dribbled in tiny writes that split headers")
    func batchSplitAcrossManyWrites() throws {
        try withRawSluice(poolSize: 1) { target in
            let client = try target.connect()
            var batch = FrontendBatch()
            batch.query("SET statement_timeout = 30000")
            batch.parse("SELECT $1::int + 1")
            batch.describeStatement()
            batch.bind(parameters: ["41"])
            batch.execute()
            batch.sync()
            // Chunks of 3 bytes cut every 5-byte header in two at least once.
            var offset = 0
            while offset < batch.bytes.count {
                let end = min(offset + 3, batch.bytes.count)
                try client.sendRaw(Array(batch.bytes[offset..<end]))
                offset = end
                sleep(for: .milliseconds(2))
            }
            let replies = try client.expect(types: "CZ1tT2DCZ")
            #expect(replies[6].dataRowColumns == ["42"])
            try expectNothingMore(from: client)
        }
    }

    @Test("F1 sibling: a 2 MB NoticeResponse and ErrorResponse cross intact while another client waits")
    func hugeNoticeAndError() throws {
        try withRawSluice(poolSize: 1) { target in
            let first = try target.connect()
            let second = try target.connect()
            let size = 2_000_000
            try first.send {
                $0.query(
                    "DO $$ BEGIN RAISE NOTICE '%', repeat('n', \(size)); "
                        + "RAISE EXCEPTION '%', repeat('e', \(size)); END $$")
            }
            try second.send { $0.query("SELECT 'b'") }
            let replies = try first.expect(types: "NEZ")
            #expect(replies[0].errorMessage?.count == size)
            #expect(replies[1].errorMessage?.count == size)
            #expect(replies[1].sqlState == "P0001")
            #expect(try second.expect(types: "TDCZ")[1].dataRowColumns == ["b"])
        }
    }

    // MARK: F2

    @Test("F2: three pipelined Sync groups keep the server until the third ReadyForQuery")
    func pipelinedSyncGroupsKeepTheServer() throws {
        try withRawSluice(poolSize: 1) { target in
            let first = try target.connect()
            let second = try target.connect()
            try first.send {
                $0.extendedQuery("SELECT 'a1', pg_backend_pid()")
                $0.extendedQuery("SELECT 'a2', pg_backend_pid() FROM pg_sleep(1)")
                $0.extendedQuery("SELECT 'a3', pg_backend_pid()")
            }
            // The second client asks while the first one's middle statement sleeps.
            sleep(for: .milliseconds(200))
            try second.send { $0.query("SELECT 'b', pg_backend_pid()") }

            var pids: Set<String?> = []
            for expected in ["a1", "a2", "a3"] {
                let replies = try first.expect(types: "12DCZ")
                let row = replies[2].dataRowColumns ?? []
                #expect(row.first == expected, "first client got a reply meant for someone else: \(replies)")
                pids.insert(row.last ?? nil)
            }
            #expect(pids.count == 1, "the three groups ran on different servers: \(pids)")
            try expectNothingMore(from: first)

            let replies = try second.expect(types: "TDCZ")
            #expect(replies[1].dataRowColumns?.first == "b")
            try expectNothingMore(from: second)
        }
    }

    @Test("F2 sibling: an error in the first group skips to its Sync and the rest still arrive")
    func pipelinedGroupsAfterAnError() throws {
        try withRawSluice(poolSize: 1) { target in
            let first = try target.connect()
            let second = try target.connect()
            try first.send {
                $0.extendedQuery("SELECT 1 / 0")
                $0.extendedQuery("SELECT 'a2' FROM pg_sleep(0.5)")
                $0.extendedQuery("SELECT 'a3'")
            }
            sleep(for: .milliseconds(100))
            try second.send { $0.query("SELECT 'b'") }

            // Where the error surfaces (Bind or Execute) is PostgreSQL's business; it ends the group.
            let failed = try first.readUntilReadyForQuery()
            #expect(failed.contains { $0.sqlState == "22012" }, "got \(failed)")
            #expect(failed.last?.readyStatus == "I")
            #expect(try first.expect(types: "12DCZ")[2].dataRowColumns == ["a2"])
            #expect(try first.expect(types: "12DCZ")[2].dataRowColumns == ["a3"])
            try expectNothingMore(from: first)
            #expect(try second.expect(types: "TDCZ")[1].dataRowColumns == ["b"])
        }
    }

    @Test("F2 sibling: 2000 pipelined Sync groups in one write are all answered, in order")
    func manyPipelinedSyncGroups() throws {
        try withRawSluice(poolSize: 1) { target in
            let first = try target.connect()
            let second = try target.connect()
            let count = 2_000
            try first.send {
                $0.parse("SELECT $1::int", name: "many")
                $0.sync()
                for index in 0..<count {
                    $0.bind(statement: "many", parameters: ["\(index)"])
                    $0.execute()
                    $0.sync()
                }
            }
            try second.send { $0.query("SELECT 'b'") }
            try first.expect(types: "1Z")
            for index in 0..<count {
                let replies = try first.expect(types: "2DCZ")
                guard replies[1].dataRowColumns == ["\(index)"] else {
                    Issue.record("group \(index) got \(replies)")
                    return
                }
            }
            try expectNothingMore(from: first)
            #expect(try second.expect(types: "TDCZ")[1].dataRowColumns == ["b"])
        }
    }

    @Test("F2 sibling: replies never cross between 20 clients pipelining on one server")
    func manyClientsPipeliningOnOneServer() throws {
        try withRawSluice(poolSize: 1) { target in
            let clients = try (0..<20).map { _ in try target.connect() }
            for round in 0..<3 {
                for (index, client) in clients.enumerated() {
                    // Mixed protocols and short random sleeps, so that the order in which clients get
                    // the server differs from the order in which they asked.
                    try client.send {
                        $0.query("SELECT 'c\(index)r\(round)s' FROM pg_sleep(random() * 0.005)")
                        $0.extendedQuery("SELECT $1::text", parameters: ["c\(index)r\(round)e"])
                    }
                }
                for (index, client) in clients.enumerated() {
                    let simple = try client.expect(types: "TDCZ")
                    #expect(simple[1].dataRowColumns == ["c\(index)r\(round)s"], "client \(index): \(simple)")
                    let extended = try client.expect(types: "12DCZ")
                    #expect(extended[2].dataRowColumns == ["c\(index)r\(round)e"], "client \(index): \(extended)")
                }
            }
            for client in clients {
                try expectNothingMore(from: client, within: .milliseconds(20))
            }
        }
    }

    // MARK: F3

    @Test("F3: Parse/Describe/Flush keeps the server until Bind/Execute/Sync")
    func flushIsNotATransactionEnd() throws {
        try withRawSluice(poolSize: 1) { target in
            let first = try target.connect()
            let second = try target.connect()
            try first.send {
                $0.parse("SELECT $1::int * 2, pg_backend_pid()")
                $0.describeStatement()
                $0.flush()
            }
            try first.expect(types: "1tT")
            try second.send { $0.query("SELECT 'b'") }
            sleep(for: .milliseconds(200))
            try first.send {
                $0.bind(parameters: ["21"])
                $0.execute()
                $0.sync()
            }
            let replies = try first.expect(types: "2DCZ")
            #expect(replies[1].dataRowColumns?.first == "42")
            try expectNothingMore(from: first)
            let other = try second.expect(types: "TDCZ")
            #expect(other[1].dataRowColumns == ["b"])
        }
    }

    @Test("F3 sibling: a portal suspended by Execute with a row limit survives a Flush")
    func suspendedPortalAcrossFlush() throws {
        try withRawSluice(poolSize: 1) { target in
            let first = try target.connect()
            let second = try target.connect()
            try first.send {
                $0.parse("SELECT g FROM generate_series(1, 3) AS g")
                $0.bind()
                $0.execute(maxRows: 1)
                $0.flush()
            }
            let head = try first.expect(types: "12Ds")
            #expect(head[2].dataRowColumns == ["1"])
            try second.send { $0.query("SELECT 'b'") }
            sleep(for: .milliseconds(200))
            try first.send {
                $0.execute()
                $0.sync()
            }
            let tail = try first.expect(types: "DDCZ")
            #expect(tail[0].dataRowColumns == ["2"])
            #expect(tail[1].dataRowColumns == ["3"])
            #expect(try second.expect(types: "TDCZ")[1].dataRowColumns == ["b"])
        }
    }

    @Test("F3 sibling: a named statement prepared behind a Flush is found by the next Bind")
    func namedStatementAcrossFlush() throws {
        try withRawSluice(poolSize: 1) { target in
            let first = try target.connect()
            let second = try target.connect()
            try first.send {
                $0.parse("SELECT $1::text || '!'", name: "f3_named")
                $0.flush()
            }
            try first.expect(types: "1")
            try second.send { $0.query("SELECT 'b'") }
            sleep(for: .milliseconds(200))
            try first.send {
                $0.bind(statement: "f3_named", parameters: ["hi"])
                $0.execute()
                $0.sync()
            }
            #expect(try first.expect(types: "2DCZ")[1].dataRowColumns == ["hi!"])
            #expect(try second.expect(types: "TDCZ")[1].dataRowColumns == ["b"])
        }
    }
}

/// Fails the test if `client` receives anything within a short grace period: a reply that was
/// meant for another client, or a duplicate.
func expectNothingMore(from client: RawClient, within grace: Duration = .milliseconds(300)) throws {
    do {
        let extra = try client.read(timeout: grace)
        Issue.record("unexpected extra message: \(extra)")
    } catch let error as RawClientError where error.isTimeout {
        return
    }
}
