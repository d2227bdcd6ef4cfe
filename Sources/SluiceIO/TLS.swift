import COpenSSL
import Glibc

/// A TLS failure: OpenSSL's reason, or what Sluice found wrong with the peer.
public struct TLSError: Error, CustomStringConvertible, Sendable {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }

    /// The oldest entry of this thread's OpenSSL error queue, after `what`; the queue is left empty.
    static func fromQueue(_ what: String) -> TLSError {
        let code = ERR_get_error()
        ERR_clear_error()
        guard code != 0 else { return TLSError(what) }
        var text = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &text, text.count)
        let reason = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return TLSError("\(what): \(reason)")
    }
}

/// What a TLS context is built from: PgBouncer's `client_tls_*` or `server_tls_*` keys, already checked.
public struct TLSContextOptions: Sendable, Equatable {
    /// Sluice's certificate chain and key (PEM). Required on the accepting side; optional when
    /// connecting, where it is the client certificate PostgreSQL may ask for.
    public var certificateFile: String = ""
    public var keyFile: String = ""
    /// Certificates the peer's certificate must chain to; empty means the system's store (connecting side)
    /// or that no client certificate is asked for (accepting side).
    public var caFile: String = ""
    /// Peer certificate verification: the peer must present one that chains to `caFile`.
    public var verifyPeer = false
    /// Lowest and highest protocol versions, as TLS writes them (0x0303 is TLS 1.2).
    public var minimumVersion: Int32 = 0x0303
    public var maximumVersion: Int32 = 0x0304
    /// OpenSSL cipher list for TLS 1.2 and below; empty keeps OpenSSL's default.
    public var ciphers: String = ""
    /// OpenSSL cipher-suite list for TLS 1.3; empty keeps OpenSSL's default.
    public var tls13Ciphers: String = ""
    /// Key-exchange groups (`client_tls_ecdhcurve`); empty keeps OpenSSL's default.
    public var groups: String = ""
    /// Finite-field DHE with parameters OpenSSL picks to match the certificate (TLS 1.2 and below).
    public var automaticDH = false

    public init() {}
}

/// An OpenSSL `SSL_CTX` for one direction: accepting clients or connecting to servers. Immutable once
/// built and shared by every loop (OpenSSL allows creating sessions from one context on many threads).
/// A reload builds a new one; connections keep the one they started with.
public final class TLSContext: @unchecked Sendable {
    public enum Role: Sendable {
        case accepting
        case connecting
    }

    let context: OpaquePointer
    public let role: Role
    public let options: TLSContextOptions

    /// ALPN protocol list in wire form: one length-prefixed name, PostgreSQL's.
    static let postgresALPN: [UInt8] = [10] + Array("postgresql".utf8)

    public init(role: Role, options: TLSContextOptions) throws(TLSError) {
        ERR_clear_error()
        let method = role == .accepting ? TLS_server_method() : TLS_client_method()
        guard let context = SSL_CTX_new(method) else { throw TLSError.fromQueue("SSL_CTX_new") }
        self.context = context
        self.role = role
        self.options = options
        try configure()
    }

    deinit { SSL_CTX_free(context) }

