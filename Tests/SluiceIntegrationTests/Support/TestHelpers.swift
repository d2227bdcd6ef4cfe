import Foundation

/// Letters and digits for unique names and throwaway passwords.
private let alphanumerics = Array("abcdefghijklmnopqrstuvwxyz0123456789")

/// A lowercase name that no other test, running in parallel or earlier on the same cluster, uses.
func uniqueName(_ prefix: String) -> String {
    prefix + "_" + String((0..<10).map { _ in alphanumerics.randomElement()! })
}

/// A random password of letters and digits.
func randomPassword(length: Int = 20) -> String {
    String((0..<length).map { _ in alphanumerics.randomElement()! })
}

/// Quotes a string as an SQL literal.
func sqlLiteral(_ text: String) -> String {
    "'" + text.replacingOccurrences(of: "'", with: "''") + "'"
}

/// Blocks the calling thread. Tests are synchronous and talk to real processes, so waiting is sleeping.
func sleep(for duration: Duration) {
    let (seconds, attoseconds) = duration.components
    var remaining = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
    var request = remaining
    // Interrupted by a signal: sleep on for what is left.
    while nanosleep(&request, &remaining) == -1 && errno == EINTR {
        request = remaining
    }
}

extension Duration {
    /// The duration as fractional seconds, for deadlines and messages.
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes; returns whether it held.
@discardableResult
func waitUntil(timeout: Duration, _ condition: () throws -> Bool) rethrows -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while true {
        if try condition() { return true }
        if clock.now >= deadline { return false }
        sleep(for: .milliseconds(20))
    }
}

/// A fresh private directory under the system's temporary directory.
func makeTemporaryDirectory(_ prefix: String) throws -> URL {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(uniqueName(prefix))
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    return directory
}
