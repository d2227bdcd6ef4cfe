import Foundation
import Glibc

/// What a finished command left behind.
struct RunResult: CustomStringConvertible {
    /// How the program ended; nil if it could not even be killed after timing out.
    var termination: ChildProcess.Termination?
    var timedOut: Bool
    var stdout: String
    var stderr: String
    /// The command line, for failure messages.
    var command: String

    /// Exit status as a shell reports it; -1 when unknown.
    var status: Int32 { termination?.shellStatus ?? -1 }

    var succeeded: Bool { termination == .exited(0) && !timedOut }

    var description: String {
        let outcome = timedOut ? "timed out" : termination.map { "\($0)" } ?? "still running"
        return "$ \(command)\n[\(outcome)]\n--- stdout ---\n\(stdout)\n--- stderr ---\n\(stderr)"
    }
}

/// Where PostgreSQL's client programs live; preferred over `PATH` so the version matches the server.
let postgresBinDirectory = "/usr/lib/postgresql/15/bin"

/// Finds `name` in PostgreSQL's bin directory or on `PATH`; a path with a slash is taken as is.
func resolveExecutable(_ name: String) throws -> String {
    if name.contains("/") { return name }
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for directory in [postgresBinDirectory] + path.split(separator: ":").map(String.init) {
        let candidate = directory + "/" + name
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    throw HarnessError("\(name) is not installed (looked in \(postgresBinDirectory) and PATH); run scripts/deps")
}

/// The environment for child processes: ours without libpq's `PG*` variables (a developer's
/// `PGHOST` must not redirect a test), plus `overrides`.
func childEnvironment(_ overrides: [String: String]) -> [String: String] {
    var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PG") }
    environment.merge(overrides) { _, new in new }
    return environment
}

/// Runs a program to completion (psql, pgbench, `sluice --check`) and captures its output.
///
/// Output goes to temporary files rather than pipes, so a chatty program can never block on a full
/// pipe while we wait for it. After `timeout` the program is killed and `timedOut` is set.
func run(
    _ executable: String,
    _ arguments: [String],
    environment: [String: String] = [:],
    stdin: String? = nil,
    timeout: Duration = .seconds(60)
) throws -> RunResult {
    let path = try resolveExecutable(executable)
    let directory = try makeTemporaryDirectory("sluice-run")
    defer { try? FileManager.default.removeItem(at: directory) }

    let stdoutPath = directory.appendingPathComponent("stdout").path
    let stderrPath = directory.appendingPathComponent("stderr").path
    let stdinPath = directory.appendingPathComponent("stdin").path
    try (stdin ?? "").write(toFile: stdinPath, atomically: false, encoding: .utf8)

    let child = try ChildProcess(
        executable: path, arguments: arguments, environment: childEnvironment(environment),
        stdin: .file(stdinPath), stdout: .file(stdoutPath), stderr: .file(stderrPath))
    var termination = child.wait(timeout: timeout)
    let timedOut = termination == nil
    if timedOut {
        child.signal(SIGKILL)
        termination = child.wait(timeout: .seconds(10))
    }
    let read = { (path: String) in (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
    return RunResult(
        termination: termination, timedOut: timedOut, stdout: read(stdoutPath), stderr: read(stderrPath),
        command: ([path] + arguments).joined(separator: " "))
}
