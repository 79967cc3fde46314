// The engine's one thread setting (OpenBLAS threads + our own loops), deterministic parallel loops
// with fixed chunk partitioning, and reusable scratch buffers for im2col and friends.
import CKernels
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Global engine settings. Ops parallelise inside; grad mode and scratch space are per thread.
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

/// Per-thread engine state: the grad-recording switch and grow-only scratch buffers (im2col
/// columns, permuted gradients). Thread-local, so independent threads (e.g. parallel tests, a
/// sampler beside a trainer) never share them; ops on one thread are not reentrant.
final class ThreadContext {
    var gradEnabled = true
    private var buffers: [UnsafeMutableRawPointer?] = Array(repeating: nil, count: 8)
    private var capacities: [Int] = Array(repeating: 0, count: 8)

    deinit { for b in buffers { b?.deallocate() } }

    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k) { p in if let p { Unmanaged<ThreadContext>.fromOpaque(p).release() } }
        return k
    }()

    static var current: ThreadContext {
        if let p = pthread_getspecific(key) { return Unmanaged<ThreadContext>.fromOpaque(p).takeUnretainedValue() }
        let c = ThreadContext()
        pthread_setspecific(key, Unmanaged.passRetained(c).toOpaque())
        return c
    }

    /// A buffer of at least `count` elements, valid until the next request for the same slot.
    func buffer<S: TensorScalar>(_ slot: Int, _ count: Int, _ type: S.Type) -> UnsafeMutablePointer<S> {
        let bytes = max(1, count) * MemoryLayout<S>.stride
        if capacities[slot] < bytes {
            buffers[slot]?.deallocate()
            buffers[slot] = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
            capacities[slot] = bytes
        }
        return buffers[slot]!.assumingMemoryBound(to: S.self)
    }
}

enum Workspace {
    /// The calling thread's scratch buffer `slot` with room for `count` elements.
    @inline(__always)
    static func buffer<S: TensorScalar>(_ slot: Int, _ count: Int, _ type: S.Type) -> UnsafeMutablePointer<S> {
        ThreadContext.current.buffer(slot, count, type)
    }
}
