// The proxy reward model of the committee: a small conv image encoder and an optional prompt
// encoder → one scalar score per (image, prompt); its rater; safetensors checkpoints with metadata.
import Foundation

/// Architecture of a reward model. Every field is stored in the checkpoint's metadata.
public struct RewardModelConfig: Sendable, Equatable {
    /// Input images are (3, imageSize, imageSize); imageSize must be divisible by 4.
    public var imageSize: Int = 16
    /// Channels of the three conv blocks (the last two downsample by 2).
    public var channels: [Int] = [8, 16, 32]
    /// GroupNorm groups in every block (must divide every entry of `channels`).
    public var groups: Int = 4
    /// Width of the prompt encoder, the pooling query and the head's hidden layer.
    public var embedDimension: Int = 32
    /// Attention heads of the prompt encoder's self-attention and of the pooling attention.
    public var heads: Int = 2
    /// false: an image-only model (the pooling query is a learned vector, no prompt input).
    public var usesPrompt: Bool = true

    public init(imageSize: Int = 16, channels: [Int] = [8, 16, 32], groups: Int = 4, embedDimension: Int = 32,
                heads: Int = 2, usesPrompt: Bool = true) {
        self.imageSize = imageSize; self.channels = channels; self.groups = groups
        self.embedDimension = embedDimension; self.heads = heads; self.usesPrompt = usesPrompt
    }

    /// Largest `imageSize`, channel count and `embedDimension` (checked before anything is allocated).
    public static let maxImageSize = 1024, maxWidth = 8192
    /// Largest parameter count (2^27, as `DiffusionConfig.maxParameters`).
    public static let maxParameters = 1 << 27

    /// The number of parameters `RewardModel(config:)` allocates, from the sizes alone (Float64, so
    /// it cannot overflow); mirrors `RewardModel.init`, and a test checks it against built models.
    public var parameterCount: Double {
        func linear(_ i: Int, _ o: Int) -> Double { Double(i) * Double(o) + Double(o) }
        func attention(_ d: Int, context: Int) -> Double { 2 * linear(d, d) + 2 * linear(context, d) }
        let c = channels.map(Double.init), d = embedDimension, side = Double(featureSide)
        var n = (27 * c[0] + c[0]) + (9 * c[0] * c[1] + c[1]) + (9 * c[1] * c[2] + c[2]) + 2 * (c[0] + c[1] + c[2])
        n += side * side * c[2] + attention(d, context: channels[2])
        if usesPrompt {
            n += Double(RewardTokens.vocabularySize * d + Vocabulary.maxTokens * d) + 2 * Double(d) + attention(d, context: d) + linear(d, d)
        } else {
            n += Double(d)
        }
        return n + linear(channels[2] + d + (usesPrompt ? d : 0), d) + linear(d, 1)
    }

    public func validate() throws {
        guard imageSize >= 4, imageSize % 4 == 0 else { throw CoreError("reward model: imageSize must be a positive multiple of 4, got \(imageSize)") }
        guard imageSize <= RewardModelConfig.maxImageSize else {
            throw CoreError("reward model: imageSize \(imageSize) is above the cap of \(RewardModelConfig.maxImageSize)")
        }
        if let big = (channels + [embedDimension, heads, groups]).first(where: { $0 > RewardModelConfig.maxWidth }) {
            throw CoreError("reward model: size \(big) (channels \(channels), groups \(groups), embedDimension \(embedDimension), heads \(heads)) is above the cap of \(RewardModelConfig.maxWidth)")
        }
        guard channels.count == 3, channels.allSatisfy({ $0 > 0 }) else { throw CoreError("reward model: channels must be three positive sizes, got \(channels)") }
        guard groups > 0, channels.allSatisfy({ $0 % groups == 0 }) else { throw CoreError("reward model: groups \(groups) must divide every channel count \(channels)") }
        guard embedDimension > 0, heads > 0, embedDimension % heads == 0, channels[2] % heads == 0 else {
            throw CoreError("reward model: embedDimension \(embedDimension) and channels[2] \(channels[2]) must be divisible by heads \(heads)")
        }
        guard parameterCount <= Double(RewardModelConfig.maxParameters) else {
            throw CoreError("reward model: this architecture has \(Int(parameterCount)) parameters, above the cap of \(RewardModelConfig.maxParameters)")
        }
    }

    /// Spatial side after the two stride-2 blocks.
    public var featureSide: Int { imageSize / 4 }

