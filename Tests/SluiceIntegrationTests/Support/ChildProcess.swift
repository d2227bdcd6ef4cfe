import Foundation
import Glibc

/// A program started with `posix_spawn`, for everything the tests launch (sluice, psql, pgbench).
///
/// Foundation's `Process` is not used: tests run on dispatch worker threads, which block most
/// signals, and a child spawned from such a thread inherits that mask. pgbench then never sees the
/// SIGALRM that ends a `-T` run, and a server never sees our SIGTERM. Here the child always starts
/// with no blocked signals and default dispositions.
final class ChildProcess {
    /// How a child ended.
    enum Termination: Equatable, CustomStringConvertible {
        case exited(Int32)
        case signaled(Int32)

        /// The exit status as a shell reports it (128 + signal number for a signal).
        var shellStatus: Int32 {
            switch self {
            case .exited(let code): code
            case .signaled(let signal): 128 + signal
            }
        }

        var description: String {
            switch self {
            case .exited(let code): "exited \(code)"
            case .signaled(let signal): "killed by signal \(signal)"
            }
        }
    }

    /// Where one of the child's standard streams comes from or goes to.
    enum Stream {
        /// `/dev/null`.
        case null
        /// A file, created or truncated (for output) or read (for input).
        case file(String)
        /// An open descriptor of ours, e.g. one end of a pipe.
        case descriptor(Int32)
    }

    let pid: pid_t
    private(set) var termination: Termination?

    init(
        executable: String,
        arguments: [String],
        environment: [String: String],
        stdin: Stream = .null,
        stdout: Stream = .null,
        stderr: Stream = .null
    ) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (target, stream) in [(Int32(0), stdin), (1, stdout), (2, stderr)] {
            let flags = target == 0 ? O_RDONLY : O_WRONLY | O_CREAT | O_TRUNC
            switch stream {
            case .null:
                posix_spawn_file_actions_addopen(&actions, target, "/dev/null", flags, 0o644)
            case .file(let path):
                posix_spawn_file_actions_addopen(&actions, target, path, flags, 0o644)
            case .descriptor(let descriptor):
                posix_spawn_file_actions_adddup2(&actions, descriptor, target)
            }
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        sigdelset(&allSignals, SIGKILL)
        sigdelset(&allSignals, SIGSTOP)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var child: pid_t = 0
        let result = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
        guard result == 0 else {
            throw HarnessError("cannot start \(executable): \(String(cString: strerror(result)))")
        }
        pid = child
    }

    deinit {
        if isRunning {
            kill(pid, SIGKILL)
            _ = wait(timeout: .seconds(10))
        }
    }

    /// Whether the child still runs; reaps it once it has ended.
    var isRunning: Bool {
        if termination != nil { return false }
        var status: Int32 = 0
        let reaped = waitpid(pid, &status, WNOHANG)
        if reaped == 0 { return true }
        guard reaped == pid else {
            // Someone else reaped it; its status is lost.
            termination = .exited(-1)
            return false
        }
        // The layout of a wait status on Linux: low 7 bits are the signal, the next byte the exit code.
        let signal = status & 0x7f
        termination = signal == 0 ? .exited((status >> 8) & 0xff) : .signaled(signal)
        return false
    }

    /// Sends a signal if the child still runs.
    func signal(_ signal: Int32) {
        if isRunning {
            kill(pid, signal)
        }
    }

    /// Waits for the child to end; nil if it still runs after `timeout`.
    func wait(timeout: Duration) -> Termination? {
        waitUntil(timeout: timeout) { !isRunning }
        return termination
    }

    /// Makes a pipe whose ends are closed in every child we spawn later, so that only the child
    /// that gets an end (by `.descriptor`) holds it.
    static func makePipe() throws -> (read: Int32, write: Int32) {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw HarnessError("pipe failed: errno \(errno)") }
        for end in ends {
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
        }
        return (ends[0], ends[1])
    }
}
