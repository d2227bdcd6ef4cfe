/// Failed logins counted per (client address, user): after `limit` failures within `window` seconds that
/// pair is refused for `window` seconds, before any password is asked for. Successful logins are never
/// counted, and one resets its pair.
///
/// Bounded: past `capacity` pairs, those whose window has passed are forgotten first, then the oldest.
public struct LoginThrottle: Sendable {
    public struct Key: Hashable, Sendable {
        public var address: String
        public var user: String

        public init(address: String, user: String) {
            self.address = address
            self.user = user
        }
    }

    struct Record: Sendable {
        var failures: Int
        var windowStart: Double
        var blockedUntil: Double
    }

    /// Failures allowed within a window; 0 turns the throttle off.
    public var limit: Int
    public var window: Double
    public var capacity: Int
    private(set) var records: [Key: Record] = [:]

    public init(limit: Int, window: Double, capacity: Int = 10_000) {
        self.limit = limit
        self.window = window
        self.capacity = capacity
    }

    /// Seconds until `key` may try again; nil when it may now.
    public func retryAfter(_ key: Key, now: Double) -> Double? {
        guard limit > 0, let record = records[key], record.blockedUntil > now else { return nil }
        return record.blockedUntil - now
    }

    public mutating func failed(_ key: Key, now: Double) {
        guard limit > 0 else { return }
        var record = records[key] ?? Record(failures: 0, windowStart: now, blockedUntil: 0)
        if now - record.windowStart >= window {
            record.failures = 0
            record.windowStart = now
        }
        record.failures += 1
        if record.failures >= limit {
            record.blockedUntil = now + window
            record.failures = 0
            record.windowStart = now
        }
        records[key] = record
        let window = window
        records.evict(
            beyond: capacity, isStale: { $0.blockedUntil <= now && now - $0.windowStart >= window },
            since: \.windowStart)
    }

    public mutating func succeeded(_ key: Key) {
        records[key] = nil
    }
}
