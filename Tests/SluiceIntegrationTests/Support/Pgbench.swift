import Testing

/// Running pgbench against PostgreSQL or Sluice and reading its summary.
enum Pgbench {
    /// The numbers pgbench prints at the end of a run.
    struct Summary {
        var processed: Int
        var failed: Int
        var tps: Double?
    }

    /// Creates pgbench's tables (scale 1) straight on PostgreSQL, as `user`.
    static func initialize(_ cluster: TestCluster, user: String, password: String, dbname: String) throws {
        let result = try run(
            "pgbench", ["-i", "-q", "-s", "1", "-h", cluster.host, "-p", String(cluster.port), "-U", user, dbname],
            environment: ["PGPASSWORD": password], timeout: .seconds(120))
        guard result.succeeded else { throw HarnessError("pgbench -i failed:\n\(result)") }
    }

    /// Runs pgbench with `arguments` against 127.0.0.1:`port`, bounded by `timeout`.
    static func load(
        port: Int, user: String, password: String, dbname: String, _ arguments: [String],
        timeout: Duration = .seconds(120)
    ) throws -> RunResult {
        try run(
            "pgbench", arguments + ["-h", "127.0.0.1", "-p", String(port), "-U", user, dbname],
            environment: ["PGPASSWORD": password], timeout: timeout)
    }

    /// Expects a run through `sluice` to have ended cleanly: exit 0, more than `minimumProcessed`
    /// transactions, none failed, no error printed. Failures show pgbench's output and Sluice's log.
    static func expectClean(
        _ result: RunResult, through sluice: SluiceProcess, minimumProcessed: Int,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let summary = summary(of: result.stdout)
        #expect(result.succeeded, "\(result)\n--- sluice log ---\n\(sluice.logTail())", sourceLocation: sourceLocation)
        #expect(summary != nil && summary!.processed > minimumProcessed, "\(result)", sourceLocation: sourceLocation)
        #expect(summary?.failed == 0, "\(result)", sourceLocation: sourceLocation)
        #expect(!result.stderr.lowercased().contains("error"), "\(result)", sourceLocation: sourceLocation)
    }

    /// Reads the summary; nil when pgbench did not get as far as printing one.
    static func summary(of output: String) -> Summary? {
        var processed: Int?
        var failed = 0
        var tps: Double?
        for line in output.split(separator: "\n") {
            if let value = number(after: "number of transactions actually processed:", in: line) {
                // With -t it reads "processed: 990/1000"; the part before the slash is what ran.
                processed = Int(value.split(separator: "/").first ?? "")
            } else if let value = number(after: "number of failed transactions:", in: line) {
                failed = Int(value) ?? -1
            } else if tps == nil, let value = number(after: "tps =", in: line) {
                tps = Double(value)
            }
        }
        return processed.map { Summary(processed: $0, failed: failed, tps: tps) }
    }

    private static func number(after label: String, in line: Substring) -> Substring? {
        guard let range = line.range(of: label) else { return nil }
        return line[range.upperBound...].drop { $0 == " " }.prefix { !$0.isWhitespace }
    }
}
