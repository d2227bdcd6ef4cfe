import Testing

@testable import SluiceCore

/// A catalog as the primary's query would return it for a database with a sequence-bumping function
/// `public.bump()`, a view over it, a view over that view, and a plain view.
let testCatalog = RoutingCatalog(
    rows: [
        ["f", "pg_catalog", "nextval", nil, nil],
        ["f", "pg_catalog", "random", nil, nil],
        ["f", "pg_catalog", "clock_timestamp", nil, nil],
        ["f", "pg_catalog", "setseed", nil, nil],
        ["f", "public", "bump", nil, nil],
        ["f", "audit", "log_access", nil, nil],
        ["o", "public", "===", nil, nil],
        ["c", "public", "ticket", nil, nil],
        ["r", "public", "v_bump", "public", "bump"],
        ["r", "public", "v_random", "pg_catalog", "random"],
        ["d", "public", "v_over", "public", "v_bump"],
        ["d", "public", "v_over_over", "public", "v_over"],
        ["d", "public", "v_plain_over", "public", "v_plain"],
        ["x", "future", "kind", nil, nil],
    ],
    safeFunctions: ["reporting.snapshot"],
    unsafeFunctions: ["stamp"])

func classify(_ text: String, catalog: RoutingCatalog = testCatalog) -> StatementClass {
    StatementClassifier(catalog: catalog).classify(text).statementClass
}

func isWrite(_ statementClass: StatementClass) -> Bool {
    if case .write = statementClass { return true }
    return false
}

@Suite("Statement classifier: reads and writes")
struct StatementClassifierReadWriteTests {
    @Test(
        "field cases that must run on the primary",
        arguments: [
            ("WITH u AS (UPDATE t SET v = v + 1 WHERE id = 1 RETURNING v) SELECT v FROM u", "UPDATE in WITH"),
            ("SELECT * FROM t FOR NO KEY UPDATE SKIP LOCKED", "FOR NO KEY UPDATE"),
            ("SELECT * FROM t FOR UPDATE", "FOR UPDATE"),
            ("SELECT * FROM t WHERE id IN (SELECT id FROM u FOR SHARE)", "FOR SHARE"),
            ("SELECT nextval('s')", "volatile function nextval"),
            ("SELECT bump()", "volatile function bump"),
            ("SELECT public.bump()", "volatile function bump"),
            ("SELECT x FROM t ORDER BY bump()", "volatile function bump"),
            ("SELECT * FROM bump()", "volatile function bump"),
            ("SELECT count(*) FILTER (WHERE bump() > 0) FROM t", "volatile function bump"),
            ("SELEC 1", "not parsable"),
            ("", "empty"),
            ("  -- nothing\n", "empty"),
            ("SELECT 1; INSERT INTO t VALUES (1)", "INSERT"),
            ("SELECT 1 INTO x", "SELECT INTO"),
            ("EXPLAIN ANALYZE INSERT INTO t VALUES (1)", "EXPLAIN ANALYZE INSERT"),
            ("EXPLAIN (ANALYZE, VERBOSE) DELETE FROM t", "EXPLAIN ANALYZE DELETE"),
            ("INSERT INTO t VALUES (1)", "INSERT"),
            ("UPDATE t SET v = 1", "UPDATE"),
            ("DELETE FROM t", "DELETE"),
            ("CREATE TABLE x (a int)", "CREATE"),
            ("SELECT * FROM t WHERE a === 1", "operator ==="),
            ("SELECT 1::ticket", "cast to ticket"),
            ("SELECT stamp(1)", "volatile function stamp"),
            ("SELECT setseed(0.5)", "volatile function setseed"),
            ("SELECT set_config('a.b', 'c', false)", "volatile function set_config"),
            ("SELECT pg_advisory_lock(1)", "volatile function pg_advisory_lock"),
            ("SELECT txid_current()", "volatile function txid_current"),
            ("SELECT * FROM v_bump", "relation v_bump calls a volatile function"),
            ("SELECT * FROM v_over_over", "relation v_over_over calls a volatile function"),
            ("SELECT t.bump FROM t", "volatile function bump"),
            (
                "WITH a AS (SELECT 1), b AS (WITH c AS (DELETE FROM t RETURNING 1) SELECT * FROM c) TABLE b",
                "DELETE in WITH"
            ),
            ("SET search_path = x", "SET"),
            ("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", "SET SESSION CHARACTERISTICS"),
            ("PREPARE TRANSACTION 'x'", "PREPARE TRANSACTION"),
            ("COMMIT PREPARED 'x'", "COMMIT PREPARED"),
            ("LISTEN x", "LISTEN"),
            ("SELECT 1; BEGIN", "multiple statements"),
            ("SELECT 1\u{0}", "not parsable"),
        ])
    func writes(text: String, reason: String) {
        #expect(classify(text) == .write(reason: reason))
    }

