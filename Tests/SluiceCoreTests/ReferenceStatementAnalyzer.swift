@testable import SluiceCore

/// The statement analyzer as it was when it walked a `JSONValue` tree built from libpg_query's JSON, kept as
/// an oracle for the equivalence tests: `StatementAnalyzer` reads the JSON through `ParseTree` instead, and
/// both must reach the same class for every text. A deliberate change to classification is made in both.
struct ReferenceStatementAnalyzer {
    let catalog: RoutingCatalog

    /// The class of a whole text, from its tree (`{"version":…,"stmts":[…]}`).
    func classify(tree: JSONValue) -> StatementClass {
        guard let statements = tree["stmts"]?.arrayValue else { return .write(reason: "not parsable") }
        guard !statements.isEmpty else { return .write(reason: "empty") }
        let classes = statements.map { classify(statement: $0["stmt"] ?? .null) }
        if classes.count == 1 { return classes[0] }
        var firstWrite: StatementClass?
        for statementClass in classes {
            switch statementClass {
            case .read:
                continue
            case .write:
                if firstWrite == nil { firstWrite = statementClass }
            case .begin, .setTransaction, .endTransaction, .setRoute, .showRoute:
                // The router acts on these one at a time; inside a batch it cannot tell where the
                // transaction starts or ends, so the whole text goes to the primary.
                return .write(reason: "multiple statements")
            }
        }
        return firstWrite ?? .read
    }

    /// The class of one statement node, such as `{"SelectStmt": {…}}`.
    func classify(statement node: JSONValue) -> StatementClass {
        guard case .object(let members) = node, members.count == 1 else { return .write(reason: "not parsable") }
        let (type, body) = members[0]
        switch type {
        case "SelectStmt":
            if let reason = writeReason(in: body) { return .write(reason: reason) }
            return .read
        case "VariableShowStmt":
            return body["name"]?.stringValue?.lowercased() == "sluice.route" ? .showRoute : .read
        case "ExplainStmt":
            return classify(explain: body)
        case "TransactionStmt":
            return classify(transaction: body)
        case "VariableSetStmt":
            return classify(set: body)
        default:
            return .write(reason: StatementAnalyzer.statementName(type))
        }
    }

    /// EXPLAIN only plans the statement; EXPLAIN ANALYZE runs it, so it is as read-only as that statement.
    private func classify(explain body: JSONValue) -> StatementClass {
        let analyze = (body["options"]?.arrayValue ?? []).contains { option in
            guard let element = option["DefElem"], element["defname"]?.stringValue == "analyze" else { return false }
            return Self.isTrue(element["arg"])
        }
        guard analyze else { return .read }
        switch classify(statement: body["query"] ?? .null) {
        case .read:
            return .read
        case .write(let reason):
            return .write(reason: "EXPLAIN ANALYZE " + reason)
        case .begin, .setTransaction, .endTransaction, .setRoute, .showRoute:
            return .write(reason: "EXPLAIN ANALYZE")
        }
    }

    private func classify(transaction body: JSONValue) -> StatementClass {
        switch body["kind"]?.stringValue ?? "" {
        case "TRANS_STMT_BEGIN", "TRANS_STMT_START":
            return .begin(Self.transactionModes(body["options"]))
        case "TRANS_STMT_COMMIT", "TRANS_STMT_ROLLBACK":
            return .endTransaction
        case "TRANS_STMT_SAVEPOINT", "TRANS_STMT_RELEASE", "TRANS_STMT_ROLLBACK_TO":
            return .read
        case "TRANS_STMT_PREPARE":
            return .write(reason: "PREPARE TRANSACTION")
        case "TRANS_STMT_COMMIT_PREPARED":
            return .write(reason: "COMMIT PREPARED")
        case "TRANS_STMT_ROLLBACK_PREPARED":
            return .write(reason: "ROLLBACK PREPARED")
        default:
            return .write(reason: "transaction command")
        }
    }

    private func classify(set body: JSONValue) -> StatementClass {
        let kind = body["kind"]?.stringValue ?? ""
        // Setting names are case-insensitive in PostgreSQL, even when quoted.
        let name = body["name"]?.stringValue?.lowercased() ?? ""
        if name == "sluice.route" {
            let local = body["is_local"] == .bool(true)
            switch kind {
            case "VAR_SET_VALUE":
                guard let values = body["args"]?.arrayValue, values.count == 1,
                    let value = values[0]["A_Const"]?["sval"]?["sval"]?.stringValue
                else { return .setRoute(nil, local: local) }
                return .setRoute(RouteSetting(rawValue: value.lowercased()), local: local)
            case "VAR_SET_DEFAULT", "VAR_RESET":
                return .setRoute(.auto, local: local)
            default:
                return .setRoute(nil, local: local)
            }
        }
        switch (kind, name) {
        case ("VAR_SET_MULTI", "transaction"):
            return .setTransaction(Self.transactionModes(body["args"]))
        case ("VAR_SET_MULTI", "session characteristics"):
            return .write(reason: "SET SESSION CHARACTERISTICS")
        case ("VAR_RESET", _), ("VAR_RESET_ALL", _):
            return .write(reason: "RESET")
        default:
            return .write(reason: "SET")
        }
    }

    /// Why the query tree under `value` must run on the primary, or nil when nothing in it needs to.
    func writeReason(in value: JSONValue) -> String? {
        switch value {
        case .array(let elements):
            for element in elements {
                if let reason = writeReason(in: element) { return reason }
            }
            return nil
        case .object(let members):
            for (key, child) in members {
                if let reason = writeReason(key: key, node: child) { return reason }
                if let reason = writeReason(in: child) { return reason }
            }
            return nil
        case .null, .bool, .int, .uint, .double, .string:
            return nil
        }
    }

