import Foundation
import Testing

/// Differential tests: the same bytes go to Sluice and straight to PostgreSQL, and the replies
/// must match message for message (ignoring ParameterStatus and notices, which legitimately
/// differ between a pooler and a server).
@Suite("Raw protocol: Sluice answers like PostgreSQL")
struct RawProtocolDifferentialTests {
    /// A named batch of frontend messages sent in one write after login.
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        /// Batches sent one after another, each after the previous one's replies were read.
        var steps: [@Sendable (inout FrontendBatch) -> Void]
        /// How many ReadyForQuery each step produces.
        var readyCounts: [Int]

        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(
            name: "F1 batch",
            steps: [
                {
                    $0.query("SET statement_timeout = 30000")
                    $0.parse("SELECT $1::int + 1")
                    $0.describeStatement()
                    $0.bind(parameters: ["41"])
                    $0.execute()
                    $0.sync()
                }
            ], readyCounts: [2]),
        Case(
            name: "multi-statement simple query with an error in the middle",
            steps: [{ $0.query("SELECT 1; SELECT 1/0; SELECT 3") }], readyCounts: [1]),
        Case(name: "empty query", steps: [{ $0.query("") }], readyCounts: [1]),
        Case(
            name: "parse error then Sync",
            steps: [
                {
                    $0.parse("SELEC 1")
                    $0.bind()
                    $0.execute()
                    $0.sync()
                }
            ], readyCounts: [1]),
        Case(
            name: "Bind to a statement that does not exist",
            steps: [
                {
                    $0.bind(statement: "never_prepared")
                    $0.execute()
                    $0.sync()
                }
            ], readyCounts: [1]),
        Case(
            name: "named statement: prepare, describe, run twice, close",
            steps: [
                {
                    $0.parse("SELECT $1::text || '?'", name: "diff_named")
                    $0.describeStatement("diff_named")
                    $0.sync()
                },
                {
                    $0.bind(statement: "diff_named", parameters: ["a"])
                    $0.execute()
                    $0.bind(statement: "diff_named", parameters: [nil])
                    $0.execute()
                    $0.closeStatement("diff_named")
                    $0.sync()
                },
            ], readyCounts: [1, 1]),
        Case(
            name: "transaction status through BEGIN, an error and ROLLBACK",
            steps: [
                { $0.query("BEGIN") },
                { $0.query("SELECT 1/0") },
                { $0.query("SELECT 1") },
                { $0.query("ROLLBACK") },
                { $0.query("SELECT 'after'") },
            ], readyCounts: [1, 1, 1, 1, 1]),
        Case(
            name: "COPY TO STDOUT",
            steps: [{ $0.query("COPY (SELECT g FROM generate_series(1, 3) g) TO STDOUT") }], readyCounts: [1]),
        Case(
            name: "COPY FROM STDIN with CopyFail",
            steps: [
                { $0.query("CREATE TEMP TABLE diff_copy (id int)") },
                {
                    $0.query("COPY diff_copy FROM STDIN")
                    $0.copyData(Array("1\n".utf8))
                    $0.copyFail("client gave up")
                },
                { $0.query("SELECT count(*) FROM diff_copy") },
            ], readyCounts: [1, 1, 1]),
        Case(
            name: "pipelined Sync groups with an error in the first",
            steps: [
                {
                    $0.extendedQuery("SELECT 1/0")
                    $0.extendedQuery("SELECT 2")
                    $0.extendedQuery("SELECT 3")
                }
            ], readyCounts: [3]),
        Case(
            name: "Sync with nothing before it",
            steps: [{ $0.sync() }], readyCounts: [1]),
        Case(
            name: "CopyData, CopyDone and CopyFail outside COPY are ignored",
            steps: [
                {
                    $0.copyData([1, 2, 3])
                    $0.copyDone()
                    $0.copyFail("nothing to fail")
                    $0.query("SELECT 'after stray copy messages'")
                }
            ], readyCounts: [1]),
        Case(
            name: "a stray CopyDone pipelined behind an ordinary Execute and Sync",
            steps: [
                {
                    $0.extendedQuery("SELECT 'first' FROM pg_sleep(0.1)")
                    $0.copyDone()
                    $0.query("SELECT 'second'")
                }
            ], readyCounts: [2]),
        Case(
            name: "FunctionCall of int4pl",
            // 177 is int4pl in every PostgreSQL release: pg_proc OIDs below 10000 are fixed.
            steps: [{ $0.functionCall(oid: 177, arguments: ["2", "3"]) }], readyCounts: [1]),
        Case(
            name: "Query without its terminating NUL",
            steps: [
                { $0.message(type: UInt8(ascii: "Q"), payload: Array("SELECT 1".utf8)) },
                { $0.query("SELECT 'still usable'") },
            ], readyCounts: [1, 1]),
        Case(
            name: "Bind whose parameter count lies about its payload",
            steps: [
                {
                    $0.parse("SELECT $1::int")
                    var payload: [UInt8] = [0, 0]  // portal "", statement ""
                    payload.appendInt16(0)
                    payload.appendInt16(3)  // claims three parameters, carries one
                    payload.appendInt32(1)
                    payload.append(UInt8(ascii: "7"))
                    payload.appendInt16(0)
                    $0.message(type: UInt8(ascii: "B"), payload: payload)
                    $0.execute()
                    $0.sync()
                },
                { $0.query("SELECT 'still usable'") },
            ], readyCounts: [1, 1]),
        Case(
            name: "a statement name prepared twice",
            steps: [
                {
                    $0.parse("SELECT 'first'", name: "twice")
                    $0.parse("SELECT 'second'", name: "twice")
                    $0.bind(statement: "twice")
                    $0.execute()
                    $0.sync()
                },
                {
                    $0.bind(statement: "twice")
                    $0.execute()
                    $0.sync()
                },
            ], readyCounts: [1, 1]),
        Case(
            name: "a duplicate Parse inside a transaction aborts it",
            steps: [
                { $0.query("BEGIN") },
                {
                    $0.parse("SELECT 1", name: "dup_in_tx")
                    $0.sync()
                },
                {
                    $0.parse("SELECT 1", name: "dup_in_tx")
                    $0.sync()
                },
                { $0.query("SELECT 'aborted?'") },
                { $0.query("ROLLBACK") },
            ], readyCounts: [1, 1, 1, 1, 1]),
        Case(
            name: "Close, then the name prepared again with other text",
            steps: [
                {
                    $0.parse("SELECT 'old'", name: "reused")
                    $0.sync()
                },
                {
                    $0.closeStatement("reused")
                    $0.parse("SELECT 'new', 2", name: "reused")
                    $0.describeStatement("reused")
                    $0.bind(statement: "reused")
                    $0.execute()
                    $0.sync()
                },
            ], readyCounts: [1, 1]),
        Case(
            name: "Bind after Close",
            steps: [
                {
                    $0.parse("SELECT 1", name: "closed_then_bound")
                    $0.closeStatement("closed_then_bound")
                    $0.bind(statement: "closed_then_bound")
                    $0.execute()
                    $0.sync()
                }
            ], readyCounts: [1]),
        Case(
            name: "DEALLOCATE ALL and DISCARD ALL as SQL forget protocol-level statements",
            steps: [
                {
                    $0.parse("SELECT 1", name: "dealloc_1")
                    $0.sync()
                },
                { $0.query("DEALLOCATE ALL") },
                {
                    $0.bind(statement: "dealloc_1")
                    $0.execute()
                    $0.sync()
                },
                {
                    $0.parse("SELECT 2", name: "dealloc_1")
                    $0.sync()
                },
                { $0.query("DISCARD ALL") },
                {
                    $0.parse("SELECT 3", name: "dealloc_1")
                    $0.bind(statement: "dealloc_1")
                    $0.execute()
                    $0.sync()
                },
            ], readyCounts: [1, 1, 1, 1, 1, 1]),
        Case(
            name: "an error before a named statement's Bind in one pipeline",
            steps: [
                {
                    $0.parse("SELECT $1::int", name: "after_error", parameterTypes: [23])
                    $0.sync()
                },
                {
                    $0.bind(statement: "after_error", parameters: ["not a number"])
                    $0.execute()
                    $0.bind(statement: "after_error", parameters: ["7"])
                    $0.execute()
                    $0.sync()
                    $0.bind(statement: "after_error", parameters: ["8"])
                    $0.execute()
                    $0.sync()
                },
            ], readyCounts: [1, 2]),
        Case(
            name: "a Parse that fails leaves no name behind: the name can be prepared again",
            steps: [
                {
                    $0.parse("SELEC 1", name: "retried")
                    $0.sync()
                },
                {
                    $0.bind(statement: "retried")
                    $0.execute()
                    $0.sync()
                },
                {
                    $0.parse("SELECT 'retried'", name: "retried")
                    $0.bind(statement: "retried")
                    $0.execute()
                    $0.sync()
                },
            ], readyCounts: [1, 1, 1]),
        Case(
            name: "a Close skipped after an error leaves the statement in place",
            steps: [
                {
                    $0.parse("SELECT $1::int", name: "kept_open", parameterTypes: [23])
                    $0.sync()
                },
                {
                    $0.bind(statement: "kept_open", parameters: ["x"])
                    $0.closeStatement("kept_open")
                    $0.sync()
                },
                {
                    $0.bind(statement: "kept_open", parameters: ["9"])
                    $0.execute()
                    $0.sync()
                },
            ], readyCounts: [1, 1, 1]),
        Case(
            name: "Describe of a portal that does not exist",
            steps: [
                {
                    $0.describePortal("nowhere")
                    $0.sync()
                }
            ], readyCounts: [1]),
    ]

    @Test("replies match a direct connection", arguments: cases)
    func repliesMatchDirectConnection(testCase: Case) throws {
        try withRawSluice(poolSize: 1) { target in
            let viaSluice = try Self.run(testCase, on: target.connect())
            let direct = try Self.run(
                testCase,
                on: RawClient.connect(
                    port: target.proxied.cluster.port, user: target.user, password: target.password,
                    database: target.database))
            #expect(viaSluice == direct)
        }
    }

    /// The replies to every step, reduced to what must not differ between Sluice and PostgreSQL.
    private static func run(_ testCase: Case, on client: RawClient) throws -> [String] {
        var summary: [String] = []
        for (step, readyCount) in zip(testCase.steps, testCase.readyCounts) {
            var batch = FrontendBatch()
            step(&batch)
            try client.send(batch)
            for _ in 0..<readyCount {
                for message in try client.readUntilReadyForQuery() {
                    switch message.typeChar {
                    case "S", "N", "K":
                        continue
                    case "E":
                        summary.append("E \(message.sqlState ?? "?")")
                    default:
                        summary.append(message.description)
                    }
                }
            }
        }
        client.terminate()
        return summary
    }
}
