// `semidpo bench`: engine (and, once they exist, whole-model) benchmarks with GFLOP/s, peak memory,
// and PyTorch's figures for the same shapes from bench/torch_reference.py in the same invocation.
import ArgumentParser
import Core
import Foundation

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmark the engine against PyTorch on this machine.",
        discussion: """
            Times the reference UNet's building blocks (conv, linear, group norm, attention; forward +
            backward at training sizes) and sgemm 1024³, and reports peak resident memory. When
            `python3 -c "import torch"` works, bench/torch_reference.py runs the same shapes afterwards
            and the ratio PyTorch time / semidpo time is printed (> 1: semidpo is faster).
            Other work on the machine changes the figures: the load average is printed beside them.

            Examples:
              semidpo bench
              semidpo bench --json > bench.json
              semidpo bench --iterations 5 --no-torch
            """)

    /// Whole-model benchmarks (reference UNet: train at batch 32, infer at batch 64, DPO at 16 pairs),
    /// nil until the UNet exists. Adding them is this one line, e.g.
    /// `static let modelBenchmarks: ModelBenchmarks? = { iterations in runModelBenchmarks(iterations: iterations) }`.
    typealias ModelBenchmarks = (_ iterations: Int) -> ModelBenchFigures
    static let modelBenchmarks: ModelBenchmarks? = nil

    @Option(help: "Batch size of the building-block benchmarks.")
    var batch = 32

    @Option(help: "Timed repetitions per benchmark (the median is reported).")
    var iterations = 10

    @Option(help: "Threads for OpenBLAS and the engine's loops (default: all cores).")
    var threads: Int?

    @Flag(help: "Print one JSON object instead of tables.")
    var json = false

    @Flag(name: .customLong("no-torch"), help: "Skip the PyTorch reference run.")
    var noTorch = false

    @Option(name: .customLong("torch-script"), help: "Path of the PyTorch reference script.")
    var torchScript = "bench/torch_reference.py"

    @Option(name: .customLong("gemm-seconds"), help: "Seconds spent measuring sgemm 1024³.")
    var gemmSeconds = 1.0

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1, got \(batch)") }
        guard iterations >= 1 else { throw ValidationError("--iterations must be at least 1, got \(iterations)") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
        guard gemmSeconds > 0 else { throw ValidationError("--gemm-seconds must be > 0, got \(gemmSeconds)") }
    }

    func run() throws {
        if let threads { Engine.setThreads(threads) }
        let loadBefore = Self.loadAverage()
        let engine = runEngineBenchmarks(batch: batch, iterations: iterations)
        let sgemm = BLASRuntime.sgemmGFLOPS(n: 1024, seconds: gemmSeconds)
        let model = Self.modelBenchmarks?(iterations)
        let peak = ProcessMemory.peakResidentMB()
        let torch = noTorch ? TorchOutcome.skipped("--no-torch") : runTorch()

        let report = BenchReport(version: SemidpoVersion.string, threads: Engine.threads, blasCore: Engine.blasCoreName,
                                 batch: batch, iterations: iterations, loadAverage: loadBefore, engine: engine,
                                 sgemm1024: sgemm, model: model, peakRSSMB: peak, torch: torch)
        if json { print(try report.json()) } else { for line in report.table() { print(line) } }
    }

    // MARK: PyTorch

    enum TorchOutcome {
        case skipped(String)
        case ran(TorchFigures)
    }

    struct TorchFigures: Decodable {
        let torchVersion: String
        let threads: Int
        let peakRSSMB: Double?
        let results: [TorchResult]
        enum CodingKeys: String, CodingKey {
            case torchVersion = "torch_version", threads, peakRSSMB = "peak_rss_mb", results
        }
    }

    struct TorchResult: Decodable {
        let name: String
        let milliseconds: Double
        let bestMilliseconds: Double?
        let gflops: Double?
        enum CodingKeys: String, CodingKey { case name, milliseconds, bestMilliseconds = "best_milliseconds", gflops }
    }

    /// Runs the reference script if `python3` can import torch; a failure becomes a note, not an error.
    func runTorch() -> TorchOutcome {
        let check = Self.python(["-c", "import torch"])
        guard check.status == 0 else { return .skipped("python3 cannot import torch") }
        guard FileManager.default.fileExists(atPath: torchScript) else {
            return .skipped("\(torchScript) not found (run from the repository root or pass --torch-script)")
        }
        let r = Self.python([torchScript, "--batch", "\(batch)", "--iterations", "\(iterations)",
                             "--threads", "\(Engine.threads)"])
        guard r.status == 0 else {
            return .skipped("\(torchScript) failed (exit \(r.status)): \(r.stderr.split(separator: "\n").last ?? "")")
        }
        do { return .ran(try JSONDecoder().decode(TorchFigures.self, from: Data(r.stdout.utf8))) } catch {
            return .skipped("\(torchScript) printed output that is not the expected JSON: \(error)")
        }
    }

    static func python(_ arguments: [String]) -> (status: Int32, stdout: String, stderr: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3"] + arguments
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        do { try p.run() } catch { return (127, "", "\(error)") }
        // Read before waiting so a large output cannot fill the pipe and block the child.
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    /// The 1-minute load average from /proc/loadavg (other work on the machine skews the timings).
    static func loadAverage() -> Double? {
        guard let s = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return nil }
        return s.split(separator: " ").first.flatMap { Double($0) }
    }
}

