extension ParseTree {
    /// One key or value of a tree being analyzed: a token's index, with the tokens and the JSON text they point
    /// into. Lookups mirror `JSONValue`'s (`node["key"]`, `stringValue`), so the analyzer reads as a tree walk,
    /// but nothing is decoded until asked for. Valid only inside the closure given to `ParseTree.read`.
    struct Node {
        let tokens: UnsafeBufferPointer<Token>
        let text: UnsafeBufferPointer<UInt8>
        let index: Int

        var kind: Kind { tokens[index].kind }

        /// The index of the first token after this value and everything inside it.
        var end: Int {
            switch kind {
            case .object, .array: Int(tokens[index].end)
            case .key, .string, .number, .true, .false, .null: index + 1
            }
        }

        /// The value of `key` when this is an object holding it (the first, if the key repeats); otherwise nil.
        subscript(key: StaticString) -> Node? {
            for (name, value) in members where name.equals(key) { return value }
            return nil
        }

        /// The members of an object in document order; none for any other value.
        var members: Members { Members(node: self) }

        /// The elements of an array in document order; none for any other value.
        var elements: Elements { Elements(node: self) }

        /// Every member of every object inside this value, at any depth, in document order: the tree's
        /// pre-order, since a key's token comes right before its value's and everything inside that value.
        var allMembers: AllMembers { AllMembers(node: self) }

        /// The text of a string or of a key, decoded; nil for any other value.
        var stringValue: String? {
            let token = tokens[index]
            guard token.kind == .string || token.kind == .key else { return nil }
            guard token.escaped else {
                // Checked as valid UTF-8 when the tree was read.
                return String(decoding: UnsafeBufferPointer(rebasing: text[rawRange]), as: UTF8.self)
            }
            var reader = JSONReader(bytes: text)
            reader.offset = Int(token.start) - 1
            return try? reader.readString()
        }

        /// The length in UTF-8 bytes of a string's or key's decoded text; 0 for any other value.
        var utf8Count: Int {
            let token = tokens[index]
            guard token.kind == .string || token.kind == .key else { return 0 }
            return token.escaped ? stringValue?.utf8.count ?? 0 : rawRange.count
        }

        /// Whether this is a string or key whose decoded text is `expected`, compared without building a String.
        func equals(_ expected: StaticString) -> Bool {
            let token = tokens[index]
            guard token.kind == .string || token.kind == .key else { return false }
            if token.escaped { return stringValue == expected.description }
            // Keys and names are a few bytes long: a loop the compiler can inline beats a call to memcmp.
            let count = rawRange.count
            guard count == expected.utf8CodeUnitCount else { return false }
            let start = Int(token.start)
            for offset in 0..<count where text[start + offset] != expected.utf8Start[offset] { return false }
            return true
        }

        /// Whether this is `true`.
        var isTrue: Bool { kind == .true }

        /// Whether this is a number equal to the integer zero (`0` or `-0`; `0.0` is a floating-point number,
        /// as it is for `JSONValue`).
        var isIntegerZero: Bool {
            guard kind == .number else { return false }
            let digits = UnsafeBufferPointer(rebasing: text[rawRange])
            return digits.elementsEqual("0".utf8) || digits.elementsEqual("-0".utf8)
        }

        /// The bytes of a key, string or number in the text, escapes undecoded.
        private var rawRange: Range<Int> { Int(tokens[index].start)..<Int(tokens[index].end) }

        fileprivate func node(at index: Int) -> Node {
            Node(tokens: tokens, text: text, index: index)
        }
    }

    /// An object's members. The first token inside an object is a key; each value is followed by the next key.
    struct Members: Sequence, IteratorProtocol {
        private let node: Node
        private var position: Int
        private let end: Int

        fileprivate init(node: Node) {
            self.node = node
            position = node.index + 1
            end = node.kind == .object ? node.end : position
        }

        mutating func next() -> (key: Node, value: Node)? {
            guard position < end else { return nil }
            let value = node.node(at: position + 1)
            defer { position = value.end }
            return (node.node(at: position), value)
        }
    }

    /// An array's elements.
    struct Elements: Sequence, IteratorProtocol {
        private let node: Node
        private var position: Int
        private let end: Int

        fileprivate init(node: Node) {
            self.node = node
            position = node.index + 1
            end = node.kind == .array ? node.end : position
        }

        mutating func next() -> Node? {
            guard position < end else { return nil }
            let element = node.node(at: position)
            position = element.end
            return element
        }
    }

    /// The members at every depth inside a value, found by scanning its tokens for keys.
    struct AllMembers: Sequence, IteratorProtocol {
        private let node: Node
        private var position: Int
        private let end: Int

        fileprivate init(node: Node) {
            self.node = node
            position = node.index
            end = node.end
        }

        mutating func next() -> (key: Node, value: Node)? {
            while position < end {
                defer { position += 1 }
                if node.tokens[position].kind == .key {
                    return (node.node(at: position), node.node(at: position + 1))
                }
            }
            return nil
        }
    }
}
