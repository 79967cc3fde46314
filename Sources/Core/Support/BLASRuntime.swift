// Getting OpenBLAS onto fast kernels (SPEC §5): pick a core the CPU supports when OpenBLAS chose a
// generic one, re-exec so the library reads it at load, verify one GEMM, fall back if it is wrong.
import CBLAS
import CKernels
import Foundation

public enum BLASRuntime {
    /// The variable OpenBLAS reads when it loads (before `main`).
    public static let coreVariable = "OPENBLAS_CORETYPE"
    /// Set by semidpo when it re-executes itself: `auto:<detected core>` or `fallback:<failed core>`.
    public static let markerVariable = "SEMIDPO_BLAS_REEXEC"
    /// The core used after a failed self-check: generic SSE3 kernels every x86-64 CPU runs.
    public static let safeCore = "Prescott"

    /// What the process ended up with, for `semidpo version` and run manifests.
    public struct Status: Sendable {
        /// OpenBLAS's name for the kernels in use.
        public var core: String
        /// How the core was chosen (`detected by OpenBLAS`, `set by user`, `selected Haswell (OpenBLAS detected Prescott)`, …).
        public var selection: String
        /// The engine's threads (OpenBLAS itself runs single-threaded inside each of them).
        public var threads: Int
        public var checkPassed: Bool
        /// Largest |C - C_ref| / (|A||B| scale) over the self-check GEMMs.
        public var checkError: Double
        public var flushToZero: Bool
        public var cpuFeatures: String

        /// `passed (max error 3.1e-08)` / `FAILED (…)`.
        public var checkText: String {
            (checkPassed ? "passed" : "FAILED") + String(format: " (sgemm 64x48x80 with transposes vs reference, max error %.1e)", checkError)
        }
    }

    /// The instruction set of an OpenBLAS core's kernels: `AVX-512`, `AVX2+FMA`, `AVX` or `SSE (generic)`.
    public static func kernelClass(of core: String) -> String {
        switch core.lowercased() {
        case "skylakex", "cooperlake", "sapphirerapids": return "AVX-512"
        case "haswell", "zen", "excavator": return "AVX2+FMA"
        case "sandybridge", "bulldozer", "piledriver", "steamroller": return "AVX"
        default: return "SSE (generic)"
        }
    }

    /// The status computed by `configureProcess` (nil before it ran).
    public nonisolated(unsafe) private(set) static var status: Status?

