import Testing

@testable import SluiceCore

@Suite("Statement classifier: transactions, sluice.route, hints, cache")
struct StatementClassifierControlTests {
    @Test("BEGIN and START TRANSACTION carry their modes as written")
    func begin() {
        #expect(classify("BEGIN") == .begin(TransactionModes()))
        #expect(classify("BEGIN READ ONLY") == .begin(TransactionModes(readOnly: true)))
        #expect(classify("start transaction read write") == .begin(TransactionModes(readOnly: false)))
        #expect(
            classify("BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE")
                == .begin(TransactionModes(readOnly: true, isolationLevel: "serializable", deferrable: true)))
        #expect(
            classify("START TRANSACTION ISOLATION LEVEL REPEATABLE READ NOT DEFERRABLE")
                == .begin(TransactionModes(isolationLevel: "repeatable read", deferrable: false)))
        #expect(classify("SET TRANSACTION READ ONLY") == .setTransaction(TransactionModes(readOnly: true)))
    }

    @Test("COMMIT, ROLLBACK, END and ABORT end the transaction; BEGIN mixed with other statements is a write")
    func end() {
        for text in ["COMMIT", "ROLLBACK", "END", "ABORT", "COMMIT AND CHAIN"] {
            #expect(classify(text) == .endTransaction)
        }
        #expect(classify("BEGIN; SELECT 1; COMMIT") == .write(reason: "multiple statements"))
        #expect(classify("ROLLBACK PREPARED 'x'") == .write(reason: "ROLLBACK PREPARED"))
    }

    @Test("SET and RESET of sluice.route are Sluice's own; an invalid value is reported as nil")
    func route() {
        #expect(classify("SET sluice.route = 'primary'") == .setRoute(.primary, local: false))
        #expect(classify("SET SESSION sluice.route TO replica") == .setRoute(.replica, local: false))
        #expect(classify("set local sluice.route = 'AUTO'") == .setRoute(.auto, local: true))
        #expect(classify("SET \"Sluice.Route\" = 'replica'") == .setRoute(.replica, local: false))
        #expect(classify("RESET sluice.route") == .setRoute(.auto, local: false))
        #expect(classify("SET sluice.route TO DEFAULT") == .setRoute(.auto, local: false))
        #expect(classify("SET sluice.route = 'sideways'") == .setRoute(nil, local: false))
        #expect(classify("SET sluice.route = 'primary', 'replica'") == .setRoute(nil, local: false))
        #expect(classify("SET sluice.route = 1") == .setRoute(nil, local: false))
        #expect(classify("SHOW sluice.route") == .showRoute)
        #expect(classify("SET sluice.route = 'primary'; SELECT 1") == .write(reason: "multiple statements"))
    }

    @Test("hints come from comments only, never from literals, quoted identifiers or dollar quotes")
    func hints() {
        let classifier = StatementClassifier(catalog: testCatalog)
        #expect(classifier.classify("/* sluice: replica */ SELECT 1").hint == .replica)
        #expect(classifier.classify("SELECT 1 -- Sluice:Primary").hint == .primary)
        #expect(classifier.classify("SELECT /* outer /* sluice: replica */ still */ 1").hint == nil)
        #expect(classifier.classify("SELECT 1 /*sluice:replica*/ /* sluice: primary */").hint == .primary)
        #expect(classifier.classify("SELECT '/* sluice: replica */'").hint == nil)
        #expect(classifier.classify("SELECT $x$ -- sluice: replica\n $x$").hint == nil)
        #expect(classifier.classify("SELECT \"/* sluice: replica */\" FROM t").hint == nil)
        #expect(classifier.classify("SELECT E'\\' /* sluice: replica */'").hint == nil)
        #expect(classifier.classify("SELECT 1 /* sluice: replica please */").hint == nil)
        #expect(classifier.classify("SELECT 1 /* unterminated sluice: replica").hint == nil)
        let write = classifier.classify("/* sluice: replica */ INSERT INTO t VALUES (1)")
        #expect(write == Classification(statementClass: .write(reason: "INSERT"), hint: .replica))
    }

    @Test("repeated texts are answered from the cache; a new catalog clears it")
    func cache() {
        let classifier = StatementClassifier(catalog: RoutingCatalog(), capacity: 4)
        #expect(classifier.classify("SELECT bump()").statementClass == .write(reason: "unreviewed function bump"))
        #expect(classifier.classify("SELECT bump()").statementClass == .write(reason: "unreviewed function bump"))
        #expect(classifier.hits == 1 && classifier.misses == 1)
        classifier.replaceCatalog(RoutingCatalog(rows: [], safeFunctions: [], unsafeFunctions: []))
        #expect(classifier.classify("SELECT bump()").statementClass == .read)
        #expect(classifier.misses == 2)
        for index in 0..<10 { _ = classifier.classify("SELECT \(index)") }
        #expect(classifier.classify("SELECT 9").statementClass == .read)
        #expect(classifier.hits == 2)
        _ = classifier.classify("SELECT 0")
        #expect(classifier.misses == 13)
    }

    @Test("a text a replica refused stays on the primary, across eviction and catalog reloads")
    func pinned() {
        let classifier = StatementClassifier(catalog: testCatalog, capacity: 2)
        let text = "/* sluice: replica */ SELECT mislabelled()"
        #expect(classifier.classify(text).statementClass == .read)
        classifier.pinToPrimary(text)
        let refused = Classification(statementClass: .write(reason: "refused by a replica"))
        #expect(classifier.classify(text) == refused)
        for index in 0..<10 { _ = classifier.classify("SELECT \(index)") }
        #expect(classifier.classify(text) == refused)
        classifier.replaceCatalog(testCatalog)
        #expect(classifier.classify(text) == refused)
    }

    @Test("the byte-buffer entry point agrees with the string one")
    func bytes() {
        let classifier = StatementClassifier(catalog: testCatalog)
        let bytes = Array("SELECT abalance FROM pgbench_accounts WHERE aid = $1;".utf8)
        let result = bytes.withUnsafeBytes { classifier.classify(utf8: $0) }
        #expect(result.statementClass == .read)
        #expect(classifier.classify("SELECT abalance FROM pgbench_accounts WHERE aid = $1;") == result)
        #expect(classifier.hits == 1)
    }

    @Test("statement names for logs")
    func names() {
        #expect(StatementAnalyzer.statementName("InsertStmt") == "INSERT")
        #expect(StatementAnalyzer.statementName("CreateTableAsStmt") == "CREATE TABLE AS")
    }
}
