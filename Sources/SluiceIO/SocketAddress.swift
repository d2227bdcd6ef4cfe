import CSluiceLinux
import Glibc

/// A socket address in the kernel's binary form (`sockaddr_in`, `sockaddr_in6` or `sockaddr_un`),
/// ready for `bind` or `connect`, and printable for logs.
public struct SocketAddress: Sendable, Equatable, CustomStringConvertible {
    public let family: Int32
    let bytes: [UInt8]

    init(family: Int32, bytes: [UInt8]) {
        self.family = family
        self.bytes = bytes
    }

    /// The longest path `sockaddr_un` holds, without its terminating zero.
    public static let maximumUnixPathLength = 107

    /// A Unix-domain socket at `path`. A leading `@` names Linux's abstract namespace, where no file
    /// is created: the `@` becomes the zero byte that marks such names.
    public static func unix(path: String) throws(SystemError) -> SocketAddress {
        var bytes = withUnsafeBytes(of: sa_family_t(AF_UNIX)) { Array($0) }
        let utf8 = Array(path.utf8)
        guard !utf8.isEmpty, utf8.count <= maximumUnixPathLength, !utf8.contains(0) else {
            throw SystemError("unix socket path \(path)", errno: ENAMETOOLONG)
        }
        if utf8.first == UInt8(ascii: "@") {
            bytes.append(0)
            bytes.append(contentsOf: utf8.dropFirst())
        } else {
            bytes.append(contentsOf: utf8)
            bytes.append(0)
        }
        return SocketAddress(family: AF_UNIX, bytes: bytes)
    }

    /// PostgreSQL's socket file for `port` in `directory`: `directory/.s.PGSQL.port`.
    public static func postgresSocket(directory: String, port: Int) throws(SystemError) -> SocketAddress {
        let trimmed = directory.count > 1 && directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        return try unix(path: "\(trimmed)/.s.PGSQL.\(port)")
    }

    public var isUnix: Bool { family == AF_UNIX }

    /// The same address with its TCP port replaced; Unix addresses are returned unchanged.
    public func withPort(_ port: Int) -> SocketAddress {
        guard family == AF_INET || family == AF_INET6, bytes.count >= 4 else { return self }
        var copy = bytes
        // sin_port and sin6_port both sit right after the 2-byte family, in network byte order.
        copy[2] = UInt8(truncatingIfNeeded: port >> 8)
        copy[3] = UInt8(truncatingIfNeeded: port)
        return SocketAddress(family: family, bytes: copy)
    }

    /// The TCP port, or 0 for a Unix address.
    public var port: Int {
        guard family == AF_INET || family == AF_INET6, bytes.count >= 4 else { return 0 }
        return Int(bytes[2]) << 8 | Int(bytes[3])
    }

    /// The numeric host (`10.0.0.1`, `::1`) or, for a Unix socket, its path (`@name` when abstract).
    public var host: String {
        if family == AF_UNIX {
            let path = bytes.dropFirst(MemoryLayout<sa_family_t>.size)
            if path.first == 0 { return "@" + String(decoding: path.dropFirst(), as: UTF8.self) }
            return String(decoding: path.prefix { $0 != 0 }, as: UTF8.self)
        }
        var text = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        let rc = withSockaddr { address, length in
            getnameinfo(address, length, &text, socklen_t(text.count), nil, 0, NI_NUMERICHOST)
        }
        return rc == 0 ? Socket.string(fromCChars: text) : "?"
    }

    public var description: String {
        if family == AF_UNIX { return "unix:\(host)" }
        return family == AF_INET6 ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// The form used in log lines about peers.
    public var peer: PeerAddress {
        PeerAddress(host: host, port: port, isUnix: family == AF_UNIX)
    }

    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        bytes.withUnsafeBytes { raw in
            body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count))
        }
    }

    /// Reads an address the kernel filled in (`accept`, `getpeername`).
    init(storage: inout sockaddr_storage, length: socklen_t) {
        let count = min(Int(length), MemoryLayout<sockaddr_storage>.size)
        family = Int32(storage.ss_family)
        bytes = withUnsafeBytes(of: &storage) { Array($0.prefix(count)) }
    }

    /// The addresses of `host` if it is a literal IPv4 or IPv6 address, answered without any lookup;
    /// nil for a name.
    public static func numeric(_ host: String, port: Int, passive: Bool = false) -> [SocketAddress]? {
        guard let addresses = try? lookup(host, port: port, numericOnly: true, passive: passive) else { return nil }
        return addresses.isEmpty ? nil : addresses
    }

    /// Resolves `host` with `getaddrinfo`. Blocks for names that need DNS: call it on the resolver
    /// thread, never on an event loop. A nil host with `passive` means every local address.
    public static func lookup(
        _ host: String?, port: Int, numericOnly: Bool = false, passive: Bool = false
    ) throws(ResolverError) -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        hints.ai_flags = (numericOnly ? AI_NUMERICHOST : 0) | (passive ? AI_PASSIVE : 0)
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &result)
        guard rc == 0, let first = result else {
            throw ResolverError(host: host ?? "*", message: String(cString: gai_strerror(rc)))
        }
        defer { freeaddrinfo(first) }
        var out: [SocketAddress] = []
        var node: UnsafeMutablePointer<addrinfo>? = first
        while let n = node {
            let raw = UnsafeRawBufferPointer(start: n.pointee.ai_addr, count: Int(n.pointee.ai_addrlen))
            let address = SocketAddress(family: n.pointee.ai_family, bytes: Array(raw))
            if !out.contains(address) { out.append(address) }
            node = n.pointee.ai_next
        }
        return out
    }
}

/// A host name that could not be resolved, with the resolver's own words for why.
public struct ResolverError: Error, Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var message: String

    public init(host: String, message: String) {
        self.host = host
        self.message = message
    }

    public var description: String { "could not resolve \(host): \(message)" }
}