/// Everything one `semidpo bench` measured, rendered as tables or one JSON object.
struct BenchReport {
    let version: String
    let threads: Int
    let blasCore: String
    let batch: Int
    let iterations: Int
    let loadAverage: Double?
    let engine: [BenchResult]
    let sgemm1024: Double
    let model: ModelBenchFigures?
    let peakRSSMB: Double?
    let torch: BenchCommand.TorchOutcome

    static let noModelNote = "whole-model figures (train_images_per_s, infer_images_per_s, dpo_pairs_per_s) " +
        "need the reference UNet, which is not built yet; only its building blocks are measured"

    var torchByName: [String: BenchCommand.TorchResult] {
        guard case .ran(let t) = torch else { return [:] }
        return Dictionary(t.results.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// PyTorch time / semidpo time per benchmark, from the medians (> 1: semidpo is faster).
    var ratios: [String: Double] {
        let t = torchByName
        var out: [String: Double] = [:]
        for r in engine { if let tr = t[r.name], r.milliseconds > 0 { out[r.name] = tr.milliseconds / r.milliseconds } }
        return out
    }

    /// The same from the fastest runs: on a loaded machine the least disturbed comparison.
    var bestRatios: [String: Double] {
        let t = torchByName
        var out: [String: Double] = [:]
        for r in engine {
            if let tb = t[r.name]?.bestMilliseconds, r.bestMilliseconds > 0 { out[r.name] = tb / r.bestMilliseconds }
        }
        return out
    }

    func table() -> [String] {
        var lines: [String] = []
        let load = loadAverage.map { String(format: ", load average %.1f", $0) } ?? ""
        lines.append("semidpo \(version) bench: batch \(batch), median of \(iterations), \(threads) threads, BLAS \(blasCore)\(load)")
        lines.append("")
        let t = torchByName
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
        lines.append("ms: median wall time, best: fastest run, cpu ms: median CPU time of all threads (least disturbed by other load)")
        lines.append(pad("benchmark", 36) + pad("shape", 34) + lpad("ms", 9) + lpad("best", 9) + lpad("cpu ms", 9) + lpad("GFLOP/s", 9)
                     + lpad("torch ms", 10) + lpad("torch GF/s", 11) + lpad("ratio", 7) + lpad("best ratio", 11))
        for r in engine {
            let tr = t[r.name]
            lines.append(pad(r.name, 36) + pad(r.shape, 34)
                         + lpad(String(format: "%.3f", r.milliseconds), 9)
                         + lpad(String(format: "%.3f", r.bestMilliseconds), 9)
                         + lpad(String(format: "%.3f", r.cpuMilliseconds), 9)
                         + lpad(r.gflops.map { String(format: "%.1f", $0) } ?? "-", 9)
                         + lpad(tr.map { String(format: "%.3f", $0.milliseconds) } ?? "-", 10)
                         + lpad(tr?.gflops.map { String(format: "%.1f", $0) } ?? "-", 11)
                         + lpad(tr.map { String(format: "%.2f", $0.milliseconds / r.milliseconds) } ?? "-", 7)
                         + lpad(tr?.bestMilliseconds.map { String(format: "%.2f", $0 / r.bestMilliseconds) } ?? "-", 11))
        }
        lines.append("")
        lines.append(String(format: "sgemm 1024³:   %.1f GFLOP/s", sgemm1024))
        if let m = model {
            lines.append(String(format: "train:         %.1f images/s (batch 32)%@", m.trainImagesPerSecond,
                                m.trainGFLOPS.map { String(format: ", %.1f GFLOP/s", $0) } ?? ""))
            lines.append(String(format: "infer:         %.1f images/s (batch 64)", m.inferImagesPerSecond))
            lines.append(String(format: "DPO:           %.1f pairs/s (16 pairs)", m.dpoPairsPerSecond))
            for d in m.details { lines.append(String(format: "  %@ %@: %.3f ms", d.name, d.shape, d.milliseconds)) }
        } else {
            lines.append("note:          " + BenchReport.noModelNote)
        }
        lines.append("peak memory:   " + (peakRSSMB.map { String(format: "%.1f MB (VmHWM)", $0) } ?? "unknown (no /proc)"))
        switch torch {
        case .skipped(let why): lines.append("PyTorch:       not run: \(why)")
        case .ran(let f):
            lines.append("PyTorch:       \(f.torchVersion), \(f.threads) threads, peak memory "
                         + (f.peakRSSMB.map { String(format: "%.1f MB", $0) } ?? "unknown"))
            lines.append("ratio = PyTorch ms / semidpo ms from the medians, best ratio from the fastest runs (> 1: semidpo is faster)")
        }
        return lines
    }

    func json() throws -> String {
        var o: [String: Any] = [
            "semidpo_version": version,
            "threads": threads,
            "blas_core": blasCore,
            "batch": batch,
            "iterations": iterations,
            "sgemm_1024_gflops": sgemm1024,
            "engine": engine.map { r -> [String: Any] in
                var e: [String: Any] = ["name": r.name, "shape": r.shape, "milliseconds": r.milliseconds,
                                         "best_milliseconds": r.bestMilliseconds, "cpu_milliseconds": r.cpuMilliseconds]
                if let g = r.gflops { e["gflops"] = g }
                return e
            },
        ]
        if let loadAverage { o["load_average"] = loadAverage }
        if let peakRSSMB { o["peak_rss_mb"] = peakRSSMB }
        if let m = model {
            o["train_images_per_s"] = m.trainImagesPerSecond
            o["infer_images_per_s"] = m.inferImagesPerSecond
            o["dpo_pairs_per_s"] = m.dpoPairsPerSecond
            if let g = m.trainGFLOPS { o["train_gflops"] = g }
        } else {
            o["note"] = BenchReport.noModelNote
        }
        switch torch {
        case .skipped(let why): o["torch"] = ["skipped": why]
        case .ran(let f):
            var t: [String: Any] = [
                "version": f.torchVersion, "threads": f.threads,
                "engine": f.results.map { r -> [String: Any] in
                    var e: [String: Any] = ["name": r.name, "milliseconds": r.milliseconds]
                    if let b = r.bestMilliseconds { e["best_milliseconds"] = b }
                    if let g = r.gflops { e["gflops"] = g }
                    return e
                },
                "ratios": ratios,
                "best_ratios": bestRatios,
            ]
            if let p = f.peakRSSMB { t["peak_rss_mb"] = p }
            o["torch"] = t
        }
        let data = try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
