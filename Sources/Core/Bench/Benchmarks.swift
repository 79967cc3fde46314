// Engine benchmarks (not tests): building blocks of the reference UNet (SPEC §4) timed forward +
// backward at training sizes, with achieved GFLOP/s. `bench/torch_reference.py` runs the same shapes.
import Foundation

/// One benchmark measurement: the median over `iterations` timed runs after warm-up.
public struct BenchResult: Codable, Sendable {
    public let name: String
    public let shape: String
    /// Median wall time of one forward + backward, in milliseconds.
    public let milliseconds: Double
    /// Fastest of the timed runs, in milliseconds: the least disturbed by other work on the machine.
    public let bestMilliseconds: Double
    /// Median CPU time of the whole process (all threads) per run, in milliseconds: with one thread,
    /// a measure of the work done that other load on the machine barely changes.
    public let cpuMilliseconds: Double
    /// Achieved GFLOP/s counting the GEMM-like work (nil for memory-bound ops).
    public let gflops: Double?
    public let threads: Int
    public let blasCore: String
}

private func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s[s.count / 2] }

/// CPU time consumed by all threads of this process so far.
private func processCPUNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

private func measure(_ name: String, _ shape: String, flops: Double?, iterations: Int, _ body: () -> Void) -> BenchResult {
    body(); body()  // warm-up: scratch buffers, page faults
    var times: [Double] = [], cpu: [Double] = []
    for _ in 0..<iterations {
        let c0 = processCPUNanoseconds(), t0 = DispatchTime.now().uptimeNanoseconds
        body()
        times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        cpu.append(Double(processCPUNanoseconds() - c0) / 1e6)
    }
    let ms = median(times)
    return BenchResult(name: name, shape: shape, milliseconds: ms, bestMilliseconds: times.min()!,
                       cpuMilliseconds: median(cpu),
                       gflops: flops.map { $0 / (ms * 1e6) },
                       threads: Engine.threads, blasCore: Engine.blasCoreName)
}

/// Forward then backward with a fixed upstream gradient.
private func forwardBackward(_ f: () -> Tensor, _ dy: [Float]) { f().backward(gradient: dy) }

/// Times conv 3×3 (stride 1 and 2), 1×1 conv, linear, group norm, self- and cross-attention at the
/// reference UNet's training sizes (`batch` images of 16×16, channels 32/64, 4 heads, 8 prompt tokens).
public func runEngineBenchmarks(batch: Int = 32, iterations: Int = 10) -> [BenchResult] {
    precondition(batch > 0 && iterations > 0, "runEngineBenchmarks: batch and iterations must be > 0")
    let key = RandomKey(seed: 2024)
    var results: [BenchResult] = []

    func conv(_ cin: Int, _ cout: Int, _ size: Int, kernel: Int, stride: Int) {
        let x = Tensor.normal([batch, cin, size, size], key: key.child("x\(cin)\(size)"), requiresGrad: true)
        let layer = Conv2D(inputChannels: cin, outputChannels: cout, kernelSize: kernel, stride: stride, key: key.child("c"))
        let out = convOutputSize(size, kernel: kernel, stride: stride, padding: kernel / 2)
        let dy = Tensor.normal([batch, cout, out, out], key: key.child("dy")).data
        let flops = 3 * 2 * Double(batch * cout * out * out * cin * kernel * kernel)
        results.append(measure("conv\(kernel)x\(kernel)_s\(stride)_\(cin)to\(cout)_\(size)px_fwd_bwd", "x(\(batch),\(cin),\(size),\(size))→\(cout)",
                               flops: flops, iterations: iterations) {
            x.grad = nil; layer.zeroGrad(); forwardBackward({ layer(x) }, dy)
        })
    }
    conv(32, 32, 16, kernel: 3, stride: 1)
    conv(64, 64, 8, kernel: 3, stride: 1)
    conv(96, 64, 16, kernel: 3, stride: 1)   // up path on concatenated skips
    conv(32, 32, 16, kernel: 3, stride: 2)   // downsample
    conv(96, 64, 16, kernel: 1, stride: 1)   // 1×1 skip

    do {  // linear: attention projections over 8×8 tokens
        let rows = batch * 64
        let x = Tensor.normal([rows, 64], key: key.child("lx"), requiresGrad: true)
        let layer = Linear(inputFeatures: 64, outputFeatures: 64, key: key.child("l"))
        let dy = Tensor.normal([rows, 64], key: key.child("ldy")).data
        results.append(measure("linear_fwd_bwd", "x(\(rows),64)→64", flops: 3 * 2 * Double(rows * 64 * 64), iterations: iterations) {
            x.grad = nil; layer.zeroGrad(); forwardBackward({ layer(x) }, dy)
        })
    }
    do {  // group norm (8 groups) at 16×16×64
        let x = Tensor.normal([batch, 64, 16, 16], key: key.child("gx"), requiresGrad: true)
        let layer = GroupNorm(groups: 8, channels: 64)
        let dy = Tensor.normal(x.shape, key: key.child("gdy")).data
        results.append(measure("groupnorm_fwd_bwd", "x(\(batch),64,16,16) G=8", flops: nil, iterations: iterations) {
            x.grad = nil; layer.zeroGrad(); forwardBackward({ layer(x) }, dy)
        })
    }
    for (name, tk) in [("self_attention_fwd_bwd", 64), ("cross_attention_fwd_bwd", 8)] {
        let q = Tensor.normal([batch, 64, 64], key: key.child("q"), requiresGrad: true)
        let k = Tensor.normal([batch, tk, 64], key: key.child("k"), requiresGrad: true)
        let v = Tensor.normal([batch, tk, 64], key: key.child("v"), requiresGrad: true)
        let dy = Tensor.normal([batch, 64, 64], key: key.child("ady")).data
        let flops = 3 * 4 * Double(batch * 64 * tk * 64)
        results.append(measure(name, "q(\(batch),64,64) k,v(\(batch),\(tk),64) 4 heads", flops: flops, iterations: iterations) {
            q.grad = nil; k.grad = nil; v.grad = nil
            forwardBackward({ attention(q, k, v, heads: 4) }, dy)
        })
    }
    return results
}
