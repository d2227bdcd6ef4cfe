extension Dictionary {
    /// Bounds a table that remembers one entry per name a client chose: past `capacity`, entries `isStale`
    /// calls dead go first, then the oldest by `since`, down to nine tenths of `capacity`. The slack means a
    /// table kept full by a stream of new names is swept once per tenth of its size, not sorted on every
    /// insertion.
    mutating func evict(beyond capacity: Int, isStale: (Value) -> Bool, since: (Value) -> Double) {
        guard count > capacity else { return }
        self = filter { !isStale($0.value) }
        let target = capacity - capacity / 10
        guard count > target else { return }
        for (key, _) in sorted(by: { since($0.value) < since($1.value) }).prefix(count - target) {
            self[key] = nil
        }
    }
}
