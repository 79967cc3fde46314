// Generic layers built on the ops: Linear, Conv2D, GroupNorm, LayerNorm, Embedding. Each is
// generic over the scalar (`LinearOf<Double>` for gradient checks); product code uses the aliases.

/// y = x · Wᵀ + b. weight: (outputFeatures, inputFeatures), bias: (outputFeatures).
/// Initialised like PyTorch: U(−1/√in, 1/√in) for both.
public final class LinearOf<S: TensorScalar>: Module {
    public let inputFeatures: Int, outputFeatures: Int
    public let weight: TensorOf<S>
    public let bias: TensorOf<S>?

    public init(inputFeatures: Int, outputFeatures: Int, bias: Bool = true, key: RandomKey) {
        precondition(inputFeatures > 0 && outputFeatures > 0, "Linear: features must be > 0, got \(inputFeatures) → \(outputFeatures)")
        self.inputFeatures = inputFeatures; self.outputFeatures = outputFeatures
        let bound = defaultInitBound(fanIn: inputFeatures)
        weight = .uniform([outputFeatures, inputFeatures], key: key.child("weight"), low: -bound, high: bound, requiresGrad: true)
        self.bias = bias ? .uniform([outputFeatures], key: key.child("bias"), low: -bound, high: bound, requiresGrad: true) : nil
    }
    /// x: (…, inputFeatures) → (…, outputFeatures)
    public func callAsFunction(_ x: TensorOf<S>) -> TensorOf<S> { linear(x, weight, bias) }
    public func parameters() -> [(String, TensorOf<S>)] { [("weight", weight)] + (bias.map { [("bias", $0)] } ?? []) }
}

/// 2-d convolution layer. weight: (outputChannels, inputChannels, K, K), bias: (outputChannels).
public final class Conv2DOf<S: TensorScalar>: Module {
    public let inputChannels: Int, outputChannels: Int, kernelSize: Int, stride: Int, padding: Int
    public let weight: TensorOf<S>
    public let bias: TensorOf<S>?

    /// `padding` defaults to kernelSize/2 ("same" size at stride 1).
    public init(inputChannels: Int, outputChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int? = nil,
                bias: Bool = true, key: RandomKey) {
        precondition(inputChannels > 0 && outputChannels > 0 && kernelSize > 0 && stride > 0,
                     "Conv2D: bad hyperparameters in=\(inputChannels) out=\(outputChannels) k=\(kernelSize) stride=\(stride)")
        self.inputChannels = inputChannels; self.outputChannels = outputChannels
        self.kernelSize = kernelSize; self.stride = stride; self.padding = padding ?? kernelSize / 2
        let bound = defaultInitBound(fanIn: inputChannels * kernelSize * kernelSize)
        weight = .uniform([outputChannels, inputChannels, kernelSize, kernelSize], key: key.child("weight"),
                          low: -bound, high: bound, requiresGrad: true)
        self.bias = bias ? .uniform([outputChannels], key: key.child("bias"), low: -bound, high: bound, requiresGrad: true) : nil
    }
    /// x: (B, inputChannels, H, W) → (B, outputChannels, Ho, Wo)
    public func callAsFunction(_ x: TensorOf<S>) -> TensorOf<S> { conv2d(x, weight, bias, stride: stride, padding: padding) }
    public func parameters() -> [(String, TensorOf<S>)] { [("weight", weight)] + (bias.map { [("bias", $0)] } ?? []) }
}

/// GroupNorm over `groups` groups of `channels`; weight ones, bias zeros.
public final class GroupNormOf<S: TensorScalar>: Module {
    public let groups: Int, channels: Int, eps: Double
    public let weight: TensorOf<S>, bias: TensorOf<S>
    public init(groups: Int, channels: Int, eps: Double = 1e-5) {
        precondition(groups > 0 && channels % groups == 0, "GroupNorm: \(channels) channels not divisible into \(groups) groups")
        self.groups = groups; self.channels = channels; self.eps = eps
        weight = .ones([channels], requiresGrad: true); bias = .zeros([channels], requiresGrad: true)
    }
    /// x: (B, channels, …) → same shape
    public func callAsFunction(_ x: TensorOf<S>) -> TensorOf<S> { groupNorm(x, groups: groups, weight: weight, bias: bias, eps: eps) }
    /// SiLU(GroupNorm(x)) as one fused op (`groupNormSiLU`): equal to `silu(self(x))`, fewer passes.
    public func silu(_ x: TensorOf<S>) -> TensorOf<S> { groupNormSiLU(x, groups: groups, weight: weight, bias: bias, eps: eps) }
    /// SiLU(GroupNorm(x + inputOffset)) with inputOffset (B, channels) added to every pixel of its
    /// channel, as one fused op (`groupNormSiLU(_:inputOffset:…)`): x + inputOffset is never stored.
    public func silu(_ x: TensorOf<S>, inputOffset: TensorOf<S>) -> TensorOf<S> {
        groupNormSiLU(x, inputOffset: inputOffset, groups: groups, weight: weight, bias: bias, eps: eps)
    }
    /// SiLU(GroupNorm(x)·(1 + scale) + shift) with scale, shift (B, channels), as one fused op
    /// (`groupNormModulatedSiLU`, FiLM / scale-shift norm).
    public func silu(_ x: TensorOf<S>, scale: TensorOf<S>, shift: TensorOf<S>) -> TensorOf<S> {
        groupNormModulatedSiLU(x, groups: groups, weight: weight, bias: bias, scale: scale, shift: shift, eps: eps)
    }
    public func parameters() -> [(String, TensorOf<S>)] { [("weight", weight), ("bias", bias)] }
}

