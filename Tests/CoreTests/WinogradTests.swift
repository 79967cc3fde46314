// The Winograd F(4×4, 3×3) convolution (forward, input gradient, weight gradient) against the
// im2col path and against the Float64 im2col convolution, whose gradients OpGradientTests checks by
// finite differences.
import Foundation
import Testing
@testable import Core

/// max |a − b| / max |b|.
private func relativeError(_ a: [Float], _ b: [Float]) -> Float {
    var diff: Float = 0, scale: Float = 0
    for (u, v) in zip(a, b) { diff = max(diff, Swift.abs(u - v)); scale = max(scale, Swift.abs(v)) }
    return diff / scale
}

/// max |a − b| / max |b| against a Float64 reference.
private func relativeError(_ a: [Float], _ b: [Double]) -> Double {
    var diff = 0.0, scale = 0.0
    for (u, v) in zip(a, b) { diff = max(diff, Swift.abs(Double(u) - v)); scale = max(scale, Swift.abs(v)) }
    return diff / scale
}

/// Output, dx, dW and dbias of y = conv2d(x, w, b, 3×3, stride 1, padding 1) with loss Σ y ⊙ r (so
/// dY = r), in scalar type S.
private struct ConvRun<S: TensorScalar> {
    var y: [S], dx: [S], dw: [S], db: [S]?
}

private func convRun<S: TensorScalar>(_ type: S.Type, batch: Int, cin: Int, cout: Int, h: Int, w: Int,
                                      bias: Bool, seed: UInt64) -> ConvRun<S> {
    let k = RandomKey(seed: seed)
    let xd = Tensor.normal([batch, cin, h, w], key: k.child("x")).data
    let wd = Tensor.normal([cout, cin, 3, 3], key: k.child("w"), std: 1 / Double(3 * cin).squareRoot()).data
    let bd = Tensor.normal([cout], key: k.child("b")).data
    let rd = Tensor.normal([batch, cout, h, w], key: k.child("r")).data
    func cast(_ a: [Float]) -> [S] { a.map { S(Double($0)) } }
    let x = TensorOf<S>(shape: [batch, cin, h, w], data: cast(xd), requiresGrad: true)
    let weight = TensorOf<S>(shape: [cout, cin, 3, 3], data: cast(wd), requiresGrad: true)
    let b: TensorOf<S>? = bias ? TensorOf<S>(shape: [cout], data: cast(bd), requiresGrad: true) : nil
    let r = TensorOf<S>(shape: [batch, cout, h, w], data: cast(rd))
    let y = conv2d(x, weight, b, stride: 1, padding: 1)
    sum(y * r).backward()
    return ConvRun(y: y.data, dx: x.grad!, dw: weight.grad!, db: b?.grad)
}

