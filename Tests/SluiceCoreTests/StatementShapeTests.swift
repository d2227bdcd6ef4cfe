import Testing

@testable import SluiceCore

@Suite("Statement shapes: literals masked, everything else kept")
struct StatementShapeTests {
    /// The shape as text, with the placeholder shown as `?`; nil when the text has none.
    static func shape(_ text: String) -> String? {
        var shape: [UInt8] = []
        let ok = Array(text.utf8).withUnsafeBytes { StatementShape.mask($0, into: &shape) }
        guard ok else { return nil }
        return String(decoding: shape.map { $0 == StatementShape.placeholder ? UInt8(ascii: "?") : $0 }, as: UTF8.self)
    }

    @Test("texts that differ only in constants share a shape")
    func constants() {
        #expect(
            Self.shape("SELECT abalance FROM pgbench_accounts WHERE aid = 12345;")
                == Self.shape(
                    "SELECT abalance FROM pgbench_accounts WHERE aid = 7;"))
        #expect(
            Self.shape("SELECT * FROM t WHERE a = 'x' AND b = 1.5e-3 AND c = .5")
                == "SELECT * FROM t WHERE a = ? AND b = ? AND c = ?")
        #expect(Self.shape("SELECT 'it''s', $$a'b$$, $q$x$q$") == "SELECT ?, ?, ?")
        #expect(
            Self.shape("SELECT $1, $12 FROM t1 JOIN s.t2 ON t1.id = t2.id")
                == "SELECT $1, $12 FROM t1 JOIN s.t2 ON t1.id = t2.id")
        #expect(Self.shape("SELECT a$1 FROM \"weird 'name' 1\"") == "SELECT a$1 FROM \"weird 'name' 1\"")
    }

    @Test("comments, hints and quoted identifiers are kept as they are")
    func commentsKept() {
        #expect(Self.shape("SELECT 1 /* sluice: primary */") == "SELECT ? /* sluice: primary */")
        #expect(Self.shape("SELECT 1 -- it's 2\n, 3") == "SELECT ? -- it's 2\n, ?")
        #expect(Self.shape("SELECT /* a /* nested 'x' */ b */ 1") == "SELECT /* a /* nested 'x' */ b */ ?")
        #expect(Self.shape("SELECT 1 /* sluice: primary */") != Self.shape("SELECT 1 /* sluice: replica */"))
        // Whitespace stays: string continuation across lines is one literal, on one line a syntax error.
        #expect(Self.shape("SELECT 'a'\n'b'") != Self.shape("SELECT 'a' 'b'"))
    }

    @Test("whatever lexes differently by setting or prefix has no shape")
    func refused() {
        for text in [
            "SELECT E'a\\nb'", "SELECT 'a\\'b'", "SELECT B'101'", "SELECT X'1F'", "SELECT N'x'", "SELECT U&'x'",
            "SELECT 123abc", "SELECT 1.2.3", "SELECT 1e", "SELECT x.5", "SELECT \u{01}",
            "SELECT 'unterminated", "SELECT /* unterminated", "SELECT $tag$ unterminated", "SELECT \"open",
            "SELECT INTERVAL'1 day'",
        ] {
            #expect(Self.shape(text) == nil, "\(text)")
        }
    }

    static func classify(_ classifier: StatementClassifier, _ text: String) -> Classification {
        Array(text.utf8).withUnsafeBytes { classifier.classify(utf8: $0) }
    }

    @Test("the classifier shares one answer among texts of one shape, and only for statements no literal can change")
    func sharedByShape() {
        let classifier = StatementClassifier(catalog: RoutingCatalog())
        #expect(Self.classify(classifier, "SELECT abs(1) FROM t WHERE id = 1").statementClass == .read)
        let misses = classifier.misses
        for id in 2...50 {
            #expect(Self.classify(classifier, "SELECT abs(\(id)) FROM t WHERE id = \(id)").statementClass == .read)
        }
        #expect(classifier.misses == misses, "texts of one shape were parsed again")
        // Literals that decide: each text is classified on its own.
        #expect(
            Self.classify(classifier, "SET sluice.route = 'primary'").statementClass
                == .setRoute(.primary, local: false))
        #expect(
            Self.classify(classifier, "SET sluice.route = 'replica'").statementClass
                == .setRoute(.replica, local: false))
        #expect(
            Self.classify(classifier, "SET sluice.route = 'sideways'").statementClass == .setRoute(nil, local: false))
        #expect(Self.classify(classifier, "EXPLAIN (ANALYZE 'off') DELETE FROM t").statementClass == .read)
        #expect(Self.classify(classifier, "EXPLAIN (ANALYZE 'on') DELETE FROM t").statementClass != .read)
        // Two statements: not shared, even when the first is a SELECT.
        #expect(StatementClassifier.isShareable(Array("SELECT 1; SELECT 2".utf8)) == false)
        #expect(StatementClassifier.isShareable(Array("/* x */ (SELECT 1);  ".utf8)))
        #expect(StatementClassifier.isShareable(Array("selectx 1".utf8)) == false)
        #expect(StatementClassifier.isShareable(Array("SHOW x".utf8)) == false)
    }

    @Test("a text pinned to the primary pins its shape")
    func pinnedShape() {
        let classifier = StatementClassifier(catalog: RoutingCatalog())
        #expect(Self.classify(classifier, "SELECT abs(1)").statementClass == .read)
        classifier.pinToPrimary("SELECT abs(1)")
        #expect(Self.classify(classifier, "SELECT abs(2)").statementClass != .read)
        classifier.replaceCatalog(RoutingCatalog())
        #expect(Self.classify(classifier, "SELECT abs(3)").statementClass != .read)
    }
}
