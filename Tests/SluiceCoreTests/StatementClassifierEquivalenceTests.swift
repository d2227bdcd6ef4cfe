import Testing

@testable import SluiceCore

/// The class `ReferenceStatementAnalyzer` gives `text`: the JSON parsed into a `JSONValue` and walked as a
/// tree, with the same length and NUL checks as `StatementClassifier`.
func referenceClass(_ text: String, catalog: RoutingCatalog) -> StatementClass {
    let bytes = Array(text.utf8)
    guard bytes.count <= StatementClassifier.defaultMaximumTextLength else {
        return .write(reason: "too long to classify")
    }
    guard !bytes.contains(0) else { return .write(reason: "not parsable") }
    return (bytes + [0]).withUnsafeBufferPointer { buffer in
        PgQuery.withParseTree(UnsafeRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self)) { json in
            guard let json, let tree = try? JSONValue.parse(utf8: json) else { return .write(reason: "not parsable") }
            return ReferenceStatementAnalyzer(catalog: catalog).classify(tree: tree)
        }
    }
}

/// Catalogs that take the analyzer down different branches: none loaded (reviewed built-ins only), the test
/// catalog, one listing the functions that are not volatile, and a loaded but empty one.
let equivalenceCatalogs: [RoutingCatalog] = [
    RoutingCatalog(),
    testCatalog,
    RoutingCatalog(
        rows: [
            ["k", "pg_catalog", "lower", nil, nil], ["k", "public", "price", nil, nil],
            ["k", "pg_catalog", "count", nil, nil],
            ["f", "public", "bump", nil, nil], ["f", "pg_catalog", "nextval", nil, nil],
        ],
        safeFunctions: [], unsafeFunctions: []),
    RoutingCatalog(rows: [], safeFunctions: [], unsafeFunctions: []),
]

