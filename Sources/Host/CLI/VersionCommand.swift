// `semidpo version`: version, BLAS kernels in use and their self-check, threads, FTZ/DAZ.
import ArgumentParser
import Core
import Foundation

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version",
        abstract: "Print the version, the OpenBLAS kernels in use and their self-check.",
        discussion: """
            semidpo chooses OpenBLAS kernels the CPU supports when OpenBLAS picked generic ones (it sets \
            OPENBLAS_CORETYPE and restarts itself; a value you set is never overridden), then checks one \
            GEMM against a plain loop and falls back to safe kernels if the check fails.
            """)

    @Flag(name: .customLong("gemm-bench"), help: "Also measure sgemm 1024x1024x1024 throughput (about 2 s).")
    var gemmBench = false

    @Option(name: .long, help: "BLAS threads to use for the benchmark (default: all cores).")
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
    }

    func run() throws {
        if let threads { BLASRuntime.setThreads(threads) }
        for line in VersionCommand.report() { print(line) }
        if gemmBench {
            let g = BLASRuntime.sgemmGFLOPS(n: 1024, seconds: 2)
            print(String(format: "sgemm 1024^3:  %.1f GFLOP/s (%d threads, best of ~2 s)", g, BLASRuntime.threads))
        }
    }

    /// The lines `semidpo version` prints (also used in tests).
    static func report() -> [String] {
        let s = BLASRuntime.status ?? BLASRuntime.currentStatus()
        return [
            "semidpo \(SemidpoVersion.string)",
            "BLAS core:     \(s.core), \(BLASRuntime.kernelClass(of: s.core)) kernels (\(s.selection))",
            "threads:       \(BLASRuntime.threads) (the engine's; OpenBLAS runs single-threaded inside each)",
            "self-check:    \(s.checkText)",
            "CPU:           \(s.cpuFeatures)",
            "FTZ/DAZ:       \(s.flushToZero ? "on" : "off")",
        ]
    }
}
