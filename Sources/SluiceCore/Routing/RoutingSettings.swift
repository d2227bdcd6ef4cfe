/// A server address in a `replicas=` list: `host:port`, `[v6 address]:port`, or a bare host (port 5432).
public struct BackendAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// One entry of the list; nil when it is empty or its port is not 1...65535.
    public init?(parsing text: some StringProtocol) {
        var rest = Substring(text)
        var host: Substring
        if rest.hasPrefix("[") {
            // An IPv6 literal carries colons of its own, so it is bracketed as in a URL.
            guard let close = rest.firstIndex(of: "]") else { return nil }
            host = rest[rest.index(after: rest.startIndex)..<close]
            rest = rest[rest.index(after: close)...]
            guard rest.isEmpty || rest.hasPrefix(":") else { return nil }
        } else if let colon = rest.lastIndex(of: ":"), rest.firstIndex(of: ":") == colon {
            host = rest[..<colon]
            rest = rest[colon...]
        } else if rest.contains(":") {
            // Several colons without brackets: an IPv6 address whose port cannot be told from its last group.
            return nil
        } else {
            host = rest
            rest = ""
        }
        var port = 5432
        if rest.hasPrefix(":") {
            guard let number = Int(rest.dropFirst()), (1...65535).contains(number) else { return nil }
            port = number
        }
        guard !host.isEmpty else { return nil }
        self.host = String(host)
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// `replica_load_balance`: how reads are spread over the replicas that may serve them.
public enum ReplicaLoadBalance: String, Sendable, CaseIterable {
    /// Each read goes to the next usable replica in turn.
    case roundRobin = "round_robin"
    /// Each read goes to the usable replica with the fewest servers busy or clients waiting.
    case leastOutstanding = "least_outstanding"
}

/// `read_your_writes`: whose writes a read must see before a replica may serve it.
public enum ReadYourWrites: String, Sendable, CaseIterable {
    /// No guarantee: any replica within the lag limits serves reads.
    case off
    /// A client's reads wait for replicas that replayed the client's own last write.
    case connection
    /// Reads of a (database, user) pair wait for replicas that replayed the last write of any client of the
    /// pair: for applications whose own pool writes on one connection and reads on another.
    case pool
}

/// How one database's traffic is split between its primary and its replicas.
public struct RoutingPolicy: Sendable, Equatable {
    public var loadBalance: ReplicaLoadBalance = .roundRobin
    /// Whether the primary serves reads alongside the replicas. Either way it serves them when no replica
    /// can.
    public var primaryReads = false
    /// A replica further behind the primary than either limit serves no reads until it catches up; 0 is no
    /// limit.
    public var maxLagBytes: UInt64 = 16 << 20
    public var maxLagSeconds: Double = 10
    /// Seconds a replica that failed a check or a connection is left out before it is tried again.
    public var banTime: Double = 30

    public init() {}
}