/// Statements that reach every branch of the analyzer, and some shapes of parse tree that are easy to get
/// wrong in a reader of tokens: lists inside lists, empty strings (which libpg_query leaves out), escaped
/// operator names, quoted identifiers with quotes and backslashes, non-ASCII names.
let equivalenceCorpus: [String] = [
    "SELECT 1", "", " ; ; ", "SELEC 1", "SELECT 1\u{0}", "SELECT abalance FROM pgbench_accounts WHERE aid = $1;",
    "SELECT 1 INTO x", "SELECT * INTO TEMP t2 FROM t", "CREATE TABLE t2 AS SELECT 1",
    "SELECT * FROM t FOR UPDATE", "SELECT * FROM t FOR NO KEY UPDATE SKIP LOCKED", "SELECT * FROM t FOR SHARE",
    "SELECT * FROM t FOR KEY SHARE NOWAIT", "SELECT * FROM t, u FOR UPDATE OF t FOR SHARE OF u",
    "WITH u AS (UPDATE t SET v = v + 1 RETURNING v) SELECT v FROM u",
    "WITH d AS (DELETE FROM t RETURNING *) SELECT count(*) FROM d",
    "WITH i AS (INSERT INTO t VALUES (1) RETURNING id) SELECT * FROM i",
    "WITH a AS (SELECT 1), b AS (WITH c AS (DELETE FROM t RETURNING 1) SELECT * FROM c) TABLE b",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) SELECT * FROM r",
    "SELECT nextval('s')", "SELECT bump()", "SELECT public.bump()", "SELECT audit.log_access()",
    "SELECT public.log_access()", "SELECT log_access()", "SELECT x FROM t ORDER BY bump()", "SELECT * FROM bump()",
    "SELECT count(*) FILTER (WHERE bump() > 0) FROM t", "SELECT lower(name), upper(name) FROM t",
    "SELECT price(1), lower('A'), count(*)", "SELECT audit.price(1)", "SELECT brand_new(1)", "SELECT random()",
    "SELECT setseed(0.5)", "SELECT set_config('a', 'b', false)", "SELECT pg_advisory_lock(1)", "SELECT mine()",
    "SELECT pg_try_advisory_lock(1)", "SELECT txid_current()", "SELECT reporting.snapshot()", "SELECT stamp(1)",
    "SELECT a.b.c.f(1)", "SELECT \"Weird\"\"Name\"(1)", "SELECT \"back\\slash\"()", "SELECT \"naïve\"()",
    "SELECT * FROM t WHERE a === 1", "SELECT a <=> b", "SELECT a OPERATOR(public.===) b",
    "SELECT a OPERATOR(pg_catalog.+) b", "SELECT * FROM t WHERE a BETWEEN 1 AND 2",
    "SELECT * FROM t WHERE a NOT BETWEEN SYMMETRIC 1 AND 2", "SELECT a > b, a < b, a & b, a <> b, a ->> 'k'",
    "SELECT a IN (1, 2), a = ANY(ARRAY[1]), a IS DISTINCT FROM b, NULLIF(a, b), a LIKE 'x%'",
    "SELECT 1::ticket", "SELECT 1::public.ticket", "SELECT 1::int, 'a'::text, x::mytype", "SELECT CAST(1 AS numeric)",
    "SELECT ticket(1)", "SELECT '1'::timestamp with time zone", "SELECT ARRAY[1,2]::int[]",
    "SELECT * FROM v_bump", "SELECT * FROM public.v_over_over", "SELECT * FROM other.v_bump", "SELECT * FROM v_random",
    "SELECT * FROM v_plain_over", "SELECT t.bump FROM t", "SELECT t.* FROM t", "SELECT t.lower FROM t",
    "SELECT s.t.bump FROM s.t",
    "SELECT lower(name), count(*) OVER (PARTITION BY x) FROM t GROUP BY 1 ORDER BY 2 USING >",
    "SELECT x FROM t ORDER BY x USING OPERATOR(public.===)", "SELECT 1; SELECT 2", "SELECT 1; INSERT INTO t VALUES (1)",
    "SELECT 1; BEGIN", "BEGIN; SELECT 1; COMMIT", "SET sluice.route = 'primary'; SELECT 1",
    "INSERT INTO t VALUES (1)", "UPDATE t SET v = 1", "DELETE FROM t",
    "MERGE INTO t USING u ON t.id = u.id WHEN MATCHED THEN DELETE",
    "CREATE TABLE x (a int)", "CREATE INDEX ON t (a)", "DROP TABLE t", "TRUNCATE t", "VACUUM t", "ANALYZE t",
    "LISTEN x", "NOTIFY x", "COPY t TO STDOUT", "COPY t FROM STDIN", "LOCK TABLE t", "DO $$ BEGIN END $$",
    "CALL p()", "PREPARE q AS SELECT 1", "EXECUTE q", "DEALLOCATE q", "DISCARD ALL", "DECLARE c CURSOR FOR SELECT 1",
    "FETCH 10 FROM c", "CLOSE c", "CHECKPOINT", "GRANT SELECT ON t TO u", "COMMENT ON TABLE t IS 'x'",
    "SHOW work_mem", "SHOW sluice.route", "SHOW \"Sluice.Route\"", "SHOW ALL",
    "EXPLAIN INSERT INTO t VALUES (nextval('s'))", "EXPLAIN ANALYZE INSERT INTO t VALUES (1)",
    "EXPLAIN (ANALYZE, VERBOSE) DELETE FROM t", "EXPLAIN (ANALYZE false) DELETE FROM t",
    "EXPLAIN (ANALYZE 0) DELETE FROM t", "EXPLAIN (ANALYZE 1) DELETE FROM t", "EXPLAIN (ANALYZE off) DELETE FROM t",
    "EXPLAIN (ANALYZE 'fal') DELETE FROM t", "EXPLAIN (ANALYZE on) DELETE FROM t",
    "EXPLAIN (ANALYZE true) DELETE FROM t",
    "EXPLAIN (ANALYZE 0.0) DELETE FROM t", "EXPLAIN (ANALYZE) SELECT 1", "EXPLAIN ANALYZE SELECT * FROM t",
    "EXPLAIN ANALYZE SELECT nextval('s')", "EXPLAIN ANALYZE SELECT * FROM t FOR UPDATE",
    "EXPLAIN (FORMAT JSON) SELECT 1",
    "EXPLAIN ANALYZE CREATE TABLE x AS SELECT 1", "EXPLAIN ANALYZE EXECUTE q", "EXPLAIN ANALYZE VALUES (bump())",
    "BEGIN", "BEGIN READ ONLY", "start transaction read write",
    "BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE",
    "START TRANSACTION ISOLATION LEVEL REPEATABLE READ NOT DEFERRABLE", "BEGIN ISOLATION LEVEL READ UNCOMMITTED",
    "SET TRANSACTION READ ONLY", "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE READ WRITE",
    "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", "COMMIT", "ROLLBACK", "END", "ABORT", "COMMIT AND CHAIN",
    "SAVEPOINT a", "RELEASE SAVEPOINT a", "ROLLBACK TO SAVEPOINT a", "PREPARE TRANSACTION 'x'", "COMMIT PREPARED 'x'",
    "ROLLBACK PREPARED 'x'", "SET sluice.route = 'primary'", "SET SESSION sluice.route TO replica",
    "set local sluice.route = 'AUTO'", "SET \"Sluice.Route\" = 'replica'", "RESET sluice.route",
    "SET sluice.route TO DEFAULT", "SET sluice.route = 'sideways'", "SET sluice.route = 'primary', 'replica'",
    "SET sluice.route = 1", "SET sluice.route = ''", "SET sluice.route = 'pri\"mary'", "SET search_path = x",
    "SET LOCAL work_mem = '1MB'", "RESET ALL", "RESET work_mem", "SET TIME ZONE 'UTC'",
    "VALUES (1, 'a'), (2, 'b')", "VALUES (bump())", "TABLE t", "TABLE v_bump",
    "SELECT * FROM t WHERE id IN (SELECT id FROM u WHERE u.v = 'x') AND EXISTS (SELECT 1 FROM w)",
    "SELECT * FROM t, LATERAL (SELECT bump()) s", "SELECT * FROM t JOIN LATERAL generate_series(1, t.n) g ON true",
    "SELECT (SELECT max(x) FROM u)[1], a[bump()] FROM t", "SELECT CASE WHEN a THEN bump() ELSE 0 END FROM t",
    "SELECT sum(x) OVER (ORDER BY y ROWS BETWEEN bump() PRECEDING AND CURRENT ROW) FROM t",
    "SELECT '/* SELECT nextval(1) */', $$ bump() $$", "SELECT 'a\"b\\\\c', E'\\n\\t', U&'\\00e9', 'é😀'",
    "SELECT \"/* sluice: replica */\" FROM t", "SELECT x FROM \"Ta\"\"ble\"", "SELECT ''", "SELECT \"\"\"\"",
    "SELECT 1 UNION SELECT bump()", "SELECT 1 INTERSECT SELECT 2 EXCEPT SELECT 3",
    "SELECT ROW(1, 2) = ROW(1, 2), (a).b, (t.c).d FROM t", "SELECT COALESCE(a, b), GREATEST(1, 2), current_date",
    "SELECT xmlelement(name x), json_agg(t) FROM t", "SELECT pg_catalog.lower('A')", "SELECT public.lower('a')",
    "SELECT 1 " + String(repeating: "+ 1 ", count: 300),
    "SELECT " + String(repeating: "(", count: 500) + "1"
        + String(repeating: ")", count: 500),
    "SELECT 1" + String(repeating: "+1", count: 8000), "SELECT 1" + String(repeating: " ", count: 16 * 1024),
    "SELECT " + (0..<2000).map { "a\($0)" }.joined(separator: ", ") + " FROM t",
]

