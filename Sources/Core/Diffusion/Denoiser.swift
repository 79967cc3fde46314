// The contract between diffusion models and everything that trains or queries them (pretraining,
// DPO, KTO, SFT, the confidence pass, samplers): an ε-prediction network conditioned on prompt tokens.

/// Token ids of a batch of prompts, each padded to `length` with `TokenBatch.pad`.
public struct TokenBatch: Equatable, Sendable {
    /// Padding id; also what an empty (null, classifier-free) prompt consists of.
    public static let pad: Int32 = 0
    /// (batch, length) row-major.
    public var ids: [Int32]
    public var batch: Int
    public var length: Int

    public init(ids: [Int32], batch: Int, length: Int) {
        precondition(ids.count == batch * length, "TokenBatch: \(ids.count) ids for \(batch)×\(length)")
        self.ids = ids
        self.batch = batch
        self.length = length
    }

    /// Rows `range` of this batch.
    public func rows(_ range: Range<Int>) -> TokenBatch {
        TokenBatch(ids: Array(ids[(range.lowerBound * length)..<(range.upperBound * length)]), batch: range.count, length: length)
    }

    /// This batch followed by `other` (same length).
    public func appending(_ other: TokenBatch) -> TokenBatch {
        precondition(other.length == length, "TokenBatch: lengths differ (\(length) vs \(other.length))")
        return TokenBatch(ids: ids + other.ids, batch: batch + other.batch, length: length)
    }

    /// The key padding mask for attention: true where a token is padding (ignored).
    public var paddingMask: [Bool] { ids.map { $0 == TokenBatch.pad } }
}

/// A conditional ε-prediction model with a noise schedule.
public protocol Denoiser: AnyObject {
    /// The schedule the model was trained with.
    var schedule: NoiseSchedule { get }
    /// ε̂ = ε_θ(x_t, t, c).  x_t: (B, C, H, W), one timestep and one token row per sample → (B, C, H, W).
    func predictNoise(_ x: Tensor, timesteps: [Int], tokens: TokenBatch) -> Tensor
    /// All trainable tensors with stable dotted names, in a fixed order.
    func parameters() -> [(String, Tensor)]
    /// Throws unless every token id is in the model's vocabulary and the rows have the model's
    /// length. Token ids from users (`dpo.pairs{tokens = …}`) are checked here before a forward pass
    /// reads the embedding table with them.
    func checkTokens(_ tokens: TokenBatch) throws
}

/// x_t = sqrt(ᾱ_t) x_0 + sqrt(1 − ᾱ_t) ε, per sample (differentiable in x_0 and ε).
public func addNoise(_ x0: Tensor, noise: Tensor, timesteps: [Int], schedule: NoiseSchedule) -> Tensor {
    precondition(x0.shape == noise.shape, "addNoise: x0 \(x0.shape) vs noise \(noise.shape)")
    let b = x0.shape[0]
    precondition(timesteps.count == b, "addNoise: \(timesteps.count) timesteps for batch \(b)")
    var signal = [Float](repeating: 0, count: b), sigma = [Float](repeating: 0, count: b)
    for i in 0..<b { (signal[i], sigma[i]) = schedule.noisingCoefficients(timesteps[i]) }
    let shape = [b] + Array(repeating: 1, count: x0.rank - 1)
    return x0 * Tensor(shape: shape, data: signal) + noise * Tensor(shape: shape, data: sigma)
}

extension Denoiser {
    /// Denoisers without a token table (the test doubles) accept any ids; `DiffusionModel` checks them.
    public func checkTokens(_ tokens: TokenBatch) throws {}

    /// mse_θ(x, t) = mean over pixels of (ε_θ(sqrt(ᾱ_t) x + sqrt(1 − ᾱ_t) ε, t, c) − ε)², per sample → (B,).
    /// Records on the autograd tape unless called under `noGrad`. The per-sample error that DPO,
    /// KTO, SFT, pretraining and the confidence pass all share.
    public func perSampleMSE(x0: Tensor, noise: Tensor, timesteps: [Int], tokens: TokenBatch) -> Tensor {
        let xt = addNoise(x0, noise: noise, timesteps: timesteps, schedule: schedule)
        return mseLossPerSample(predictNoise(xt, timesteps: timesteps, tokens: tokens), noise)
    }
}
