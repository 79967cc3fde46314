// The inference-only Winograd F(4×4, 3×3) convolution against the im2col path it replaces.
import Testing
@testable import Core

private func winogradAndReference(batch: Int, cin: Int, cout: Int, h: Int, w: Int, bias: Bool,
                                  seed: UInt64) -> (fast: TensorOf<Float>, exact: TensorOf<Float>) {
    let k = RandomKey(seed: seed)
    let x: TensorOf<Float> = .normal([batch, cin, h, w], key: k.child("x"))
    let weight: TensorOf<Float> = .normal([cout, cin, 3, 3], key: k.child("w"), std: 1 / Double(3 * cin).squareRoot())
    let b: TensorOf<Float>? = bias ? .normal([cout], key: k.child("b")) : nil
    let exact = noGrad { conv2d(x, weight, b, stride: 1, padding: 1) }
    let fast = noGrad { withWinogradConvolutions { conv2d(x, weight, b, stride: 1, padding: 1) } }
    return (fast, exact)
}

/// max |a − b| / max |b|.
private func relativeError(_ a: TensorOf<Float>, _ b: TensorOf<Float>) -> Float {
    var diff: Float = 0, scale: Float = 0
    for (u, v) in zip(a.data, b.data) { diff = max(diff, Swift.abs(u - v)); scale = max(scale, Swift.abs(v)) }
    return diff / scale
}

@Suite(.serialized) struct WinogradTests {
    /// The UNet's shapes, plus odd sizes (partial tiles), tiny channel counts (the image convs),
    /// channel counts that are not multiples of the 4-row micro-kernel, and batches that leave a
    /// partial group of 8 samples.
    @Test(arguments: [
        (8, 32, 32, 16, 16, true), (3, 64, 64, 8, 8, true), (9, 96, 32, 16, 16, true), (5, 128, 64, 8, 8, false),
        (1, 3, 32, 16, 16, true), (17, 32, 3, 16, 16, true), (2, 5, 7, 5, 7, true), (11, 6, 5, 1, 9, false),
        (4, 2, 1, 4, 4, true),
    ])
    func matchesIm2colConvolution(_ shape: (Int, Int, Int, Int, Int, Bool)) {
        let (batch, cin, cout, h, w, bias) = shape
        let r = winogradAndReference(batch: batch, cin: cin, cout: cout, h: h, w: w, bias: bias, seed: UInt64(batch * 1000 + cin))
        #expect(r.fast.shape == [batch, cout, h, w])
        let error = relativeError(r.fast, r.exact)
        #expect(error < 2e-5, "\(shape): relative error \(error)")
    }

    /// A sample's output does not depend on the thread count nor on the samples beside it.
    @Test func resultDependsOnlyOnTheSample() {
        Engine.threadsLock.lock()
        defer { Engine.threadsLock.unlock() }
        let saved = Engine.threads
        defer { Engine.setThreads(saved) }
        let k = RandomKey(seed: 3)
        let x: TensorOf<Float> = .normal([19, 16, 8, 8], key: k.child("x"))
        let weight: TensorOf<Float> = .normal([24, 16, 3, 3], key: k.child("w"))
        let bias: TensorOf<Float> = .normal([24], key: k.child("b"))
        func run(_ input: TensorOf<Float>) -> [Float] {
            noGrad { withWinogradConvolutions { conv2d(input, weight, bias, stride: 1, padding: 1).data } }
        }
        Engine.setThreads(1)
        let one = run(x)
        Engine.setThreads(2)
        let two = run(x)
        #expect(one == two)
        // Sample 10 alone (lane 0 of its own group) equals sample 10 of the batch (lane 2 of the second group).
        let sample = TensorOf(shape: [1, 16, 8, 8], data: Array(x.data[(10 * 16 * 64)..<(11 * 16 * 64)]))
        #expect(run(sample) == Array(one[(10 * 24 * 64)..<(11 * 24 * 64)]))
    }

    /// Only inference takes the Winograd path: with gradients recorded, or outside the scope, conv2d
    /// is the im2col convolution bit for bit; other geometries are never affected.
    @Test func onlyInferenceInsideTheScopeIsAffected() {
        let k = RandomKey(seed: 4)
        let x: TensorOf<Float> = .normal([4, 8, 8, 8], key: k.child("x"))
        let weight = TensorOf<Float>.normal([8, 8, 3, 3], key: k.child("w"), requiresGrad: true)
        let exact = conv2d(x, weight, nil, stride: 1, padding: 1).data
        let recording = withWinogradConvolutions { conv2d(x, weight, nil, stride: 1, padding: 1).data }
        #expect(recording == exact)
        let outside = noGrad { conv2d(x, weight, nil, stride: 1, padding: 1).data }
        #expect(outside == exact)
        let inside = noGrad { withWinogradConvolutions { conv2d(x, weight, nil, stride: 1, padding: 1).data } }
        #expect(inside != exact)
        let disabled = noGrad { withWinogradConvolutions { withWinogradConvolutions(false) {
            conv2d(x, weight, nil, stride: 1, padding: 1).data } } }
        #expect(disabled == exact)
        let strided = noGrad { withWinogradConvolutions { conv2d(x, weight, nil, stride: 2, padding: 1).data } }
        #expect(strided == conv2d(x, weight, nil, stride: 2, padding: 1).data)
    }
}