    /// Call first thing in `main`. Turns on FTZ/DAZ; if the user did not set `OPENBLAS_CORETYPE`
    /// and OpenBLAS picked weaker kernels than the CPU supports, sets it (SkylakeX with AVX-512,
    /// Haswell with AVX2+FMA) and re-executes `/proc/self/exe` with the same arguments. Then checks
    /// one GEMM against a plain loop; on failure warns and re-executes with `Prescott` (unless the
    /// user chose the core: a user's value is never overridden). Returns the resulting status.
    @discardableResult
    public static func configureProcess(arguments: [String]) -> Status {
        ck_enable_ftz_daz()
        let env = ProcessInfo.processInfo.environment
        let userCore = env[markerVariable] == nil ? env[coreVariable] : nil
        let marker = env[markerVariable]
        let actual = String(cString: ck_openblas_corename())
        // Testing hooks: pretend OpenBLAS chose another core / pretend the self-check failed, so
        // the re-exec and fallback paths can be exercised on a CPU OpenBLAS identifies correctly.
        let simulated = marker == nil ? env["SEMIDPO_BLAS_SIMULATE_DETECTED"] : nil
        let detected = simulated ?? actual
        var selection: String
        if let userCore {
            selection = "set by user (\(coreVariable)=\(userCore))"
        } else if let marker, marker.hasPrefix("auto:") {
            selection = "selected \(env[coreVariable] ?? detected) by semidpo (OpenBLAS detected \(marker.dropFirst(5)))"
        } else if let marker, marker.hasPrefix("fallback:") {
            selection = "fallback to \(safeCore) after \(marker.dropFirst(9)) failed the self-check"
        } else {
            selection = "detected by OpenBLAS"
            if let wanted = preferredCore(), !isAcceptable(detected: detected, for: wanted) {
                reexec(arguments, core: wanted, marker: "auto:\(detected)")
                selection += " (re-exec with \(wanted) failed)"
            }
        }
        var check = selfCheck()
        if env["SEMIDPO_BLAS_SIMULATE_CHECK_FAILURE"] != nil, marker?.hasPrefix("fallback:") != true {
            check.passed = false
        }
        if !check.passed {
            let msg = String(format: "semidpo: warning: OpenBLAS core %@ failed the GEMM self-check (max error %.2e)", actual, check.maxError)
            if userCore != nil {
                FileHandle.standardError.write(Data((msg + "; keeping the user's \(coreVariable)\n").utf8))
            } else if marker?.hasPrefix("fallback:") != true {
                FileHandle.standardError.write(Data((msg + "; falling back to \(safeCore)\n").utf8))
                reexec(arguments, core: safeCore, marker: "fallback:\(actual)")
            } else {
                FileHandle.standardError.write(Data((msg + " even with the fallback; results may be wrong\n").utf8))
            }
        }
        let s = Status(core: actual, selection: selection, threads: Engine.threads,
                       checkPassed: check.passed, checkError: check.maxError,
                       flushToZero: ck_ftz_daz_enabled() != 0, cpuFeatures: cpuFeatures())
        status = s
        return s
    }

    /// The status without re-executing (for tests and Swift programs other than `semidpo`).
    public static func currentStatus() -> Status {
        if let status { return status }
        let check = selfCheck()
        return Status(core: String(cString: ck_openblas_corename()), selection: "detected by OpenBLAS",
                      threads: Engine.threads, checkPassed: check.passed, checkError: check.maxError,
                      flushToZero: ck_ftz_daz_enabled() != 0, cpuFeatures: cpuFeatures())
    }

    /// `AVX-512`, `AVX2+FMA` or `baseline x86-64`.
    public static func cpuFeatures() -> String {
        ck_has_avx512() != 0 ? "AVX-512" : ck_has_avx2_fma() != 0 ? "AVX2+FMA" : "baseline x86-64"
    }

    /// The OpenBLAS core for this CPU: SkylakeX only with AVX-512 (it dies with an illegal
    /// instruction otherwise), Haswell with AVX2+FMA, nil when OpenBLAS's own choice must do.
    public static func preferredCore() -> String? {
        if ck_has_avx512() != 0 { return "SkylakeX" }
        if ck_has_avx2_fma() != 0 { return "Haswell" }
        return nil
    }

    /// Whether OpenBLAS's `detected` core is at least as good as `wanted`.
    public static func isAcceptable(detected: String, for wanted: String) -> Bool {
        let d = detected.lowercased()
        let avx512 = ["skylakex", "cooperlake", "sapphirerapids"]
        if wanted == "SkylakeX" { return avx512.contains(d) }
        if wanted == "Haswell" { return ["haswell", "zen"].contains(d) || (ck_has_avx512() != 0 && avx512.contains(d)) }
        return true
    }

    private static func reexec(_ arguments: [String], core: String, marker: String) {
        setenv(coreVariable, core, 1)
        setenv(markerVariable, marker, 1)
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        argv.append(nil)
        execv("/proc/self/exe", &argv)
        // Only reached when exec failed: carry on with the kernels we have.
        let err = String(cString: strerror(errno))
        FileHandle.standardError.write(Data("semidpo: warning: could not re-execute with \(coreVariable)=\(core): \(err)\n".utf8))
        unsetenv(coreVariable)
        unsetenv(markerVariable)
        for p in argv { free(p) }
    }

