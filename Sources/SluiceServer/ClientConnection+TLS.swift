import SluiceCore
import SluiceIO

/// TLS towards clients: the answer to SSLRequest, PostgreSQL 17's direct negotiation, the handshake.
///
/// Nothing the client sent before its handshake ended is ever read as protocol: an SSLRequest followed by
/// more bytes is refused before 'S' goes out, and from 'S' on every byte goes through OpenSSL.
extension ClientConnection {
    var isTLS: Bool { transport is TLSTransport }

    /// Before login is over: runs the handshake, or starts one when the first byte a client sends opens a
    /// TLS record. Returns whether the client may go on to read and process input.
    func prepareTransport() -> Bool {
        switch state {
        case .tlsHandshake(let direct):
            return continueTLSHandshake(direct: direct)
        case .startup:
            // A startup packet opens with its length, whose first byte is 0 for any packet Sluice accepts;
            // 0x16 is a TLS handshake record.
            guard readable, input.isEmpty, !isTLS, !peer.isUnix, let context = proxy.tls.accepting,
                Socket.peekFirstByte(fd) == 0x16
            else { return true }
            acceptTLS(context, direct: true)
            return false
        default:
            return true
        }
    }

    /// Agrees to TLS ('S' after an SSLRequest, nothing when `direct`) and starts the handshake.
    func acceptTLS(_ context: TLSContext, direct: Bool) {
        if !direct {
            // The answer must be on the wire before the first TLS record; a fresh socket takes one byte.
            var answer: UInt8 = 0x53
            let result = try? withUnsafeBytes(of: &answer) { try transport.write($0) }
            guard result == .bytes(1) else { return gone("could not answer the SSLRequest") }
        }
        let socket = transport as? SocketTransport
        do {
            transport = try context.makeTransport(fd: fd)
        } catch {
            logger.warning("TLS setup failed", [("error", error.description)])
            return gone("TLS setup failed")
        }
        _ = socket?.handOver()
        state = .tlsHandshake(direct: direct)
        _ = continueTLSHandshake(direct: direct)
    }

    /// Moves the handshake on; once it is done the client is back to sending its startup packet.
    private func continueTLSHandshake(direct: Bool) -> Bool {
        guard let session = transport as? TLSTransport else { return true }
        do {
            guard try session.handshake() == .done else { return false }
        } catch {
            logger.info("TLS handshake failed", [("error", error.description)])
            gone("TLS handshake failed")
            return false
        }
        state = .startup
        // The handshake may have read the client's first records along with its own.
        readable = true
        if direct && session.negotiatedALPN != "postgresql" {
            refuse(
                .fatal(
                    .protocolViolation,
                    "direct SSL connection was established without ALPN protocol negotiation extension"))
            return false
        }
        if logs(.debug) {
            logger.debug(
                "TLS established", [("version", session.protocolVersion), ("cipher", session.cipher)])
        }
        return true
    }
}
