import Foundation
import Glibc

/// A long-lived `psql` reading statements from a pipe, for tests that interleave several clients
/// whose startup parameters only libpq's environment variables can set (`PGTZ`, `PGDATESTYLE`).
///
/// psql runs with `-At` (unaligned, tuples only) and `ON_ERROR_STOP`, so a failing statement ends
/// it and the next `query` reports its stderr.
final class PsqlSession {
    private let child: ChildProcess
    private var input: Int32
    private let output: Int32
    private let stderrPath: String
    private var buffered: [UInt8] = []

    init(port: Int, user: String, password: String, dbname: String, environment: [String: String] = [:]) throws {
        stderrPath = FileManager.default.temporaryDirectory.appendingPathComponent(uniqueName("sluice-psql")).path
        let toPsql = try ChildProcess.makePipe()
        let fromPsql = try ChildProcess.makePipe()
        defer {
            // The child has its own copies of these ends now.
            Glibc.close(toPsql.read)
            Glibc.close(fromPsql.write)
        }
        child = try ChildProcess(
            executable: try resolveExecutable("psql"),
            arguments: [
                "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", String(port), "-U", user,
                "-d", dbname,
            ],
            environment: childEnvironment(environment.merging(["PGPASSWORD": password]) { old, _ in old }),
            stdin: .descriptor(toPsql.read), stdout: .descriptor(fromPsql.write), stderr: .file(stderrPath))
        input = toPsql.write
        output = fromPsql.read
    }

    deinit {
        close()
        Glibc.close(output)
        unlink(stderrPath)
    }

    /// Sends statements that print nothing (BEGIN, SET, COMMIT).
    func send(_ sql: String) throws {
        let bytes = Array((sql + "\n").utf8)
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { write(input, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw HarnessError("psql is gone; its stderr: \(stderrText)") }
            written += count
        }
    }

    /// Sends a statement that prints exactly one line and returns that line (columns joined by `|`).
    func query(_ sql: String, timeout: Duration = .seconds(10)) throws -> String {
        try send(sql)
        return try readLine(timeout: timeout)
    }

    /// Ends psql (closing its input) and waits briefly for it.
    func close() {
        if input >= 0 {
            Glibc.close(input)
            input = -1
        }
        if child.wait(timeout: .seconds(5)) == nil {
            child.signal(SIGKILL)
        }
    }

    var stderrText: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    private func readLine(timeout: Duration) throws -> String {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while true {
            if let newline = buffered.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffered[..<newline], as: UTF8.self)
                buffered.removeFirst(newline + 1)
                return line
            }
            let remaining = deadline - clock.now
            guard remaining > .zero else {
                throw HarnessError("psql printed no line within \(timeout.seconds) s; its stderr: \(stderrText)")
            }
            var descriptor = pollfd(fd: output, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, Int32(max(1, remaining.seconds * 1000))) > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = read(output, &chunk, chunk.count)
            if count == 0 {
                throw HarnessError("psql exited; its stderr: \(stderrText)")
            }
            if count > 0 {
                buffered += chunk[..<count]
            }
        }
    }
}
