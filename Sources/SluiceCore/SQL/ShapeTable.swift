/// Classifications by statement shape (`StatementShape`), looked up straight from the shape's bytes: a hit
/// costs a hash of the bytes and one comparison, and allocates nothing, which matters because with
/// simple-protocol clients that inline their constants nearly every routed statement is found here.
///
/// Open addressing with linear probing over a power-of-two table, at most half full. When full, it starts
/// over empty: shapes are few (one per statement an application has), so a full table means something is
/// generating shapes and keeping old ones buys little.
struct ShapeTable {
    private var keys: [[UInt8]]
    private var values: [Classification?]
    private var hashes: [Int]
    private(set) var count = 0
    private let limit: Int

    /// Holds up to `capacity` shapes (rounded up to a power of two, doubled for the load factor).
    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size *= 2 }
        keys = Array(repeating: [], count: size)
        values = Array(repeating: nil, count: size)
        hashes = Array(repeating: 0, count: size)
        limit = size / 2
    }

    func value(for shape: UnsafeRawBufferPointer) -> Classification? {
        let hash = Self.hash(shape)
        var slot = hash & (values.count - 1)
        while values[slot] != nil {
            if hashes[slot] == hash && keys[slot].elementsEqual(shape) { return values[slot] }
            slot = (slot + 1) & (values.count - 1)
        }
        return nil
    }

    mutating func set(_ value: Classification, for shape: UnsafeRawBufferPointer) {
        if count >= limit { removeAll() }
        let hash = Self.hash(shape)
        var slot = hash & (values.count - 1)
        while values[slot] != nil {
            if hashes[slot] == hash && keys[slot].elementsEqual(shape) {
                values[slot] = value
                return
            }
            slot = (slot + 1) & (values.count - 1)
        }
        keys[slot] = Array(shape)
        values[slot] = value
        hashes[slot] = hash
        count += 1
    }

    mutating func removeAll() {
        guard count > 0 else { return }
        for index in values.indices where values[index] != nil {
            values[index] = nil
            keys[index] = []
        }
        count = 0
    }

    private static func hash(_ bytes: UnsafeRawBufferPointer) -> Int {
        var hasher = Hasher()
        hasher.combine(bytes: bytes)
        return hasher.finalize()
    }
}
