// The architecture of a diffusion model (UNet + text encoder + vocabulary + noise schedule) as one
// value: built from a YAML/JSON-like dictionary with strict key checking, and written back to JSON.
import Foundation

/// Hyperparameters of `DiffusionModel`. Dictionary keys (snake_case, as in YAML configs):
///
/// | key | meaning | reference |
/// |---|---|---|
/// | `image_size` | square image side, divisible by 2^(levels−1) | 16 |
/// | `image_channels` | input/output channels | 3 |
/// | `channels` | UNet channels per level, one level per entry | [32, 64] |
/// | `res_blocks` | ResBlocks per level (down and up) | 2 |
/// | `attention_resolutions` | resolutions with a self+cross attention block | [8] |
/// | `attention_heads` | heads in UNet attention | 4 |
/// | `scale_shift_norm` | ResBlocks take the embedding as FiLM (1 + scale, shift) after GN2 instead of an added bias | false |
/// | `norm_groups` | GroupNorm groups (divides every channel count) | 8 |
/// | `time_dimension` | sinusoidal timestep features | 32 |
/// | `embedding_dimension` | timestep(+prompt) embedding width | 128 |
/// | `text_dimension` | text-encoder width (token/position embeddings) | 64 |
/// | `text_heads` | text-encoder attention heads | 4 |
/// | `text_layers` | pre-norm transformer layers | 1 |
/// | `text_mlp_ratio` | MLP hidden = ratio · text_dimension | 4 |
/// | `max_tokens` | prompt length in words | 8 |
/// | `vocabulary` | list of words (id = index + 1; 0 = padding) | required |
/// | `schedule` | `scaled_linear`, `linear` or `cosine` | scaled_linear |
/// | `timesteps` | T | 1000 |
/// | `beta_start`, `beta_end` | schedule endpoints | 0.00085, 0.012 |
public struct DiffusionConfig: Equatable, Sendable {
    public var imageSize = 16
    public var imageChannels = 3
    public var channels = [32, 64]
    public var resBlocks = 2
    public var attentionResolutions = [8]
    public var attentionHeads = 4
    public var scaleShiftNorm = false
    public var normGroups = 8
    public var timeDimension = 32
    public var embeddingDimension = 128
    public var textDimension = 64
    public var textHeads = 4
    public var textLayers = 1
    public var textMLPRatio = 4
    public var maxTokens = 8
    public var vocabulary: [String]
    public var schedule = NoiseSchedule.Kind.scaledLinear
    public var timesteps = 1000
    public var betaStart = 0.00085
    public var betaEnd = 0.012

    /// The reference architecture of SPEC §4 over `vocabulary`.
    public init(vocabulary: [String]) { self.vocabulary = vocabulary }

    /// A very small model for tests: 8×8 images, channels (8, 16), one ResBlock per level,
    /// attention at 4×4, width-16 text encoder.
    public static func tiny(vocabulary: [String]) -> DiffusionConfig {
        var c = DiffusionConfig(vocabulary: vocabulary)
        c.imageSize = 8; c.channels = [8, 16]; c.resBlocks = 1; c.attentionResolutions = [4]
        c.attentionHeads = 2; c.normGroups = 4; c.timeDimension = 8; c.embeddingDimension = 16
        c.textDimension = 16; c.textHeads = 2; c.maxTokens = 4; c.textMLPRatio = 2
        return c
    }

    public static let knownKeys: [String] = [
        "image_size", "image_channels", "channels", "res_blocks", "attention_resolutions", "attention_heads",
        "scale_shift_norm", "norm_groups", "time_dimension", "embedding_dimension", "text_dimension", "text_heads", "text_layers",
        "text_mlp_ratio", "max_tokens", "vocabulary", "schedule", "timesteps", "beta_start", "beta_end",
    ]