    /// Why the node under `key` alone needs the primary, not looking at its children.
    private func writeReason(key: String, node: JSONValue) -> String? {
        switch key {
        case "InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt":
            return StatementAnalyzer.statementName(key) + " in WITH"
        case "intoClause":
            return "SELECT INTO"
        case "lockingClause":
            guard let clauses = node.arrayValue, let first = clauses.first else { return nil }
            return Self.lockingName(first["LockingClause"]?["strength"]?.stringValue)
        case "FuncCall":
            return functionReason(Self.names(node["funcname"]))
        case "A_Expr":
            return operatorReason(node)
        case "useOp":
            return operatorReason(names: Self.names(node))
        case "TypeCast":
            return castReason(Self.names(node["typeName"]?["names"]))
        case "RangeVar":
            guard let name = node["relname"]?.stringValue else { return nil }
            let schema = node["schemaname"]?.stringValue
            guard catalog.isUnsafeRelation(schema: schema, name: name) else { return nil }
            return "relation \(name) calls a volatile function"
        case "ColumnRef":
            // `t.f` may call the function f(t) ("functional notation"). Only a loaded catalog can say that a
            // function of that name exists at all; without one, every column would look like an unknown call.
            let fields = Self.names(node["fields"])
            guard catalog.isLoaded, fields.count >= 2, let last = fields.last,
                catalog.volatileFunctions[last] != nil, catalog.isUnsafeFunction(schema: nil, name: last)
            else { return nil }
            return "volatile function \(last)"
        default:
            return nil
        }
    }

    private func functionReason(_ names: [String]) -> String? {
        guard let name = names.last else { return "function call" }
        let schema = names.count >= 2 ? names[names.count - 2] : nil
        if catalog.isUnsafeFunction(schema: schema, name: name) {
            return catalog.isLoaded || BuiltinRoutingLists.isAlwaysUnsafe(name)
                ? "volatile function \(name)" : "unreviewed function \(name)"
        }
        // `mytype(x)` is also how a cast can be written.
        if catalog.isLoaded, catalog.isUnsafeCastTarget(schema: schema, name: name) { return "cast to \(name)" }
        return nil
    }

    private func operatorReason(_ expression: JSONValue) -> String? {
        let kind = expression["kind"]?.stringValue ?? ""
        // BETWEEN's "name" is the keyword; PostgreSQL runs it as >= and <=.
        if kind.hasPrefix("AEXPR_BETWEEN") || kind.hasPrefix("AEXPR_NOT_BETWEEN") {
            return operatorReason(names: [">="]) ?? operatorReason(names: ["<="])
        }
        return operatorReason(names: Self.names(expression["name"]))
    }

    private func operatorReason(names: [String]) -> String? {
        guard let name = names.last else { return nil }
        let schema = names.count >= 2 ? names[names.count - 2] : nil
        return catalog.isUnsafeOperator(schema: schema, name: name) ? "operator \(name)" : nil
    }

    private func castReason(_ names: [String]) -> String? {
        guard let name = names.last else { return nil }
        let schema = names.count >= 2 ? names[names.count - 2] : nil
        return catalog.isUnsafeCastTarget(schema: schema, name: name) ? "cast to \(name)" : nil
    }

    /// The strings of a name list such as `[{"String":{"sval":"pg_catalog"}},{"String":{"sval":"int4"}}]`.
    static func names(_ list: JSONValue?) -> [String] {
        (list?.arrayValue ?? []).compactMap { $0["String"]?["sval"]?.stringValue }
    }

    /// Whether a DefElem's argument means true: absent (`EXPLAIN (ANALYZE)`), a true boolean, a nonzero
    /// integer, or a word other than PostgreSQL's spellings of false. Unknown shapes count as true, the side
    /// that keeps EXPLAIN ANALYZE of a write on the primary.
    static func isTrue(_ argument: JSONValue?) -> Bool {
        guard let argument else { return true }
        if let boolean = argument["Boolean"] { return boolean["boolval"] == .bool(true) }
        if let integer = argument["Integer"] { return integer["ival"].map { $0 != .int(0) } ?? false }
        if let word = argument["String"]?["sval"]?.stringValue {
            return !["false", "off", "no", "0", "of", "fa", "fal", "fals", "n"].contains(word.lowercased())
        }
        return true
    }

    /// Transaction modes from a list of DefElems (`transaction_isolation`, `transaction_read_only`,
    /// `transaction_deferrable`); the parser writes the booleans as integer constants, zero omitted.
    static func transactionModes(_ list: JSONValue?) -> TransactionModes {
        var modes = TransactionModes()
        for option in list?.arrayValue ?? [] {
            guard let element = option["DefElem"], let constant = element["arg"]?["A_Const"] else { continue }
            let flag = (constant["ival"]?["ival"]).map { $0 != .int(0) } ?? false
            switch element["defname"]?.stringValue {
            case "transaction_isolation":
                modes.isolationLevel = constant["sval"]?["sval"]?.stringValue?.lowercased()
            case "transaction_read_only":
                modes.readOnly = flag
            case "transaction_deferrable":
                modes.deferrable = flag
            default:
                continue
            }
        }
        return modes
    }

    private static func lockingName(_ strength: String?) -> String {
        switch strength {
        case "LCS_FORKEYSHARE": return "FOR KEY SHARE"
        case "LCS_FORSHARE": return "FOR SHARE"
        case "LCS_FORNOKEYUPDATE": return "FOR NO KEY UPDATE"
        default: return "FOR UPDATE"
        }
    }
}