@Suite(.serialized) struct WinogradTests {
    /// The UNet's shapes, plus odd sizes (partial tiles), tiny channel counts (the image convs),
    /// channel counts that are not multiples of the micro-kernels' 4 rows and 3 columns, and batches
    /// that leave a partial group of 8 samples. Forward, dx and dW against the im2col path (Float)
    /// and against the Float64 im2col convolution.
    @Test(arguments: [
        (8, 32, 32, 16, 16, true), (3, 64, 64, 8, 8, true), (9, 96, 32, 16, 16, true), (5, 128, 64, 8, 8, false),
        (1, 3, 32, 16, 16, true), (17, 32, 3, 16, 16, true), (2, 5, 7, 5, 7, true), (11, 6, 5, 1, 9, false),
        (4, 2, 1, 4, 4, true),
    ])
    func matchesIm2colConvolution(_ shape: (Int, Int, Int, Int, Int, Bool)) {
        let (batch, cin, cout, h, w, bias) = shape
        let seed = UInt64(batch * 1000 + cin)
        let fast = convRun(Float.self, batch: batch, cin: cin, cout: cout, h: h, w: w, bias: bias, seed: seed)
        let im2col = withWinogradConvolutions(false) {
            convRun(Float.self, batch: batch, cin: cin, cout: cout, h: h, w: w, bias: bias, seed: seed)
        }
        let exact = convRun(Double.self, batch: batch, cin: cin, cout: cout, h: h, w: w, bias: bias, seed: seed)
        #expect(fast.y.count == batch * cout * h * w)
        #expect(fast.y != im2col.y, "\(shape): the Winograd path was not taken")
        for (name, a, b, e) in [("y", fast.y, im2col.y, exact.y), ("dx", fast.dx, im2col.dx, exact.dx),
                                ("dW", fast.dw, im2col.dw, exact.dw)] {
            let vsIm2col = relativeError(a, b), vsExact = relativeError(a, e), im2colVsExact = relativeError(b, e)
            #expect(vsIm2col < 2e-5, "\(shape) \(name): relative difference to im2col \(vsIm2col)")
            #expect(vsExact < 2e-5, "\(shape) \(name): relative error to Float64 \(vsExact) (im2col's: \(im2colVsExact))")
        }
        if bias { #expect(fast.db! == im2col.db!) }   // dbias does not go through the convolution
    }

    /// Every result of a sample — output, input gradient — depends on neither the thread count nor the
    /// samples beside it; the weight gradient (a sum over the batch) depends on no thread count.
    @Test func resultsDoNotDependOnThreadsOrNeighbours() {
        Engine.threadsLock.lock()
        defer { Engine.threadsLock.unlock() }
        let saved = Engine.threads
        defer { Engine.setThreads(saved) }
        let k = RandomKey(seed: 3)
        let xd = Tensor.normal([19, 16, 8, 8], key: k.child("x")).data
        let weight = Tensor.normal([24, 16, 3, 3], key: k.child("w"), requiresGrad: true)
        let bias = Tensor.normal([24], key: k.child("b"), requiresGrad: true)
        func run(_ data: [Float], batch: Int) -> (y: [Float], dx: [Float], dw: [Float]) {
            weight.grad = nil
            bias.grad = nil
            let x = Tensor(shape: [batch, 16, 8, 8], data: data, requiresGrad: true)
            let y = conv2d(x, weight, bias, stride: 1, padding: 1)
            mean(square(y)).backward()
            return (y.data, x.grad!, weight.grad!)
        }
        Engine.setThreads(1)
        let one = run(xd, batch: 19)
        for threads in [2, 3] {
            Engine.setThreads(threads)
            let other = run(xd, batch: 19)
            #expect(one.y == other.y, "\(threads) threads")
            #expect(one.dx == other.dx, "\(threads) threads")
            #expect(one.dw == other.dw, "\(threads) threads")
        }
        // Sample 10 alone (lane 0 of its own group) equals sample 10 of the batch (lane 2 of the
        // second group), with and without gradients.
        let sample = Array(xd[(10 * 16 * 64)..<(11 * 16 * 64)])
        #expect(run(sample, batch: 1).y == Array(one.y[(10 * 24 * 64)..<(11 * 24 * 64)]))
        let alone = noGrad { conv2d(Tensor(shape: [1, 16, 8, 8], data: sample), weight, bias, stride: 1, padding: 1).data }
        #expect(alone == Array(one.y[(10 * 24 * 64)..<(11 * 24 * 64)]))
    }

    /// The path does not depend on whether gradients are recorded (so a policy and its frozen
    /// reference at the same weights give the same bits); `withWinogradConvolutions(false)` gives the
    /// im2col convolution bit for bit; other geometries and Float64 always take im2col.
    @Test func oneRuleWithOrWithoutGradients() {
        let k = RandomKey(seed: 4)
        let x: TensorOf<Float> = .normal([4, 8, 8, 8], key: k.child("x"))
        let weight = TensorOf<Float>.normal([8, 8, 3, 3], key: k.child("w"), requiresGrad: true)
        let recording = conv2d(x, weight, nil, stride: 1, padding: 1).data
        let inference = noGrad { conv2d(x, weight, nil, stride: 1, padding: 1).data }
        #expect(recording == inference)
        let im2col = withWinogradConvolutions(false) { conv2d(x, weight, nil, stride: 1, padding: 1).data }
        #expect(im2col != recording)
        #expect(noGrad { withWinogradConvolutions(false) { conv2d(x, weight, nil, stride: 1, padding: 1).data } } == im2col)
        // Nesting restores the outer mode.
        let nested = withWinogradConvolutions(false) { withWinogradConvolutions { conv2d(x, weight, nil, stride: 1, padding: 1).data } }
        #expect(nested == recording)
        let strided = conv2d(x, weight, nil, stride: 2, padding: 1).data
        #expect(strided == withWinogradConvolutions(false) { conv2d(x, weight, nil, stride: 2, padding: 1).data })
        // Float64 is the im2col convolution (what OpGradientTests checks by finite differences).
        let xd = TensorOf<Double>(shape: x.shape, data: x.data.map(Double.init))
        let wd = TensorOf<Double>(shape: weight.shape, data: weight.data.map(Double.init))
        #expect(conv2d(xd, wd, nil, stride: 1, padding: 1).data
                == withWinogradConvolutions(false) { conv2d(xd, wd, nil, stride: 1, padding: 1).data })
    }

    /// DPO at step 0: the policy (recording gradients) and its frozen copy (not recording) take the
    /// same convolution path, so every implicit reward margin z is exactly 0 and the loss is log 2.
    @Test func dpoPolicyAndFrozenReferenceAgreeAtStepZero() throws {
        let policy = TinyDenoiser(seed: 1)
        let reference = policy.frozenCopy()
        let pairs = try toyPairs(6, seed: 3)
        let batch = try pairs.batch(Array(0..<6))
        let noise = Tensor.normal(batch.winners.shape, key: RandomKey(seed: 5))
        let e = try evaluatePairs(policy: policy, reference: reference, batch: batch, labels: [Int8](repeating: 1, count: 6),
                                  timesteps: [37, 420, 880, 150, 999, 0], noise: noise,
                                  objective: .dpo(PreferenceLossConfig(kind: .sigmoid, beta: 5000)), backwardScale: 1)
        #expect(e.z == [Double](repeating: 0, count: 6))
        #expect(Swift.abs(e.loss - Foundation.log(2.0)) < 1e-12)
        #expect(policy.parameters().contains { ($0.1.grad ?? []).contains { $0 != 0 } })
    }
}
