// UNet building blocks: the sinusoidal timestep features, the ResBlock with an added embedding, and
// the spatial attention block (self-attention over pixels, then cross-attention to prompt tokens).
import Foundation

/// Sinusoidal timestep features, one row per sample: for i < d/2, f_i = exp(−ln(10000) · i / (d/2)),
/// row = [cos(t f_0), …, cos(t f_{d/2−1}), sin(t f_0), …, sin(t f_{d/2−1})] → (B, d). A constant
/// (no gradient). reference: Vaswani et al. 2017 §3.5; Ho et al. 2020 (DDPM) appendix B;
/// diffusers `get_timestep_embedding(flip_sin_to_cos=True, downscale_freq_shift=0)` as in SD 1.5.
public func timestepFeatures<S: TensorScalar>(_ timesteps: [Int], dimension d: Int) -> TensorOf<S> {
    precondition(d >= 2 && d % 2 == 0, "timestepFeatures: dimension must be even and ≥ 2, got \(d)")
    let half = d / 2
    var out = [S](repeating: 0, count: timesteps.count * d)  // (B, d)
    for (b, t) in timesteps.enumerated() {
        for i in 0..<half {
            let angle = Double(t) * Foundation.exp(-Foundation.log(10_000.0) * Double(i) / Double(half))
            out[b * d + i] = S(Foundation.cos(angle))
            out[b * d + half + i] = S(Foundation.sin(angle))
        }
    }
    return TensorOf(shape: [timesteps.count, d], data: out)
}

/// A residual block with an added per-sample embedding:
///   h = conv1(SiLU(GN1(x))) + W_e · e        (e = SiLU(embedding), (B, E), broadcast over H, W)
///   h = conv2(SiLU(GN2(h)))
///   y = skip(x) + h                           (skip = 1×1 conv when channels change, else identity)
/// With `scaleShift` (FiLM, "use_scale_shift_norm"), the embedding scales and shifts after the second norm:
///   h = conv1(SiLU(GN1(x)));  h = conv2(SiLU(GN2(h) · (1 + W_s · e) + W_e · e))
/// reference: Ho et al. 2020 (DDPM) / Dhariwal & Nichol 2021 ResBlock; scale-shift norm: Nichol & Dhariwal
/// 2021 (improved DDPM) `use_scale_shift_norm`, Perez et al. 2018 (FiLM).
public final class ResBlockOf<S: TensorScalar>: Module {
    public let inputChannels: Int, outputChannels: Int
    public let norm1: GroupNormOf<S>, conv1: Conv2DOf<S>, embedding: LinearOf<S>
    /// W_s of the scale-shift form (nil: the embedding is added after conv1).
    public let embeddingScale: LinearOf<S>?
    public let norm2: GroupNormOf<S>, conv2: Conv2DOf<S>
    public let skip: Conv2DOf<S>?

    public init(inputChannels: Int, outputChannels: Int, embeddingDimension: Int, groups: Int, scaleShift: Bool = false,
                key: RandomKey) {
        self.inputChannels = inputChannels; self.outputChannels = outputChannels
        norm1 = GroupNormOf(groups: groups, channels: inputChannels)
        conv1 = Conv2DOf(inputChannels: inputChannels, outputChannels: outputChannels, kernelSize: 3, key: key.child("conv1"))
        embedding = LinearOf(inputFeatures: embeddingDimension, outputFeatures: outputChannels, key: key.child("embedding"))
        embeddingScale = scaleShift
            ? LinearOf(inputFeatures: embeddingDimension, outputFeatures: outputChannels, key: key.child("embedding_scale")) : nil
        norm2 = GroupNormOf(groups: groups, channels: outputChannels)
        conv2 = Conv2DOf(inputChannels: outputChannels, outputChannels: outputChannels, kernelSize: 3, key: key.child("conv2"))
        skip = inputChannels == outputChannels ? nil
            : Conv2DOf(inputChannels: inputChannels, outputChannels: outputChannels, kernelSize: 1, key: key.child("skip"))
    }

