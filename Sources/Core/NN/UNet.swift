// The conditional ε-prediction UNet of SPEC §4: timestep MLP (+ pooled prompt), ResBlock levels with
// stride-2 conv down, self+cross attention at chosen resolutions, skip-concatenating up path.

/// UNet over images (B, imageChannels, S, S), conditioned on a timestep embedding plus the pooled
/// prompt, and on prompt tokens through cross-attention.
///
///   e   = Lin2(SiLU(Lin1(sinusoidal(t)))) + Lin_text(pooled)          (B, E)
///   h   = conv_in(x);  skips = []
///   for level l: for each of `resBlocks`: h = ResBlock(h, SiLU(e)); skips.push(h)
///                (after the last block of a level whose side is in `attentionResolutions`:
///                 h = SpatialAttention(h, tokens), pushed instead)
///                if not the last level: h = conv3×3 stride 2 (h)
///   for level l reversed: for each of `resBlocks`: h = ResBlock(concat(h, skips.pop()), SiLU(e))
///                if l > 0: h = conv3×3(upsampleNearest2x(h))
///   ε̂   = conv_out(SiLU(GN(h)))
/// reference: Ronneberger et al. 2015 (U-Net); Ho et al. 2020; Rombach et al. 2022 (SD's UNet).
public final class UNetOf<S: TensorScalar>: Module {
    public let config: DiffusionConfig
    public let timeLinear1: LinearOf<S>, timeLinear2: LinearOf<S>, textProjection: LinearOf<S>
    public let convIn: Conv2DOf<S>
    /// down[l]: the ResBlocks of level l.
    public let down: [[ResBlockOf<S>]]
    /// attention[l]: the attention block after level l's down ResBlocks, if any.
    public let attention: [SpatialAttentionBlockOf<S>?]
    /// downsample[l]: stride-2 conv after level l (all levels but the last).
    public let downsample: [Conv2DOf<S>]
    /// up[l]: the up-path ResBlocks of level l (run from the last level to the first).
    public let up: [[ResBlockOf<S>]]
    /// upsample[l - 1]: conv after nearest ×2 upsampling from level l to l − 1.
    public let upsample: [Conv2DOf<S>]
    public let normOut: GroupNormOf<S>, convOut: Conv2DOf<S>

    public init(config: DiffusionConfig, key: RandomKey) {
        self.config = config
        let ch = config.channels, e = config.embeddingDimension, g = config.normGroups
        timeLinear1 = LinearOf(inputFeatures: config.timeDimension, outputFeatures: e, key: key.child("time1"))
        timeLinear2 = LinearOf(inputFeatures: e, outputFeatures: e, key: key.child("time2"))
        textProjection = LinearOf(inputFeatures: config.textDimension, outputFeatures: e, key: key.child("text"))
        convIn = Conv2DOf(inputChannels: config.imageChannels, outputChannels: ch[0], kernelSize: 3, key: key.child("conv_in"))
        var down: [[ResBlockOf<S>]] = [], attention: [SpatialAttentionBlockOf<S>?] = [], downsample: [Conv2DOf<S>] = []
        var skipChannels: [Int] = []
        var current = ch[0]
        for (l, c) in ch.enumerated() {
            var blocks: [ResBlockOf<S>] = []
            for j in 0..<config.resBlocks {
                blocks.append(ResBlockOf(inputChannels: current, outputChannels: c, embeddingDimension: e, groups: g,
                                         scaleShift: config.scaleShiftNorm, key: key.child("down\(l).\(j)")))
                current = c
                skipChannels.append(c)
            }
            down.append(blocks)
            attention.append(config.attentionResolutions.contains(config.imageSize >> l)
                ? SpatialAttentionBlockOf(channels: c, contextDimension: config.textDimension, heads: config.attentionHeads,
                                          key: key.child("attention\(l)"))
                : nil)
            if l + 1 < ch.count {
                downsample.append(Conv2DOf(inputChannels: c, outputChannels: c, kernelSize: 3, stride: 2, padding: 1,
                                           key: key.child("downsample\(l)")))
            }
        }
        var up = [[ResBlockOf<S>]](repeating: [], count: ch.count), upsample: [Conv2DOf<S>] = []
        for l in (0..<ch.count).reversed() {
            for j in 0..<config.resBlocks {
                let skip = skipChannels.removeLast()
                up[l].append(ResBlockOf(inputChannels: current + skip, outputChannels: ch[l], embeddingDimension: e, groups: g,
                                        scaleShift: config.scaleShiftNorm, key: key.child("up\(l).\(j)")))
                current = ch[l]
            }
            if l > 0 {
                upsample.insert(Conv2DOf(inputChannels: current, outputChannels: current, kernelSize: 3,
                                         key: key.child("upsample\(l)")), at: 0)
            }
        }
        self.down = down; self.attention = attention; self.downsample = downsample
        self.up = up; self.upsample = upsample
        normOut = GroupNormOf(groups: g, channels: current)
        convOut = Conv2DOf(inputChannels: current, outputChannels: config.imageChannels, kernelSize: 3, key: key.child("conv_out"))
    }

