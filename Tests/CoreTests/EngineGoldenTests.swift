// Ops against golden values from PyTorch 2.13 (float64); produced by Fixtures/make_goldens.py.
import Foundation
import Testing
@testable import Core

private struct Golden: Decodable {
    struct Array: Decodable { let shape: [Int]; let data: [Double] }
    struct Case: Decodable { let inputs: [String: Array]; let outputs: [String: Array] }
    let cases: [String: Case]
}

private let goldens: Golden = {
    let url = Bundle.module.url(forResource: "engine_goldens", withExtension: "json", subdirectory: "Fixtures")!
    return try! JSONDecoder().decode(Golden.self, from: Data(contentsOf: url))
}()

private func input<S: TensorScalar>(_ c: String, _ name: String, requiresGrad: Bool = false, as: S.Type = Double.self) -> TensorOf<S> {
    let a = goldens.cases[c]!.inputs[name]!
    return TensorOf(shape: a.shape, data: a.data.map { S($0) }, requiresGrad: requiresGrad)
}
private func expected(_ c: String, _ name: String) -> T64 {
    let a = goldens.cases[c]!.outputs[name]!
    return T64(shape: a.shape, data: a.data)
}

@Suite struct EngineGoldenTests {
    @Test func conv2dStride2MatchesTorchInBothPrecisions() {
        let x: T64 = input("conv2d_s2p1", "x", requiresGrad: true), w: T64 = input("conv2d_s2p1", "weight", requiresGrad: true)
        let b: T64 = input("conv2d_s2p1", "bias", requiresGrad: true), dy: T64 = input("conv2d_s2p1", "dy")
        let y = conv2d(x, w, b, stride: 2, padding: 1)
        assertClose(y, expected("conv2d_s2p1", "y"), rtol: 1e-10, atol: 1e-10)
        sum(y * dy).backward()
        assertClose(x.gradTensor, expected("conv2d_s2p1", "dx"), rtol: 1e-10, atol: 1e-10)
        assertClose(w.gradTensor, expected("conv2d_s2p1", "dweight"), rtol: 1e-10, atol: 1e-10)
        assertClose(b.gradTensor, expected("conv2d_s2p1", "dbias"), rtol: 1e-10, atol: 1e-10)
        // Float32 path (sgemm).
        let y32 = conv2d(input("conv2d_s2p1", "x", as: Float.self), input("conv2d_s2p1", "weight", as: Float.self),
                         input("conv2d_s2p1", "bias", as: Float.self), stride: 2, padding: 1)
        assertClose(y32.converted(to: Double.self), expected("conv2d_s2p1", "y"), rtol: 1e-4, atol: 1e-4)
    }

    @Test func groupNormMatchesTorch() {
        let x: T64 = input("group_norm", "x", requiresGrad: true), w: T64 = input("group_norm", "weight", requiresGrad: true)
        let b: T64 = input("group_norm", "bias", requiresGrad: true)
        let y = groupNorm(x, groups: 2, weight: w, bias: b)
        assertClose(y, expected("group_norm", "y"), rtol: 1e-9, atol: 1e-9)
        sum(y * input("group_norm", "dy")).backward()
        assertClose(x.gradTensor, expected("group_norm", "dx"), rtol: 1e-9, atol: 1e-9)
        assertClose(w.gradTensor, expected("group_norm", "dweight"), rtol: 1e-9, atol: 1e-9)
    }

    @Test func layerNormMatchesTorch() {
        let y = layerNorm(input("layer_norm", "x") as T64, weight: input("layer_norm", "weight"), bias: input("layer_norm", "bias"))
        assertClose(y, expected("layer_norm", "y"), rtol: 1e-9, atol: 1e-9)
    }

    @Test func activationsMatchTorchIncludingExtremes() {
        let x: T64 = input("activations", "x")
        assertClose(gelu(x), expected("activations", "gelu"), rtol: 1e-12, atol: 1e-12)
        assertClose(silu(x), expected("activations", "silu"), rtol: 1e-12, atol: 1e-12)
        assertClose(logSigmoid(x), expected("activations", "logsigmoid"), rtol: 1e-12, atol: 1e-12)
        assertClose(sigmoid(x), expected("activations", "sigmoid"), rtol: 1e-12, atol: 1e-15)
        assertClose(softmax(x), expected("activations", "softmax"), rtol: 1e-12, atol: 1e-15)
        // Float32 log-sigmoid stays finite at the extremes.
        let x32: Tensor = input("activations", "x", as: Float.self)
        #expect(logSigmoid(x32).data.allSatisfy { $0.isFinite })
        #expect(logSigmoid(x32).data[0] == -30)
    }

    @Test func maskedAttentionMatchesTorch() {
        let mask = (input("attention", "mask") as T64).data.map { $0 != 0 }
        let y = attention(input("attention", "q") as T64, input("attention", "k"), input("attention", "v"), heads: 2, keyPaddingMask: mask)
        assertClose(y, expected("attention", "y"), rtol: 1e-10, atol: 1e-10)
    }

    @Test func upsampleMatchesTorch() {
        assertClose(upsampleNearest2x(input("upsample", "x") as T64), expected("upsample", "y"), rtol: 0, atol: 0)
    }

    @Test func adamWMatchesTorchThreeSteps() {
        let p: T64 = input("adamw", "p", requiresGrad: true)
        let opt = AdamWOf<Double>(config: AdamWConfig(learningRate: 0.1, beta1: 0.9, beta2: 0.99, epsilon: 1e-8, weightDecay: 0.05))
        for i in 0..<3 {
            p.grad = (input("adamw", "g\(i)") as T64).data
            opt.update([("p", p)])
        }
        assertClose(p, expected("adamw", "p"), rtol: 1e-12, atol: 1e-12)
        #expect(opt.step == 3)
    }
}
