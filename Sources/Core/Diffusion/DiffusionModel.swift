// The text-to-image diffusion model as one object: config + tokenizer + text encoder + UNet + noise
// schedule; implements the `Denoiser` contract, deep copies, freezing, and safetensors save/load.
import Foundation

/// A conditional ε-prediction model: ε̂ = UNet(x_t, t, TextEncoder(tokens)).
/// Parameter names: "text.<…>" for the text encoder, "unet.<…>" for the UNet.
public final class DiffusionModel: Denoiser, Module {
    public typealias Scalar = Float
    /// Checkpoint format tag stored in `__metadata__["format"]`.
    public static let format = "semidpo.diffusion.v1"

    public let config: DiffusionConfig
    public let schedule: NoiseSchedule
    public let tokenizer: Tokenizer
    public let textEncoder: TextEncoder
    public let unet: UNet
    /// True after `freeze()`: parameters do not require grad.
    public private(set) var isFrozen = false

    /// A freshly initialised model; all weights are a pure function of `seed`.
    public init(config: DiffusionConfig, seed: UInt64 = 0) throws {
        try config.validate()
        self.config = config
        schedule = try config.noiseSchedule()
        tokenizer = try Tokenizer(vocabulary: config.vocabulary, maxLength: config.maxTokens)
        let key = RandomKey(seed: seed)
        textEncoder = TextEncoder(tokenCount: tokenizer.tokenCount, maxLength: config.maxTokens, dimension: config.textDimension,
                                  heads: config.textHeads, layers: config.textLayers, mlpRatio: config.textMLPRatio,
                                  key: key.child("text"))
        unet = UNet(config: config, key: key.child("unet"))
    }

    /// Prompts → token ids (unknown words throw, naming the word and prompt; "" is the null prompt).
    public func tokenize(_ prompts: [String]) throws -> TokenBatch { try tokenizer.encode(prompts) }

    public func checkTokens(_ tokens: TokenBatch) throws { try textEncoder.check(tokens) }

    /// ε̂ = ε_θ(x_t, t, c). x: (B, C, S, S), one timestep in 0..<T and one token row per sample.
    public func predictNoise(_ x: Tensor, timesteps: [Int], tokens: TokenBatch) -> Tensor {
        precondition(tokens.batch == x.shape[0], "predictNoise: \(tokens.batch) token rows for batch \(x.shape[0])")
        precondition(timesteps.allSatisfy { $0 >= 0 && $0 < schedule.steps }, "predictNoise: timesteps must be in 0..<\(schedule.steps)")
        let (context, pooled) = textEncoder(tokens)
        return unet(x, timesteps: timesteps, context: context, contextMask: tokens.paddingMask, pooled: pooled)
    }

    public func parameters() -> [(String, Tensor)] {
        prefixed("text", textEncoder.parameters()) + prefixed("unet", unet.parameters())
    }

    /// Forward FLOPs per image (UNet + text encoder), 2 per multiply-add.
    public var forwardFLOPs: Double { unet.flops() + textEncoder.flops() }

    /// One line: size and cost, printed when a model is built or loaded.
    public var summary: String {
        let p = Double(parameterCount)
        return String(format: "diffusion model: %.3f M parameters, %.3f GFLOP forward per image, %d×%d×%d, channels %@, T = %d (%@)",
                      p / 1e6, forwardFLOPs / 1e9, config.imageChannels, config.imageSize, config.imageSize,
                      config.channels.description, schedule.steps, schedule.kind.rawValue)
    }

    /// A deep copy (same config, copied weights, same frozen state; no gradients).
    public func clone() -> DiffusionModel {
        let copy = try! DiffusionModel(config: config, seed: 0)
        copy.copyParameters(from: self)
        if isFrozen { copy.freeze() }
        return copy
    }

    /// Stops gradient flow into this model's weights (e.g. the DPO reference model).
    public func freeze() { setRequiresGrad(false); isFrozen = true }
    /// Undoes `freeze()`.
    public func unfreeze() { setRequiresGrad(true); isFrozen = false }

    /// The weights as named tensors (e.g. for a checkpoint with more entries).
    public func namedTensors(prefix: String = "") -> [NamedTensor] {
        parameters().map { NamedTensor(name: prefix + $0.0, shape: $0.1.shape, data: $0.1.data) }
    }

    /// Metadata that lets `load` rebuild the architecture.
    public func checkpointMetadata() throws -> [String: String] {
        ["format": DiffusionModel.format, "config": try config.json(), "parameter_count": String(parameterCount)]
    }

    /// Writes the weights (float32, bit-exact) and the config (JSON in `__metadata__["config"]`) to a
    /// safetensors file, atomically. `metadata` adds string entries (e.g. recipe, seed, steps).
    public func save(path: String, metadata: [String: String] = [:]) throws {
        var meta = metadata
        for (k, v) in try checkpointMetadata() { meta[k] = v }
        try Safetensors.write(namedTensors(), metadata: meta, to: path)
    }

    /// Rebuilds a model from a file written by `save` (or a checkpoint whose weights carry `prefix`).
    public static func load(path: String, prefix: String = "") throws -> DiffusionModel {
        let file = try SafetensorsFile(path: path)
        guard let json = file.metadata["config"] else {
            throw CoreError("\(path): not a diffusion model checkpoint (no 'config' in the safetensors metadata)")
        }
        let config: DiffusionConfig
        do { config = try DiffusionConfig(json: json) } catch let e as CoreError { throw CoreError("\(path): \(e.message)") }
        let model = try DiffusionModel(config: config)
        try model.loadWeights(from: file, prefix: prefix)
        return model
    }

    /// Overwrites every parameter from `file` (names `prefix + name`), checking shapes.
    public func loadWeights(from file: SafetensorsFile, prefix: String = "") throws {
        let available = Set(file.names)
        for (name, p) in parameters() {
            guard available.contains(prefix + name) else { throw CoreError("\(file.path): missing tensor '\(prefix + name)'") }
            let t = try file.tensor(prefix + name)
            guard t.shape == p.shape else {
                throw CoreError("\(file.path): tensor '\(prefix + name)' has shape \(t.shape), the model expects \(p.shape)")
            }
            p.data = t.data
        }
        if prefix.isEmpty {
            let expected = Set(parameters().map(\.0))
            if let extra = file.names.first(where: { !expected.contains($0) }) {
                throw CoreError("\(file.path): unexpected tensor '\(extra)' for this architecture")
            }
        }
    }
}
