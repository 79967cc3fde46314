// `semidpo bench`: engine building-block and whole-model benchmarks with GFLOP/s, peak memory, and
// PyTorch's figures for the same work from bench/torch_reference.py in the same invocation.
import ArgumentParser
import Core
import Foundation

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmark the engine against PyTorch on this machine.",
        discussion: """
            Times the reference UNet's building blocks (conv, linear, group norm, attention; forward + \
            backward at training sizes) and sgemm 1024³, then the whole reference model: training step \
            at batch 32, forward at batch 64, a Diffusion-DPO step at 16 pairs and guided DDIM sampling \
            at batch 64 (with the sampler's Winograd 3×3 convolutions, and again with training's im2col \
            ones); and reports peak resident memory. When `python3 -c "import torch"` works, \
            bench/torch_reference.py runs the same work afterwards and the ratio PyTorch time / semidpo \
            time is printed (> 1: semidpo is faster). \
            Other work on the machine changes the figures: the load average is printed beside them.

            Examples:
              semidpo bench
              semidpo bench --model-only --threads 1
              semidpo bench --json > bench.json
              semidpo bench --iterations 5 --no-torch
            """)

    /// Whole-model benchmarks (reference UNet: train at batch 32, infer at batch 64, DPO at 16 pairs,
    /// guided sampling at batch 64).
    typealias ModelBenchmarks = (_ iterations: Int) throws -> ModelBenchFigures
    static let modelBenchmarks: ModelBenchmarks? = { iterations in
        var sizes = ModelBenchSizes(); sizes.iterations = iterations
        return try ModelBenchFigures(results: runModelBenchmarks(sizes: sizes))
    }

    @Option(help: "Batch size of the building-block benchmarks.")
    var batch = 32

    @Option(help: "Timed repetitions per benchmark (the median is reported).")
    var iterations = 10

    @Option(help: "Engine threads (default: all cores; OpenBLAS itself runs single-threaded).")
    var threads: Int?

    @Flag(help: "Print one JSON object instead of tables.")
    var json = false

    @Flag(name: .customLong("no-torch"), help: "Skip the PyTorch reference run.")
    var noTorch = false

    @Flag(name: .customLong("model-only"), help: "Only the whole-model benchmarks (skip the building blocks and sgemm).")
    var modelOnly = false

    @Flag(name: .customLong("no-model"), help: "Only the building blocks and sgemm (skip the whole-model benchmarks).")
    var noModel = false

    @Option(name: .customLong("torch-script"), help: "Path of the PyTorch reference script.")
    var torchScript = "bench/torch_reference.py"

    @Option(name: .customLong("gemm-seconds"), help: "Seconds spent measuring sgemm 1024³.")
    var gemmSeconds = 1.0

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1, got \(batch)") }
        guard iterations >= 1 else { throw ValidationError("--iterations must be at least 1, got \(iterations)") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
        guard gemmSeconds > 0 else { throw ValidationError("--gemm-seconds must be > 0, got \(gemmSeconds)") }
        guard !(modelOnly && noModel) else { throw ValidationError("--model-only and --no-model exclude each other") }
    }

    func run() throws {
        if let threads { Engine.setThreads(threads) }
        let loadBefore = Self.loadAverage()
        let engine = modelOnly ? [] : runEngineBenchmarks(batch: batch, iterations: iterations)
        let sgemm = modelOnly ? nil : BLASRuntime.sgemmGFLOPS(n: 1024, seconds: gemmSeconds)
        let model = noModel ? nil : try Self.modelBenchmarks?(iterations)
        let peak = peakResidentMiB()
        let loadAfter = Self.loadAverage()
        let torch = noTorch || modelOnly ? TorchOutcome.skipped(noTorch ? "--no-torch" : "--model-only") : runTorch(model: false)
        let torchModel = noTorch || noModel ? TorchOutcome.skipped(noTorch ? "--no-torch" : "--no-model") : runTorch(model: true)

        let report = BenchReport(version: SemidpoVersion.string, threads: Engine.threads, blasCore: Engine.blasCoreName,
                                 batch: batch, iterations: iterations, loadAverage: loadBefore, loadAverageAfter: loadAfter,
                                 engine: engine, sgemm1024: sgemm, model: model, peakRSSMB: peak, torch: torch,
                                 torchModel: torchModel)
        if json { print(try report.json()) } else { for line in report.table() { print(line) } }
    }

    // MARK: PyTorch

    enum TorchOutcome {
        case skipped(String)
        case ran(TorchFigures)
    }

    /// What `bench/torch_reference.py` prints (one JSON object), read with the project's JSON parser.
    struct TorchFigures {
        let torchVersion: String
        let threads: Int
        let peakRSSMB: Double?
        let parameters: Int?
        let results: [TorchResult]

        init(json text: String) throws {
            let v = try JSON.parse(text, name: "the script's output")
            func need<T>(_ x: T?, _ key: String, _ type: String) throws -> T {
                guard let x else { throw CoreError("key '\(key)' missing or not \(type)") }
                return x
            }
            torchVersion = try need(v["torch_version"]?.stringValue, "torch_version", "a string")
            threads = try need(v["threads"]?.intValue, "threads", "an integer")
            peakRSSMB = v["peak_rss_mb"]?.doubleValue
            parameters = v["parameters"]?.intValue
            results = try need(v["results"]?.arrayValue, "results", "a list").enumerated().map { k, r in
                TorchResult(name: try need(r["name"]?.stringValue, "results[\(k)].name", "a string"),
                            milliseconds: try need(r["milliseconds"]?.doubleValue, "results[\(k)].milliseconds", "a number"),
                            bestMilliseconds: r["best_milliseconds"]?.doubleValue,
                            gflops: r["gflops"]?.doubleValue, perSecond: r["per_second"]?.doubleValue)
            }
        }
    }

    struct TorchResult {
        let name: String
        let milliseconds: Double
        let bestMilliseconds: Double?
        let gflops: Double?
        let perSecond: Double?
    }

    /// Runs the reference script (building blocks, or with `--model` the whole model) if `python3` can
    /// import torch; a failure becomes a note, not an error.
    func runTorch(model: Bool) -> TorchOutcome {
        let check = Self.python(["-c", "import torch"])
        guard check.status == 0 else { return .skipped("python3 cannot import torch") }
        guard FileManager.default.fileExists(atPath: torchScript) else {
            return .skipped("\(torchScript) not found (run from the repository root or pass --torch-script)")
        }
        let r = Self.python([torchScript, "--batch", "\(model ? 32 : batch)", "--iterations", "\(iterations)",
                             "--threads", "\(Engine.threads)"] + (model ? ["--model"] : []))
        guard r.status == 0 else {
            return .skipped("\(torchScript) failed (exit \(r.status)): \(r.stderr.split(separator: "\n").last ?? "")")
        }
        do { return .ran(try TorchFigures(json: r.stdout)) } catch {
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
    let loadAverageAfter: Double?
    let engine: [BenchResult]
    let sgemm1024: Double?
    let model: ModelBenchFigures?
    let peakRSSMB: Double?
    let torch: BenchCommand.TorchOutcome
    let torchModel: BenchCommand.TorchOutcome

    static func byName(_ outcome: BenchCommand.TorchOutcome) -> [String: BenchCommand.TorchResult] {
        guard case .ran(let t) = outcome else { return [:] }
        return Dictionary(t.results.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    }
    var torchByName: [String: BenchCommand.TorchResult] { Self.byName(torch) }
    var torchModelByName: [String: BenchCommand.TorchResult] { Self.byName(torchModel) }

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

    /// The torch twin's row for one of our model rows (its sampling row times one guided step).
    static func torchModelName(_ name: String) -> String { name.hasPrefix("sampling_") ? "sampling_guided_ddim_step" : name }

    /// Model ratios (PyTorch ms / semidpo ms per iteration of the same work) by our row name, from
    /// the medians and from the fastest runs.
    var modelRatios: (median: [String: Double], best: [String: Double]) {
        guard let m = model else { return ([:], [:]) }
        let t = torchModelByName
        var med: [String: Double] = [:], best: [String: Double] = [:]
        for r in m.results {
            guard let tr = t[Self.torchModelName(r.name)] else { continue }
            med[r.name] = tr.milliseconds / r.milliseconds
            if let b = tr.bestMilliseconds { best[r.name] = b / r.bestMilliseconds }
        }
        return (med, best)
    }

    static let jsonModelKeys = ["train_step": "train", "forward": "infer", "dpo_step": "dpo", "sampling_guided_ddim": "sampling"]

    func table() -> [String] {
        var lines: [String] = []
        func load(_ v: Double?) -> String { v.map { String(format: "%.1f", $0) } ?? "?" }
        lines.append("semidpo \(version) bench: median of \(iterations), \(threads) threads, BLAS \(blasCore), "
                     + "load average \(load(loadAverage)) at start, \(load(loadAverageAfter)) after ours")
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
        func f(_ v: Double?, _ format: String) -> String { v.map { String(format: format, $0) } ?? "-" }
        if !engine.isEmpty {
            let t = torchByName
            lines.append("")
            lines.append("building blocks, batch \(batch) — ms: median wall time, best: fastest run, cpu ms: median CPU time of all threads")
            lines.append(pad("benchmark", 36) + pad("shape", 34) + lpad("ms", 9) + lpad("best", 9) + lpad("cpu ms", 9) + lpad("GFLOP/s", 9)
                         + lpad("torch ms", 10) + lpad("torch GF/s", 11) + lpad("ratio", 7) + lpad("best ratio", 11))
            for r in engine {
                let tr = t[r.name]
                lines.append(pad(r.name, 36) + pad(r.shape, 34)
                             + lpad(String(format: "%.3f", r.milliseconds), 9)
                             + lpad(String(format: "%.3f", r.bestMilliseconds), 9)
                             + lpad(String(format: "%.3f", r.cpuMilliseconds), 9)
                             + lpad(f(r.gflops, "%.1f"), 9)
                             + lpad(f(tr?.milliseconds, "%.3f"), 10)
                             + lpad(f(tr?.gflops, "%.1f"), 11)
                             + lpad(f(tr.map { $0.milliseconds / r.milliseconds }, "%.2f"), 7)
                             + lpad(f(tr?.bestMilliseconds.map { $0 / r.bestMilliseconds }, "%.2f"), 11))
            }
        }
        if let m = model {
            let t = torchModelByName
            let (med, best) = modelRatios
            lines.append("")
            lines.append("reference model (SPEC §4) — rate from the median; sampling counts denoiser rows (2 per image per guided step),")
            lines.append("with Winograd 3×3 convolutions (sampling_guided_ddim, the sampler's default) or im2col (sampling_im2col)")
            lines.append(pad("benchmark", 22) + lpad("batch", 6) + lpad("ms", 10) + lpad("best", 10) + lpad("cpu ms", 10)
                         + lpad("rate", 10) + pad("  unit/s", 24) + lpad("GFLOP/s", 8)
                         + lpad("torch ms", 10) + lpad("torch rate", 11) + lpad("ratio", 7) + lpad("best ratio", 11))
            for r in m.results {
                let tr = t[Self.torchModelName(r.name)]
                lines.append(pad(r.name, 22) + lpad("\(r.batch)", 6)
                             + lpad(String(format: "%.2f", r.milliseconds), 10)
                             + lpad(String(format: "%.2f", r.bestMilliseconds), 10)
                             + lpad(String(format: "%.2f", r.cpuMilliseconds), 10)
                             + lpad(String(format: "%.1f", r.perSecond), 10) + pad("  \(r.unit)/s", 24)
                             + lpad(String(format: "%.1f", r.gflops), 8)
                             + lpad(f(tr?.milliseconds, "%.2f"), 10) + lpad(f(tr?.perSecond, "%.1f"), 11)
                             + lpad(f(med[r.name], "%.2f"), 7) + lpad(f(best[r.name], "%.2f"), 11))
            }
        }
        lines.append("")
        if let sgemm1024 { lines.append(String(format: "sgemm 1024³:   %.1f GFLOP/s", sgemm1024)) }
        lines.append("peak memory:   " + (peakRSSMB.map { String(format: "%.1f MB (VmHWM of this process)", $0) } ?? "unknown (no /proc)"))
        for (label, outcome) in [("PyTorch:      ", torch), ("PyTorch model:", torchModel)] {
            switch outcome {
            case .skipped(let why): lines.append("\(label) not run: \(why)")
            case .ran(let f):
                lines.append("\(label) \(f.torchVersion), \(f.threads) threads, peak memory "
                             + (f.peakRSSMB.map { String(format: "%.1f MB", $0) } ?? "unknown"))
            }
        }
        if case .ran = torch { lines.append("ratio = PyTorch ms / semidpo ms from the medians, best ratio from the fastest runs (> 1: semidpo is faster)") }
        else if case .ran = torchModel { lines.append("ratio = PyTorch ms / semidpo ms from the medians, best ratio from the fastest runs (> 1: semidpo is faster)") }
        return lines
    }

    func json() throws -> String {
        var o: [String: Any] = [
            "semidpo_version": version,
            "threads": threads,
            "blas_core": blasCore,
            "batch": batch,
            "iterations": iterations,
        ]
        if !engine.isEmpty {
            o["engine"] = engine.map { r -> [String: Any] in
                var e: [String: Any] = ["name": r.name, "shape": r.shape, "milliseconds": r.milliseconds,
                                         "best_milliseconds": r.bestMilliseconds, "cpu_milliseconds": r.cpuMilliseconds]
                if let g = r.gflops { e["gflops"] = g }
                return e
            }
        }
        if let sgemm1024 { o["sgemm_1024_gflops"] = sgemm1024 }
        if let loadAverage { o["load_average"] = loadAverage }
        if let loadAverageAfter { o["load_average_after"] = loadAverageAfter }
        if let peakRSSMB { o["peak_rss_mb"] = peakRSSMB }
        if let m = model {
            o["train_images_per_s"] = m.trainImagesPerSecond
            o["infer_images_per_s"] = m.inferImagesPerSecond
            o["dpo_pairs_per_s"] = m.dpoPairsPerSecond
            o["sampling_evals_per_s"] = m.samplingEvaluationsPerSecond
            if let g = m.trainGFLOPS { o["train_gflops"] = g }
            o["model"] = m.results.map { r -> [String: Any] in
                ["name": r.name, "batch": r.batch, "unit": r.unit, "milliseconds": r.milliseconds,
                 "best_milliseconds": r.bestMilliseconds, "cpu_milliseconds": r.cpuMilliseconds,
                 "per_second": r.perSecond, "gflops": r.gflops]
            }
        }
        func rows(_ f: BenchCommand.TorchFigures) -> [[String: Any]] {
            f.results.map { r -> [String: Any] in
                var e: [String: Any] = ["name": r.name, "milliseconds": r.milliseconds]
                if let b = r.bestMilliseconds { e["best_milliseconds"] = b }
                if let g = r.gflops { e["gflops"] = g }
                if let p = r.perSecond { e["per_second"] = p }
                return e
            }
        }
        switch torch {
        case .skipped(let why): o["torch"] = ["skipped": why]
        case .ran(let f):
            var t: [String: Any] = ["version": f.torchVersion, "threads": f.threads, "engine": rows(f),
                                    "ratios": ratios, "best_ratios": bestRatios]
            if let p = f.peakRSSMB { t["peak_rss_mb"] = p }
            o["torch"] = t
        }
        switch torchModel {
        case .skipped(let why): o["torch_model"] = ["skipped": why]
        case .ran(let f):
            var t: [String: Any] = ["version": f.torchVersion, "threads": f.threads, "model": rows(f)]
            if let p = f.peakRSSMB { t["peak_rss_mb"] = p }
            if let n = f.parameters { t["parameters"] = n }
            let byName = torchModelByName
            for (ours, key) in Self.jsonModelKeys {
                if let p = byName[Self.torchModelName(ours)]?.perSecond {
                    t[key == "sampling" ? "sampling_evals_per_s" : key == "dpo" ? "dpo_pairs_per_s" : "\(key)_images_per_s"] = p
                }
            }
            let (med, best) = modelRatios
            t["ratios"] = Dictionary(uniqueKeysWithValues: med.compactMap { k, v in Self.jsonModelKeys[k].map { ($0, v) } })
            t["best_ratios"] = Dictionary(uniqueKeysWithValues: best.compactMap { k, v in Self.jsonModelKeys[k].map { ($0, v) } })
            if let p = f.peakRSSMB, let ours = peakRSSMB { t["peak_rss_ratio"] = ours / p }
            o["torch_model"] = t
        }
        return try JSON.serialize(any: o)
    }
}
