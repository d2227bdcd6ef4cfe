import Foundation
import Testing

/// Real drivers, run as applications run them: through Sluice in transaction mode with fewer servers
/// than connections, and straight against PostgreSQL. Each program prints what it saw; the two runs
/// must print the same and end cleanly. The programs live in `Tests/drivers/`; scripts/test installs
/// the Python drivers into a virtual environment (`SLUICE_TEST_PYTHON`) and the JDBC driver from
/// Debian (`SLUICE_TEST_JDBC_JAR`).
@Suite("Real drivers through transaction pooling")
struct DriverTests {
    static let driversDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("drivers")

    static func python() throws -> String {
        guard let python = ProcessInfo.processInfo.environment["SLUICE_TEST_PYTHON"] else {
            throw HarnessError(
                "SLUICE_TEST_PYTHON is not set: run the tests with scripts/test, which installs the drivers")
        }
        return python
    }

    /// Runs `arguments(port)` for Sluice and for PostgreSQL and compares what they print.
    func compare(
        _ executable: String, poolSize: Int = 2, timeout: Duration = .seconds(120),
        _ arguments: (_ port: Int, _ proxied: ProxiedDatabase) -> [String]
    ) throws {
        let proxied = try ProxiedDatabase(settings: ["max_client_conn": "100"], poolSize: poolSize)
        defer { proxied.stop() }
        let viaSluice = try run(executable, arguments(proxied.sluice.port, proxied), timeout: timeout)
        let direct = try run(executable, arguments(proxied.cluster.port, proxied), timeout: timeout)
        #expect(direct.succeeded, "the program fails against PostgreSQL itself:\n\(direct)")
        #expect(viaSluice.succeeded, "\(viaSluice)\n--- sluice log ---\n\(proxied.sluice.logTail())")
        #expect(!viaSluice.stdout.isEmpty)
        #expect(viaSluice.stdout == direct.stdout, "through Sluice:\n\(viaSluice.stdout)\ndirect:\n\(direct.stdout)")
        #expect(try proxied.serverPIDs().count <= poolSize)
    }

    static func conninfo(_ port: Int, _ proxied: ProxiedDatabase) -> String {
        "host=127.0.0.1 port=\(port) user=\(proxied.role.name) password=\(proxied.role.password) "
            + "dbname=\(proxied.database)"
    }

    @Test("libpq 18 through psycopg asks for protocol 3.2: Sluice speaks it, and the longer cancel key cancels")
    func protocol32() throws {
        let python = try Self.python()
        let proxied = try ProxiedDatabase(poolSize: 2)
        defer { proxied.stop() }
        let script = Self.driversDirectory.appendingPathComponent("protocol32_check.py").path
        let result = try run(python, [script, Self.conninfo(proxied.sluice.port, proxied)], timeout: .seconds(60))
        #expect(result.succeeded, "\(result)\n--- sluice log ---\n\(proxied.sluice.logTail())")
        // PostgreSQL 15 itself answers 3.2 with 3.0; through Sluice the client gets 3.2.
        #expect(result.stdout == "libpq 18\nprotocol 30002\ncancelled 57014\nafter 1\n", "\(result)")
    }

    /// Each program's docstring says what it exercises: psycopg 3 with statements prepared on the server,
    /// pipeline mode, savepoints and executemany; psycopg2 with client-side parameters.
    @Test("libpq-based Python drivers, given a conninfo", arguments: ["psycopg_check.py", "psycopg2_check.py"])
    func libpqPythonDriver(script: String) throws {
        let python = try Self.python()
        try compare(python) { port, proxied in
            [Self.driversDirectory.appendingPathComponent(script).path, Self.conninfo(port, proxied)]
        }
    }

    @Test("asyncpg with its statement cache on")
    func asyncpg() throws {
        let python = try Self.python()
        try compare(python) { port, proxied in
            [
                Self.driversDirectory.appendingPathComponent("asyncpg_check.py").path, "127.0.0.1", String(port),
                proxied.role.name, proxied.role.password, proxied.database,
            ]
        }
    }

    @Test("JDBC with prepareThreshold=1")
    func jdbc() throws {
        let jar = ProcessInfo.processInfo.environment["SLUICE_TEST_JDBC_JAR"] ?? "/usr/share/java/postgresql.jar"
        guard FileManager.default.fileExists(atPath: jar) else {
            throw HarnessError("no JDBC driver at \(jar): run scripts/deps (libpostgresql-jdbc-java)")
        }
        try compare("java", timeout: .seconds(180)) { port, proxied in
            [
                "-cp", jar, Self.driversDirectory.appendingPathComponent("JdbcCheck.java").path,
                "jdbc:postgresql://127.0.0.1:\(port)/\(proxied.database)", proxied.role.name, proxied.role.password,
            ]
        }
    }
}