/// Expression pieces that the randomized test combines into SELECTs, so that reasons compete for first place
/// at different depths and positions of the tree.
private let expressionPieces = [
    "1", "a", "t.b", "t.bump", "bump()", "nextval('s')", "lower(a)", "random()", "a === b", "a + b", "a > 1",
    "x::ticket", "x::int", "my_function(a)", "a BETWEEN 1 AND 2", "(SELECT 1 FROM v_bump)", "(SELECT b FROM u)",
    "EXISTS (SELECT 1 FROM u FOR UPDATE)", "count(*)", "CASE WHEN a THEN b END", "ARRAY[a, bump()]",
    "audit.log_access()", "'é\"\\\\'", "a <=> b", "coalesce(a, log_access())", "price(a)",
]

private let fromPieces = [
    "", " FROM t", " FROM v_bump", " FROM t, u", " FROM bump()", " FROM v_random r JOIN t ON r.a = t.a",
]
private let tailPieces = [
    "", " WHERE a = 1", " ORDER BY 1 USING >", " FOR SHARE", " GROUP BY a HAVING count(*) > 1", " LIMIT 1",
]

/// A small seeded generator, so that a failure names a reproducible statement.
private struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

private func randomExpression(_ generator: inout SplitMix64, depth: Int) -> String {
    let piece = expressionPieces.randomElement(using: &generator)!
    guard depth > 0, Bool.random(using: &generator) else { return piece }
    let inner = randomExpression(&generator, depth: depth - 1)
    switch Int.random(in: 0..<4, using: &generator) {
    case 0: return "greatest(\(piece), \(inner))"
    case 1: return "(\(piece)) + (\(inner))"
    case 2: return "(SELECT \(inner) WHERE \(piece) IS NOT NULL)"
    default: return "CASE WHEN \(piece) IS NULL THEN \(inner) END"
    }
}

