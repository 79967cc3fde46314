// Fixtures for the preference-training and confidence-pass tests: a tiny real conditional denoiser
// (two convolutions, timestep and prompt embeddings), a recording wrapper, and toy pair sets.
import Foundation
@testable import Core

/// ε̂ = conv2(silu(conv1(x) + Linear(sin/cos of t) + mean token embedding)), 3 → 8 → 3 channels.
final class TinyDenoiser: Denoiser {
    let schedule = NoiseSchedule.stableDiffusion
    let conv1: Conv2D, conv2: Conv2D, time: Linear, embed: Embedding

    init(seed: UInt64) {
        let key = RandomKey(seed: seed)
        conv1 = Conv2D(inputChannels: 3, outputChannels: 8, kernelSize: 3, key: key.child("conv1"))
        conv2 = Conv2D(inputChannels: 8, outputChannels: 3, kernelSize: 3, key: key.child("conv2"))
        time = Linear(inputFeatures: 2, outputFeatures: 8, key: key.child("time"))
        embed = Embedding(count: 16, dimension: 8, paddingIndex: 0, key: key.child("embed"))
    }

    func predictNoise(_ x: Tensor, timesteps: [Int], tokens: TokenBatch) -> Tensor {
        let b = x.shape[0]
        var features = [Float]()
        for t in timesteps {
            let p = Double.pi * Double(t) / Double(schedule.steps)
            features += [Float(Foundation.sin(p)), Float(Foundation.cos(p))]
        }
        let temb = time(Tensor(shape: [b, 2], data: features))                                    // (B, 8)
        let tok = mean(embed(tokens.ids.map(Int.init), shape: [b, tokens.length]), axis: 1)       // (B, 8)
        let h = silu(conv1(x) + (temb + tok).reshaped([b, 8, 1, 1]))                              // (B, 8, H, W)
        return conv2(h)
    }

    func parameters() -> [(String, Tensor)] {
        prefixed("conv1", conv1.parameters()) + prefixed("conv2", conv2.parameters())
            + prefixed("time", time.parameters()) + prefixed("embed", embed.parameters())
    }

    /// A frozen copy (same weights, no grad).
    func frozenCopy() -> TinyDenoiser {
        let c = TinyDenoiser(seed: 0)
        for ((_, p), (_, q)) in zip(c.parameters(), parameters()) { p.data = q.data; p.requiresGrad = false }
        return c
    }
}

/// Records every call's inputs, then delegates.
final class RecordingDenoiser: Denoiser {
    let inner: Denoiser
    var calls: [(x: Tensor, timesteps: [Int], tokens: TokenBatch)] = []
    init(_ inner: Denoiser) { self.inner = inner }
    var schedule: NoiseSchedule { inner.schedule }
    func predictNoise(_ x: Tensor, timesteps: [Int], tokens: TokenBatch) -> Tensor {
        calls.append((x.detached(), timesteps, tokens))
        return inner.predictNoise(x, timesteps: timesteps, tokens: tokens)
    }
    func parameters() -> [(String, Tensor)] { inner.parameters() }
}

/// n pairs of 3×4×4 images with two-token prompts. With `separable`, winners are smooth (a constant
/// +0.6 plus a little noise) and losers high-contrast noise, so one image is clearly "better".
func toyPairs(_ n: Int, seed: UInt64, separable: Bool = true, idBase: Int64 = 100) throws -> InMemoryPairs {
    let key = RandomKey(seed: seed)
    let shape = [n, 3, 4, 4]
    let a = Tensor.normal(shape, key: key.child("w")), b = Tensor.normal(shape, key: key.child("l"))
    let winners = separable ? Tensor(shape: shape, data: a.data.map { 0.6 + 0.1 * $0 }) : a
    let losers = separable ? Tensor(shape: shape, data: b.data.map { 1.2 * $0 }) : b
    var stream = RandomStream(key.child("tokens"))
    let ids = (0..<(2 * n)).map { _ in Int32(1 + stream.int(15)) }
    return try InMemoryPairs(winners: winners, losers: losers, tokens: TokenBatch(ids: ids, batch: n, length: 2),
                             ids: (0..<n).map { idBase + Int64($0) })
}

/// Bitwise equality of two parameter lists.
func sameParameters(_ a: [(String, Tensor)], _ b: [(String, Tensor)]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1.data == $1.1.data }
}

/// All parameter gradients flattened, in parameter order (zeros where absent).
func flatGrads(_ p: [(String, Tensor)]) -> [Float] { p.flatMap { $0.1.grad ?? [Float](repeating: 0, count: $0.1.count) } }

func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count)
    return zip(a, b).map { Double(Swift.abs($0 - $1)) }.max() ?? 0
}

func maxAbs(_ a: [Float]) -> Double { a.map { Double(Swift.abs($0)) }.max() ?? 0 }
