import Foundation
import Testing

/// The pools' totals: counted on every loop without a lock on the data path, read as one picture
/// across loops. `log_stats` lines are their reader until the admin console exists.
@Suite("Statistics")
struct StatsTests {
    /// The keys of every `msg=stats` line logged so far.
    static func statsLines(_ log: String) -> [[String: String]] {
        log.split(separator: "\n").filter { $0.contains("msg=stats ") }.map { line in
            var fields: [String: String] = [:]
            for pair in line.split(separator: " ") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
            }
            return fields
        }
    }

    static func waitForStatsLine(
        _ target: RawTarget, after count: Int, where accept: ([String: String]) -> Bool = { _ in true }
    ) throws -> [String: String] {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let lines = statsLines(target.proxied.sluice.stderrText)
            if lines.count > count, let line = lines.last, accept(line) { return line }
            sleep(for: .milliseconds(100))
        }
        throw RawClientError("no stats line after \(count): \(target.proxied.sluice.logTail())")
    }

    @Test("every transaction and query of clients on both loops is counted once: log_stats every stats_period")
    func countsAcrossLoops() throws {
        let settings = ["workers": MultiLoopTests.workers(2), "stats_period": "1", "log_stats": "1"]
        try withRawSluice(poolSize: 2, settings: settings) { target in
            // Connections are handed to the loops in turn: these four are on both loops.
            let clients = try (0..<4).map { _ in try target.connect() }
            let before = try Self.waitForStatsLine(target, after: 0)
            let baseCount = Self.statsLines(target.proxied.sluice.stderrText).count
            for client in clients {
                for _ in 0..<5 { _ = try client.queryValue("SELECT 1") }
                _ = try client.simpleQuery("BEGIN")
                _ = try client.queryValue("SELECT pg_sleep(0.05)")
                _ = try client.simpleQuery("COMMIT")
            }
            let xacts = Int(before["total_xacts"] ?? "") ?? -1
            let queries = Int(before["total_queries"] ?? "") ?? -1
            // Four clients: five one-statement transactions and one of three statements each.
            let after = try Self.waitForStatsLine(target, after: baseCount) {
                Int($0["total_xacts"] ?? "") ?? 0 >= xacts + 24
            }
            #expect(Int(after["total_xacts"] ?? "") == xacts + 24, "\(before) -> \(after)")
            #expect(Int(after["total_queries"] ?? "") == queries + 32, "\(before) -> \(after)")
            // A line covers one period: later ones show what happened in theirs, here nothing.
            let quiet = try Self.waitForStatsLine(
                target, after: Self.statsLines(target.proxied.sluice.stderrText).count)
            #expect(quiet["total_xacts"] == after["total_xacts"] && quiet["xacts_per_s"] == "0", "\(quiet)")
            try target.expectServing()
        }
    }

    @Test("the averages cover the period: transaction time, bytes in and out")
    func averages() throws {
        try withRawSluice(poolSize: 1, settings: ["stats_period": "2", "log_stats": "1"]) { target in
            let client = try target.connect()
            let count = Self.statsLines(target.proxied.sluice.stderrText).count
            _ = try Self.waitForStatsLine(target, after: count)
            let base = Self.statsLines(target.proxied.sluice.stderrText).count
            for _ in 0..<4 {
                _ = try client.simpleQuery("BEGIN")
                _ = try client.queryValue("SELECT pg_sleep(0.1)")
                _ = try client.simpleQuery("COMMIT")
            }
            let line = try Self.waitForStatsLine(target, after: base)
            let xactMicros = Int(line["xact_us"] ?? "") ?? 0
            // Each transaction slept 100 ms; three round trips on loopback add little.
            #expect(xactMicros >= 100_000 && xactMicros < 400_000, "\(line)")
            let queryMicros = Int(line["query_us"] ?? "") ?? 0
            #expect(queryMicros >= 100_000 / 3 && queryMicros < xactMicros, "\(line)")
            #expect(line["xacts_per_s"] == "2", "four transactions in two seconds: \(line)")
            #expect(Int(line["in_bytes_per_s"] ?? "") ?? 0 > 0 && Int(line["out_bytes_per_s"] ?? "") ?? 0 > 0)
        }
    }

    @Test("log_stats = 0 writes no stats lines")
    func logStatsOff() throws {
        try withRawSluice(poolSize: 1, settings: ["stats_period": "1", "log_stats": "0"]) { target in
            let client = try target.connect()
            _ = try client.queryValue("SELECT 1")
            sleep(for: .milliseconds(2500))
            #expect(Self.statsLines(target.proxied.sluice.stderrText).isEmpty)
        }
    }
}
