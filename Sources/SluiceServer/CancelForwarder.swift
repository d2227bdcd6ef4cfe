import SluiceCore
import SluiceIO

/// Carries one CancelRequest to a server and waits for PostgreSQL to close the connection, which it
/// does after signalling the backend. Until then the server connection stays with its client.
final class CancelForwarder: Connection {
    weak var server: ServerConnection?
    let deadline: Double
    private var sent = false

    init(id: Int, transport: any Transport, server: ServerConnection, proxy: Proxy, deadline: Double) {
        self.server = server
        self.deadline = deadline
        super.init(id: id, transport: transport, proxy: proxy, logger: server.logger.with("cancel", "X\(id)"))
        input = ByteBuffer(capacity: 64)
        if let key = server.backendKey {
            output.writeCancelRequest(processID: key.processID, secretKey: key.secretKey)
        }
    }

    override func drive() {
        if isClosed { return }
        if !sent {
            guard writable else { return }
            if Socket.pendingError(fd) != nil { return finish("could not connect to send cancel") }
            guard flushOutput() else { return finish("could not send cancel") }
            if !output.isEmpty { return }
            sent = true
        }
        while true {
            switch readOnce() {
            case .data: input.clear()
            case .nothing: return
            case .closed: return finish("cancel delivered")
            }
        }
    }

    func finish(_ outcome: String) {
        guard !isClosed else { return }
        logger.debug("cancel request finished", [("outcome", outcome)])
        closeSocket()
        proxy.cancelFinished(self)
    }
}
