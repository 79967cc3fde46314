// Progress reporting for long loops: a bar with rate and ETA on a terminal, plain periodic lines
// (at most every ~2 s) when stderr is a file or pipe.
import Foundation

/// A progress reporter on stderr: `let p = ProgressBar(total: 1000, label: "train"); p.advance(by: 32); p.finish()`.
/// Thread-safe. (Named ProgressBar because Foundation already has a `Progress`.)
public final class ProgressBar: @unchecked Sendable {
    public let total: Int
    public let label: String
    public private(set) var count = 0
    public private(set) var isFinished = false
    private let isTerminal: Bool
    private let write: (String) -> Void
    private let start: Double
    private var lastDraw: Double = -1
    private let lock = NSLock()
    /// Minimum seconds between redraws on a terminal, and between plain lines otherwise.
    private let terminalInterval = 0.1, plainInterval = 2.0

    /// `total` ≤ 0 means unknown: the count and rate are shown without a bar or ETA.
    /// `terminal` defaults to whether stderr is a TTY; `output` defaults to stderr (nothing on MPI ranks other than 0).
    public init(total: Int, label: String, terminal: Bool? = nil, output: ((String) -> Void)? = nil) {
        self.total = total
        self.label = label
        self.isTerminal = terminal ?? (isatty(2) != 0)
        // Under MPI only rank 0 draws (the other ranks' bars would repeat it).
        self.write = output ?? (Cluster.rank != 0 ? { _ in } : { s in FileHandle.standardError.write(Data(s.utf8)) })
        self.start = ProgressBar.now()
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// Adds `n` to the count and redraws when due.
    public func advance(by n: Int = 1) {
        lock.lock(); defer { lock.unlock() }
        guard !isFinished else { return }
        count += n
        let t = ProgressBar.now()
        let interval = isTerminal ? terminalInterval : plainInterval
        if lastDraw < 0 && !isTerminal { lastDraw = start }  // first plain line after 2 s, not at once
        if t - lastDraw >= interval {
            lastDraw = t
            draw(at: t, final: false)
        }
    }

    /// Draws the final state and ends the line. Further calls do nothing.
    public func finish() {
        lock.lock(); defer { lock.unlock() }
        guard !isFinished else { return }
        isFinished = true
        draw(at: ProgressBar.now(), final: true)
    }

    /// The line shown for `count` items after `elapsed` seconds (no bar, no escape codes).
    public func statusText(elapsed: Double) -> String {
        let rate = elapsed > 0 ? Double(count) / elapsed : 0
        var s = "\(label): \(count)"
        if total > 0 { s += "/\(total) (\(Int((100 * Double(count) / Double(total)).rounded(.down)))%)" }
        s += ", \(ProgressBar.formatRate(rate))/s, \(ProgressBar.formatTime(elapsed)) elapsed"
        if total > 0 && count < total && rate > 0 {
            s += ", ETA \(ProgressBar.formatTime(Double(total - count) / rate))"
        }
        return s
    }

    private func draw(at t: Double, final: Bool) {
        let elapsed = t - start
        if isTerminal {
            var bar = ""
            if total > 0 {
                let width = 24
                let filled = min(width, Int(Double(width) * Double(count) / Double(total)))
                bar = "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "] "
            }
            write("\r\u{1B}[2K" + bar + statusText(elapsed: elapsed) + (final ? "\n" : ""))
        } else {
            write(statusText(elapsed: elapsed) + (final ? " (done)" : "") + "\n")
        }
    }

    static func formatRate(_ r: Double) -> String {
        if r >= 100 { return String(format: "%.0f", r) }
        if r >= 10 { return String(format: "%.1f", r) }
        return String(format: "%.2f", r)
    }

    static func formatTime(_ s: Double) -> String {
        let t = Int(s.rounded())
        if t >= 3600 { return String(format: "%d:%02d:%02d", t / 3600, (t / 60) % 60, t % 60) }
        return String(format: "%d:%02d", t / 60, t % 60)
    }
}
