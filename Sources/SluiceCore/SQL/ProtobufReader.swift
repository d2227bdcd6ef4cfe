/// Reads protobuf fields one at a time: just the wire format, no schema, for libpg_query's scanner output.
/// Malformed input sets `failed` and ends the iteration instead of reading out of bounds.
struct ProtobufReader {
    enum Value {
        case varint(UInt64)
        case bytes(Slice<UnsafeBufferPointer<UInt8>>)
        case fixed
    }

    var bytes: Slice<UnsafeBufferPointer<UInt8>>
    private(set) var failed = false

    init(bytes: Slice<UnsafeBufferPointer<UInt8>>) {
        self.bytes = bytes
    }

    mutating func nextField() -> (number: UInt64, value: Value)? {
        guard !failed, !bytes.isEmpty else { return nil }
        guard let key = readVarint() else { return fail() }
        switch key & 7 {
        case 0:
            guard let value = readVarint() else { return fail() }
            return (key >> 3, .varint(value))
        case 1, 5:
            let size = key & 7 == 1 ? 8 : 4
            guard bytes.count >= size else { return fail() }
            bytes = bytes.dropFirst(size)
            return (key >> 3, .fixed)
        case 2:
            guard let length = readVarint(), length <= UInt64(bytes.count) else { return fail() }
            let value = bytes.prefix(Int(length))
            bytes = bytes.dropFirst(Int(length))
            return (key >> 3, .bytes(value))
        default:
            return fail()
        }
    }

    private mutating func fail() -> (number: UInt64, value: Value)? {
        failed = true
        return nil
    }

    private mutating func readVarint() -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while let byte = bytes.first, shift < 64 {
            bytes = bytes.dropFirst()
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
        return nil
    }
}
