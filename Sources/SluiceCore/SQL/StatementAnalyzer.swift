/// Decides a `StatementClass` from libpg_query's parse tree of a text.
///
/// Whether a query is read-only is decided by walking its whole tree generically and reacting to node keys
/// (`FuncCall`, `RangeVar`, `lockingClause`, …) wherever they occur, instead of listing the places an
/// expression can appear: PostgreSQL's grammar has dozens (ORDER BY, window frames, FROM functions, LATERAL,
/// array subscripts, CTEs at any depth), and a place the classifier did not list would be a write routed to
/// a replica.
///
/// The tree is libpg_query's JSON read into a `ParseTree`, so the walk is a scan over tokens and a name is
/// decoded into a String only when the catalog must be asked about it.
struct StatementAnalyzer {
    let catalog: RoutingCatalog

    /// The class of a whole text, from its tree (`{"version":…,"stmts":[…]}`).
    func classify(tree: ParseTree.Node) -> StatementClass {
        guard let statements = tree["stmts"], statements.kind == .array else { return .write(reason: "not parsable") }
        var count = 0
        var first: StatementClass?
        var firstWrite: StatementClass?
        var batchesControl = false
        for statement in statements.elements {
            let statementClass = classify(statement: statement["stmt"])
            count += 1
            if first == nil { first = statementClass }
            switch statementClass {
            case .read:
                continue
            case .write:
                if firstWrite == nil { firstWrite = statementClass }
            case .begin, .setTransaction, .endTransaction, .setRoute, .showRoute:
                // The router acts on these one at a time; inside a batch it cannot tell where the
                // transaction starts or ends, so the whole text goes to the primary.
                batchesControl = true
            }
        }
        guard let first else { return .write(reason: "empty") }
        if count == 1 { return first }
        if batchesControl { return .write(reason: "multiple statements") }
        return firstWrite ?? .read
    }