    /// x: (B, C, S, S), timesteps: B values, context: (B, L, D) prompt tokens, contextMask: B·L
    /// (true = padding), pooled: (B, D) → ε̂ (B, C, S, S).
    public func callAsFunction(_ x: TensorOf<S>, timesteps: [Int], context: TensorOf<S>, contextMask: [Bool],
                               pooled: TensorOf<S>) -> TensorOf<S> {
        let b = x.shape[0]
        precondition(x.shape == [b, config.imageChannels, config.imageSize, config.imageSize],
                     "UNet: input \(x.shape), expected (B, \(config.imageChannels), \(config.imageSize), \(config.imageSize))")
        precondition(timesteps.count == b, "UNet: \(timesteps.count) timesteps for batch \(b)")
        let t: TensorOf<S> = timestepFeatures(timesteps, dimension: config.timeDimension)      // (B, T_d)
        let emb = timeLinear2(silu(timeLinear1(t))) + textProjection(pooled)                   // (B, E)
        let e = silu(emb)
        var h = convIn(x)                                                                      // (B, C0, S, S)
        var skips: [TensorOf<S>] = []
        for l in 0..<down.count {
            for (j, block) in down[l].enumerated() {
                h = block(h, embedding: e)
                if j == down[l].count - 1, let attn = attention[l] { h = attn(h, context: context, contextMask: contextMask) }
                skips.append(h)
            }
            if l < downsample.count { h = downsample[l](h) }
        }
        for l in (0..<up.count).reversed() {
            for block in up[l] { h = block(concat([h, skips.removeLast()], axis: 1), embedding: e) }
            if l > 0 { h = upsample[l - 1](upsampleNearest2x(h)) }
        }
        return convOut(normOut.silu(h))
    }

    public func parameters() -> [(String, TensorOf<S>)] {
        var p = prefixed("time1", timeLinear1.parameters()) + prefixed("time2", timeLinear2.parameters())
            + prefixed("text", textProjection.parameters()) + prefixed("conv_in", convIn.parameters())
        for l in 0..<down.count {
            for (j, block) in down[l].enumerated() { p += prefixed("down\(l).\(j)", block.parameters()) }
            if let a = attention[l] { p += prefixed("attention\(l)", a.parameters()) }
            if l < downsample.count { p += prefixed("downsample\(l)", downsample[l].parameters()) }
        }
        for l in (0..<up.count).reversed() {
            for (j, block) in up[l].enumerated() { p += prefixed("up\(l).\(j)", block.parameters()) }
            if l > 0 { p += prefixed("upsample\(l)", upsample[l - 1].parameters()) }
        }
        return p + prefixed("norm_out", normOut.parameters()) + prefixed("conv_out", convOut.parameters())
    }

    /// Forward FLOPs of one image (2 per multiply-add; convolutions, linears and attention
    /// matmuls; norms and activations not counted).
    public func flops() -> Double {
        let s = config.imageSize, e = Double(config.embeddingDimension)
        var f = 2 * (Double(config.timeDimension) * e + e * e + Double(config.textDimension) * e)
        f += 2 * Double(s * s * 9 * config.imageChannels * config.channels[0])
        for l in 0..<down.count {
            let side = s >> l
            for block in down[l] { f += block.flops(size: side) }
            if let a = attention[l] { f += a.flops(tokens: side * side, contextLength: config.maxTokens) }
            if l < downsample.count {
                let c = Double(config.channels[l]), out = Double((side / 2) * (side / 2))
                f += 2 * out * 9 * c * c
            }
        }
        for l in 0..<up.count {
            let side = s >> l
            for block in up[l] { f += block.flops(size: side) }
            if l > 0 { let c = Double(config.channels[l]); f += 2 * Double((2 * side) * (2 * side)) * 9 * c * c }
        }
        f += 2 * Double(s * s * 9 * config.imageChannels * config.channels[0])
        return f
    }
}

public typealias UNet = UNetOf<Float>
