import Foundation
import SluiceCore

/// The reported parameters Sluice keeps in step between a client and whichever server serves it.
/// Names compare case-insensitively, as PostgreSQL's GUC names do.
struct ParameterSet {
    private(set) var values: [String: (name: String, value: String)] = [:]

    subscript(name: String) -> String? {
        get { values[name.lowercased()]?.value }
        set {
            if let newValue { values[name.lowercased()] = (name, newValue) } else { values[name.lowercased()] = nil }
        }
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
