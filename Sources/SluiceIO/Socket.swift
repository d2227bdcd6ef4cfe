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

/// PgBouncer's TCP keepalive settings (`tcp_keepalive`, `tcp_keepidle`, `tcp_keepintvl`,
/// `tcp_keepcnt`, `tcp_user_timeout`). Zero leaves the kernel's value in place.
public struct TCPKeepalive: Sendable, Equatable {
    public var enabled: Bool
    /// Seconds of silence before the first probe (`TCP_KEEPIDLE`).
    public var idle: Int
    /// Seconds between probes (`TCP_KEEPINTVL`).
    public var interval: Int
    /// Unanswered probes before the connection is dropped (`TCP_KEEPCNT`).
    public var count: Int
    /// Milliseconds sent data may stay unacknowledged before the connection is dropped
    /// (`TCP_USER_TIMEOUT`).
    public var userTimeoutMS: Int

    public init(enabled: Bool = true, idle: Int = 0, interval: Int = 0, count: Int = 0, userTimeoutMS: Int = 0) {
        self.enabled = enabled
        self.idle = idle
        self.interval = interval
        self.count = count
        self.userTimeoutMS = userTimeoutMS
    }
}

/// Creating, binding and connecting non-blocking sockets, TCP and Unix-domain.
public enum Socket {
    private static var streamFlags: Int32 {
        Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
    }

    /// The addresses one `listen_addr` entry stands for. `*` is every IPv4 and every IPv6 address;
    /// names and literals go through `getaddrinfo` (at startup, before the loop runs, so a lookup may
    /// block).
    public static func listenAddresses(for entry: String, port: Int) throws(ResolverError) -> [SocketAddress] {
        try SocketAddress.lookup(entry == "*" ? nil : entry, port: port, passive: true)
    }

