import SluiceCore

/// A database whose reads go to replicas: its routing state, the monitor's connections to each backend, and
/// what read-your-writes remembers per pool. Shared by all loops, used with the registry's lock held.
final class RoutedDatabase {
    let name: String
    var state: RoutingState
    var readYourWrites: ReadYourWrites
    /// The monitor's connection to each backend, one session each, opened by loop 0; nil while none is open.
    var monitors: [Pool?]
    /// When the question in flight on each backend's monitor connection was sent (or its login began).
    var probeSentAt: [Double?]
    /// When each backend was last asked, so checks keep `routing_check_period` apart.
    var lastProbeAt: [Double]
    /// When the catalog of unsafe functions was last read from the primary.
    var catalogReadAt: Double?
    var catalog = RoutingCatalog()
    /// Read-your-writes at pool scope: the primary's position after the last write of each server user.
    var lastWrite: [String: WALPosition] = [:]
    /// Writes waiting for a primary while none is known, by client id, with when each began to wait.
    var waitingForPrimary: [(clientID: Int, since: Double)] = []
    /// Per backend: reads and writes sent there, reads the primary served because no replica could.
    var reads: [UInt64]
    var writes: [UInt64]
    var fallbackReads: UInt64 = 0
    /// The monitor found no user to log in as (said once in the log).
    var warnedNoCredentials = false

    init(name: String, database: DatabaseConfig, config: SluiceConfig) {
        self.name = name
        var policy = config.routingPolicy
        if let v = database.replicaLoadBalance { policy.loadBalance = v }
        if let v = database.primaryReads { policy.primaryReads = v }
        if let v = database.replicaMaxLagBytes { policy.maxLagBytes = v }
        if let v = database.replicaMaxLagSeconds { policy.maxLagSeconds = v }
        let primary = BackendAddress(
            host: database.host ?? config.unixSocketDir ?? "127.0.0.1", port: database.port ?? 5432)
        state = RoutingState(primary: primary, replicas: database.replicas, policy: policy)
        readYourWrites = database.readYourWrites ?? config.readYourWrites
        let count = database.replicas.count + 1
        monitors = Array(repeating: nil, count: count)
        probeSentAt = Array(repeating: nil, count: count)
        lastProbeAt = Array(repeating: -Double.infinity, count: count)
        reads = Array(repeating: 0, count: count)
        writes = Array(repeating: 0, count: count)
    }

    /// The backends, in order, as the database entry lists them.
    var addresses: [BackendAddress] { state.backends.map(\.address) }
}
