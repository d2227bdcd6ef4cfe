import SluiceCore
import SluiceIO

/// Where a server connection's TLS negotiation stands before its startup message.
enum ServerTLSNegotiation: Equatable {
    case notStarted
    /// SSLRequest sent; PostgreSQL answers with one byte.
    case awaitingAnswer
    case handshaking
    /// Encrypted, or plain because the server said 'N' and `server_tls_sslmode` allows that.
    case done
}

/// TLS towards PostgreSQL (`server_tls_sslmode`): SSLRequest, the one-byte answer, the handshake.
///
/// The answer must be the only thing the server sent: bytes behind an 'S' arrived before encryption and
/// would be taken as coming from the authenticated server, so they end the connection.
extension ServerConnection {
    /// Sends SSLRequest. Returns whether the startup message may go now (it may not: the answer is due).
    func startTLS(_ context: TLSContext) -> Bool {
        output.write(int32: 8)
        output.write(uint32: StartupRequestCode.sslRequest)
        tlsNegotiation = .awaitingAnswer
        guard flushOutput() else {
            lost("write to server failed")
            return false
        }
        return negotiateTLS()
    }

    /// Moves the negotiation on as far as the socket allows; true once the startup message may go.
    func negotiateTLS() -> Bool {
        if tlsNegotiation == .awaitingAnswer {
            guard readAnswer() else { return false }
        }
        guard tlsNegotiation == .handshaking, let session = transport as? TLSTransport else {
            return tlsNegotiation == .done
        }
        do {
            guard try session.handshake() == .done else { return false }
        } catch {
            refuseServer("TLS with server failed: \(error)")
            return false
        }
        tlsNegotiation = .done
        // The handshake used the socket: let the next read and write find out for themselves.
        readable = true
        writable = true
        logger.debug("TLS with server established", [("version", session.protocolVersion), ("cipher", session.cipher)])
        return true
    }

    /// Reads PostgreSQL's answer to SSLRequest and acts on it. False while it has not arrived or on failure.
    private func readAnswer() -> Bool {
        while input.isEmpty {
            switch readOnce() {
            case .data: continue
            case .nothing: return false
            case .closed:
                refuseServer("server closed the connection after SSLRequest")
                return false
            }
        }
        let answer = input.byte(at: 0)
        if answer == UInt8(ascii: "E") {
            // A server too old to know SSLRequest, or one refusing it, sends an ErrorResponse.
            refuseServer("server answered SSLRequest with an error")
            return false
        }
        guard input.readableBytes == 1 else {
            refuseServer("server sent unencrypted data after its answer to SSLRequest")
            return false
        }
        input.clear()
        let mode = proxy.config.serverTLS.sslmode
        switch answer {
        case UInt8(ascii: "S"):
            guard let context = proxy.tls.connecting else {
                // A reload turned TLS off while the answer was on its way.
                refuseServer("TLS to servers was turned off while connecting")
                return false
            }
            let socket = transport as? SocketTransport
            do {
                transport = try context.makeTransport(
                    fd: fd, serverName: serverName, verifyName: mode == .verifyFull)
            } catch {
                refuseServer("TLS setup failed: \(error)")
                return false
            }
            _ = socket?.handOver()
            tlsNegotiation = .handshaking
            return true
        case UInt8(ascii: "N"):
            guard !mode.requiresTLS else {
                refuseServer("server does not support TLS, and server_tls_sslmode = \(mode.rawValue) requires it")
                return false
            }
            tlsNegotiation = .done
            return true
        default:
            refuseServer("server answered SSLRequest with something other than S or N")
            return false
        }
    }

    private func refuseServer(_ message: String) {
        fail(.fatal(.sqlclientUnableToEstablishConnection, message))
    }
}