    /// The class of one statement node, such as `{"SelectStmt": {…}}`.
    func classify(statement node: ParseTree.Node?) -> StatementClass {
        var members = node?.members
        guard let member = members?.next(), members?.next() == nil, let type = member.key.stringValue else {
            return .write(reason: "not parsable")
        }
        let body = member.value
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
            return .write(reason: Self.statementName(type))
        }
    }

    /// EXPLAIN only plans the statement; EXPLAIN ANALYZE runs it, so it is as read-only as that statement.
    private func classify(explain body: ParseTree.Node) -> StatementClass {
        let analyze = (body["options"]?.elements)?.contains { option in
            guard let element = option["DefElem"], element["defname"]?.equals("analyze") == true else { return false }
            return Self.isTrue(element["arg"])
        }
        guard analyze == true else { return .read }
        switch classify(statement: body["query"]) {
        case .read:
            return .read
        case .write(let reason):
            return .write(reason: "EXPLAIN ANALYZE " + reason)
        case .begin, .setTransaction, .endTransaction, .setRoute, .showRoute:
            return .write(reason: "EXPLAIN ANALYZE")
        }
    }

    private func classify(transaction body: ParseTree.Node) -> StatementClass {
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

    private func classify(set body: ParseTree.Node) -> StatementClass {
        let kind = body["kind"]?.stringValue ?? ""
        // Setting names are case-insensitive in PostgreSQL, even when quoted.
        let name = body["name"]?.stringValue?.lowercased() ?? ""
        if name == "sluice.route" {
            let local = body["is_local"]?.isTrue == true
            switch kind {
            case "VAR_SET_VALUE":
                var values = body["args"]?.elements
                guard let only = values?.next(), values?.next() == nil,
                    let value = only["A_Const"]?["sval"]?["sval"]?.stringValue
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
    ///
    /// Nodes are checked in pre-order (a node before its children, siblings in order), so the reason is the
    /// one nearest the start of the text's tree.
    func writeReason(in value: ParseTree.Node) -> String? {
        for (key, child) in value.allMembers {
            guard let relevant = RelevantKey(key) else { continue }
            if let reason = writeReason(key: relevant, node: child) { return reason }
        }
        return nil
    }

    /// Why the node under `key` alone needs the primary, not looking at its children.
    private func writeReason(key: RelevantKey, node: ParseTree.Node) -> String? {
        switch key {
        case .insertStmt:
            return "INSERT in WITH"
        case .updateStmt:
            return "UPDATE in WITH"
        case .deleteStmt:
            return "DELETE in WITH"
        case .mergeStmt:
            return "MERGE in WITH"
        case .intoClause:
            return "SELECT INTO"
        case .lockingClause:
            var clauses = node.elements
            guard let first = clauses.next() else { return nil }
            return Self.lockingName(first["LockingClause"]?["strength"]?.stringValue)
        case .funcCall:
            return functionReason(Self.qualifiedName(node["funcname"]))
        case .aExpr:
            return operatorReason(node)
        case .useOp:
            return operatorReason(name: Self.qualifiedName(node))
        case .typeCast:
            return castReason(Self.qualifiedName(node["typeName"]?["names"]))
        case .rangeVar:
            guard let name = node["relname"]?.stringValue else { return nil }
            let schema = node["schemaname"]?.stringValue
            guard catalog.isUnsafeRelation(schema: schema, name: name) else { return nil }
            return "relation \(name) calls a volatile function"
        case .columnRef:
            // `t.f` may call the function f(t) ("functional notation"). Only a loaded catalog can say that a
            // function of that name exists at all; without one, every column would look like an unknown call.
            guard catalog.isLoaded, let fields = Self.qualifiedName(node["fields"]), fields.schema != nil,
                catalog.volatileFunctions[fields.name] != nil, catalog.isUnsafeFunction(schema: nil, name: fields.name)
            else { return nil }
            return "volatile function \(fields.name)"
        }
    }

    private func functionReason(_ qualifiedName: (schema: String?, name: String)?) -> String? {
        guard let qualifiedName else { return "function call" }
        let (schema, name) = qualifiedName
        if catalog.isUnsafeFunction(schema: schema, name: name) {
            return catalog.isLoaded || BuiltinRoutingLists.isAlwaysUnsafe(name)
                ? "volatile function \(name)" : "unreviewed function \(name)"
        }
        // `mytype(x)` is also how a cast can be written.
        if catalog.isLoaded, catalog.isUnsafeCastTarget(schema: schema, name: name) { return "cast to \(name)" }
        return nil
    }

    private func operatorReason(_ expression: ParseTree.Node) -> String? {
        let kind = expression["kind"]?.stringValue ?? ""
        // BETWEEN's "name" is the keyword; PostgreSQL runs it as >= and <=.
        if kind.hasPrefix("AEXPR_BETWEEN") || kind.hasPrefix("AEXPR_NOT_BETWEEN") {
            return operatorReason(name: (nil, ">=")) ?? operatorReason(name: (nil, "<="))
        }
        return operatorReason(name: Self.qualifiedName(expression["name"]))
    }

    private func operatorReason(name qualifiedName: (schema: String?, name: String)?) -> String? {
        guard let qualifiedName else { return nil }
        let (schema, name) = qualifiedName
        return catalog.isUnsafeOperator(schema: schema, name: name) ? "operator \(name)" : nil
    }

    private func castReason(_ qualifiedName: (schema: String?, name: String)?) -> String? {
        guard let qualifiedName else { return nil }
        let (schema, name) = qualifiedName
        return catalog.isUnsafeCastTarget(schema: schema, name: name) ? "cast to \(name)" : nil
    }

    /// The last name of a name list such as `[{"String":{"sval":"pg_catalog"}},{"String":{"sval":"int4"}}]`,
    /// with the one before it as its schema when there is one; nil when the list has no names. Elements that
    /// are not names (the `*` of `t.*`) are skipped. Only these two are decoded: a list may be longer
    /// (`db.schema.table.column`), and only its end names the object.
    static func qualifiedName(_ list: ParseTree.Node?) -> (schema: String?, name: String)? {
        guard let list else { return nil }
        var last: ParseTree.Node?
        var secondToLast: ParseTree.Node?
        for element in list.elements {
            guard let name = element["String"]?["sval"], name.kind == .string else { continue }
            secondToLast = last
            last = name
        }
        guard let name = last?.stringValue else { return nil }
        return (secondToLast?.stringValue, name)
    }

    /// Whether a DefElem's argument means true: absent (`EXPLAIN (ANALYZE)`), a true boolean, a nonzero
    /// integer, or a word other than PostgreSQL's spellings of false. Unknown shapes count as true, the side
    /// that keeps EXPLAIN ANALYZE of a write on the primary.
    static func isTrue(_ argument: ParseTree.Node?) -> Bool {
        guard let argument else { return true }
        if let boolean = argument["Boolean"] { return boolean["boolval"]?.isTrue == true }
        if let integer = argument["Integer"] { return integer["ival"].map { !$0.isIntegerZero } ?? false }
        if let word = argument["String"]?["sval"]?.stringValue {
            return !["false", "off", "no", "0", "of", "fa", "fal", "fals", "n"].contains(word.lowercased())
        }
        return true
    }

    /// Transaction modes from a list of DefElems (`transaction_isolation`, `transaction_read_only`,
    /// `transaction_deferrable`); the parser writes the booleans as integer constants, zero omitted.
    static func transactionModes(_ list: ParseTree.Node?) -> TransactionModes {
        var modes = TransactionModes()
        guard let list else { return modes }
        for option in list.elements {
            guard let element = option["DefElem"], let constant = element["arg"]?["A_Const"] else { continue }
            let flag = (constant["ival"]?["ival"]).map { !$0.isIntegerZero } ?? false
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

    /// "InsertStmt" → "INSERT", "CreateTableAsStmt" → "CREATE TABLE AS": the node name, spaced and upper-cased,
    /// short enough for a log line.
    static func statementName(_ type: String) -> String {
        let base = type.hasSuffix("Stmt") ? type.dropLast(4) : type[...]
        var name = ""
        for character in base {
            if character.isUppercase, !name.isEmpty { name.append(" ") }
            name += character.uppercased()
        }
        return name
    }

    /// The keys whose nodes can make a query need the primary; the walk passes every other key by.
    enum RelevantKey {
        case insertStmt, updateStmt, deleteStmt, mergeStmt, intoClause, lockingClause
        case funcCall, aExpr, useOp, typeCast, rangeVar, columnRef

        /// Most keys in a tree ("location", "sval", "String", "fields", …) are turned away by their length
        /// alone, before any byte is compared.
        init?(_ key: ParseTree.Node) {
            switch key.utf8Count {
            case 5 where key.equals("useOp"): self = .useOp
            case 6 where key.equals("A_Expr"): self = .aExpr
            case 8 where key.equals("FuncCall"): self = .funcCall
            case 8 where key.equals("TypeCast"): self = .typeCast
            case 8 where key.equals("RangeVar"): self = .rangeVar
            case 9 where key.equals("ColumnRef"): self = .columnRef
            case 9 where key.equals("MergeStmt"): self = .mergeStmt
            case 10 where key.equals("InsertStmt"): self = .insertStmt
            case 10 where key.equals("UpdateStmt"): self = .updateStmt
            case 10 where key.equals("DeleteStmt"): self = .deleteStmt
            case 10 where key.equals("intoClause"): self = .intoClause
            case 13 where key.equals("lockingClause"): self = .lockingClause
            default: return nil
            }
        }
    }
}