    /// Opens a listening socket on `address`. IPv6 sockets take IPv6 only, so `::` and `0.0.0.0` can
    /// both be bound on one port.
    public static func listen(on address: SocketAddress, backlog: Int32 = 4096) throws(SystemError) -> Int32 {
        let fd = socket(address.family, streamFlags, 0)
        guard fd >= 0 else { throw SystemError("socket", errno: errno) }
        var one: Int32 = 1
        if !address.isUnix {
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        if address.family == AF_INET6 {
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        let bound = address.withSockaddr { bind(fd, $0, $1) }
        guard bound == 0 else {
            let e = errno
            Syscall.close(fd)
            throw SystemError("bind \(address)", errno: e)
        }
        guard Glibc.listen(fd, backlog) == 0 else {
            let e = errno
            Syscall.close(fd)
            throw SystemError("listen \(address)", errno: e)
        }
        return fd
    }

    /// Opens the Unix-socket listener `directory/.s.PGSQL.port`, as PostgreSQL and PgBouncer name it,
    /// with the file's permissions and group set. A file left by an earlier run is removed first
    /// unless a `.lock` file beside it says another process still owns the port.
    public static func listenUnix(
        directory: String, port: Int, mode: Int, groupID: gid_t?, backlog: Int32 = 4096
    ) throws(SystemError) -> (fd: Int32, address: SocketAddress) {
        let address = try SocketAddress.postgresSocket(directory: directory, port: port)
        let path = address.host
        let isFile = !path.hasPrefix("@")
        if isFile {
            var info = stat()
            if lstat(path + ".lock", &info) == 0 {
                throw SystemError("unix socket \(path) is locked", errno: EADDRINUSE)
            }
            unlink(path)
        }
        let fd = try listen(on: address, backlog: backlog)
        if isFile {
            // The mode is what lets other local users in; failing to set it must not leave the socket
            // wider (or narrower) than configured.
            guard chmod(path, mode_t(mode)) == 0 else {
                let e = errno
                Syscall.close(fd)
                unlink(path)
                throw SystemError("chmod \(path)", errno: e)
            }
            if let groupID, chown(path, uid_t(bitPattern: -1), groupID) != 0 {
                let e = errno
                Syscall.close(fd)
                unlink(path)
                throw SystemError("chown \(path)", errno: e)
            }
        }
        return (fd, address)
    }

    /// The id of a group named in `unix_socket_group`, or of a numeric id.
    public static func groupID(named name: String) -> gid_t? {
        if let entry = getgrnam(name) { return entry.pointee.gr_gid }
        return UInt32(name).map { gid_t($0) }
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

    /// Starts a non-blocking connect to `address`. Completion is signalled by writability; check
    /// `pendingError` then. TCP sockets get `TCP_NODELAY` and `keepalive`.
    public static func connect(to address: SocketAddress, keepalive: TCPKeepalive?) throws(SystemError) -> Int32 {
        let fd = socket(address.family, streamFlags, 0)
        guard fd >= 0 else { throw SystemError("socket", errno: errno) }
        if !address.isUnix {
            setNoDelay(fd)
            if let keepalive { setKeepalive(fd, keepalive) }
        }
        var rc: Int32
        repeat {
            rc = address.withSockaddr { Glibc.connect(fd, $0, $1) }
        } while rc != 0 && errno == EINTR
        // TODO: a Unix-socket server whose listen queue is full answers EAGAIN rather than queueing the
        // attempt; that attempt then fails (and the next host is tried) instead of waiting.
        if rc == 0 || errno == EINPROGRESS { return fd }
        let e = errno
        Syscall.close(fd)
        throw SystemError("connect \(address)", errno: e)
    }

    /// The address a connected socket's peer has, to reach the same server again (cancel requests).
    public static func peerAddress(_ fd: Int32) -> SocketAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) }
        }
        guard rc == 0 else { return nil }
        return SocketAddress(storage: &storage, length: length)
    }

    /// The error a non-blocking connect ended with, or nil when it succeeded.
    public static func pendingError(_ fd: Int32) -> Int32? {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &value, &length) == 0 else { return errno }
        return value == 0 ? nil : value
    }

    /// Turns Nagle off: every protocol message is a complete request or reply and must leave at once.
    /// The first byte waiting on `fd`, left in place for the next read; nil when none has arrived.
    public static func peekFirstByte(_ fd: Int32) -> UInt8? {
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, Int32(MSG_PEEK) | Int32(MSG_DONTWAIT))
        return n == 1 ? byte : nil
    }

    public static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Applies keepalive settings to a TCP socket, so a peer that vanished without a FIN or RST (a
    /// cut link, a crashed host) is noticed. Failures are ignored: the options only shorten detection.
    public static func setKeepalive(_ fd: Int32, _ settings: TCPKeepalive) {
        func set(_ level: Int32, _ option: Int32, _ value: Int) {
            var v = Int32(clamping: value)
            setsockopt(fd, level, option, &v, socklen_t(MemoryLayout<Int32>.size))
        }
        let tcp = Int32(IPPROTO_TCP)
        set(SOL_SOCKET, SO_KEEPALIVE, settings.enabled ? 1 : 0)
        if settings.enabled {
            if settings.idle > 0 { set(tcp, TCP_KEEPIDLE, settings.idle) }
            if settings.interval > 0 { set(tcp, TCP_KEEPINTVL, settings.interval) }
            if settings.count > 0 { set(tcp, TCP_KEEPCNT, settings.count) }
        }
        if settings.userTimeoutMS > 0 { set(tcp, TCP_USER_TIMEOUT, settings.userTimeoutMS) }
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

    /// The local end of a connected socket, as `SHOW CLIENTS` and `SHOW SERVERS` list it.
    public static func localAddress(_ fd: Int32) -> PeerAddress {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return describe(&storage)
    }

    /// The remote end of a connected socket.
    public static func remoteAddress(_ fd: Int32) -> PeerAddress {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) }
        }
        return describe(&storage)
    }

    /// The user id of the process at the other end of a Unix socket (`SO_PEERCRED`); nil for other sockets.
    public static func peerUserID(_ fd: Int32) -> uid_t? {
        var credentials = sluice_ucred()
        var length = socklen_t(MemoryLayout<sluice_ucred>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0 else { return nil }
        return credentials.uid
    }

    /// The login name of user id `uid`, from the password database; nil when it has none.
    public static func userName(of uid: uid_t) -> String? {
        var entry = passwd()
        var found: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getpwuid_r(uid, &entry, &buffer, buffer.count, &found) == 0, found != nil, let name = entry.pw_name else {
            return nil
        }
        return String(cString: name)
    }

    static func describe(_ storage: inout sockaddr_storage) -> PeerAddress {
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var service = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        let family = Int32(storage.ss_family)
        if family == AF_UNIX { return PeerAddress(host: "unix", port: 0, isUnix: true) }
        if family == AF_INET {
            // Every TCP client is described once at accept: IPv4, by far the common case, is formatted
            // here directly rather than through getnameinfo and two scratch arrays.
            let (address, port) = withUnsafePointer(to: &storage) { p in
                p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                    (UInt32(bigEndian: $0.pointee.sin_addr.s_addr), UInt16(bigEndian: $0.pointee.sin_port))
                }
            }
            return PeerAddress(host: dottedQuad(address), port: Int(port))
        }
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

    /// "a.b.c.d" for an IPv4 address in host byte order. Built from at most 15 bytes, so the result is a
    /// small string stored inline: each client keeps its peer's address, and an interpolated string
    /// would put it on the heap.
    static func dottedQuad(_ address: UInt32) -> String {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 16) { buffer in
            var count = 0
            for shift in stride(from: 24, through: 0, by: -8) {
                let octet = Int((address >> UInt32(shift)) & 0xFF)
                if octet >= 100 {
                    buffer[count] = UInt8(48 + octet / 100)
                    count += 1
                }
                if octet >= 10 {
                    buffer[count] = UInt8(48 + octet / 10 % 10)
                    count += 1
                }
                buffer[count] = UInt8(48 + octet % 10)
                count += 1
                if shift > 0 {
                    buffer[count] = 0x2E
                    count += 1
                }
            }
            return String(decoding: UnsafeBufferPointer(rebasing: buffer[0..<count]), as: UTF8.self)
        }
    }

    static func string(fromCChars chars: [CChar]) -> String {
        String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension Socket {
    /// Removes a Unix socket's file once nobody listens on it any more.
    public static func removeFile(_ path: String) {
        _ = unlink(path)
    }
}
