/// A growable byte buffer with separate read and write positions, reused across messages so that the
/// forwarding path does not allocate once warm.
public struct ByteBuffer: Sendable {
    public private(set) var storage: [UInt8]
    public var readIndex: Int = 0
    public var writeIndex: Int = 0

    public init(capacity: Int = 0) {
        storage = [UInt8](repeating: 0, count: capacity)
    }

    public init(bytes: [UInt8]) {
        storage = bytes
        writeIndex = bytes.count
    }

    /// An empty buffer over memory another buffer gave up with `takeStorage()`.
    public init(recycling storage: [UInt8]) {
        self.storage = storage
    }

    /// Gives up the memory (to a pool of spare buffers) and leaves this buffer empty, holding nothing.
    public mutating func takeStorage() -> [UInt8] {
        defer {
            storage = []
            readIndex = 0
            writeIndex = 0
        }
        return storage
    }

    public var readableBytes: Int { writeIndex - readIndex }
    public var isEmpty: Bool { readIndex == writeIndex }
    public var capacity: Int { storage.count }
    public var readableView: ArraySlice<UInt8> { storage[readIndex..<writeIndex] }

    /// Drops everything and, when the buffer grew past `keepCapacity`, returns the memory.
    public mutating func clear(keepCapacity: Int = .max) {
        readIndex = 0
        writeIndex = 0
        if storage.count > keepCapacity { storage = [UInt8](repeating: 0, count: keepCapacity) }
    }

    /// Puts `bytes` in front of the readable bytes, to be read first.
    public mutating func prepend(_ bytes: [UInt8]) {
        if readIndex >= bytes.count {
            readIndex -= bytes.count
            storage.replaceSubrange(readIndex..<(readIndex + bytes.count), with: bytes)
        } else {
            let rest = Array(readableView)
            self = ByteBuffer(bytes: bytes + rest)
        }
    }

    /// Makes room for at least `count` more bytes at the write position, compacting before growing.
    public mutating func reserveWritable(_ count: Int) {
        if storage.count - writeIndex >= count { return }
        if readIndex > 0 {
            let live = readableBytes
            if live > 0 {
                storage.withUnsafeMutableBufferPointer { p in
                    let base = p.baseAddress!
                    (base).update(from: base + readIndex, count: live)
                }
            }
            readIndex = 0
            writeIndex = live
            if storage.count - writeIndex >= count { return }
        }
        var newCapacity = Swift.max(storage.count, 256)
        while newCapacity - writeIndex < count { newCapacity *= 2 }
        storage.append(contentsOf: repeatElement(0, count: newCapacity - storage.count))
    }

    /// Moves already-read bytes out of the way once they dominate the buffer.
    public mutating func compactIfNeeded() {
        if readIndex == writeIndex {
            readIndex = 0
            writeIndex = 0
        } else if readIndex > storage.count / 2 {
            reserveWritable(storage.count - readableBytes)
        }
    }

    /// Calls `body` with the writable tail; `body` returns how many bytes it filled.
    public mutating func withWritableTail<R>(
        minimum: Int, _ body: (UnsafeMutableRawBufferPointer) throws -> (filled: Int, result: R)
    ) rethrows -> R {
        reserveWritable(minimum)
        let start = writeIndex
        let end = storage.count
        let outcome = try storage.withUnsafeMutableBytes { raw in
            try body(UnsafeMutableRawBufferPointer(rebasing: raw[start..<end]))
        }
        writeIndex += outcome.filled
        return outcome.result
    }

    public func withReadableBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let start = readIndex
        let end = writeIndex
        return try storage.withUnsafeBytes { raw in try body(UnsafeRawBufferPointer(rebasing: raw[start..<end])) }
    }

    public mutating func moveReaderIndex(forwardBy count: Int) {
        precondition(count <= readableBytes, "moving the reader past the written bytes")
        readIndex += count
        if readIndex == writeIndex {
            readIndex = 0
            writeIndex = 0
        }
    }

    // MARK: Peeking without consuming

    public func byte(at offset: Int) -> UInt8 { storage[readIndex + offset] }

    public func uint32(at offset: Int) -> UInt32 {
        let i = readIndex + offset
        return UInt32(storage[i]) << 24 | UInt32(storage[i + 1]) << 16 | UInt32(storage[i + 2]) << 8
            | UInt32(storage[i + 3])
    }

    public func bytes(at offset: Int, count: Int) -> ArraySlice<UInt8> {
        storage[(readIndex + offset)..<(readIndex + offset + count)]
    }

    // MARK: Writing

    public mutating func write(byte: UInt8) {
        reserveWritable(1)
        storage[writeIndex] = byte
        writeIndex += 1
    }

    public mutating func write(uint16 value: UInt16) {
        reserveWritable(2)
        storage[writeIndex] = UInt8(value >> 8)
        storage[writeIndex + 1] = UInt8(value & 0xFF)
        writeIndex += 2
    }

    public mutating func write(int32 value: Int32) { write(uint32: UInt32(bitPattern: value)) }

    public mutating func write(uint32 value: UInt32) {
        reserveWritable(4)
        storage[writeIndex] = UInt8(value >> 24)
        storage[writeIndex + 1] = UInt8((value >> 16) & 0xFF)
        storage[writeIndex + 2] = UInt8((value >> 8) & 0xFF)
        storage[writeIndex + 3] = UInt8(value & 0xFF)
        writeIndex += 4
    }

    public mutating func write<C: Collection>(bytes: C) where C.Element == UInt8 {
        let n = bytes.count
        if n == 0 { return }
        reserveWritable(n)
        let start = writeIndex
        storage.withUnsafeMutableBufferPointer { p in
            _ = UnsafeMutableBufferPointer(rebasing: p[start..<(start + n)]).initialize(from: bytes)
        }
        writeIndex += n
    }

    /// Writes a NUL-terminated string, as the protocol's String type.
    public mutating func write(cString: String) {
        write(bytes: cString.utf8)
        write(byte: 0)
    }

    /// Overwrites four bytes already written, for length fields known only after the body.
    public mutating func set(uint32 value: UInt32, at absoluteIndex: Int) {
        storage[absoluteIndex] = UInt8(value >> 24)
        storage[absoluteIndex + 1] = UInt8((value >> 16) & 0xFF)
        storage[absoluteIndex + 2] = UInt8((value >> 8) & 0xFF)
        storage[absoluteIndex + 3] = UInt8(value & 0xFF)
    }
}
