import CSluiceLinux
import Glibc

/// A socket address printable for logs, with its port.
public struct PeerAddress: Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var isUnix: Bool = false

    public init(host: String, port: Int, isUnix: Bool = false) {
        self.host = host
        self.port = port
        self.isUnix = isUnix
    }

    public var description: String {
        isUnix ? "unix:\(host)" : (host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)")
    }
}

/// Creating, binding and connecting non-blocking TCP sockets.
public enum Socket {
    /// Opens a listening socket on `host:port`. `*` means every IPv4 address, `::` every IPv6 one.
    public static func listen(host: String, port: Int, backlog: Int32 = 4096) throws(SystemError) -> Int32 {
        let resolved = try resolve(host: host == "*" ? "0.0.0.0" : host, port: port, passive: true)
        guard let address = resolved.first else { throw SystemError("getaddrinfo", errno: EADDRNOTAVAIL) }
        let fd = socket(
            address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue),
            0)
        guard fd >= 0 else { throw SystemError("socket", errno: errno) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if address.family == AF_INET6 {
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        let bound = address.storage.withUnsafeBytes { raw in
            bind(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), address.length)
        }
        guard bound == 0 else {
            let e = errno
            Syscall.close(fd)
            throw SystemError("bind \(host):\(port)", errno: e)
        }
        guard Glibc.listen(fd, backlog) == 0 else {
            let e = errno
            Syscall.close(fd)
            throw SystemError("listen", errno: e)
        }
        return fd
    }

    /// Accepts one pending connection, non-blocking and close-on-exec. Nil when none is pending.
    public static func accept(_ listener: Int32) throws(SystemError) -> (fd: Int32, peer: PeerAddress)? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        while true {
            let fd = withUnsafeMutablePointer(to: &storage) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                    accept4(listener, sa, &length, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
                }
            }
            if fd >= 0 { return (fd, describe(&storage)) }
            let e = errno
            if e == EINTR || e == ECONNABORTED { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return nil }
            throw SystemError("accept4", errno: e)
        }
    }

    /// Starts a non-blocking connect. Completion is signalled by writability; check `pendingError` then.
    public static func connect(host: String, port: Int) throws(SystemError) -> Int32 {
        // TODO: getaddrinfo blocks the loop for host names that need DNS; literal addresses and
        // /etc/hosts entries answer at once. An asynchronous resolver is needed for cloud host names.
        let resolved = try resolve(host: host, port: port, passive: false)
        var lastError = SystemError("connect \(host):\(port)", errno: EHOSTUNREACH)
        for address in resolved {
            let fd = socket(
                address.family,
                Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw SystemError("socket", errno: errno) }
            setNoDelay(fd)
            let rc = address.storage.withUnsafeBytes { raw in
                Glibc.connect(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), address.length)
            }
            if rc == 0 || errno == EINPROGRESS { return fd }
            lastError = SystemError("connect \(host):\(port)", errno: errno)
            Syscall.close(fd)
        }
        throw lastError
    }

    /// The error a non-blocking connect ended with, or nil when it succeeded.
    public static func pendingError(_ fd: Int32) -> Int32? {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &value, &length) == 0 else { return errno }
        return value == 0 ? nil : value
    }

    /// Turns Nagle off: every protocol message is a complete request or reply and must leave at once.
    public static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    /// The local port a listening socket was bound to (useful with port 0).
    public static func localPort(_ fd: Int32) -> Int {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return describe(&storage).port
    }

    struct ResolvedAddress {
        var family: Int32
        var storage: [UInt8]
        var length: socklen_t
    }

    static func resolve(host: String, port: Int, passive: Bool) throws(SystemError) -> [ResolvedAddress] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        if passive { hints.ai_flags = AI_PASSIVE }
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &result)
        guard rc == 0, let first = result else { throw SystemError("getaddrinfo \(host)", errno: EHOSTUNREACH) }
        defer { freeaddrinfo(first) }
        var out: [ResolvedAddress] = []
        var node: UnsafeMutablePointer<addrinfo>? = first
        while let n = node {
            let bytes = [UInt8](UnsafeRawBufferPointer(start: n.pointee.ai_addr, count: Int(n.pointee.ai_addrlen)))
            out.append(ResolvedAddress(family: n.pointee.ai_family, storage: bytes, length: n.pointee.ai_addrlen))
            node = n.pointee.ai_next
        }
        return out
    }

    static func describe(_ storage: inout sockaddr_storage) -> PeerAddress {
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var service = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        let family = Int32(storage.ss_family)
        if family == AF_UNIX { return PeerAddress(host: "unix", port: 0, isUnix: true) }
        let length = socklen_t(family == AF_INET6 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)
        let rc = withUnsafePointer(to: &storage) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo(
                    $0, length, &host, socklen_t(host.count), &service, socklen_t(service.count),
                    NI_NUMERICHOST | NI_NUMERICSERV)
            }
        }
        guard rc == 0 else { return PeerAddress(host: "?", port: 0) }
        return PeerAddress(host: string(fromCChars: host), port: Int(string(fromCChars: service)) ?? 0)
    }

    static func string(fromCChars chars: [CChar]) -> String {
        String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
