// Process measurements for benchmarks: peak and current resident memory, CPU time, a monotonic clock.
import Foundation

/// Peak resident set size of this process in MiB (`VmHWM` of /proc/self/status), or nil off Linux.
public func peakResidentMiB() -> Double? { procStatusMiB("VmHWM") }

/// Resets the kernel's peak-RSS mark to the current RSS (writes 5 to /proc/self/clear_refs), so a
/// following `peakResidentMiB()` measures one stage. Returns false if the kernel refused.
@discardableResult
public func resetPeakResident() -> Bool {
    let fd = open("/proc/self/clear_refs", O_WRONLY)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    return write(fd, "5", 1) == 1
}

/// Current resident set size in MiB (`VmRSS`), or nil off Linux.
public func currentResidentMiB() -> Double? { procStatusMiB("VmRSS") }

/// A `kB` field of /proc/self/status (e.g. "VmHWM:     123456 kB") in MiB.
private func procStatusMiB(_ key: String) -> Double? {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix(key + ":") {
        return line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { Double($0) }.map { $0 / 1024 }
    }
    return nil
}

/// User + system CPU seconds of this process so far (all threads).
public func cpuSecondsUsed() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) * 1e-6 + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) * 1e-6
}

/// Seconds on CLOCK_MONOTONIC (for timing stages; not wall-clock time of day).
public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