    /// Metadata form (`reward.*` keys of a checkpoint).
    public var metadata: [String: String] {
        ["reward.image_size": "\(imageSize)", "reward.channels": channels.map(String.init).joined(separator: ","),
         "reward.groups": "\(groups)", "reward.embed_dimension": "\(embedDimension)", "reward.heads": "\(heads)",
         "reward.uses_prompt": usesPrompt ? "true" : "false"]
    }

    /// Reads the `reward.*` metadata keys written by `metadata`; `source` names the file in errors.
    public init(metadata m: [String: String], source: String) throws {
        func int(_ k: String) throws -> Int {
            guard let s = m[k], let v = Int(s) else { throw CoreError("\(source): metadata '\(k)' missing or not an integer") }
            return v
        }
        guard let ch = m["reward.channels"] else { throw CoreError("\(source): metadata 'reward.channels' missing") }
        let channels = try ch.split(separator: ",").map { s -> Int in
            guard let v = Int(s) else { throw CoreError("\(source): metadata 'reward.channels' = '\(ch)' is not a list of integers") }
            return v
        }
        guard let up = m["reward.uses_prompt"], up == "true" || up == "false" else {
            throw CoreError("\(source): metadata 'reward.uses_prompt' must be 'true' or 'false'")
        }
        self.init(imageSize: try int("reward.image_size"), channels: channels, groups: try int("reward.groups"),
                  embedDimension: try int("reward.embed_dimension"), heads: try int("reward.heads"), usesPrompt: up == "true")
        try validate()
    }
}

/// Prompt tokens for the reward model: word id + 1 (`Vocabulary.ids`), padded with 0 to
/// `Vocabulary.maxTokens`. (B, L) row-major.
public struct RewardTokens: Sendable, Equatable {
    public static let pad = 0
    /// Embedding rows: padding + every vocabulary word.
    public static var vocabularySize: Int { Vocabulary.words.count + 1 }
    public var ids: [Int]
    public var batch: Int
    public var length: Int { Vocabulary.maxTokens }

    public init(ids: [Int], batch: Int) throws {
        guard ids.count == batch * Vocabulary.maxTokens else {
            throw CoreError("reward tokens: \(ids.count) ids for \(batch) rows of \(Vocabulary.maxTokens)")
        }
        for v in ids where v < 0 || v >= RewardTokens.vocabularySize {
            throw CoreError("reward tokens: id \(v) outside 0..<\(RewardTokens.vocabularySize)")
        }
        self.ids = ids; self.batch = batch
    }

    /// Tokens of prompt texts (throws on unknown words or more than `Vocabulary.maxTokens` words).
    public init(texts: [String]) throws {
        var ids: [Int] = []
        ids.reserveCapacity(texts.count * Vocabulary.maxTokens)
        for t in texts { ids += try RewardTokens.row(t) }
        try self.init(ids: ids, batch: texts.count)
    }

    /// One padded row.
    public static func row(_ text: String) throws -> [Int] {
        let w = try Vocabulary.ids(text).map { $0 + 1 }
        return w + [Int](repeating: pad, count: Vocabulary.maxTokens - w.count)
    }

    /// This batch followed by itself (for scoring image0 and image1 of the same prompts in one pass).
    public func doubled() -> RewardTokens { RewardTokens(unchecked: ids + ids, batch: 2 * batch) }
    private init(unchecked ids: [Int], batch: Int) { self.ids = ids; self.batch = batch }
}

/// A reward model r(x, c) → ℝ:
///
///     h   = SiLU(GN(conv3×3(x)))                      (B, C0, S, S)
///     h   = SiLU(GN(conv3×3 stride 2(h)))             (B, C1, S/2, S/2)
///     F   = SiLU(GN(conv3×3 stride 2(h)))             (B, C2, S/4, S/4) → tokens (B, S²/16, C2) + pos
///     p   = masked mean of (E[c] + P + MHA(LN(E[c] + P)))  (prompt encoder; B, D)
///     q   = Linear(p)  or a learned vector q₀ (image-only)
///     a   = MHA(q, keys/values = F tokens)            (attention pooling; B, D)
///     g   = mean over positions of F                  (global average pool; B, C2)
///     r   = Linear(SiLU(Linear([g, a, p])))           (p omitted image-only)
///
/// The attention pooling lets the score depend on *where* things are (prompts ask for positions,
/// aesthetics judges placement); the average pool sees global colour and texture.
public final class RewardModelOf<S: TensorScalar>: Module {
    public let config: RewardModelConfig
    public let conv0: Conv2DOf<S>, norm0: GroupNormOf<S>
    public let conv1: Conv2DOf<S>, norm1: GroupNormOf<S>
    public let conv2: Conv2DOf<S>, norm2: GroupNormOf<S>
    /// (S²/16, C2) learned position embedding of the image tokens.
    public let imagePosition: TensorOf<S>
    public let pool: MultiHeadAttentionOf<S>
    // Prompt encoder (nil for image-only models).
    public let tokenEmbedding: EmbeddingOf<S>?
    /// (maxTokens, D) position embedding of the prompt tokens.
    public let tokenPosition: TensorOf<S>?
    public let textNorm: LayerNormOf<S>?
    public let textAttention: MultiHeadAttentionOf<S>?
    public let queryProjection: LinearOf<S>?
    /// (1, 1, D) the pooling query of an image-only model.
    public let learnedQuery: TensorOf<S>?
    public let hidden: LinearOf<S>, output: LinearOf<S>