    private func configure() throws(TLSError) {
        // Renegotiation would let a peer make a read need a write (and the reverse) after the handshake;
        // PostgreSQL refuses it too. Compression is off for CRIME's sake (OpenSSL 3's default, kept explicit).
        _ = SSL_CTX_set_options(context, sluice_SSL_OP_NO_RENEGOTIATION() | sluice_SSL_OP_NO_COMPRESSION())
        // Partial writes and a moving buffer suit the connection's output buffer, which a retried write
        // finds at a new address with more bytes behind it. Released buffers keep an idle TLS connection
        // from holding ~34 KiB of OpenSSL's record buffers.
        _ = sluice_SSL_CTX_set_mode(
            context,
            Int(SSL_MODE_ENABLE_PARTIAL_WRITE) | Int(SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER)
                | Int(SSL_MODE_RELEASE_BUFFERS))
        guard sluice_SSL_CTX_set_min_proto_version(context, options.minimumVersion) == 1,
            sluice_SSL_CTX_set_max_proto_version(context, options.maximumVersion) == 1
        else { throw TLSError.fromQueue("TLS protocol versions") }
        if !options.ciphers.isEmpty, SSL_CTX_set_cipher_list(context, options.ciphers) != 1 {
            throw TLSError.fromQueue("cipher list \(options.ciphers)")
        }
        if !options.tls13Ciphers.isEmpty, SSL_CTX_set_ciphersuites(context, options.tls13Ciphers) != 1 {
            throw TLSError.fromQueue("TLS 1.3 cipher suites \(options.tls13Ciphers)")
        }
        if !options.groups.isEmpty, sluice_SSL_CTX_set1_groups_list(context, options.groups) != 1 {
            throw TLSError.fromQueue("key-exchange groups \(options.groups)")
        }
        // A key protected by a passphrase must fail to load, not make OpenSSL prompt on a terminal and block
        // the loop: Sluice has no passphrase to give.
        SSL_CTX_set_default_passwd_cb(context, refusePassphrase)
        if !options.certificateFile.isEmpty {
            guard SSL_CTX_use_certificate_chain_file(context, options.certificateFile) == 1 else {
                throw TLSError.fromQueue("certificate \(options.certificateFile)")
            }
            guard SSL_CTX_use_PrivateKey_file(context, options.keyFile, SSL_FILETYPE_PEM) == 1 else {
                throw TLSError.fromQueue("key \(options.keyFile) with certificate \(options.certificateFile)")
            }
            guard SSL_CTX_check_private_key(context) == 1 else {
                throw TLSError.fromQueue("key \(options.keyFile) does not match \(options.certificateFile)")
            }
        } else if role == .accepting {
            throw TLSError("a certificate and key are needed to accept TLS")
        }
        switch role {
        case .accepting:
            try configureAccepting()
        case .connecting:
            try configureConnecting()
        }
    }

    private func configureAccepting() throws(TLSError) {
        // Clients are not offered resumption: tickets would be one more secret to rotate, and a
        // pooler's clients reconnect rarely.
        // TODO: clients that do reconnect per request pay a full handshake each time (docs/performance.md,
        // TLS storms); a session cache with rotated ticket keys would spare them most of it.
        _ = SSL_CTX_set_num_tickets(context, 0)
        _ = sluice_SSL_CTX_set_session_cache_mode(context, Int(SSL_SESS_CACHE_OFF))
        SSL_CTX_set_alpn_select_cb(context, selectPostgresALPN, nil)
        if options.automaticDH { _ = sluice_SSL_CTX_set_dh_auto(context, 1) }
        if !options.caFile.isEmpty {
            guard SSL_CTX_load_verify_locations(context, options.caFile, nil) == 1 else {
                throw TLSError.fromQueue("CA file \(options.caFile)")
            }
            // A client certificate is asked for whenever a CA is configured (for `cert` logins), and must
            // be there and valid when the mode says so.
            let mode = options.verifyPeer ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT : SSL_VERIFY_PEER
            SSL_CTX_set_verify(context, mode, nil)
        } else if options.verifyPeer {
            throw TLSError("verifying client certificates needs a CA file")
        }
    }

