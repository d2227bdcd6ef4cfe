import Foundation
import SluiceCore
import Synchronization

/// The reported parameters Sluice keeps in step between a client and whichever server serves it.
/// Names compare case-insensitively, as PostgreSQL's GUC names do.
///
/// A set is a value with copy-on-write storage: clients that logged in with the same parameters can
/// share one copy (see `ClientConnection.finishLogin`), and a client gets storage of its own only when
/// one of its parameters changes. Setting a value a set already holds is therefore not a change.
struct ParameterSet: Equatable {
    private(set) var values: [String: (name: String, value: String)] = [:]
    /// Changes with every change of the set and is carried by its copies, so two sets with the same
    /// version hold the same values (sets with different versions may still be equal). Lets the
    /// per-transaction comparison with a server's set be skipped when neither side changed.
    private(set) var version: UInt64 = 0
    private static let versions = Atomic<UInt64>(0)

    subscript(name: String) -> String? {
        get { values[Self.key(name)]?.value }
        set {
            let key = Self.key(name)
            if let newValue {
                if let current = values[key], current.value == newValue, current.name == name { return }
                values[key] = (name, newValue)
            } else if values[key] != nil {
                values[key] = nil
            } else {
                return
            }
            version = Self.versions.add(1, ordering: .relaxed).newValue
        }
    }

    /// The dictionary key for `name`: its lower-case form. A name already in lower case, as most that
    /// PostgreSQL reports are, is its own key and shares its storage; `lowercased()` would copy a name
    /// longer than 15 bytes into a new allocation for every client.
    static func key(_ name: String) -> String {
        for byte in name.utf8 where byte >= 0x80 || (byte >= 0x41 && byte <= 0x5A) { return name.lowercased() }
        return name
    }

    static func == (lhs: ParameterSet, rhs: ParameterSet) -> Bool {
        guard lhs.values.count == rhs.values.count else { return false }
        for (key, entry) in lhs.values {
            guard let other = rhs.values[key], other.name == entry.name, other.value == entry.value else {
                return false
            }
        }
        return true
    }

    /// `SET` statements that would give `server` this set's values for the names in `tracked`.
    func restoreStatements(comparedTo server: ParameterSet, tracked: Set<String>) -> String? {
        var sql = ""
        for (key, entry) in values where tracked.contains(key) {
            if server.values[key]?.value == entry.value { continue }
            sql += "SET \(Self.quoteIdentifier(entry.name)) TO \(Self.quoteLiteral(entry.value));"
        }
        return sql.isEmpty ? nil : sql
    }

    static func quoteLiteral(_ value: String) -> String {
        "'" + value.replacingOccurrences(of: "'", with: "''") + "'"
    }

    static func quoteIdentifier(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

/// What finishing a login sends before the cancel key, and the parameters the client starts with. It
/// depends only on the pool's welcome, the tracked names and the client's startup parameters, and most
/// clients of a pool log in alike: building it costs more than the rest of a login.
struct LoginGreeting {
    let pool: Pool?
    let trackedVersion: Int
    let startupParameters: [StartupParameter]
    let parameters: ParameterSet
    /// AuthenticationOk and the ParameterStatus messages, encoded.
    let messages: [UInt8]
}
