// The engine's one thread setting (OpenBLAS threads + our own loops), deterministic parallel loops
// with fixed chunk partitioning, and reusable scratch buffers for im2col and friends.
import CKernels
import Dispatch

/// Global engine settings. Ops must be called from one thread at a time; they parallelise inside.
public enum Engine {
    private static var _threads: Int = {
        let n = Int(ck_openblas_threads())
        ck_enable_ftz_daz()
        return max(1, n)
    }()

    /// Threads used by OpenBLAS GEMMs and by the engine's own loops (default: OpenBLAS's count).
    public static var threads: Int { _threads }

    /// Sets the thread count for both OpenBLAS and the engine's loops, and enables FTZ/DAZ on the
    /// calling thread. Results are bit-identical for a given thread count.
    public static func setThreads(_ n: Int) {
        precondition(n >= 1, "Engine.setThreads: thread count must be ≥ 1, got \(n)")
        _threads = n
        ck_openblas_set_threads(Int32(n))
        ck_enable_ftz_daz()
    }

    /// The OpenBLAS kernel family in use (e.g. "SkylakeX", or "Prescott" for the slow fallback).
    public static var blasCoreName: String { String(cString: ck_openblas_corename()) }
}

/// Runs `body` over `0..<n` split into at most `Engine.threads` contiguous chunks. The partition
/// depends only on `n`, `grain` and the thread count, never on scheduling. `grain` is the smallest
/// number of items worth a chunk of its own. Workers run with FTZ/DAZ on.
@inline(__always)
func parallelFor(_ n: Int, grain: Int = 16_384, _ body: (Range<Int>) -> Void) {
    if n <= 0 { return }
    let chunks = min(Engine.threads, max(1, n / max(1, grain)))
    if chunks <= 1 { body(0..<n); return }
    DispatchQueue.concurrentPerform(iterations: chunks) { c in
        ck_enable_ftz_daz()
        body((n * c / chunks)..<(n * (c + 1) / chunks))
    }
}

/// Grow-only scratch buffers, one per slot, reused across calls (im2col columns, permuted
/// gradients). A pointer is valid until the next request for the same slot; ops are not reentrant.
enum Workspace {
    nonisolated(unsafe) private static var buffers: [UnsafeMutableRawPointer?] = Array(repeating: nil, count: 8)
    nonisolated(unsafe) private static var capacities: [Int] = Array(repeating: 0, count: 8)

    static func buffer<S: TensorScalar>(_ slot: Int, _ count: Int, _ type: S.Type) -> UnsafeMutablePointer<S> {
        let bytes = max(1, count) * MemoryLayout<S>.stride
        if capacities[slot] < bytes {
            buffers[slot]?.deallocate()
            buffers[slot] = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
            capacities[slot] = bytes
        }
        return buffers[slot]!.assumingMemoryBound(to: S.self)
    }
}