    /// Runs C = 1.5·op(A)·op(B) + 0.5·C for (NoTrans, Trans) and (Trans, NoTrans) with
    /// M=64, N=48, K=80 through cblas_sgemm and compares with a Double triple loop. Passes when
    /// every |C - C_ref| ≤ 1e-4 · Σ_k |a_ik b_kj| (+ the scaled |C0| term).
    public static func selfCheck() -> (passed: Bool, maxError: Double) {
        let m = 64, n = 48, k = 80
        var rng = RandomStream(seed: 20241128)
        let a = (0..<(m * k)).map { _ in Float(rng.uniform(-1, 1)) }
        let b = (0..<(k * n)).map { _ in Float(rng.uniform(-1, 1)) }
        let c0 = (0..<(m * n)).map { _ in Float(rng.uniform(-1, 1)) }
        var worst = 0.0
        var passed = true
        for (transA, transB) in [(false, true), (true, false)] {
            // A is (m×k) or stored transposed (k×m); B is (k×n) or stored transposed (n×k); row-major.
            var c = c0
            let lda = transA ? m : k, ldb = transB ? k : n
            cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                        Int32(m), Int32(n), Int32(k), 1.5, a, Int32(lda), b, Int32(ldb), 0.5, &c, Int32(n))
            for i in 0..<m {
                for j in 0..<n {
                    var sum = 0.0, scale = 0.0
                    for p in 0..<k {
                        let av = Double(transA ? a[p * m + i] : a[i * k + p])
                        let bv = Double(transB ? b[j * k + p] : b[p * n + j])
                        sum += av * bv
                        scale += abs(av * bv)
                    }
                    let ref = 1.5 * sum + 0.5 * Double(c0[i * n + j])
                    let err = abs(Double(c[i * n + j]) - ref) / (1.5 * scale + 0.5 * abs(Double(c0[i * n + j])) + 1e-30)
                    if !(err <= 1e-4) { passed = false }  // catches NaN too
                    worst = max(worst, err.isNaN ? .infinity : err)
                }
            }
        }
        return (passed, worst)
    }

    /// Sets the engine's thread count (n ≥ 1): `Engine.setThreads`. OpenBLAS itself stays at one
    /// thread; the engine splits GEMMs across its own threads.
    public static func setThreads(_ n: Int) {
        Engine.setThreads(n)
        status?.threads = Engine.threads
    }

    /// The engine's thread count (`Engine.threads`).
    public static var threads: Int { Engine.threads }

    /// Call at the start of every worker thread that does numeric work: turns on FTZ/DAZ for it
    /// (the mode is per thread; denormals made a DPO step up to 13× slower).
    public static func prepareWorkerThread() { ck_enable_ftz_daz() }

    /// sgemm throughput at n×n×n in GFLOP/s (2n³ flops per call), split over the engine's threads
    /// as the ops split it (`parallelGemm`): one warm-up call, then repeated calls for about
    /// `seconds`, best of the repetitions.
    public static func sgemmGFLOPS(n: Int = 1024, seconds: Double = 1.0) -> Double {
        var rng = RandomStream(seed: 1)
        let a = (0..<(n * n)).map { _ in Float(rng.uniform(-1, 1)) }
        let b = (0..<(n * n)).map { _ in Float(rng.uniform(-1, 1)) }
        var c = [Float](repeating: 0, count: n * n)
        let run = {
            a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                parallelGemm(transA: false, transB: false, m: n, n: n, k: n, alpha: 1, a: ap.baseAddress!, lda: n,
                             b: bp.baseAddress!, ldb: n, beta: 0, c: cp.baseAddress!, ldc: n)
            } } }
        }
        run()
        var best = 0.0
        let start = ProgressBar.now()
        repeat {
            let t0 = ProgressBar.now()
            run()
            let dt = ProgressBar.now() - t0
            best = max(best, 2 * Double(n) * Double(n) * Double(n) / dt / 1e9)
        } while ProgressBar.now() - start < seconds
        return best
    }
}
