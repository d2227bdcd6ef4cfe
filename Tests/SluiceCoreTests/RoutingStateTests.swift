import Testing

@testable import SluiceCore

@Suite("Routing state: roles, lag, bans and the choice of reader")
struct RoutingStateTests {
    static let primary = BackendAddress(host: "10.0.0.1", port: 5432)
    static let replicas = [BackendAddress(host: "10.0.0.2", port: 5432), BackendAddress(host: "10.0.0.3", port: 5433)]

    static func state(_ configure: (inout RoutingPolicy) -> Void = { _ in }) -> RoutingState {
        var policy = RoutingPolicy()
        configure(&policy)
        return RoutingState(primary: primary, replicas: replicas, policy: policy)
    }

    static func probe(standby: Bool, _ position: UInt64) -> BackendProbe {
        BackendProbe(inRecovery: standby, position: WALPosition(position))
    }

    /// Every backend answered once, the standbys level with the primary.
    static func allAnswered(_ state: inout RoutingState, at position: UInt64 = 1000, now: Double = 0) {
        _ = state.probeAnswered(0, probe(standby: false, position), now: now)
        _ = state.probeAnswered(1, probe(standby: true, position), now: now)
        _ = state.probeAnswered(2, probe(standby: true, position), now: now)
    }

    @Test("WAL positions read and print as PostgreSQL writes them")
    func walPositions() {
        #expect(WALPosition("16/B374D848")?.offset == 0x16_B374_D848)
        #expect(WALPosition("0/0")?.offset == 0)
        #expect(WALPosition(0x16_B374_D848).description == "16/B374D848")
        for bad in ["", "1", "1/", "/1", "G/1", "1/2/3", "123456789/1"] { #expect(WALPosition(bad) == nil) }
        #expect(WALPosition(10).bytes(since: WALPosition(4)) == 6)
        #expect(WALPosition(4).bytes(since: WALPosition(10)) == 0)
    }

    @Test("replica addresses: host:port, [v6]:port, a bare host")
    func addresses() {
        #expect(BackendAddress(parsing: "db2:5433") == BackendAddress(host: "db2", port: 5433))
        #expect(BackendAddress(parsing: "[::1]:5433") == BackendAddress(host: "::1", port: 5433))
        #expect(BackendAddress(parsing: "db2") == BackendAddress(host: "db2", port: 5432))
        for bad in ["", ":5432", "db2:0", "db2:70000", "db2:x", "[::1", "::1:5432", "[::1]x"] {
            #expect(BackendAddress(parsing: bad) == nil, "\(bad)")
        }
        #expect(BackendAddress(host: "::1", port: 5).description == "[::1]:5")
    }

    @Test("before any check, writes go to the configured primary and reads too: no standby is trusted yet")
    func beforeChecks() {
        var state = Self.state()
        #expect(state.primary == 0)
        #expect(state.chooseReader(after: nil, now: 0) == .primary(0, fallback: true))
    }

    @Test("reads go round robin over the standbys; the primary only when asked to serve reads too")
    func roundRobin() {
        var state = Self.state()
        Self.allAnswered(&state)
        let picks = (0..<4).map { _ in state.chooseReader(after: nil, now: 1) }
        #expect(picks == [.replica(1), .replica(2), .replica(1), .replica(2)])
        var both = Self.state { $0.primaryReads = true }
        Self.allAnswered(&both)
        var all: Set<String> = []
        for _ in 0..<6 { all.insert("\(both.chooseReader(after: nil, now: 1))") }
        #expect(all.count == 3)
    }

    @Test("least outstanding picks the least busy standby")
    func leastOutstanding() {
        var state = Self.state { $0.loadBalance = .leastOutstanding }
        Self.allAnswered(&state)
        #expect(state.chooseReader(after: nil, now: 1) { [0, 5, 2][$0] } == .replica(2))
        #expect(state.chooseReader(after: nil, now: 1) { [0, 1, 2][$0] } == .replica(1))
    }

    @Test("read-your-writes: only standbys that replayed the position serve; else the primary")
    func readYourWrites() {
        var state = Self.state()
        Self.allAnswered(&state, at: 1000)
        _ = state.probeAnswered(0, Self.probe(standby: false, 1500), now: 1)
        _ = state.probeAnswered(2, Self.probe(standby: true, 1500), now: 1)
        #expect(state.chooseReader(after: WALPosition(1500), now: 1) == .replica(2))
        #expect(state.chooseReader(after: WALPosition(1500), now: 1) == .replica(2))
        #expect(state.chooseReader(after: WALPosition(1600), now: 1) == .primary(0, fallback: true))
    }

    @Test("lag in seconds counts from when the primary passed the standby, not from its last replayed commit")
    func lagSeconds() {
        var state = Self.state { $0.maxLagSeconds = 5 }
        Self.allAnswered(&state, at: 1000, now: 0)
        // The primary was idle for an hour, then wrote: the standby is a moment behind, not an hour.
        _ = state.probeAnswered(0, Self.probe(standby: false, 2000), now: 3600)
        _ = state.probeAnswered(1, Self.probe(standby: true, 1000), now: 3600.5)
        #expect(state.backends[1].lagBytes == 1000)
        #expect(state.backends[1].lagSeconds == 0.5)
        #expect(state.mayServeRead(1, after: nil, now: 3600.5))
        // Still there six seconds later: over the limit, logged once, skipped until it catches up.
        let late = state.probeAnswered(1, Self.probe(standby: true, 1000), now: 3606.1)
        #expect(late.contains { if case .lagExceeded(backend: 1, _, _) = $0 { true } else { false } })
        #expect(!state.mayServeRead(1, after: nil, now: 3606.1))
        #expect(state.probeAnswered(1, Self.probe(standby: true, 1000), now: 3607).isEmpty)
        #expect(state.probeAnswered(1, Self.probe(standby: true, 2000), now: 3608) == [.caughtUp(backend: 1)])
        #expect(state.backends[1].lagSeconds == 0)
        #expect(state.mayServeRead(1, after: nil, now: 3608))
    }

    @Test("lag in bytes over the limit skips the standby")
    func lagBytes() {
        var state = Self.state { $0.maxLagBytes = 100 }
        Self.allAnswered(&state, at: 1000)
        _ = state.probeAnswered(0, Self.probe(standby: false, 1200), now: 1)
        #expect(!state.mayServeRead(1, after: nil, now: 1))
        #expect(state.chooseReader(after: nil, now: 1) == .primary(0, fallback: true))
    }

    @Test("a failed check bans a standby for ban_time; it serves again after that once checks pass")
    func bans() {
        var state = Self.state { $0.banTime = 10 }
        Self.allAnswered(&state)
        #expect(
            state.probeFailed(1, error: "connection refused", now: 5) == [
                .banned(backend: 1, reason: "connection refused")
            ])
        #expect(state.chooseReader(after: nil, now: 6) == .replica(2))
        #expect(state.chooseReader(after: nil, now: 6) == .replica(2))
        #expect(state.probeAnswered(1, Self.probe(standby: true, 1000), now: 7) == [.reachableAgain(backend: 1)])
        #expect(!state.mayServeRead(1, after: nil, now: 14))
        #expect(state.mayServeRead(1, after: nil, now: 15))
        #expect(state.connectionFailed(2, error: "reset", now: 15) == [.banned(backend: 2, reason: "reset")])
        #expect(state.connectionFailed(2, error: "reset", now: 16).isEmpty)
        #expect(state.connectionFailed(0, error: "primary errors are the pool's to report", now: 16).isEmpty)
    }