    /// Builds a config from a dictionary (YAML or JSON decoded). Missing keys take the reference
    /// values; `vocabulary` is required. Unknown keys and bad values throw a `CoreError` naming them.
    public init(dictionary: [String: Any]) throws {
        for key in dictionary.keys.sorted() where !DiffusionConfig.knownKeys.contains(key) {
            throw CoreError("model config: unknown key '\(key)' (known: \(DiffusionConfig.knownKeys.joined(separator: ", ")))")
        }
        guard let vocab = dictionary["vocabulary"] else { throw CoreError("model config: missing required key 'vocabulary'") }
        self.init(vocabulary: try ConfigValue.strings(vocab, "vocabulary"))
        func int(_ key: String, _ value: inout Int) throws { if let v = dictionary[key] { value = try ConfigValue.int(v, key) } }
        func ints(_ key: String, _ value: inout [Int]) throws { if let v = dictionary[key] { value = try ConfigValue.ints(v, key) } }
        func double(_ key: String, _ value: inout Double) throws { if let v = dictionary[key] { value = try ConfigValue.double(v, key) } }
        try int("image_size", &imageSize); try int("image_channels", &imageChannels)
        try ints("channels", &channels); try int("res_blocks", &resBlocks)
        try ints("attention_resolutions", &attentionResolutions); try int("attention_heads", &attentionHeads)
        try int("norm_groups", &normGroups); try int("time_dimension", &timeDimension)
        try int("embedding_dimension", &embeddingDimension); try int("text_dimension", &textDimension)
        try int("text_heads", &textHeads); try int("text_layers", &textLayers)
        try int("text_mlp_ratio", &textMLPRatio); try int("max_tokens", &maxTokens)
        if let v = dictionary["scale_shift_norm"] { scaleShiftNorm = try ConfigValue.bool(v, "scale_shift_norm") }
        if let v = dictionary["schedule"] {
            let name = try ConfigValue.string(v, "schedule")
            guard let kind = NoiseSchedule.Kind(rawValue: name) else {
                throw CoreError("model config: 'schedule' must be one of \(NoiseSchedule.Kind.allCases.map(\.rawValue).joined(separator: ", ")), got '\(name)'")
            }
            schedule = kind
        }
        try int("timesteps", &timesteps)
        try double("beta_start", &betaStart); try double("beta_end", &betaEnd)
        try validate()
    }

    /// Upper bounds on every size, checked by `validate` before anything is allocated (a config comes
    /// from a user's file or a checkpoint's metadata: a typo must be an error, not a malloc abort).
    public static let caps: [(key: String, max: Int)] = [
        ("image_size", 1024), ("image_channels", 64), ("channels", 8192), ("levels", 10), ("res_blocks", 64),
        ("attention_heads", 1024), ("norm_groups", 8192), ("time_dimension", 65_536), ("embedding_dimension", 65_536),
        ("text_dimension", 65_536), ("text_heads", 1024), ("text_layers", 256), ("text_mlp_ratio", 64),
        ("max_tokens", 4096), ("vocabulary", 1_000_000), ("timesteps", 100_000),
    ]
    /// Largest parameter count a model may have (2^27 ≈ 134 M: 0.5 GiB of weights, ~2.5 GiB with
    /// gradients, AdamW moments and an EMA copy). The reference model has about 1 M.
    public static let maxParameters = 1 << 27

    /// The number of parameters `DiffusionModel` will allocate for this config (text encoder + UNet),
    /// computed from the sizes alone in Float64 so that it cannot overflow. Mirrors the module
    /// constructors (UNet.init, ResBlock, SpatialAttentionBlock, TextEncoder); `ModuleTests` checks it
    /// against `parameterCount` of built models.
    public var parameterCountEstimate: Double {
        func linear(_ i: Int, _ o: Int) -> Double { Double(i) * Double(o) + Double(o) }
        func conv(_ i: Int, _ o: Int, _ k: Int) -> Double { Double(i) * Double(o) * Double(k * k) + Double(o) }
        func norm(_ c: Int) -> Double { 2 * Double(c) }
        func attention(_ d: Int, context: Int) -> Double { 2 * linear(d, d) + 2 * linear(context, d) }
        let e = embeddingDimension, td = textDimension
        func resBlock(_ i: Int, _ o: Int) -> Double {
            norm(i) + conv(i, o, 3) + linear(e, o) * (scaleShiftNorm ? 2 : 1) + norm(o) + conv(o, o, 3) + (i == o ? 0 : conv(i, o, 1))
        }
        // Text encoder: token and position embeddings, layers, final norm, null embedding.
        var n = Double(vocabulary.count + 1) * Double(td) + Double(maxTokens) * Double(td) + norm(td) + Double(td)
        n += Double(textLayers) * (norm(td) + attention(td, context: td) + norm(td) + linear(td, textMLPRatio * td) + linear(textMLPRatio * td, td))
        // UNet: time MLP, text projection, conv_in, down path, up path, norm_out, conv_out.
        n += linear(timeDimension, e) + linear(e, e) + linear(td, e) + conv(imageChannels, channels[0], 3)
        var current = channels[0], skips: [Int] = []
        for (l, c) in channels.enumerated() {
            for _ in 0..<resBlocks { n += resBlock(current, c); current = c; skips.append(c) }
            if attentionResolutions.contains(imageSize >> l) { n += norm(c) + attention(c, context: c) + norm(c) + attention(c, context: td) }
            if l + 1 < channels.count { n += conv(c, c, 3) }
        }
        for l in (0..<channels.count).reversed() {
            for _ in 0..<resBlocks { n += resBlock(current + skips.removeLast(), channels[l]); current = channels[l] }
            if l > 0 { n += conv(current, current, 3) }
        }
        return n + norm(current) + conv(current, imageChannels, 3)
    }

