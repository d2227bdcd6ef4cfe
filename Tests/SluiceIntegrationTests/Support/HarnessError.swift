import Foundation

/// A failure of the test harness itself, or of a check that needs more words than an `#expect`.
///
/// Thrown errors fail the calling test, so the description carries everything needed to debug from
/// the test log alone (the command, its output, the proxy's log tail).
struct HarnessError: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) {
        self.description = description
    }
}