@Suite("Statement classifier: the parse-tree reader classifies as the JSONValue tree walk did")
struct StatementClassifierEquivalenceTests {
    @Test("every statement of the corpus, under every catalog", arguments: equivalenceCorpus)
    func corpus(text: String) {
        for catalog in equivalenceCatalogs {
            #expect(classify(text, catalog: catalog) == referenceClass(text, catalog: catalog), "\(text)")
        }
    }

    @Test("randomly composed SELECTs, under every catalog")
    func randomized() {
        var generator = SplitMix64(state: 0x5EED)
        for _ in 0..<300 {
            let columns = (0..<Int.random(in: 1...3, using: &generator)).map { _ in
                randomExpression(&generator, depth: 3)
            }
            let from = fromPieces.randomElement(using: &generator)!
            let tail = tailPieces.randomElement(using: &generator)!
            var text = "SELECT " + columns.joined(separator: ", ") + from + tail
            if Int.random(in: 0..<5, using: &generator) == 0 { text = "WITH w AS (\(text)) SELECT * FROM w" }
            if Int.random(in: 0..<8, using: &generator) == 0 { text = "EXPLAIN ANALYZE " + text }
            for catalog in equivalenceCatalogs {
                #expect(classify(text, catalog: catalog) == referenceClass(text, catalog: catalog), "\(text)")
            }
        }
    }

    /// Wraps one statement node as libpg_query would, for the hand-written documents below.
    private static func document(_ statement: String) -> String {
        #"{"version":150001,"stmts":[{"stmt":"# + statement + "}]}"
    }

    private static let explainDelete = #"{"ExplainStmt":{"query":{"DeleteStmt":{}},"options":[{"DefElem":"#

    @Test(
        "documents libpg_query does not write but a reader must not misjudge",
        arguments: [
            document(#"{"SelectStmt":{"F\u0075ncCall":{"funcname":[{"String":{"sval":"bump"}}]}}}"#),
            document(#"{"SelectStmt":{"FuncCall":{"funcname":[{"String":{}},{"A_Star":{}}]}}}"#),
            document(#"{"SelectStmt":{"FuncCall":{"funcname":[{"String":{"sval":1}}]}}}"#),
            document(#"{"SelectStmt":{"FuncCall":{"funcname":{"String":{"sval":"bump"}}}}}"#),
            document(#"{"SelectStmt":{"lockingClause":[]}}"#),
            document(#"{"SelectStmt":{"lockingClause":{"LockingClause":{}}}}"#),
            document(#"{"SelectStmt":{"RangeVar":{"relname":"v_bump","relname":"t"}}}"#),
            document(#"{"SelectStmt":{"A_Expr":{"kind":"AEXPR_OP","name":[{"String":{"sval":"\u003c=\u003e"}}]}}}"#),
            document(#"{"SelectStmt":{},"x":1}"#), document("1"), document("{}"), document("[]"),
            #"{"stmts":[{}]}"#, #"{"stmts":{}}"#, #"{"stmts":[]}"#, #"{"stmts":[1,2]}"#, "[]", "{}",
            document(#"{"VariableSetStmt":{"kind":"VAR_SET_VALUE","name":"sluice.route","is_local":1}}"#),
            document(#"{"VariableSetStmt":{"kind":"VAR_SET_VALUE","name":"sluice.route","args":[]}}"#),
            document(explainDelete + #"{"defname":"analyze","arg":{"Integer":{"ival":null}}}}]}}"#),
            document(explainDelete + #"{"defname":"analyze","arg":{"Integer":{"ival":0.0}}}}]}}"#),
            document(explainDelete + #"{"defname":"analyze","arg":{"Boolean":{"boolval":1}}}}]}}"#),
            document(explainDelete + #"{"defname":"analyze","arg":{"Boolean":{}}}}]}}"#),
            document(
                #"{"TransactionStmt":{"kind":"TRANS_STMT_BEGIN","options":[{"DefElem":"#
                    + #"{"defname":"transaction_read_only","arg":{"A_Const":{"ival":{"ival":-0}}}}}]}}"#),
        ])
    func handWritten(json: String) {
        for catalog in equivalenceCatalogs {
            let expected: StatementClass =
                (try? JSONValue.parse(json)).map { ReferenceStatementAnalyzer(catalog: catalog).classify(tree: $0) }
                ?? .write(reason: "not parsable")
            let actual =
                withParseTree(json) { StatementAnalyzer(catalog: catalog).classify(tree: $0) }
                ?? .write(reason: "not parsable")
            #expect(actual == expected, "\(json)")
        }
    }
}
