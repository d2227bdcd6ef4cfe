/// What the primary's catalog says is unsafe to run on a replica, by name: volatile functions, operators and
/// casts backed by one, and relations (views, tables with row security) whose definitions call one.
///
/// Names are all the classifier can match, since it sees statement text and not resolved objects. So it
/// errs one way: an unqualified `foo` is unsafe when any schema has an unsafe `foo`, whatever the client's
/// search_path would pick.
public struct RoutingCatalog: Sendable, Equatable {
    /// The one statement Sluice runs on the primary to build a catalog; pass its rows to `init(rows:…)`.
    /// Five text columns: kind, schema, name, and for two kinds a second schema and name.
    ///
    /// - `f`, schema, name: a volatile function (`provolatile = 'v'`).
    /// - `o`, schema, operator: an operator whose function is volatile.
    /// - `c`, schema, type: a type that a cast with a volatile function converts to.
    /// - `r`, schema, relation, function schema, function: a user view, or a table's row-security policy,
    ///   calls that volatile function (or one of the built-ins that assign a transaction id). The function is
    ///   named so that the reviewed safe list can excuse it (a view over `random()` is still a read).
    /// - `d`, schema, view, schema, view: the first view reads from the second, so unsafety flows up through
    ///   nested views; the closure is computed in Swift, not with a recursive query.
    ///
    /// Functions are found in the stored query trees (`pg_rewrite.ev_action`, `pg_policy`) rather than in
    /// pg_depend because dependencies on built-in (pinned) objects are not recorded there: a view calling
    /// `nextval` has no pg_depend row naming it. System schemas are skipped: their views run on a standby.
    /// Works on PostgreSQL 12 and later; on a catalog of a few thousand functions it takes milliseconds.
    public static let query: String = #"""
        WITH volatile_function AS (
            SELECT oid FROM pg_catalog.pg_proc WHERE provolatile = 'v'
        ), called_function AS (
            SELECT c.oid AS relation, m[1]::pg_catalog.oid AS function
            FROM pg_catalog.pg_class c
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_catalog.pg_rewrite r ON r.ev_class = c.oid
            CROSS JOIN LATERAL pg_catalog.regexp_matches(r.ev_action::pg_catalog.text,
                ':(?:funcid|aggfnoid|winfnoid|opfuncid) (\d+)', 'g') m
            WHERE c.relkind = 'v' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
            UNION ALL
            SELECT p.polrelid, m[1]::pg_catalog.oid
            FROM pg_catalog.pg_policy p
            CROSS JOIN LATERAL pg_catalog.regexp_matches(
                pg_catalog.concat(p.polqual::pg_catalog.text, ' ', p.polwithcheck::pg_catalog.text),
                ':(?:funcid|aggfnoid|winfnoid|opfuncid) (\d+)', 'g') m
        )
        SELECT 'f', n.nspname::pg_catalog.text, p.proname::pg_catalog.text,
            NULL::pg_catalog.text, NULL::pg_catalog.text
        FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
        WHERE p.provolatile = 'v'
        UNION ALL
        SELECT DISTINCT 'k', n.nspname::pg_catalog.text, p.proname::pg_catalog.text, NULL, NULL
        FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
        WHERE p.provolatile <> 'v'
        UNION ALL
        SELECT 'o', n.nspname, o.oprname, NULL, NULL
        FROM pg_catalog.pg_operator o
        JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace
        WHERE o.oprcode::pg_catalog.oid IN (SELECT oid FROM volatile_function)
        UNION ALL
        SELECT 'c', n.nspname, t.typname, NULL, NULL
        FROM pg_catalog.pg_cast c
        JOIN pg_catalog.pg_type t ON t.oid = c.casttarget
        JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
        WHERE c.castfunc IN (SELECT oid FROM volatile_function)
        UNION ALL
        SELECT DISTINCT 'r', n.nspname, c.relname, fn.nspname, f.proname
        FROM called_function cf
        JOIN pg_catalog.pg_proc f ON f.oid = cf.function
            AND (f.provolatile = 'v' OR f.proname IN ('txid_current', 'pg_current_xact_id'))
        JOIN pg_catalog.pg_namespace fn ON fn.oid = f.pronamespace
        JOIN pg_catalog.pg_class c ON c.oid = cf.relation
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        UNION ALL
        SELECT DISTINCT 'd', vn.nspname, v.relname, tn.nspname, t.relname
        FROM pg_catalog.pg_depend d
        JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid
        JOIN pg_catalog.pg_class v ON v.oid = r.ev_class AND v.relkind = 'v'
        JOIN pg_catalog.pg_namespace vn ON vn.oid = v.relnamespace
        JOIN pg_catalog.pg_class t ON t.oid = d.refobjid AND t.relkind = 'v' AND t.oid <> v.oid
        JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
        WHERE d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
          AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
          AND vn.nspname NOT IN ('pg_catalog', 'information_schema')
        """#

    /// Volatile functions by name, with the schemas that have one.
    var volatileFunctions: [String: Set<String>] = [:]
    /// Functions that are not volatile, by name, with their schemas: a name in neither table is a function
    /// created since the catalog was read (or one that does not exist), and counts as a write until the next
    /// read says what it is.
    var knownFunctions: [String: Set<String>] = [:]
    /// Operator names backed by a volatile function, by name, with their schemas.
    var unsafeOperators: [String: Set<String>] = [:]
    /// Types that a volatile cast converts to, by name, with their schemas.
    var unsafeCastTargets: [String: Set<String>] = [:]
    /// Relations (closed over nested views) that are unsafe, by name, with their schemas.
    var unsafeRelations: [String: Set<String>] = [:]
    /// Operator-named functions to treat as safe / unsafe: "name" (every schema) or "schema.name".
    var extraSafeFunctions: Set<String> = []
    var extraUnsafeFunctions: Set<String> = []
    /// False until built from rows: then only the reviewed built-in lists count as safe.
    var isLoaded = false

    /// Nothing is known from a catalog yet. Until one is loaded, the classifier is safe by default: a
    /// function, operator or cast counts as a read only when a reviewed list of PostgreSQL built-ins names it
    /// (see `BuiltinRoutingLists`); anything else could be a user's volatile function, so it is a write.
    public init() {}

    /// A catalog built from the rows of `query`, plus the functions an operator configured as safe or unsafe,
    /// each "name" (any schema) or "schema.name". Rows of unknown kinds or too few columns are skipped, so a
    /// later Sluice may add kinds. The always-unsafe built-ins (`nextval`, `set_config`, advisory locks, …)
    /// stay unsafe even when listed in `safeFunctions`.
    public init(rows: [[String?]], safeFunctions: [String], unsafeFunctions: [String]) {
        isLoaded = true
        extraSafeFunctions = Set(safeFunctions)
        extraUnsafeFunctions = Set(unsafeFunctions)
        var relationCalls: [(schema: String, name: String, functionSchema: String, function: String)] = []
        var readsFrom: [QualifiedName: [QualifiedName]] = [:]
        for row in rows {
            guard row.count >= 3, let kind = row[0], let schema = row[1], let name = row[2] else { continue }
            switch kind {
            case "f":
                volatileFunctions[name, default: []].insert(schema)
            case "k":
                knownFunctions[name, default: []].insert(schema)
            case "o":
                unsafeOperators[name, default: []].insert(schema)
            case "c":
                unsafeCastTargets[name, default: []].insert(schema)
            case "r":
                guard row.count >= 5, let functionSchema = row[3], let function = row[4] else { continue }
                relationCalls.append((schema, name, functionSchema, function))
            case "d":
                guard row.count >= 5, let targetSchema = row[3], let target = row[4] else { continue }
                readsFrom[QualifiedName(schema: targetSchema, name: target), default: []].append(
                    QualifiedName(schema: schema, name: name))
            default:
                continue
            }
        }
        var pending: [QualifiedName] = []
        for call in relationCalls where isUnsafeFunction(schema: call.functionSchema, name: call.function) {
            pending.append(QualifiedName(schema: call.schema, name: call.name))
        }
        // Every view that reads from an unsafe relation is unsafe too, however deep the nesting.
        var unsafe: Set<QualifiedName> = []
        while let relation = pending.popLast() {
            guard unsafe.insert(relation).inserted else { continue }
            pending.append(contentsOf: readsFrom[relation] ?? [])
        }
        for relation in unsafe {
            unsafeRelations[relation.name, default: []].insert(relation.schema)
        }
    }

    /// Whether calling the function `name` (in `schema`, or unqualified when nil) may change something or
    /// fail on a standby.
    // TODO: by name, not by signature: overloads are not told apart, and an unqualified name counts as
    // unsafe if any schema has a volatile function of that name (search_path is not followed).
    func isUnsafeFunction(schema: String?, name: String) -> Bool {
        if BuiltinRoutingLists.isAlwaysUnsafe(name) { return true }
        if extraUnsafeFunctions.contains(name) { return true }
        if let schema, extraUnsafeFunctions.contains(schema + "." + name) { return true }
        if extraSafeFunctions.contains(name) { return false }
        if let schema, extraSafeFunctions.contains(schema + "." + name) { return false }
        guard isLoaded else {
            let builtin = schema == nil || schema == "pg_catalog"
            let listed =
                BuiltinRoutingLists.nonVolatileFunctions.contains(name)
                || BuiltinRoutingLists.safeVolatileFunctions.contains(name)
            return !(builtin && listed)
        }
        guard let schemas = volatileFunctions[name] else {
            // Catalogs read by an older query have no rows of known functions: only volatility counts there.
            guard !knownFunctions.isEmpty else { return false }
            if BuiltinRoutingLists.safeVolatileFunctions.contains(name) && (schema == nil || schema == "pg_catalog") {
                return false
            }
            return !Self.matches(knownFunctions, schema: schema, name: name)
        }
        return schemas.contains { candidate in
            guard schema == nil || candidate == schema else { return false }
            if candidate == "pg_catalog", BuiltinRoutingLists.safeVolatileFunctions.contains(name) { return false }
            return !extraSafeFunctions.contains(candidate + "." + name)
        }
    }

    /// Whether the operator `name` (qualified with `OPERATOR(schema.op)` or not) may be backed by a volatile
    /// function.
    func isUnsafeOperator(schema: String?, name: String) -> Bool {
        guard isLoaded else {
            return !((schema == nil || schema == "pg_catalog") && BuiltinRoutingLists.operatorNames.contains(name))
        }
        return Self.matches(unsafeOperators, schema: schema, name: name)
    }

    /// Whether a cast to the type `name` may run a volatile function.
    func isUnsafeCastTarget(schema: String?, name: String) -> Bool {
        guard isLoaded else {
            return !((schema == nil || schema == "pg_catalog") && BuiltinRoutingLists.typeNames.contains(name))
        }
        return Self.matches(unsafeCastTargets, schema: schema, name: name)
    }

    /// Whether reading the relation `name` runs a volatile function. Unknown relations (tables, or anything
    /// while no catalog is loaded) are safe: reading a table changes nothing.
    func isUnsafeRelation(schema: String?, name: String) -> Bool {
        Self.matches(unsafeRelations, schema: schema, name: name)
    }

    private static func matches(_ table: [String: Set<String>], schema: String?, name: String) -> Bool {
        guard let schemas = table[name] else { return false }
        guard let schema else { return true }
        return schemas.contains(schema)
    }
}

/// A schema-qualified object name, as the catalog's rows give it.
struct QualifiedName: Hashable, Sendable {
    var schema: String
    var name: String
}
