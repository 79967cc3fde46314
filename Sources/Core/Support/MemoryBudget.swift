// Refusing an allocation the machine cannot hold before it is made: Swift aborts on a failed
// allocation (there is no recoverable out-of-memory), so sizes that come from users are checked here.
import Foundation

public enum MemoryBudget {
    /// `MemAvailable` of /proc/meminfo in bytes (memory the kernel can give without swapping), or
    /// nil where there is no /proc/meminfo.
    public static func availableBytes() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            return line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first
                .flatMap { Int($0) }.map { $0 * 1024 }
        }
        return nil
    }

    /// `8.0 GiB`, `512.0 MiB`.
    public static func describe(bytes: Double) -> String {
        let gib = 1_073_741_824.0, mib = 1_048_576.0
        return bytes >= gib ? String(format: "%.1f GiB", bytes / gib) : String(format: "%.1f MiB", bytes / mib)
    }

    /// Throws unless `count` elements of `elementSize` bytes fit in the memory available now:
    /// `tensor (2147483648 elements) needs 8.0 GiB, but only 6.2 GiB of memory is available`.
    public static func check(count: Int, elementSize: Int, what: String) throws {
        let (bytes, overflow) = count.multipliedReportingOverflow(by: elementSize)
        guard count >= 0, !overflow else { throw CoreError("\(what): \(count) elements of \(elementSize) bytes overflow the address space") }
        guard let available = availableBytes() else { return }
        if bytes > available {
            throw CoreError("\(what) needs \(describe(bytes: Double(bytes))), but only \(describe(bytes: Double(available))) of memory is available")
        }
    }
}