/// LayerNorm over the last axis of size `features`; weight ones, bias zeros.
public final class LayerNormOf<S: TensorScalar>: Module {
    public let features: Int, eps: Double
    public let weight: TensorOf<S>, bias: TensorOf<S>
    public init(features: Int, eps: Double = 1e-5) {
        precondition(features > 0, "LayerNorm: features must be > 0")
        self.features = features; self.eps = eps
        weight = .ones([features], requiresGrad: true); bias = .zeros([features], requiresGrad: true)
    }
    /// x: (…, features) → same shape
    public func callAsFunction(_ x: TensorOf<S>) -> TensorOf<S> { layerNorm(x, weight: weight, bias: bias, eps: eps) }
    public func parameters() -> [(String, TensorOf<S>)] { [("weight", weight), ("bias", bias)] }
}

/// Token embedding table (count, dimension) ~ N(0, 1), the padding row zero and never updated.
public final class EmbeddingOf<S: TensorScalar>: Module {
    public let count: Int, dimension: Int, paddingIndex: Int?
    public let weight: TensorOf<S>
    public init(count: Int, dimension: Int, paddingIndex: Int? = nil, key: RandomKey) {
        precondition(count > 0 && dimension > 0, "Embedding: count and dimension must be > 0")
        if let p = paddingIndex { precondition(p >= 0 && p < count, "Embedding: paddingIndex \(p) outside 0..<\(count)") }
        self.count = count; self.dimension = dimension; self.paddingIndex = paddingIndex
        weight = .normal([count, dimension], key: key.child("weight"), requiresGrad: true)
        if let p = paddingIndex { for j in 0..<dimension { weight.data[p * dimension + j] = 0 } }
    }
    /// indices (shape) → (shape…, dimension)
    public func callAsFunction(_ indices: [Int], shape: [Int]) -> TensorOf<S> {
        embedding(indices, shape: shape, weight: weight, paddingIndex: paddingIndex)
    }
    public func parameters() -> [(String, TensorOf<S>)] { [("weight", weight)] }
}

/// Multi-head attention with q/k/v/out projections (PyTorch `nn.MultiheadAttention` semantics,
/// batch-first). Self-attention: `attn(x)`; cross-attention: `attn(x, context: tokens, keyPaddingMask:)`.
public final class MultiHeadAttentionOf<S: TensorScalar>: Module {
    public let embedDimension: Int, contextDimension: Int, heads: Int
    public let query: LinearOf<S>, key: LinearOf<S>, value: LinearOf<S>, output: LinearOf<S>

    /// `contextDimension` (feature size of the keys' source) defaults to `embedDimension`.
    public init(embedDimension: Int, heads: Int, contextDimension: Int? = nil, key rkey: RandomKey) {
        precondition(heads > 0 && embedDimension % heads == 0, "MultiHeadAttention: \(embedDimension) not divisible by \(heads) heads")
        self.embedDimension = embedDimension; self.heads = heads
        self.contextDimension = contextDimension ?? embedDimension
        query = LinearOf(inputFeatures: embedDimension, outputFeatures: embedDimension, key: rkey.child("query"))
        key = LinearOf(inputFeatures: self.contextDimension, outputFeatures: embedDimension, key: rkey.child("key"))
        value = LinearOf(inputFeatures: self.contextDimension, outputFeatures: embedDimension, key: rkey.child("value"))
        output = LinearOf(inputFeatures: embedDimension, outputFeatures: embedDimension, key: rkey.child("output"))
    }
    /// x: (B, Tq, embedDimension), context: (B, Tk, contextDimension) or nil for self-attention,
    /// keyPaddingMask: B·Tk flags, true = ignore that key → (B, Tq, embedDimension).
    public func callAsFunction(_ x: TensorOf<S>, context: TensorOf<S>? = nil, keyPaddingMask: [Bool]? = nil) -> TensorOf<S> {
        let source = context ?? x
        let q = query(x), k = key(source), v = value(source)
        return output(attention(q, k, v, heads: heads, keyPaddingMask: keyPaddingMask))
    }
    public func parameters() -> [(String, TensorOf<S>)] {
        prefixed("query", query.parameters()) + prefixed("key", key.parameters())
            + prefixed("value", value.parameters()) + prefixed("output", output.parameters())
    }
}

public typealias Linear = LinearOf<Float>
public typealias Conv2D = Conv2DOf<Float>
public typealias GroupNorm = GroupNormOf<Float>
public typealias LayerNorm = LayerNormOf<Float>
public typealias Embedding = EmbeddingOf<Float>
public typealias MultiHeadAttention = MultiHeadAttentionOf<Float>
