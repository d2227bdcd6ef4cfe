import Foundation
import Testing

/// Queries through the real binary, the command line, and the simplest failures.
@Suite("Basics")
struct BasicTests {
    @Test("a libpq client runs simple and extended-protocol queries through Sluice")
    func queriesGoThrough() throws {
        let proxied = try ProxiedDatabase()
        defer { proxied.stop() }
        let connection = try proxied.connect()
        #expect(
            try connection.exec("SELECT current_user, current_database(), 1 + 1")
                == [[proxied.role.name, proxied.database, "2"]])
        #expect(try connection.execParams("SELECT $1::text || $2::text", ["slu", "ice"]) == [["sluice"]])
        #expect(try connection.execParams("SELECT $1::int IS NULL", [nil]) == [["t"]])
        try connection.exec("CREATE TABLE t (id int PRIMARY KEY, name text)")
        try connection.execParams("INSERT INTO t VALUES ($1, $2), ($3, $4)", ["1", "one", "2", "two"])
        #expect(try connection.exec("SELECT name FROM t ORDER BY id") == [["one"], ["two"]])
    }

    @Test("psql -c runs through Sluice")
    func psqlCommand() throws {
        let proxied = try ProxiedDatabase()
        defer { proxied.stop() }
        let result = try psql(proxied, ["-c", "SELECT 'through ' || 'sluice'"])
        #expect(result.succeeded, "\(result)\n--- sluice log ---\n\(proxied.sluice.logTail())")
        #expect(result.stdout == "through sluice\n")
    }

    @Test("a statement error reaches the client, and the connection stays usable")
    func statementErrors() throws {
        let proxied = try ProxiedDatabase()
        defer { proxied.stop() }
        let connection = try proxied.connect()
        let error = #expect(throws: PQError.self) { try connection.exec("SELECT 1/0") }
        #expect(error?.sqlState == "22012")
        try connection.exec("BEGIN")
        #expect(throws: PQError.self) { try connection.exec("SELECT * FROM missing_table") }
        let inFailedTransaction = #expect(throws: PQError.self) { try connection.exec("SELECT 1") }
        #expect(inFailedTransaction?.sqlState == "25P02")
        try connection.exec("ROLLBACK")
        #expect(try connection.value("SELECT 'still fine'") == "still fine")
    }

    // About 40 MB each way: far more than the socket buffers, so Sluice must cope with a reader
    // slower than the writer on either side.
    private static let bulkRows = 400_000
    private static let bulkPadding = String(repeating: "x", count: 90)

    @Test("40 MB of COPY FROM STDIN go through")
    func largeCopyIn() throws {
        let proxied = try ProxiedDatabase()
        defer { proxied.stop() }
        let data = (1...Self.bulkRows).map { "\($0),\(Self.bulkPadding)\n" }.joined()
        let load = try psql(
            proxied, ["-c", "CREATE TABLE bulk (n int, pad text)", "-c", "\\copy bulk FROM pstdin CSV"], stdin: data)
        #expect(load.succeeded, "\(load)\n--- sluice log ---\n\(proxied.sluice.logTail())")
        let count = try proxied.connect().value("SELECT count(*) FROM bulk")
        #expect(count == String(Self.bulkRows))
    }

    @Test("a 40 MB result goes through")
    func largeResult() throws {
        let proxied = try ProxiedDatabase()
        defer { proxied.stop() }
        try proxied.connect().exec(
            "CREATE TABLE bulk AS SELECT n, repeat('x', \(Self.bulkPadding.count)) AS pad "
                + "FROM generate_series(1, \(Self.bulkRows)) AS n")
        let dump = try psql(proxied, ["-c", "SELECT n, pad FROM bulk ORDER BY n"])
        #expect(dump.succeeded, "\(dump)\n--- sluice log ---\n\(proxied.sluice.logTail())")
        let expected = (1...Self.bulkRows).reduce(0) { $0 + "\($1)|".utf8.count + Self.bulkPadding.count + 1 }
        #expect(dump.stdout.utf8.count == expected, "a result of \(dump.stdout.utf8.count) bytes")
    }

    @Test("an unknown database is refused with SQLSTATE 3D000")
    func unknownDatabase() throws {
        let proxied = try ProxiedDatabase()
        defer { proxied.stop() }
        let error = #expect(throws: PQError.self) {
            try PQConn.connect(
                port: proxied.sluice.port, user: proxied.role.name, password: proxied.role.password,
                dbname: "no_such_database")
        }
        #expect(error?.sqlState == "3D000", "\(String(describing: error))")
    }

    @Test("sluice --check accepts a valid file")
    func checkAcceptsValidFile() throws {
        let directory = try makeTemporaryDirectory("sluice-check")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("good.ini").path
        try """
        [databases]
        app = host=127.0.0.1 port=5432 dbname=app

        [sluice]
        listen_addr = 127.0.0.1
        listen_port = 6432
        auth_type = trust
        pool_mode = transaction
        default_pool_size = 10
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let result = try run(try SluiceProcess.binary(), ["--check", path], timeout: .seconds(10))
        #expect(result.status == 0, "\(result)")
    }

    @Test("sluice --check rejects a bad value and names the file and line")
    func checkRejectsBadFile() throws {
        let directory = try makeTemporaryDirectory("sluice-check")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("bad.ini").path
        try """
        [databases]
        app = host=127.0.0.1 port=5432 dbname=app

        [sluice]
        listen_port = 6432
        default_pool_size = plenty
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let result = try run(try SluiceProcess.binary(), ["--check", path], timeout: .seconds(10))
        #expect(result.status == 1, "\(result)")
        #expect((result.stderr + result.stdout).contains("bad.ini:6"), "\(result)")
    }

    @Test("sluice --version prints a version and exits 0")
    func version() throws {
        let result = try run(try SluiceProcess.binary(), ["--version"], timeout: .seconds(10))
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.lowercased().contains("sluice"), "\(result)")
    }
}

/// Runs psql through Sluice as the proxied role, unaligned and tuples-only, stopping at the first error.
private func psql(_ proxied: ProxiedDatabase, _ arguments: [String], stdin: String? = nil) throws -> RunResult {
    try run(
        "psql",
        ["-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", String(proxied.sluice.port)]
            + ["-U", proxied.role.name, "-d", proxied.database] + arguments,
        environment: ["PGPASSWORD": proxied.role.password], stdin: stdin, timeout: .seconds(60))
}
