/// What a backend said about itself when Sluice's monitor asked (``RoutingState/probeQuery``).
public struct BackendProbe: Sendable, Equatable {
    /// `pg_is_in_recovery()`: a standby (or a primary being demoted) answers true.
    public var inRecovery: Bool
    /// On a primary the WAL insert position, on a standby the last replayed position.
    public var position: WALPosition?

    public init(inRecovery: Bool, position: WALPosition?) {
        self.inRecovery = inRecovery
        self.position = position
    }

    /// Reads the probe's one row (text format); nil when it does not have that shape.
    public init?(row: [String?]) {
        guard row.count == 2, let recovery = row[0], recovery == "t" || recovery == "f" else { return nil }
        inRecovery = recovery == "t"
        position = row[1].flatMap { WALPosition($0) }
    }
}

/// The role a backend plays, as its last answer to the monitor showed.
public enum BackendRole: String, Sendable {
    /// Taken from the configuration until a check says otherwise: the entry's `host` is the primary, each of
    /// its `replicas` a standby that serves no reads before it answered a check.
    case primary
    case standby
}

/// Sluice's view of one backend of a routed database.
public struct BackendStatus: Sendable, Equatable {
    public var address: BackendAddress
    public var role: BackendRole
    /// The last check got an answer.
    public var isReachable: Bool
    /// A failed check or connection leaves a standby out of reads until then (monotonic seconds).
    public var bannedUntil: Double?
    public var lastError: String?
    public var position: WALPosition?
    /// Behind the primary (standbys only); nil until both have answered.
    public var lagBytes: UInt64?
    public var lagSeconds: Double?
    public var checkedAt: Double?

    init(address: BackendAddress, role: BackendRole) {
        self.address = address
        self.role = role
        self.isReachable = role == .primary
    }
}

/// Where a read goes.
public enum ReadTarget: Equatable, Sendable {
    /// A standby that may serve it.
    case replica(Int)
    /// The primary: it serves reads (`primary_reads`), or no standby can (`fallback`).
    case primary(Int, fallback: Bool)
    /// No backend can serve it now: no usable standby and no known primary.
    case none
}

/// What changed in a check, for the log.
public enum RoutingEvent: Equatable, Sendable {
    case roleChanged(backend: Int, from: BackendRole, to: BackendRole)
    case banned(backend: Int, reason: String)
    case reachableAgain(backend: Int)
    case lagExceeded(backend: Int, bytes: UInt64, seconds: Double)
    case caughtUp(backend: Int)
    /// More than one reachable backend claims to be the primary: writes stop rather than split.
    case splitBrain(backends: [Int])
}

/// The routing state of one database: which backend is the primary, which standbys may serve reads, and how
/// far behind each is. A value: the monitor's answers and failures go in as events, and the decisions
/// come out of pure functions, so every rule can be tested without servers.
public struct RoutingState: Sendable {
    public private(set) var backends: [BackendStatus]
    public var policy: RoutingPolicy
    private var nextReplica = 0
    /// Standbys over a lag limit at their last check, so that crossing it is logged once each way.
    private var lagging: Set<Int> = []
    /// The primary's position at each of its recent checks, oldest first: a standby's lag in seconds is how
    /// long ago the primary passed the standby's replay position. PostgreSQL's own measure (the age of the
    /// last replayed commit) makes a standby of a primary that was idle for an hour look an hour late the
    /// moment the next write arrives.
    private var primarySamples: [(position: WALPosition, at: Double)] = []
    /// Set while more than one backend claims to be the primary.
    public private(set) var conflictingPrimaries: [Int] = []

    /// The one statement the monitor runs on every backend. Text results: `t`/`f` and a `pg_lsn`.
    /// The insert position, not the write position, stands for a primary: a commit's record is inserted before
    /// its client hears of it, even with `synchronous_commit = off`.
    public static let probeQuery =
        "SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() "
        + "ELSE pg_current_wal_insert_lsn() END"

    /// The statement that reads the primary's position after a client's write transaction.
    public static let positionQuery = "SELECT pg_current_wal_insert_lsn()"

    /// `primary` is the entry's `host`; `replicas` its `replicas` list, in order.
    public init(primary: BackendAddress, replicas: [BackendAddress], policy: RoutingPolicy) {
        backends = [BackendStatus(address: primary, role: .primary)]
        backends += replicas.map { BackendStatus(address: $0, role: .standby) }
        self.policy = policy
    }

    /// The backend writes go to: the reachable one that claims to be primary, else the one that claimed it
    /// last (its clients then get a connection error at once rather than a wait). Nil when no backend claims
    /// it (a failover under way), or when several reachable ones do.
    public var primary: Int? {
        guard conflictingPrimaries.isEmpty else { return nil }
        let claimants = backends.indices.filter { backends[$0].role == .primary }
        return claimants.first { backends[$0].isReachable } ?? claimants.first
    }

    // MARK: Events

