// Benchmark entry points for the tabular stages at Pick-a-Pic scale: wall time and peak RSS (VmHWM).
import Foundation

/// Peak resident set size of this process in MiB (`VmHWM` of /proc/self/status), or nil off Linux.
public func peakResidentMiB() -> Double? {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let kb = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { Double($0) }
        return kb.map { $0 / 1024 }
    }
    return nil
}

/// Resets the kernel's peak-RSS mark to the current RSS (writes 5 to /proc/self/clear_refs), so a
/// following `peakResidentMiB()` measures one stage. Returns false if the kernel refused.
@discardableResult
public func resetPeakResident() -> Bool {
    let fd = open("/proc/self/clear_refs", O_WRONLY)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    return write(fd, "5", 1) == 1
}

/// One benchmark measurement.
public struct BenchFigures: CustomStringConvertible {
    public var name: String
    /// Wall seconds of each repetition.
    public var seconds: [Double]
    /// Peak RSS (MiB) over the run, after resetting the mark at its start; baseline = RSS before.
    public var peakMiB: Double?
    public var baselineMiB: Double?
    public var summary: String
    /// CPU seconds (user + system, all threads) of each repetition: robust to other processes competing
    /// for the cores; on an idle 2-core machine wall ≈ CPU / 2 for the parallel parts.
    public var cpuSeconds: [Double] = []
    public var description: String {
        let t = seconds.map { String(format: "%.3f", $0) }.joined(separator: ", ")
        let best = seconds.min() ?? .nan
        let c = cpuSeconds.map { String(format: "%.3f", $0) }.joined(separator: ", ")
        return "\(name): best \(String(format: "%.3f", best)) s of [\(t)] wall, CPU [\(c)] s; peak RSS \(peakMiB.map { String(format: "%.0f", $0) } ?? "?") MiB "
            + "(baseline \(baselineMiB.map { String(format: "%.0f", $0) } ?? "?") MiB); \(summary)"
    }
}

func currentResidentMiB() -> Double? {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { Double($0) }.map { $0 / 1024 }
    }
    return nil
}

/// User + system CPU seconds of this process so far (all threads).
func cpuSecondsUsed() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) * 1e-6 + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) * 1e-6
}

func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Times `partitionScores` end to end (map, scan, partition, write outputs) `repeats` times.
public func benchPartition(path: String, out: String, members: [String]? = nil,
                           rule: ConsensusRule = .unanimous(), testFraction: Double = 0.02,
                           seed: UInt64 = 42, repeats: Int = 3) throws -> BenchFigures {
    let base = currentResidentMiB()
    resetPeakResident()
    var times: [Double] = [], cpu: [Double] = [], report: PartitionReport? = nil
    for _ in 0..<max(1, repeats) {
        let t0 = monotonicSeconds(), c0 = cpuSecondsUsed()
        report = try partitionScores(path: path, out: out, members: members, rule: rule,
                                     testFraction: testFraction, seed: seed)
        times.append(monotonicSeconds() - t0); cpu.append(cpuSecondsUsed() - c0)
    }
    let r = report!
    return BenchFigures(name: "partition_scores", seconds: times, peakMiB: peakResidentMiB(), baselineMiB: base,
                        summary: "\(r.total) pairs × \(r.members.count) members, \(r.clean) clean (\(String(format: "%.4f", r.cleanFraction))), "
                            + "\(r.cleanTest) held out, \(r.noisy) noisy", cpuSeconds: cpu)
}
