// The prompt encoder: token + position embeddings and pre-norm transformer layers; returns per-token
// features for cross-attention and a pooled vector (masked mean, or a learned null vector).

/// One pre-norm transformer layer: x = x + MHA(LN1(x), key padding mask); x = x + W2 GELU(W1 LN2(x)).
/// reference: Vaswani et al. 2017; pre-norm as in GPT-2 / CLIP's text transformer.
public final class TransformerLayerOf<S: TensorScalar>: Module {
    public let norm1: LayerNormOf<S>, attention: MultiHeadAttentionOf<S>
    public let norm2: LayerNormOf<S>, fc1: LinearOf<S>, fc2: LinearOf<S>

    public init(dimension: Int, heads: Int, mlpRatio: Int, key: RandomKey) {
        norm1 = LayerNormOf(features: dimension)
        attention = MultiHeadAttentionOf(embedDimension: dimension, heads: heads, key: key.child("attention"))
        norm2 = LayerNormOf(features: dimension)
        fc1 = LinearOf(inputFeatures: dimension, outputFeatures: mlpRatio * dimension, key: key.child("fc1"))
        fc2 = LinearOf(inputFeatures: mlpRatio * dimension, outputFeatures: dimension, key: key.child("fc2"))
    }

    /// x: (B, L, D), mask: B·L (true = padding key) → (B, L, D).
    public func callAsFunction(_ x: TensorOf<S>, mask: [Bool]) -> TensorOf<S> {
        let h = x + attention(norm1(x), keyPaddingMask: mask)
        return h + fc2(gelu(fc1(norm2(h))))
    }

    public func parameters() -> [(String, TensorOf<S>)] {
        prefixed("norm1", norm1.parameters()) + prefixed("attention", attention.parameters())
            + prefixed("norm2", norm2.parameters()) + prefixed("fc1", fc1.parameters()) + prefixed("fc2", fc2.parameters())
    }

    func flops(length l: Int) -> Double {
        let d = Double(attention.embedDimension), l = Double(l), hidden = Double(fc1.outputFeatures)
        return 2 * l * 4 * d * d + 2 * 2 * l * l * d + 2 * 2 * l * d * hidden
    }
}

/// The prompt encoder of SPEC §4.
///
///   x_0 = E_tok[ids] + E_pos                       (B, L, D); the padding row of E_tok is zero
///   x_k = TransformerLayer_k(x_{k−1}, mask = ids == pad)
///   tokens = LN_f(x_K)                             (B, L, D)  → cross-attention keys/values
///   pooled_b = Σ_l m_bl tokens_bl / Σ_l m_bl       (m = not padding), or `nullEmbedding` when the
///                                                  prompt is all padding (the null prompt)  (B, D)
public final class TextEncoderOf<S: TensorScalar>: Module {
    public let vocabularySize: Int, maxLength: Int, dimension: Int
    public let tokenEmbedding: EmbeddingOf<S>
    /// E_pos: (maxLength, dimension) ~ N(0, 0.02²).
    public let positionEmbedding: TensorOf<S>
    public let layers: [TransformerLayerOf<S>]
    public let finalNorm: LayerNormOf<S>
    /// The pooled vector of the null prompt: (dimension), starts at zero.
    public let nullEmbedding: TensorOf<S>

    /// `tokenCount` includes the padding id 0.
    public init(tokenCount: Int, maxLength: Int, dimension: Int, heads: Int, layers: Int, mlpRatio: Int, key: RandomKey) {
        vocabularySize = tokenCount; self.maxLength = maxLength; self.dimension = dimension
        tokenEmbedding = EmbeddingOf(count: tokenCount, dimension: dimension, paddingIndex: Int(TokenBatch.pad), key: key.child("token"))
        positionEmbedding = .normal([maxLength, dimension], key: key.child("position"), std: 0.02, requiresGrad: true)
        self.layers = (0..<layers).map { TransformerLayerOf(dimension: dimension, heads: heads, mlpRatio: mlpRatio, key: key.child("layer\($0)")) }
        finalNorm = LayerNormOf(features: dimension)
        nullEmbedding = .zeros([dimension], requiresGrad: true)
    }

    /// Throws unless the rows have length `maxLength` and every id is in 0..<vocabularySize — the
    /// check for ids that come from users, before `callAsFunction` (which only asserts it) reads the
    /// embedding table: `token id 100000000 (row 1, position 2) is outside the vocabulary: ids are 0…40`.
    public func check(_ batch: TokenBatch) throws {
        guard batch.length == maxLength else {
            throw CoreError("token rows have length \(batch.length), the model expects \(maxLength)")
        }
        if let i = batch.ids.firstIndex(where: { $0 < 0 || Int($0) >= vocabularySize }) {
            throw CoreError("token id \(batch.ids[i]) (row \(i / batch.length + 1), position \(i % batch.length + 1)) " +
                            "is outside the vocabulary: ids are 0…\(vocabularySize - 1)")
        }
    }

    /// ids: B·L token ids (row-major (B, L)) → (tokens (B, L, D), pooled (B, D)).
    public func callAsFunction(_ batch: TokenBatch) -> (tokens: TensorOf<S>, pooled: TensorOf<S>) {
        precondition(batch.length == maxLength, "TextEncoder: token rows of length \(batch.length), model expects \(maxLength)")
        let b = batch.batch, l = maxLength
        let ids = batch.ids.map { Int($0) }
        for (i, id) in ids.enumerated() {
            precondition(id >= 0 && id < vocabularySize, "TextEncoder: token id \(id) at \(i) outside 0..<\(vocabularySize)")
        }
        let mask = batch.paddingMask
        var x = tokenEmbedding(ids, shape: [b, l]) + positionEmbedding       // (B, L, D)
        for layer in layers { x = layer(x, mask: mask) }
        let tokens = finalNorm(x)                                              // (B, L, D)
        // weights (B, L, 1): 1/count on real tokens, 0 on padding; isNull (B, 1): 1 for all-padding rows.
        var weights = [S](repeating: 0, count: b * l), isNull = [S](repeating: 0, count: b)
        for r in 0..<b {
            let n = (0..<l).filter { !mask[r * l + $0] }.count
            if n == 0 { isNull[r] = 1 } else { for j in 0..<l where !mask[r * l + j] { weights[r * l + j] = 1 / S(n) } }
        }
        var pooled = sum(tokens * TensorOf(shape: [b, l, 1], data: weights), axis: 1)   // (B, D)
        if isNull.contains(1) {
            pooled = pooled + TensorOf(shape: [b, 1], data: isNull) * nullEmbedding.reshaped([1, dimension])
        }
        return (tokens, pooled)
    }

    public func parameters() -> [(String, TensorOf<S>)] {
        var p = prefixed("token", tokenEmbedding.parameters()) + [("position", positionEmbedding)]
        for (i, layer) in layers.enumerated() { p += prefixed("layer\(i)", layer.parameters()) }
        return p + prefixed("final_norm", finalNorm.parameters()) + [("null", nullEmbedding)]
    }

    /// FLOPs of one prompt.
    public func flops() -> Double { layers.reduce(0) { $0 + $1.flops(length: maxLength) } }
}

public typealias TextEncoder = TextEncoderOf<Float>
public typealias TransformerLayer = TransformerLayerOf<Float>