    public mutating func probeAnswered(_ index: Int, _ probe: BackendProbe, now: Double) -> [RoutingEvent] {
        var events: [RoutingEvent] = []
        var backend = backends[index]
        let role: BackendRole = probe.inRecovery ? .standby : .primary
        if role != backend.role { events.append(.roleChanged(backend: index, from: backend.role, to: role)) }
        if !backend.isReachable { events.append(.reachableAgain(backend: index)) }
        backend.role = role
        backend.isReachable = true
        backend.lastError = nil
        backend.position = probe.position
        backend.checkedAt = now
        if role == .primary {
            backend.lagBytes = nil
            backend.lagSeconds = nil
            backend.bannedUntil = nil
        }
        backends[index] = backend
        events += checkForConflict()
        if role == .standby {
            events += measureLag(index, now: now)
        } else if index == primary, let position = probe.position {
            if primarySamples.last?.position != position {
                primarySamples.append((position, now))
                if primarySamples.count > 256 { primarySamples.removeFirst(primarySamples.count - 256) }
            }
            // A new primary position moves every standby's lag.
            for other in backends.indices where backends[other].role == .standby && backends[other].isReachable {
                events += measureLag(other, now: now)
            }
        }
        return events
    }

    public mutating func probeFailed(_ index: Int, error: String, now: Double) -> [RoutingEvent] {
        var backend = backends[index]
        let wasReachable = backend.isReachable
        backend.isReachable = false
        backend.lastError = error
        backend.checkedAt = now
        // A backend that never answered is simply not used yet (a standby still starting, or one that has not
        // replayed the monitor's role): the ban is for backends that fail after serving.
        if wasReachable { backend.bannedUntil = now + policy.banTime }
        backends[index] = backend
        var events: [RoutingEvent] = wasReachable ? [.banned(backend: index, reason: error)] : []
        events += checkForConflict()
        return events
    }

    /// A connection to a standby failed outside the monitor: it is left out of reads for `banTime`.
    public mutating func connectionFailed(_ index: Int, error: String, now: Double) -> [RoutingEvent] {
        guard backends[index].role == .standby else { return [] }
        let wasBanned = (backends[index].bannedUntil ?? 0) > now
        backends[index].bannedUntil = now + policy.banTime
        backends[index].lastError = error
        return wasBanned ? [] : [.banned(backend: index, reason: error)]
    }

    private mutating func measureLag(_ index: Int, now: Double) -> [RoutingEvent] {
        guard let primary, let primaryPosition = backends[primary].position, let position = backends[index].position
        else { return [] }
        let bytes = primaryPosition.bytes(since: position)
        backends[index].lagBytes = bytes
        // A standby that replayed everything the primary has is not late, however long ago the last
        // transaction committed. Otherwise it is as late as the first sample the primary was past it.
        var seconds = 0.0
        if bytes > 0, let passed = primarySamples.first(where: { $0.position > position }) {
            seconds = max(0, now - passed.at)
        }
        backends[index].lagSeconds = seconds
        let over =
            (policy.maxLagBytes > 0 && bytes > policy.maxLagBytes)
            || (policy.maxLagSeconds > 0 && seconds > policy.maxLagSeconds)
        if over && lagging.insert(index).inserted {
            return [.lagExceeded(backend: index, bytes: bytes, seconds: seconds)]
        }
        if !over && lagging.remove(index) != nil { return [.caughtUp(backend: index)] }
        return []
    }

    private mutating func checkForConflict() -> [RoutingEvent] {
        let claimants = backends.indices.filter { backends[$0].role == .primary && backends[$0].isReachable }
        let conflict = claimants.count > 1 ? claimants : []
        defer { conflictingPrimaries = conflict }
        return conflict != conflictingPrimaries && !conflict.isEmpty ? [.splitBrain(backends: conflict)] : []
    }

    // MARK: Decisions

    /// Whether standby `index` may serve a read that must see `position` (nil: any position).
    public func mayServeRead(_ index: Int, after position: WALPosition?, now: Double) -> Bool {
        let backend = backends[index]
        guard backend.role == .standby, backend.isReachable, (backend.bannedUntil ?? 0) <= now,
            !lagging.contains(index), let replayed = backend.position, backend.lagBytes != nil
        else { return false }
        if let position, replayed < position { return false }
        return true
    }

    /// Chooses where a read goes. `outstanding(i)` is backend i's load (busy servers plus waiting clients),
    /// asked only for `least_outstanding`. Runs for every routed read, so it allocates nothing: the candidates
    /// are counted, then the chosen one is found by its position among them.
    public mutating func chooseReader(
        after position: WALPosition?, now: Double, outstanding: (Int) -> Int = { _ in 0 }
    ) -> ReadTarget {
        let primary = self.primary
        func isCandidate(_ index: Int) -> Bool {
            mayServeRead(index, after: position, now: now) || (policy.primaryReads && index == primary)
        }
        var count = 0
        var least = Int.max
        for index in backends.indices where isCandidate(index) {
            switch policy.loadBalance {
            case .roundRobin:
                count += 1
            case .leastOutstanding:
                // Ties go round robin, so equal replicas share an idle system's reads.
                let load = outstanding(index)
                if load < least {
                    least = load
                    count = 1
                } else if load == least {
                    count += 1
                }
            }
        }
        guard count > 0 else {
            if let primary { return .primary(primary, fallback: true) }
            return .none
        }
        var remaining = nextReplica % count
        nextReplica &+= 1
        var chosen = 0
        for index in backends.indices where isCandidate(index) {
            if policy.loadBalance == .leastOutstanding && outstanding(index) != least { continue }
            if remaining == 0 {
                chosen = index
                break
            }
            remaining -= 1
        }
        return chosen == primary ? .primary(chosen, fallback: false) : .replica(chosen)
    }
}