    /// Checks every value; throws a `CoreError` naming the first bad key.
    public func validate() throws {
        func need(_ ok: Bool, _ message: @autoclosure () -> String) throws { if !ok { throw CoreError("model config: \(message())") } }
        // Caps first: the checks below shift and multiply these values.
        let values: [String: [Int]] = [
            "image_size": [imageSize], "image_channels": [imageChannels], "channels": channels, "levels": [channels.count],
            "res_blocks": [resBlocks], "attention_heads": [attentionHeads], "norm_groups": [normGroups],
            "time_dimension": [timeDimension], "embedding_dimension": [embeddingDimension], "text_dimension": [textDimension],
            "text_heads": [textHeads], "text_layers": [textLayers], "text_mlp_ratio": [textMLPRatio], "max_tokens": [maxTokens],
            "vocabulary": [vocabulary.count], "timesteps": [timesteps],
        ]
        for (key, cap) in DiffusionConfig.caps {
            for v in values[key] ?? [] where v > cap {
                let what = key == "levels" ? "'channels' has \(v) levels" : key == "vocabulary" ? "'vocabulary' has \(v) words"
                    : "'\(key)' is \(v)"
                try need(false, "\(what), above the cap of \(cap)")
            }
        }
        try need(!channels.isEmpty && channels.allSatisfy { $0 > 0 }, "'channels' must be a non-empty list of positive integers, got \(channels)")
        try need(imageChannels > 0, "'image_channels' must be > 0, got \(imageChannels)")
        let factor = 1 << (channels.count - 1)
        try need(imageSize > 0 && imageSize % factor == 0,
                 "'image_size' \(imageSize) must be positive and divisible by 2^(levels−1) = \(factor) for \(channels.count) levels")
        try need(resBlocks >= 1, "'res_blocks' must be ≥ 1, got \(resBlocks)")
        let resolutions = levelResolutions
        for r in attentionResolutions {
            try need(resolutions.contains(r), "'attention_resolutions' entry \(r) is not a level resolution (levels are at \(resolutions))")
        }
        try need(normGroups > 0 && channels.allSatisfy { $0 % normGroups == 0 },
                 "'norm_groups' \(normGroups) must divide every entry of 'channels' \(channels)")
        try need(attentionHeads > 0, "'attention_heads' must be > 0, got \(attentionHeads)")
        for (l, side) in resolutions.enumerated() where attentionResolutions.contains(side) {
            try need(channels[l] % attentionHeads == 0,
                     "'attention_heads' \(attentionHeads) must divide the \(channels[l]) channels of the attention level at \(side)×\(side)")
        }
        try need(timeDimension >= 2 && timeDimension % 2 == 0, "'time_dimension' must be even and ≥ 2, got \(timeDimension)")
        try need(embeddingDimension > 0, "'embedding_dimension' must be > 0, got \(embeddingDimension)")
        try need(textDimension > 0 && textHeads > 0 && textDimension % textHeads == 0,
                 "'text_heads' \(textHeads) must divide 'text_dimension' \(textDimension)")
        try need(textLayers >= 0, "'text_layers' must be ≥ 0, got \(textLayers)")
        try need(textMLPRatio >= 1, "'text_mlp_ratio' must be ≥ 1, got \(textMLPRatio)")
        try need(maxTokens >= 1, "'max_tokens' must be ≥ 1, got \(maxTokens)")
        try need(timesteps >= 1, "'timesteps' must be ≥ 1, got \(timesteps)")
        let count = parameterCountEstimate
        try need(count <= Double(DiffusionConfig.maxParameters),
                 "this architecture has \(Int(count)) parameters, above the cap of \(DiffusionConfig.maxParameters)")
        _ = try Tokenizer(vocabulary: vocabulary, maxLength: maxTokens)
        _ = try noiseSchedule()
    }

