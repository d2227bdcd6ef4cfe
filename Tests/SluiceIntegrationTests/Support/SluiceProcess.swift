import Foundation
import Glibc

/// The real `sluice` binary (`SLUICE_BIN`), started on a free loopback port for one test.
///
/// Files (config, userlist, captured stdout/stderr) live in a private temporary directory. Call
/// `stop()` at the end of the test, e.g. with `defer { sluice.stop() }`: that keeps the object
/// alive for the whole test; `deinit` stops it too, as a safety net.
final class SluiceProcess {
    /// The port Sluice listens on (127.0.0.1).
    let port: Int
    /// The private directory with `sluice.ini`, `userlist.txt`, `stdout.log` and `stderr.log`.
    let directory: URL
    /// The config file Sluice was started with; `nil` in environment-only mode.
    let configPath: String?
    private let child: ChildProcess

    /// Starts Sluice with a config file. `config` gets the chosen port and returns the file's text;
    /// its `auth_file` may say `userlist.txt`, which is written beside it from `userlist`.
    convenience init(
        config: (_ port: Int) -> String,
        userlist: String? = nil,
        environment: [String: String] = [:]
    ) throws {
        try self.init(launch: { port, directory in
            let configURL = directory.appendingPathComponent("sluice.ini")
            try config(port).write(to: configURL, atomically: true, encoding: .utf8)
            if let userlist {
                try userlist.write(
                    to: directory.appendingPathComponent("userlist.txt"), atomically: true, encoding: .utf8)
            }
            return (configURL.path, environment)
        })
    }

    /// Starts Sluice with no config file: everything comes from the environment (`DATABASE_URL`,
    /// `DB_POOL_MAX`, ...). `LISTEN_ADDR` and `LISTEN_PORT` are set to the chosen loopback port.
    convenience init(environmentOnly environment: @escaping (_ port: Int) -> [String: String]) throws {
        try self.init(launch: { port, _ in
            let listen = ["LISTEN_ADDR": "127.0.0.1", "LISTEN_PORT": String(port)]
            return (nil, environment(port).merging(listen) { _, new in new })
        })
    }

    private init(launch: (_ port: Int, _ directory: URL) throws -> (config: String?, environment: [String: String]))
        throws
    {
        let binary = try Self.binary()
        directory = try makeTemporaryDirectory("sluice-test")

        // A port another process grabbed between our check and Sluice's bind is retried with a new one.
        var attempt = 0
        while true {
            attempt += 1
            let port = try LoopbackPort.free()
            let (config, environment) = try launch(port, directory)
            let child = try Self.start(binary, config: config, environment: environment, in: directory)
            let outcome = Self.waitForListening(child, port: port)
            if outcome == .listening {
                self.port = port
                self.configPath = config
                self.child = child
                return
            }
            child.signal(SIGKILL)
            let termination = child.wait(timeout: .seconds(10))
            let log = (try? String(contentsOf: directory.appendingPathComponent("stderr.log"), encoding: .utf8)) ?? ""
            if outcome == .exited && log.localizedCaseInsensitiveContains("in use") && attempt < 3 {
                continue
            }
            let what =
                outcome == .exited
                ? "\(termination.map { "\($0)" } ?? "exited")" : "did not accept connections within 10 s"
            throw HarnessError("sluice \(what) (port \(port), files in \(directory.path)); its log:\n\(log)")
        }
    }

    /// The binary under test (`SLUICE_BIN`), also for commands that start no server (`--check`).
    static func binary() throws -> String {
        guard let binary = ProcessInfo.processInfo.environment["SLUICE_BIN"] else {
            throw HarnessError("SLUICE_BIN is not set: run the integration tests with scripts/test")
        }
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw HarnessError("SLUICE_BIN=\(binary) is not an executable; build first (scripts/test does)")
        }
        return binary
    }

    deinit {
        stop()
        if ProcessInfo.processInfo.environment["SLUICE_TEST_KEEP_FILES"] == nil {
            try? FileManager.default.removeItem(at: directory)
        }
    }

    /// The process id, for signals sent by other means.
    var pid: Int32 { child.pid }

    /// Whether the process is still running.
    var isRunning: Bool { child.isRunning }

    /// Everything Sluice has logged so far.
    var stderrText: String {
        (try? String(contentsOf: directory.appendingPathComponent("stderr.log"), encoding: .utf8)) ?? ""
    }

    /// The last lines of the log, for failure messages.
    func logTail(_ lines: Int = 30) -> String {
        stderrText.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    /// Sends a signal (SIGTERM, SIGINT, SIGQUIT, SIGHUP, ...).
    func signal(_ signal: Int32) {
        child.signal(signal)
    }

    /// Waits for the process to end; returns its exit status, or nil if it still runs after `timeout`.
    /// A process killed by a signal reports 128 + the signal number, as a shell would.
    @discardableResult
    func waitForExit(timeout: Duration) -> Int32? {
        child.wait(timeout: timeout)?.shellStatus
    }

    /// Stops Sluice: SIGTERM, then SIGKILL if it has not exited within `grace`.
    func stop(grace: Duration = .seconds(3)) {
        guard child.isRunning else { return }
        signal(SIGTERM)
        if waitForExit(timeout: grace) == nil {
            signal(SIGKILL)
            waitForExit(timeout: .seconds(10))
        }
    }

    // MARK: - Starting

    private enum StartOutcome {
        case listening, exited, timedOut
    }

    private static func start(
        _ binary: String, config: String?, environment: [String: String], in directory: URL
    ) throws -> ChildProcess {
        // The working directory stays ours: a relative auth_file must be found beside the config file.
        // Only what Sluice needs: a DATABASE_URL from the developer's shell must not leak in.
        var childEnvironment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
        // Tests run side by side: the stats port's fixed default would be taken by the first one. Tests of
        // the stats port name a free port.
        if config == nil { childEnvironment["STATS_LISTEN_PORT"] = "0" }
        childEnvironment.merge(environment) { _, new in new }
        return try ChildProcess(
            executable: binary, arguments: config.map { [$0] } ?? [], environment: childEnvironment,
            stdout: .file(directory.appendingPathComponent("stdout.log").path),
            stderr: .file(directory.appendingPathComponent("stderr.log").path))
    }

    private static func waitForListening(_ child: ChildProcess, port: Int) -> StartOutcome {
        var outcome = StartOutcome.timedOut
        waitUntil(timeout: .seconds(10)) {
            if LoopbackPort.isAccepting(port) {
                outcome = .listening
                return true
            }
            if !child.isRunning {
                outcome = .exited
                return true
            }
            return false
        }
        return outcome
    }
}