    @Test("a standby that never answered is not banned by failing: it serves once a check passes")
    func neverReached() {
        var state = Self.state { $0.banTime = 30 }
        _ = state.probeAnswered(0, Self.probe(standby: false, 1000), now: 0)
        #expect(state.probeFailed(1, error: "role does not exist", now: 0).isEmpty)
        _ = state.probeAnswered(1, Self.probe(standby: true, 1000), now: 1)
        #expect(state.mayServeRead(1, after: nil, now: 1))
    }

    @Test("promotion: writes follow the new primary; while none is known, there is none")
    func promotion() {
        var state = Self.state()
        Self.allAnswered(&state)
        // The primary goes away, then the first standby is promoted.
        _ = state.probeFailed(0, error: "connection refused", now: 1)
        #expect(state.primary == 0)
        let promoted = state.probeAnswered(1, Self.probe(standby: false, 1200), now: 2)
        #expect(promoted.contains(.roleChanged(backend: 1, from: .standby, to: .primary)))
        // The old primary still counts as a claimant, but an unreachable one: writes go to the new.
        #expect(state.conflictingPrimaries.isEmpty)
        #expect(state.primary == 1)
        // The old primary comes back as a standby of the new one.
        let demoted = state.probeAnswered(0, Self.probe(standby: true, 1200), now: 3)
        #expect(demoted.contains(.roleChanged(backend: 0, from: .primary, to: .standby)))
        #expect(state.primary == 1)
        _ = state.probeAnswered(1, Self.probe(standby: false, 1300), now: 4)
        _ = state.probeAnswered(0, Self.probe(standby: true, 1300), now: 4)
        #expect(state.mayServeRead(0, after: nil, now: 40))
    }

    @Test("two reachable primaries: logged, and writes have no primary until one steps down")
    func splitBrain() {
        var state = Self.state()
        Self.allAnswered(&state)
        let events = state.probeAnswered(1, Self.probe(standby: false, 1000), now: 1)
        #expect(events.contains(.splitBrain(backends: [0, 1])))
        #expect(state.primary == nil)
        #expect(state.probeAnswered(1, Self.probe(standby: false, 1000), now: 2).isEmpty)
        _ = state.probeAnswered(1, Self.probe(standby: true, 1000), now: 3)
        #expect(state.primary == 0)
    }

    @Test("probe rows: recovery flag and position, anything else refused")
    func probeRows() {
        #expect(BackendProbe(row: ["t", "0/10"]) == BackendProbe(inRecovery: true, position: WALPosition(16)))
        #expect(BackendProbe(row: ["f", nil]) == BackendProbe(inRecovery: false, position: nil))
        #expect(BackendProbe(row: ["x", "0/10"]) == nil)
        #expect(BackendProbe(row: ["t"]) == nil)
    }
}