    private func configureConnecting() throws(TLSError) {
        let status = Self.postgresALPN.withUnsafeBufferPointer {
            SSL_CTX_set_alpn_protos(context, $0.baseAddress, UInt32($0.count))
        }
        guard status == 0 else { throw TLSError.fromQueue("ALPN") }
        guard options.verifyPeer else { return SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil) }
        if options.caFile.isEmpty {
            guard SSL_CTX_set_default_verify_paths(context) == 1 else {
                throw TLSError.fromQueue("system certificate store")
            }
        } else {
            guard SSL_CTX_load_verify_locations(context, options.caFile, nil) == 1 else {
                throw TLSError.fromQueue("CA file \(options.caFile)")
            }
        }
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
    }

    /// A TLS session over the connected socket `fd`, not yet shaken hands. `serverName` is sent as SNI
    /// (host names only) and, when `verifyName` is set, must match the server's certificate.
    public func makeTransport(fd: Int32, serverName: String? = nil, verifyName: Bool = false) throws(TLSError)
        -> TLSTransport
    {
        ERR_clear_error()
        guard let ssl = SSL_new(context) else { throw TLSError.fromQueue("SSL_new") }
        guard SSL_set_fd(ssl, fd) == 1 else {
            SSL_free(ssl)
            throw TLSError.fromQueue("SSL_set_fd")
        }
        switch role {
        case .accepting:
            SSL_set_accept_state(ssl)
        case .connecting:
            SSL_set_connect_state(ssl)
            if let serverName, !serverName.isEmpty {
                let isAddress = SocketAddress.numeric(serverName, port: 0) != nil
                if !isAddress { _ = sluice_SSL_set_tlsext_host_name(ssl, serverName) }
                if verifyName {
                    let param = SSL_get0_param(ssl)
                    let ok =
                        isAddress
                        ? X509_VERIFY_PARAM_set1_ip_asc(param, serverName) == 1
                        : SSL_set1_host(ssl, serverName) == 1
                    guard ok else {
                        SSL_free(ssl)
                        throw TLSError.fromQueue("server name \(serverName)")
                    }
                }
            }
        }
        return TLSTransport(fd: fd, ssl: ssl)
    }
}

private func refusePassphrase(
    _ buffer: UnsafeMutablePointer<CChar>?, _ size: Int32, _ writing: Int32, _ argument: UnsafeMutableRawPointer?
) -> Int32 {
    0
}