    public init(config: RewardModelConfig, key: RandomKey) throws {
        try config.validate()
        self.config = config
        let c = config.channels, d = config.embedDimension, g = config.groups
        conv0 = Conv2DOf(inputChannels: 3, outputChannels: c[0], kernelSize: 3, key: key.child("conv0"))
        norm0 = GroupNormOf(groups: g, channels: c[0])
        conv1 = Conv2DOf(inputChannels: c[0], outputChannels: c[1], kernelSize: 3, stride: 2, key: key.child("conv1"))
        norm1 = GroupNormOf(groups: g, channels: c[1])
        conv2 = Conv2DOf(inputChannels: c[1], outputChannels: c[2], kernelSize: 3, stride: 2, key: key.child("conv2"))
        norm2 = GroupNormOf(groups: g, channels: c[2])
        let positions = config.featureSide * config.featureSide
        imagePosition = .normal([positions, c[2]], key: key.child("image_position"), std: 0.1, requiresGrad: true)
        pool = MultiHeadAttentionOf(embedDimension: d, heads: config.heads, contextDimension: c[2], key: key.child("pool"))
        if config.usesPrompt {
            tokenEmbedding = EmbeddingOf(count: RewardTokens.vocabularySize, dimension: d, paddingIndex: RewardTokens.pad, key: key.child("token_embedding"))
            tokenPosition = .normal([Vocabulary.maxTokens, d], key: key.child("token_position"), std: 0.1, requiresGrad: true)
            textNorm = LayerNormOf(features: d)
            textAttention = MultiHeadAttentionOf(embedDimension: d, heads: config.heads, key: key.child("text_attention"))
            queryProjection = LinearOf(inputFeatures: d, outputFeatures: d, key: key.child("query_projection"))
            learnedQuery = nil
        } else {
            tokenEmbedding = nil; tokenPosition = nil; textNorm = nil; textAttention = nil; queryProjection = nil
            learnedQuery = .normal([1, 1, d], key: key.child("learned_query"), requiresGrad: true)
        }
        let headIn = c[2] + d + (config.usesPrompt ? d : 0)
        hidden = LinearOf(inputFeatures: headIn, outputFeatures: d, key: key.child("hidden"))
        output = LinearOf(inputFeatures: d, outputFeatures: 1, key: key.child("output"))
    }

    /// Prompt vectors p: (B, D) from tokens (B, L).
    func encodePrompt(_ tokens: RewardTokens) -> TensorOf<S> {
        let b = tokens.batch, l = tokens.length, d = config.embedDimension
        // e: (B, L, D)
        let e = tokenEmbedding!(tokens.ids, shape: [b, l]) + tokenPosition!.reshaped([1, l, d])
        let mask = tokens.ids.map { $0 == RewardTokens.pad }
        // An all-padding row (empty prompt) would give attention nothing to attend to: let it see
        // its first slot (zero embedding + position) instead.
        var keyMask = mask
        for r in 0..<b where !mask[(r * l)..<((r + 1) * l)].contains(false) { keyMask[r * l] = false }
        let h = e + textAttention!(textNorm!(e), keyPaddingMask: keyMask)
        // masked mean over real tokens: (B, L, D) · (B, L, 1) summed over L, / count
        var keep = [S](repeating: 0, count: b * l), inv = [S](repeating: 0, count: b)
        for r in 0..<b {
            var n = 0
            for j in 0..<l where !keyMask[r * l + j] { keep[r * l + j] = 1; n += 1 }
            inv[r] = 1 / S(max(n, 1))
        }
        let summed = sum(h * TensorOf(shape: [b, l, 1], data: keep), axis: 1)
        return summed * TensorOf(shape: [b, 1], data: inv)
    }

