// The engine's one thread setting (OpenBLAS stays single-threaded), deterministic parallel loops and
// GEMM splits with fixed partitioning, and reusable scratch buffers for im2col and friends.
import CKernels
#if canImport(Glibc)
import Glibc
#endif

/// Global engine settings. Ops parallelise inside; grad mode and scratch space are per thread.
///
/// OpenBLAS itself always runs single-threaded: every GEMM executes on the thread that calls it,
/// and the engine splits work across its own threads with partitions fixed by the shapes and the
/// thread count (`parallelFor`, `parallelGemm`, conv2d by samples). OpenBLAS 0.3.21 rounds
/// differently at 1 and 2 threads, and its pool blocks when two threads call it at once; with
/// OpenBLAS at one thread, concurrent GEMMs (a sampler beside a trainer, parallel tests) are safe
/// and a result depends only on the engine's thread count.
public enum Engine {
    private static var _threads: Int = {
        let n = Int(ck_openblas_threads())
        ck_openblas_set_threads(1)
        ck_enable_ftz_daz()
        _ = ck_keep_freed_memory()
        return max(1, n)
    }()

    /// Threads used by the engine's loops and GEMM splits (default: OpenBLAS's count at startup,
    /// i.e. `OPENBLAS_NUM_THREADS` or the number of cores).
    public static var threads: Int { _threads }

    /// Sets the engine's thread count (OpenBLAS stays at one thread), and enables FTZ/DAZ on the
    /// calling thread. Results are bit-identical for a given thread count.
    public static func setThreads(_ n: Int) {
        precondition(n >= 1, "Engine.setThreads: thread count must be ≥ 1, got \(n)")
        _threads = n
        ck_openblas_set_threads(1)
        ck_enable_ftz_daz()
    }

    /// The OpenBLAS kernel family in use (e.g. "SkylakeX", or "Prescott" for the slow fallback).
    public static var blasCoreName: String { String(cString: ck_openblas_corename()) }
}

/// Runs `body(part)` for every part in `0..<parts` on the calling thread and the engine's worker
/// threads (`ck_pool_run`: workers stay awake between the back-to-back regions of a training step).
/// Which thread runs a part is not fixed — parts must not depend on it — and every part runs with
/// FTZ/DAZ on. A region started inside another (or while another thread's region runs) runs its parts
/// on the calling thread, in order.
@inline(__always)
func runParts(_ parts: Int, _ body: (Int) -> Void) {
    ck_enable_ftz_daz()
    if parts <= 1 || Engine.threads <= 1 { for p in 0..<parts { body(p) }; return }
    withoutActuallyEscaping(body) { escaping in
        var task = escaping
        withUnsafeMutablePointer(to: &task) { pointer in
            _ = ck_pool_run(parts, Int32(Engine.threads), { context, part in
                context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(part)
            }, pointer)
        }
    }
}

/// Runs `body` over `0..<n` split into at most `Engine.threads` contiguous chunks. The partition
/// depends only on `n`, `grain` and the thread count, never on scheduling. `grain` is the smallest
/// number of items worth a chunk of its own. Workers run with FTZ/DAZ on.
@inline(__always)
func parallelFor(_ n: Int, grain: Int = 16_384, _ body: (Range<Int>) -> Void) {
    if n <= 0 { return }
    let chunks = min(Engine.threads, max(1, n / max(1, grain)))
    if chunks <= 1 { body(0..<n); return }
    runParts(chunks) { c in body((n * c / chunks)..<(n * (c + 1) / chunks)) }
}