    /// Spatial side at each level: imageSize, imageSize/2, ….
    public var levelResolutions: [Int] { (0..<channels.count).map { imageSize >> $0 } }

    public func noiseSchedule() throws -> NoiseSchedule {
        do { return try NoiseSchedule(kind: schedule, steps: timesteps, betaStart: betaStart, betaEnd: betaEnd) }
        catch let e as CoreError { throw CoreError("model config: \(e.message)") }
    }

    /// The config as a dictionary with the keys `init(dictionary:)` reads. `scale_shift_norm` appears
    /// only when true, so the reference config's JSON (and every checkpoint written before it) is unchanged.
    public var dictionary: [String: Any] {
        var d = base
        if scaleShiftNorm { d["scale_shift_norm"] = true }
        return d
    }

    private var base: [String: Any] {
        ["image_size": imageSize, "image_channels": imageChannels, "channels": channels, "res_blocks": resBlocks,
         "attention_resolutions": attentionResolutions, "attention_heads": attentionHeads, "norm_groups": normGroups,
         "time_dimension": timeDimension, "embedding_dimension": embeddingDimension, "text_dimension": textDimension,
         "text_heads": textHeads, "text_layers": textLayers, "text_mlp_ratio": textMLPRatio, "max_tokens": maxTokens,
         "vocabulary": vocabulary, "schedule": schedule.rawValue, "timesteps": timesteps,
         "beta_start": betaStart, "beta_end": betaEnd]
    }

    /// JSON text of `dictionary` (sorted keys), as stored in checkpoints' `__metadata__["config"]`.
    public func json() throws -> String { try JSON.serialize(any: dictionary) }

    public init(json: String) throws {
        guard let value = try? JSON.parse(json, name: "config"), case .object = value, let dict = value.foundationValue as? [String: Any] else {
            throw CoreError("model config: not a JSON object: \(json.prefix(80))")
        }
        try self.init(dictionary: dict)
    }
}

/// Typed reads of loosely typed config values (YAML scalars arrive as strings or numbers).
enum ConfigValue {
    static func int(_ v: Any, _ key: String) throws -> Int {
        if let b = v as? Bool, type(of: v) == Bool.self { throw CoreError("model config: '\(key)' must be an integer, got \(b)") }
        if let i = v as? Int { return i }
        if let d = v as? Double, d.rounded() == d, abs(d) < 1e15 { return Int(d) }
        if let s = v as? String, let i = Int(s.trimmingCharacters(in: .whitespaces)) { return i }
        throw CoreError("model config: '\(key)' must be an integer, got \(v)")
    }
    static func double(_ v: Any, _ key: String) throws -> Double {
        if let d = v as? Double { return d }
        if let i = v as? Int { return Double(i) }
        if let s = v as? String, let d = Double(s.trimmingCharacters(in: .whitespaces)) { return d }
        throw CoreError("model config: '\(key)' must be a number, got \(v)")
    }
    static func bool(_ v: Any, _ key: String) throws -> Bool {
        if let b = v as? Bool { return b }
        if let s = v as? String, ["true", "false"].contains(s.trimmingCharacters(in: .whitespaces)) { return s.trimmingCharacters(in: .whitespaces) == "true" }
        throw CoreError("model config: '\(key)' must be true or false, got \(v)")
    }
    static func string(_ v: Any, _ key: String) throws -> String {
        if let s = v as? String { return s }
        throw CoreError("model config: '\(key)' must be a string, got \(v)")
    }
    static func list(_ v: Any, _ key: String) throws -> [Any] {
        if let a = v as? [Any] { return a }
        throw CoreError("model config: '\(key)' must be a list, got \(v)")
    }
    static func ints(_ v: Any, _ key: String) throws -> [Int] {
        try list(v, key).enumerated().map { try int($0.element, "\(key)[\($0.offset)]") }
    }
    static func strings(_ v: Any, _ key: String) throws -> [String] {
        try list(v, key).enumerated().map { try string($0.element, "\(key)[\($0.offset)]") }
    }
}