    /// Scores: images (B, 3, S, S) and tokens (B rows; ignored by an image-only model) → (B).
    public func callAsFunction(_ images: TensorOf<S>, tokens: RewardTokens?) -> TensorOf<S> {
        let s = config.imageSize
        precondition(images.rank == 4 && Array(images.shape.dropFirst()) == [3, s, s],
                     "reward model: images must be (B, 3, \(s), \(s)), got \(images.shape)")
        let b = images.shape[0], c2 = config.channels[2], d = config.embedDimension
        let positions = config.featureSide * config.featureSide
        var h = silu(norm0(conv0(images)))
        h = silu(norm1(conv1(h)))
        h = silu(norm2(conv2(h)))                                   // (B, C2, S/4, S/4)
        let flat = h.reshaped([b, c2, positions])                   // (B, C2, P)
        let g = mean(flat, axis: 2)                                 // (B, C2)
        let tokensF = transposeLastTwo(flat) + imagePosition.reshaped([1, positions, c2])  // (B, P, C2)
        var features = [g]
        let query: TensorOf<S>
        if config.usesPrompt {
            guard let tokens else { preconditionFailure("reward model: this model needs prompt tokens") }
            precondition(tokens.batch == b, "reward model: \(b) images but \(tokens.batch) token rows")
            let p = encodePrompt(tokens)                            // (B, D)
            query = queryProjection!(p).reshaped([b, 1, d])
            features.append(pool(query, context: tokensF).reshaped([b, d]))
            features.append(p)
        } else {
            query = expand(learnedQuery!, to: [b, 1, d])
            features.append(pool(query, context: tokensF).reshaped([b, d]))
        }
        let z = silu(hidden(concat(features, axis: 1)))             // (B, D)
        return output(z).reshaped([b])
    }

    public func parameters() -> [(String, TensorOf<S>)] {
        var p = prefixed("conv0", conv0.parameters()) + prefixed("norm0", norm0.parameters())
            + prefixed("conv1", conv1.parameters()) + prefixed("norm1", norm1.parameters())
            + prefixed("conv2", conv2.parameters()) + prefixed("norm2", norm2.parameters())
            + [("image_position", imagePosition)] + prefixed("pool", pool.parameters())
        if config.usesPrompt {
            p += prefixed("token_embedding", tokenEmbedding!.parameters()) + [("token_position", tokenPosition!)]
                + prefixed("text_norm", textNorm!.parameters()) + prefixed("text_attention", textAttention!.parameters())
                + prefixed("query_projection", queryProjection!.parameters())
        } else {
            p.append(("learned_query", learnedQuery!))
        }
        return p + prefixed("hidden", hidden.parameters()) + prefixed("output", output.parameters())
    }
}

public typealias RewardModel = RewardModelOf<Float>

// MARK: - Raters

/// Who labels a reward model's training pairs.
public enum RewardRater: Sendable, Equatable {
    /// A fixed judge over the world's true scores: Δ = Σ_k w_k (s_k(x0) − s_k(x1)) over
    /// (alignment, aesthetics, detail); image 0 wins with probability σ(Δ / τ) (a Bradley–Terry draw,
    /// τ = `temperature`), the draw for pair i made from the key (seed, i).
    case weighted(weights: [Double], temperature: Double, seed: UInt64)
    /// The dataset's holistic human labels as given (PickScore's training signal).
    case human

    public func validate() throws {
        if case let .weighted(w, t, _) = self {
            guard w.count == 3, w.allSatisfy({ $0.isFinite && $0 >= 0 }), w.contains(where: { $0 > 0 }) else {
                throw CoreError("rater: weights must be three non-negative numbers (alignment, aesthetics, detail), not all 0; got \(w)")
            }
            guard t > 0, t.isFinite else { throw CoreError("rater: temperature must be > 0, got \(t)") }
        }
    }

    /// Labels (+1: image 0 preferred, −1: image 1) of `rows` of a dataset: from the truths for a
    /// weighted rater, the dataset's labels for `.human`.
    public func labels(labels human: [Int], truth0: [QualityScores], truth1: [QualityScores], rows: [Int]) throws -> [Int8] {
        try validate()
        switch self {
        case .human:
            return rows.map { Int8(human[$0]) }
        case let .weighted(w, t, seed):
            let key = RandomKey(seed: seed).child("rater")
            return rows.map { i in
                let a = truth0[i].array, b = truth1[i].array
                var diff = 0.0
                for k in 0..<3 { diff += w[k] * Double(a[k] - b[k]) }
                let p = 1 / (1 + Foundation.exp(-diff / t))
                return key.uniform(UInt64(i)) < p ? 1 : -1
            }
        }
    }

