// Measures what StatementClassifier costs per statement: a cached lookup, and a full classification
// (parse, JSON read, tree walk) of a pgbench -S statement and of a 30-line reporting query, next to what
// libpg_query's parse alone costs for each. Run it with bench/classifier, which builds it in release mode.
import CPgQuery
import Glibc
import SluiceCore

/// A catalog of the size PostgreSQL 15's own query returns on a fresh database (~250 volatile functions),
/// plus a few user objects, so lookups hash into realistically sized tables.
func benchmarkCatalog() -> RoutingCatalog {
    var rows: [[String?]] = (0..<250).map { ["f", "pg_catalog", "volatile_\($0)", nil, nil] }
    rows += [
        ["f", "pg_catalog", "nextval", nil, nil], ["f", "public", "bump", nil, nil],
        ["r", "public", "v_bump", "public", "bump"], ["d", "public", "v_over", "public", "v_bump"],
    ]
    return RoutingCatalog(rows: rows, safeFunctions: [], unsafeFunctions: [])
}

let pgbenchSelect = "SELECT abalance FROM pgbench_accounts WHERE aid = $1;"

let reportingQuery = """
    WITH recent_orders AS (
        SELECT o.id, o.customer_id, o.created_at, o.total
        FROM orders o
        WHERE o.created_at >= date_trunc('month', now()) - interval '3 months'
          AND o.status IN ('paid', 'shipped', 'delivered')
    ),
    customer_totals AS (
        SELECT r.customer_id,
               count(*) AS order_count,
               sum(r.total) AS revenue,
               avg(r.total) AS average_order,
               max(r.created_at) AS last_order
        FROM recent_orders r
        GROUP BY r.customer_id
    )
    SELECT c.id,
           lower(c.email) AS email,
           coalesce(c.company, '-') AS company,
           t.order_count,
           round(t.revenue::numeric, 2) AS revenue,
           round(t.average_order::numeric, 2) AS average_order,
           to_char(t.last_order, 'YYYY-MM-DD') AS last_order,
           rank() OVER (ORDER BY t.revenue DESC) AS revenue_rank,
           CASE WHEN t.revenue > 10000 THEN 'gold' WHEN t.revenue > 1000 THEN 'silver' ELSE 'bronze' END AS tier
    FROM customers c
    JOIN customer_totals t ON t.customer_id = c.id
    LEFT JOIN regions g ON g.id = c.region_id
    WHERE c.deleted_at IS NULL
      AND (g.code = $1 OR $1 IS NULL)
      AND EXISTS (SELECT 1 FROM subscriptions s WHERE s.customer_id = c.id AND s.active)
    ORDER BY revenue_rank, c.id
    LIMIT 100 OFFSET $2
    """

/// Runs `body` `iterations` times after a warm-up and returns nanoseconds per call, best of five rounds
/// (the minimum is the figure least disturbed by other work on a shared machine).
func measure(iterations: Int, _ body: () -> Void) -> Double {
    for _ in 0..<(iterations / 10 + 1) { body() }
    let clock = ContinuousClock()
    var best = Double.infinity
    for _ in 0..<5 {
        let elapsed = clock.measure {
            for _ in 0..<iterations { body() }
        }
        let nanoseconds = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
        best = min(best, nanoseconds / Double(iterations))
    }
    return best
}

func report(_ name: String, _ nanoseconds: Double) {
    let rounded = (nanoseconds * 10).rounded() / 10
    print("\(name): \(rounded) ns/statement")
}

let catalog = benchmarkCatalog()
let classifier = StatementClassifier(catalog: catalog)
var sink = 0

guard classifier.classify(pgbenchSelect).statementClass == .read,
    classifier.classify(reportingQuery).statementClass == .read
else {
    print("classifier-bench: the benchmark statements no longer classify as reads")
    exit(1)
}

report(
    "cached lookup (pgbench -S text)",
    measure(iterations: 1_000_000) {
        if case .read = classifier.classify(pgbenchSelect).statementClass { sink &+= 1 }
    })

let bytes = Array(pgbenchSelect.utf8)
report(
    "cached lookup from message bytes (pgbench -S)",
    measure(iterations: 1_000_000) {
        bytes.withUnsafeBytes { if case .read = classifier.classify(utf8: $0).statementClass { sink &+= 1 } }
    })

// pgbench -S in the simple protocol: the constant differs every time, so the text is new and only its shape
// (the literal masked) is known.
let literalTexts = (0..<1024).map { Array("SELECT abalance FROM pgbench_accounts WHERE aid = \($0 * 7919 + 1);".utf8) }
var nextLiteral = 0
report(
    "new text, known shape (pgbench -S simple protocol, message bytes)",
    measure(iterations: 1_000_000) {
        literalTexts[nextLiteral & 1023].withUnsafeBytes {
            if case .read = classifier.classify(utf8: $0).statementClass { sink &+= 1 }
        }
        nextLiteral &+= 1
    })

// replaceCatalog empties the cache, so every classify below parses; emptying an empty cache is cheap next
// to a parse (see the first line for the size of a lookup).
/// libpg_query's parse of `text` to JSON, which every uncached classification starts with: the floor under
/// the figures that follow.
func parseOnly(_ text: String) -> Int {
    let result = pg_query_parse(text)
    defer { pg_query_free_parse_result(result) }
    return result.error == nil ? 1 : 0
}

report("pg_query_parse alone (pgbench -S)", measure(iterations: 20_000) { sink &+= parseOnly(pgbenchSelect) })
report(
    "pg_query_parse alone (30-line reporting query)",
    measure(iterations: 2_000) { sink &+= parseOnly(reportingQuery) })

report(
    "uncached classification (pgbench -S)",
    measure(iterations: 20_000) {
        classifier.replaceCatalog(catalog)
        if case .read = classifier.classify(pgbenchSelect).statementClass { sink &+= 1 }
    })

report(
    "uncached classification (30-line reporting query)",
    measure(iterations: 2_000) {
        classifier.replaceCatalog(catalog)
        if case .read = classifier.classify(reportingQuery).statementClass { sink &+= 1 }
    })

let hinted = "/* sluice: replica */ " + pgbenchSelect
report(
    "uncached classification with a hint comment (pgbench -S)",
    measure(iterations: 20_000) {
        classifier.replaceCatalog(catalog)
        if classifier.classify(hinted).hint == .replica { sink &+= 1 }
    })

precondition(sink > 0)