/// Picks `postgresql` when the client offers it. A client that offers ALPN without it is refused, as
/// PostgreSQL 17 does; one that offers none goes on (libpq before 17 sends none).
private func selectPostgresALPN(
    _ ssl: OpaquePointer?, _ out: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
    _ outLength: UnsafeMutablePointer<UInt8>?, _ offered: UnsafePointer<UInt8>?, _ offeredLength: UInt32,
    _ argument: UnsafeMutableRawPointer?
) -> Int32 {
    guard let offered, let out, let outLength else { return SSL_TLSEXT_ERR_ALERT_FATAL }
    var index = 0
    let count = Int(offeredLength)
    while index < count {
        let length = Int(offered[index])
        let start = index + 1
        guard start + length <= count else { break }
        if length == 10, UnsafeBufferPointer(start: offered + start, count: 10).elementsEqual("postgresql".utf8) {
            out.pointee = offered + start
            outLength.pointee = 10
            return SSL_TLSEXT_ERR_OK
        }
        index = start + length
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL
}

/// A TLS session on a non-blocking socket, under the protocol framer like a plain socket.
///
/// Readiness is tracked by the connection from edge-triggered events, which assumes that a short read
/// or write means the socket itself said "would block". OpenSSL returns one record per call, so `read`
/// and `write` loop until the buffer is full or done, or OpenSSL needs the socket again: then a short
/// result means the same as it does for a plain socket.
public final class TLSTransport: Transport {
    public let fd: Int32
    private let ssl: OpaquePointer
    private var closed = false

    init(fd: Int32, ssl: OpaquePointer) {
        self.fd = fd
        self.ssl = ssl
    }

    deinit { close() }

    public enum HandshakeProgress: Equatable {
        case done
        /// OpenSSL waits for the socket; call again on its next event.
        case waiting
    }

    /// Moves the handshake on as far as the socket allows.
    public func handshake() throws(TLSError) -> HandshakeProgress {
        ERR_clear_error()
        let result = SSL_do_handshake(ssl)
        if result == 1 { return .done }
        let error = SSL_get_error(ssl, result)
        switch error {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return .waiting
        case SSL_ERROR_SYSCALL where ERR_peek_error() == 0:
            let code = errno
            throw TLSError(
                code == 0
                    ? "TLS handshake: the peer closed the connection"
                    : "TLS handshake: \(SystemError("read", errno: code))")
        default:
            let verify = SSL_get_verify_result(ssl)
            if verify != Int(X509_V_OK) {
                ERR_clear_error()
                let reason = String(cString: X509_verify_cert_error_string(Int(verify)))
                throw TLSError("certificate verification failed: \(reason)")
            }
            throw TLSError.fromQueue("TLS handshake")
        }
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> IOResult {
        var filled = 0
        ERR_clear_error()
        while filled < buffer.count {
            var n = 0
            let result = SSL_read_ex(ssl, buffer.baseAddress! + filled, buffer.count - filled, &n)
            guard result == 1 else { return try stopped(after: filled, call: "SSL_read") }
            filled += n
        }
        return .bytes(filled)
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws(SystemError) -> IOResult {
        var written = 0
        ERR_clear_error()
        while written < bytes.count {
            var n = 0
            let result = SSL_write_ex(ssl, bytes.baseAddress! + written, bytes.count - written, &n)
            guard result == 1 else { return try stopped(after: written, call: "SSL_write") }
            written += n
        }
        return .bytes(written)
    }

    /// What a read or write that stopped after `done` bytes returns: the bytes so far, or else why it stopped.
    /// OpenSSL waiting for the socket is `wouldBlock` whichever direction it needs.
    private func stopped(after done: Int, call: String) throws(SystemError) -> IOResult {
        switch SSL_get_error(ssl, 0) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            // TODO: a read that needs a write (a TLS 1.3 key update answered into a full socket) waits for the
            // next input event instead of the socket becoming writable.
            return done > 0 ? .bytes(done) : .wouldBlock
        case SSL_ERROR_ZERO_RETURN:
            return done > 0 ? .bytes(done) : .closed
        case SSL_ERROR_SYSCALL where ERR_peek_error() == 0:
            // The peer closed the socket without close_notify, as many clients do.
            ERR_clear_error()
            return done > 0 ? .bytes(done) : .closed
        default:
            if done > 0 { return .bytes(done) }
            throw SystemError(call, detail: TLSError.fromQueue("TLS \(call)").description)
        }
    }

    /// Sends close_notify if the socket takes it at once, then frees the session and closes the socket.
    public func close() {
        guard !closed else { return }
        closed = true
        ERR_clear_error()
        if SSL_is_init_finished(ssl) == 1 { _ = SSL_shutdown(ssl) }
        ERR_clear_error()
        SSL_free(ssl)
        Syscall.close(fd)
    }

    /// `TLSv1.3` and the like.
    public var protocolVersion: String { String(cString: SSL_get_version(ssl)) }

    public var cipher: String {
        guard let cipher = SSL_get_current_cipher(ssl) else { return "" }
        return String(cString: SSL_CIPHER_get_name(cipher))
    }

    /// The ALPN protocol both sides agreed on, if any.
    public var negotiatedALPN: String? {
        var data: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &data, &length)
        guard let data, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(length)), as: UTF8.self)
    }

    /// The common name of the peer's certificate, when it sent one that passed verification.
    public var verifiedPeerCommonName: String? {
        guard SSL_get_verify_result(ssl) == Int(X509_V_OK), let certificate = SSL_get1_peer_certificate(ssl) else {
            return nil
        }
        defer { X509_free(certificate) }
        guard let name = X509_get_subject_name(certificate) else { return nil }
        var buffer = [CChar](repeating: 0, count: 256)
        let length = X509_NAME_get_text_by_NID(name, NID_commonName, &buffer, Int32(buffer.count))
        guard length > 0 else { return nil }
        return String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