/// Runs `body(i)` for every item `i` of `sizes`, the items split into at most `Engine.threads` runs of
/// consecutive items of about equal total size (an item is never split, so per-item work — an
/// optimizer update of one parameter — runs exactly as it would serially). The partition depends only
/// on the sizes, `grain` and the thread count. Workers run with FTZ/DAZ on.
func parallelForItems(sizes: [Int], grain: Int = 32_768, _ body: (Int) -> Void) {
    let total = sizes.reduce(0, +)
    let chunks = min(Engine.threads, sizes.count, max(1, total / max(1, grain)))
    if chunks <= 1 { for i in sizes.indices { body(i) }; return }
    // Chunk c starts at the first item whose offset is ≥ c·total/chunks.
    var starts = [Int](repeating: sizes.count, count: chunks + 1)
    starts[0] = 0
    var offset = 0, c = 1
    for (i, size) in sizes.enumerated() {
        while c < chunks && offset >= total * c / chunks { starts[c] = i; c += 1 }
        offset += size
    }
    runParts(chunks) { c in for i in starts[c]..<starts[c + 1] { body(i) } }
}

/// Runs `a` and `b` at the same time on two threads when the engine has two or more (each with the
/// caller's grad mode and FTZ/DAZ; the ops inside keep their fixed partitions, so the results are
/// those of running them one after the other), else one after the other. The two must not share
/// mutable state.
func concurrently(_ a: () -> Void, _ b: () -> Void) {
    guard Engine.threads >= 2 else { a(); b(); return }
    let grad = Autograd.isEnabled
    runParts(2) { i in
        let previous = Autograd.isEnabled
        Autograd.isEnabled = grad
        defer { Autograd.isEnabled = previous }
        if i == 0 { a() } else { b() }
    }
}

/// Splits `0..<n` into `chunks` contiguous parts aligned to multiples of `align` (the last part
/// takes the remainder); part `c` of the fixed partition.
@inline(__always)
func alignedPart(_ n: Int, _ c: Int, _ chunks: Int, align: Int) -> Range<Int> {
    let units = (n + align - 1) / align
    return min(n, units * c / chunks * align)..<min(n, units * (c + 1) / chunks * align)
}

/// C = alpha · op(A) · op(B) + beta · C (row-major, as `TensorScalar.gemm`) split over the engine's
/// threads: C's columns in blocks of 16 when N ≥ M, its rows in blocks of 8 otherwise. Each thread
/// computes whole dot products over the full K, so the split changes no element's summation —
/// only which thread computes it. Small products (< 2¹⁸ multiply-adds) run on the calling thread.
func parallelGemm<S: TensorScalar>(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: S,
                                   a: UnsafePointer<S>, lda: Int, b: UnsafePointer<S>, ldb: Int,
                                   beta: S, c: UnsafeMutablePointer<S>, ldc: Int) {
    let byColumns = n >= m
    let chunks = min(Engine.threads, (byColumns ? n / 16 : m / 8), max(1, m * n * k >> 18))
    if chunks <= 1 {
        S.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
               beta: beta, c: c, ldc: ldc)
        return
    }
    runParts(chunks) { part in
        if byColumns {  // C[:, j0..<j1] = op(A) · op(B)[:, j0..<j1]
            let r = alignedPart(n, part, chunks, align: 16)
            if r.isEmpty { return }
            S.gemm(transA: transA, transB: transB, m: m, n: r.count, k: k, alpha: alpha, a: a, lda: lda,
                   b: b + (transB ? r.lowerBound * ldb : r.lowerBound), ldb: ldb, beta: beta, c: c + r.lowerBound, ldc: ldc)
        } else {        // C[i0..<i1, :] = op(A)[i0..<i1, :] · op(B)
            let r = alignedPart(m, part, chunks, align: 8)
            if r.isEmpty { return }
            S.gemm(transA: transA, transB: transB, m: r.count, n: n, k: k, alpha: alpha,
                   a: a + (transA ? r.lowerBound : r.lowerBound * lda), lda: lda, b: b, ldb: ldb,
                   beta: beta, c: c + r.lowerBound * ldc, ldc: ldc)
        }
    }
}

/// Per-thread engine state: the grad-recording switch and grow-only scratch buffers (im2col
/// columns, permuted gradients). Thread-local, so independent threads (e.g. parallel tests, a
/// sampler beside a trainer) never share them; ops on one thread are not reentrant.
final class ThreadContext {
    var gradEnabled = true
    /// Inference 3×3 convolutions by Winograd (`withWinogradConvolutions`).
    var winogradConvolutions = false
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