    /// x: (B, inputChannels, H, W), e: (B, E) already passed through SiLU → (B, outputChannels, H, W).
    public func callAsFunction(_ x: TensorOf<S>, embedding e: TensorOf<S>) -> TensorOf<S> {
        var h = conv1(norm1.silu(x))                                            // (B, Cout, H, W)
        if let embeddingScale {
            // SiLU(GN2(h)·(1 + W_s·e) + W_e·e) as one fused op; scale, shift: (B, Cout)
            h = conv2(norm2.silu(h, scale: embeddingScale(e), shift: embedding(e)))
        } else {
            // SiLU(GN2(h + W_e·e)) as one fused op: h + W_e·e is never stored; W_e·e: (B, Cout)
            h = conv2(norm2.silu(h, inputOffset: embedding(e)))
        }
        return (skip.map { $0(x) } ?? x) + h
    }

    public func parameters() -> [(String, TensorOf<S>)] {
        prefixed("norm1", norm1.parameters()) + prefixed("conv1", conv1.parameters())
            + prefixed("embedding", embedding.parameters())
            + (embeddingScale.map { prefixed("embedding_scale", $0.parameters()) } ?? []) + prefixed("norm2", norm2.parameters())
            + prefixed("conv2", conv2.parameters()) + (skip.map { prefixed("skip", $0.parameters()) } ?? [])
    }

    /// Multiply-add FLOPs (2 per MAC) of one image at side `size`.
    public func flops(size: Int) -> Double {
        let px = Double(size * size), ci = Double(inputChannels), co = Double(outputChannels)
        return 2 * px * 9 * (ci * co + co * co) + (skip != nil ? 2 * px * ci * co : 0)
            + 2 * Double(embedding.inputFeatures) * co * (embeddingScale != nil ? 2 : 1)
    }
}

/// Attention over the pixels of a feature map, as pre-norm residual steps on tokens t = pixels:
///   t = t + SelfAttention(LN1(t));   t = t + CrossAttention(LN2(t), prompt tokens, padding mask)
/// x: (B, C, H, W) ↔ t: (B, H·W, C). A prompt that is all padding (the null prompt) makes the
/// cross-attention output its projection bias only (the engine returns zeros for fully masked rows).
/// reference: Rombach et al. 2022 (LDM) §3.3 / SD 1.5's BasicTransformerBlock (without proj_in/out, FF).
public final class SpatialAttentionBlockOf<S: TensorScalar>: Module {
    public let channels: Int, contextDimension: Int, heads: Int
    public let norm1: LayerNormOf<S>, selfAttention: MultiHeadAttentionOf<S>
    public let norm2: LayerNormOf<S>, crossAttention: MultiHeadAttentionOf<S>

    public init(channels: Int, contextDimension: Int, heads: Int, key: RandomKey) {
        self.channels = channels; self.contextDimension = contextDimension; self.heads = heads
        norm1 = LayerNormOf(features: channels)
        selfAttention = MultiHeadAttentionOf(embedDimension: channels, heads: heads, key: key.child("self"))
        norm2 = LayerNormOf(features: channels)
        crossAttention = MultiHeadAttentionOf(embedDimension: channels, heads: heads, contextDimension: contextDimension,
                                              key: key.child("cross"))
    }

    /// x: (B, C, H, W), context: (B, L, contextDimension), contextMask: B·L flags (true = padding).
    public func callAsFunction(_ x: TensorOf<S>, context: TensorOf<S>, contextMask: [Bool]) -> TensorOf<S> {
        let b = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
        var t = transposeLastTwo(x.reshaped([b, c, h * w]))                   // (B, HW, C)
        t = t + selfAttention(norm1(t))
        t = t + crossAttention(norm2(t), context: context, keyPaddingMask: contextMask)
        return transposeLastTwo(t).reshaped([b, c, h, w])
    }

    public func parameters() -> [(String, TensorOf<S>)] {
        prefixed("norm1", norm1.parameters()) + prefixed("self", selfAttention.parameters())
            + prefixed("norm2", norm2.parameters()) + prefixed("cross", crossAttention.parameters())
    }

    /// FLOPs of one image with `tokens` pixels and `contextLength` prompt tokens.
    public func flops(tokens n: Int, contextLength l: Int) -> Double {
        let c = Double(channels), d = Double(contextDimension), n = Double(n), l = Double(l)
        let selfAttn = 2 * n * 4 * c * c + 2 * 2 * n * n * c
        let cross = 2 * n * 2 * c * c + 2 * l * 2 * d * c + 2 * 2 * n * l * c
        return selfAttn + cross
    }
}

public typealias ResBlock = ResBlockOf<Float>
public typealias SpatialAttentionBlock = SpatialAttentionBlockOf<Float>