    @Test(
        "read-only statements may run on a replica",
        arguments: [
            "SELECT 1",
            "select a, b from t join u using (id) left join w on w.x = t.x where t.id > 3",
            "SELECT * FROM t WHERE id IN (SELECT id FROM u WHERE u.v = 'x') AND EXISTS (SELECT 1 FROM w)",
            "SELECT random()",
            "SELECT now(), clock_timestamp(), current_timestamp",
            "VALUES (1, 'a'), (2, 'b')",
            "TABLE t",
            "SHOW work_mem",
            "EXPLAIN INSERT INTO t VALUES (nextval('s'))",
            "EXPLAIN (ANALYZE false) DELETE FROM t",
            "EXPLAIN ANALYZE SELECT * FROM t",
            "SELECT abalance FROM pgbench_accounts WHERE aid = $1;",
            "SELECT * FROM v_plain_over",
            "SELECT * FROM v_random",
            "SELECT reporting.snapshot()",
            "SELECT lower(name), count(*) OVER (PARTITION BY x) FROM t GROUP BY 1 ORDER BY 2 USING >",
            "SELECT 1; SELECT 2",
            "SAVEPOINT a",
            "WITH a AS (SELECT 1) SELECT * FROM a",
            "SELECT '/* SELECT nextval(1) */', $$ bump() $$",
        ])
    func reads(text: String) {
        #expect(classify(text) == .read)
    }

    @Test("without a catalog, only reviewed built-ins are reads: an unknown function is a write")
    func noCatalog() {
        let empty = RoutingCatalog()
        #expect(classify("SELECT lower('A'), count(*), now(), random() FROM t", catalog: empty) == .read)
        #expect(classify("SELECT my_function(1)", catalog: empty) == .write(reason: "unreviewed function my_function"))
        #expect(classify("SELECT public.lower('a')", catalog: empty) == .write(reason: "unreviewed function lower"))
        #expect(classify("SELECT nextval('s')", catalog: empty) == .write(reason: "volatile function nextval"))
        #expect(classify("SELECT 1::int, 'a'::text, x::mytype", catalog: empty) == .write(reason: "cast to mytype"))
        #expect(classify("SELECT a <=> b", catalog: empty) == .write(reason: "operator <=>"))
        #expect(classify("SELECT * FROM t WHERE a BETWEEN 1 AND 2", catalog: empty) == .read)
    }

    @Test("unqualified names match every schema; qualified ones only their own")
    func qualification() {
        #expect(classify("SELECT log_access()") == .write(reason: "volatile function log_access"))
        #expect(classify("SELECT audit.log_access()") == .write(reason: "volatile function log_access"))
        #expect(classify("SELECT public.log_access()") == .read)
        #expect(classify("SELECT other.v_bump FROM other.v_bump") == .read)
    }

    @Test("operator-listed safe functions cannot excuse the always-unsafe built-ins")
    func alwaysUnsafe() {
        let catalog = RoutingCatalog(rows: [], safeFunctions: ["nextval", "mine"], unsafeFunctions: [])
        #expect(classify("SELECT nextval('s')", catalog: catalog) == .write(reason: "volatile function nextval"))
        #expect(classify("SELECT mine()", catalog: catalog) == .read)
    }

    @Test("a function the catalog does not know (created since it was read) is a write until the next read")
    func unknownFunctions() {
        let catalog = RoutingCatalog(
            rows: [
                ["k", "pg_catalog", "lower", nil, nil], ["k", "public", "price", nil, nil],
                ["f", "public", "bump", nil, nil],
            ],
            safeFunctions: [], unsafeFunctions: [])
        #expect(classify("SELECT lower('A'), price(1)", catalog: catalog) == .read)
        #expect(classify("SELECT random()", catalog: catalog) == .read)
        #expect(isWrite(classify("SELECT bump()", catalog: catalog)))
        #expect(isWrite(classify("SELECT brand_new(1)", catalog: catalog)))
        #expect(isWrite(classify("SELECT audit.price(1)", catalog: catalog)))
    }

    @Test("deeply nested or very long texts are writes, not crashes")
    func limits() {
        let deep = "SELECT 1" + String(repeating: "+1", count: 8000)
        #expect(isWrite(classify(deep)))
        let long = "SELECT 1" + String(repeating: " ", count: StatementClassifier.defaultMaximumTextLength)
        #expect(classify(long) == .write(reason: "too long to classify"))
        // Redundant parentheses add no tree levels: a read, however many.
        let parenthesized = "SELECT " + String(repeating: "(", count: 5000) + "1" + String(repeating: ")", count: 5000)
        #expect(classify(parenthesized) == .read)
    }
}
