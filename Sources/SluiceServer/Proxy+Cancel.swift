import Glibc
import SluiceCore
import SluiceIO

/// Cancel requests: Sluice's own keys, and forwarding to the server running the request.
extension Proxy {

    func allocateCancelKey() -> (processID: Int32, secretKey: Int32) {
        while true {
            let bytes = Crypto.randomBytes(count: 8)
            let pid =
                Int32(
                    bitPattern: UInt32(bytes[0]) << 24 | UInt32(bytes[1]) << 16 | UInt32(bytes[2]) << 8
                        | UInt32(bytes[3])) & 0x7FFF_FFFF
            let key = Int32(
                bitPattern: UInt32(bytes[4]) << 24 | UInt32(bytes[5]) << 16 | UInt32(bytes[6]) << 8 | UInt32(bytes[7]))
            if pid != 0 && shared.cancelKeys[pid] == nil { return (pid, key) }
        }
    }

    func cancelRequested(processID: Int32, secretKey: [UInt8], from peer: PeerAddress) {
        shared.lock.lock()
        defer { shared.lock.unlock() }
        guard let clientID = cancelKeys[processID], secretKey.count == 4 || secretKey.count == CancelKey.extendedLength
        else {
            logger.debug("cancel request for an unknown key dropped", [("peer", peer.description)])
            return
        }
        let home = shared.owner(ofClient: clientID)
        guard home === self else {
            return home.post { $0.cancelRequested(clientID: clientID, secretKey: secretKey, from: peer) }
        }
        cancelRequested(clientID: clientID, secretKey: secretKey, from: peer)
    }

    /// The cancel request for a client of this loop; lock held.
    private func cancelRequested(clientID: Int, secretKey: [UInt8], from peer: PeerAddress) {
        guard let client = clients[clientID] else { return }
        guard
            CancelKey.matches(
                secretKey, processID: client.cancelKey.processID, secretKey: client.cancelKey.secretKey,
                extendedKeys: client.hasExtendedCancelKey, secret: shared.cancelKeySecret)
        else {
            logger.debug("cancel request with a wrong key dropped", [("peer", peer.description)])
            return
        }
        // Only a request that is running right now may be cancelled. A cancel that arrives after the
        // reply left would otherwise hit whatever the server does next, possibly for another client.
        guard let server = client.server, server.tracker.clientRequestInFlight, server.backendKey != nil else {
            client.logger.debug("cancel request with nothing to cancel dropped")
            return
        }
        cancelOnServer(server, reason: nil)
    }

    /// Sends a CancelRequest for whatever `server` is running. `reason` names the timeout when Sluice
    /// itself cancels, so the client's error can say which one fired.
    func cancelOnServer(_ server: ServerConnection, reason: String?) {
        do {
            let fd = try openCancelSocket(to: server)
            let deadline = Syscall.monotonicNow() + max(1, config.cancelWaitTimeout)
            let forwarder = CancelForwarder(
                id: allocateID(), transport: SocketTransport(fd: fd), server: server, proxy: self, deadline: deadline)
            try loop.register(fd, handler: forwarder)
            cancelForwarders[forwarder.id] = forwarder
            server.cancelsInFlight += 1
            if let reason { server.cancelReason = reason }
            server.logger.debug("cancel request forwarded", [("reason", reason ?? "client")])
        } catch {
            server.logger.warning("could not forward cancel request", [("error", "\(error)")])
        }
    }

    func cancelFinished(_ forwarder: CancelForwarder) {
        shared.lock.lock()
        defer { shared.lock.unlock() }
        cancelForwarders[forwarder.id] = nil
        guard let server = forwarder.server, !server.isClosed else { return }
        server.cancelsInFlight -= 1
        if server.cancelsInFlight == 0 && server.releaseWhenCancelsLand {
            server.releaseWhenCancelsLand = false
            returnToPool(server)
        }
    }

}
