import CSluiceLinux
import Glibc

/// How many CPUs this process may actually keep busy: the CPUs in its affinity mask, lowered by a
/// cgroup CPU quota when one is set (a container limited to 1.5 CPUs gets 2). The host's core count
/// would oversubscribe a pod or a `taskset`-pinned service.
public enum CPUBudget {
    public static func available() -> Int {
        var budget = affinityCount() ?? Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        if let quota = cgroupQuota() { budget = min(budget, quota) }
        return max(1, budget)
    }

    /// CPUs in this thread's affinity mask.
    static func affinityCount() -> Int? {
        // 1024 CPUs, glibc's cpu_set_t.
        var mask = [UInt8](repeating: 0, count: 128)
        let rc = mask.withUnsafeMutableBytes { sched_getaffinity(0, $0.count, $0.baseAddress) }
        guard rc == 0 else { return nil }
        let count = mask.reduce(0) { $0 + $1.nonzeroBitCount }
        return count > 0 ? count : nil
    }

    /// The CPU quota of this process's cgroup, rounded up to whole CPUs: cgroup v2's `cpu.max`, or v1's
    /// `cpu.cfs_quota_us` over `cpu.cfs_period_us`. Nil when there is none.
    static func cgroupQuota() -> Int? {
        if let line = readFirstLine("/sys/fs/cgroup/cpu.max") {
            let fields = line.split(separator: " ")
            guard fields.count == 2, let quota = Double(fields[0]), let period = Double(fields[1]) else { return nil }
            return wholeCPUs(quota: quota, period: period)
        }
        if let quotaText = readFirstLine("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
            let periodText = readFirstLine("/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
            let quota = Double(quotaText), let period = Double(periodText)
        {
            return wholeCPUs(quota: quota, period: period)
        }
        return nil
    }

    static func wholeCPUs(quota: Double, period: Double) -> Int? {
        guard quota > 0, period > 0 else { return nil }
        return max(1, Int((quota / period).rounded(.up)))
    }

    private static func readFirstLine(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { Syscall.close(fd) }
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        let text = String(decoding: buffer[0..<n], as: UTF8.self)
        return text.split(separator: "\n").first.map { $0.trimmingCharacters() }
    }
}

extension Substring {
    fileprivate func trimmingCharacters() -> String {
        String(self.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