    /// Metadata form (`rater.*` keys).
    public var metadata: [String: String] {
        switch self {
        case .human: return ["rater.kind": "human"]
        case let .weighted(w, t, seed):
            return ["rater.kind": "weighted", "rater.weights": w.map { "\($0)" }.joined(separator: ","),
                    "rater.temperature": "\(t)", "rater.seed": "\(seed)"]
        }
    }

    public init(metadata m: [String: String], source: String) throws {
        switch m["rater.kind"] {
        case "human": self = .human
        case "weighted":
            guard let ws = m["rater.weights"], let ts = m["rater.temperature"], let t = Double(ts),
                  let ss = m["rater.seed"], let seed = UInt64(ss) else {
                throw CoreError("\(source): metadata 'rater.weights', 'rater.temperature' and 'rater.seed' are required for a weighted rater")
            }
            let w = try ws.split(separator: ",").map { s -> Double in
                guard let v = Double(s) else { throw CoreError("\(source): metadata 'rater.weights' = '\(ws)' is not a list of numbers") }
                return v
            }
            self = .weighted(weights: w, temperature: t, seed: seed)
            try validate()
        case let k: throw CoreError("\(source): metadata 'rater.kind' must be 'human' or 'weighted', got \(k.map { "'\($0)'" } ?? "nothing")")
        }
    }

    public var description: String {
        switch self {
        case .human: return "human labels"
        case let .weighted(w, t, _):
            return String(format: "weights (alignment %.2f, aesthetics %.2f, detail %.2f), temperature %.3g", w[0], w[1], w[2], t)
        }
    }
}

// MARK: - Checkpoints

/// What a reward checkpoint says about itself besides the weights.
public struct RewardCheckpointInfo: Sendable, Equatable {
    /// Member name (`clip`, `aesthetic`, …).
    public var name: String
    public var config: RewardModelConfig
    public var rater: RewardRater
    /// Free-form training record (`train.steps`, `train.seconds`, `train.recipe`, …).
    public var training: [String: String]

    public init(name: String, config: RewardModelConfig, rater: RewardRater, training: [String: String] = [:]) {
        self.name = name; self.config = config; self.rater = rater; self.training = training
    }

    public var metadata: [String: String] {
        var m = config.metadata.merging(rater.metadata) { a, _ in a }
        m["format"] = "semidpo-reward"
        m["reward.name"] = name
        for (k, v) in training { m["train." + k] = v }
        return m
    }
}

extension RewardModelOf where S == Float {
    /// Writes the parameters (F32, by their dotted names) and `info` as safetensors metadata.
    public func save(to path: String, info: RewardCheckpointInfo) throws {
        guard info.config == config else { throw CoreError("reward save: info.config differs from the model's config") }
        try Safetensors.write(parameters().map { NamedTensor(name: $0.0, shape: $0.1.shape, data: $0.1.data) },
                              metadata: info.metadata, to: path)
    }

    /// Reads a checkpoint written by `save`: architecture and rater from the metadata, then every
    /// parameter (strict: names and shapes must match).
    public static func load(from path: String) throws -> (model: RewardModel, info: RewardCheckpointInfo) {
        guard FileManager.default.fileExists(atPath: path) else { throw CoreError("reward checkpoint \(path): no such file") }
        let (tensors, meta) = try Safetensors.read(path)
        guard meta["format"] == "semidpo-reward" else {
            throw CoreError("reward checkpoint \(path): metadata 'format' is \(meta["format"].map { "'\($0)'" } ?? "missing"), expected 'semidpo-reward'")
        }
        let config = try RewardModelConfig(metadata: meta, source: path)
        let rater = try RewardRater(metadata: meta, source: path)
        var training: [String: String] = [:]
        for (k, v) in meta where k.hasPrefix("train.") { training[String(k.dropFirst(6))] = v }
        let model = try RewardModel(config: config, key: RandomKey(seed: 0))
        do {
            try model.loadParameters(Dictionary(tensors.map { ($0.name, (shape: $0.shape, data: $0.data)) }, uniquingKeysWith: { a, _ in a }))
        } catch let e as CoreError { throw CoreError("reward checkpoint \(path): \(e.message)") }
        return (model, RewardCheckpointInfo(name: meta["reward.name"] ?? "", config: config, rater: rater, training: training))
    }
}
