// Pretraining of a DiffusionModel on (image, prompt) batches: ε-prediction loss with prompt dropout,
// AdamW with warmup, optional EMA, atomic checkpoints with bit-exact resume, CSV/SVG loss logs.
import Foundation

/// One training batch: images (B, C, S, S) in [−1, 1] and one prompt per image.
public struct PretrainBatch {
    public var images: Tensor
    public var prompts: [String]
    public init(images: Tensor, prompts: [String]) { self.images = images; self.prompts = prompts }
}

/// Where pretraining data comes from. For resume to equal an uninterrupted run, `batch(step:size:)`
/// must be a pure function of its arguments (e.g. render from a key derived from the step).
public protocol PretrainDataSource {
    func batch(step: Int, size: Int) throws -> PretrainBatch
}

/// A data source from a closure `(step, batchSize) -> batch`.
public struct ClosureDataSource: PretrainDataSource {
    public let body: (Int, Int) throws -> PretrainBatch
    public init(_ body: @escaping (Int, Int) throws -> PretrainBatch) { self.body = body }
    public func batch(step: Int, size: Int) throws -> PretrainBatch { try body(step, size) }
}

/// Pretraining hyperparameters. Dictionary keys (snake_case) in brackets.
public struct PretrainConfig: Equatable, Sendable {
    /// [batch_size] images per step.
    public var batchSize = 32
    /// [lr], [warmup], [schedule], [min_lr_factor], [weight_decay], [adam_beta1], [adam_beta2],
    /// [adam_epsilon], [grad_clip], [ema_decay]: the optimizer settings shared by every trainer
    /// (defaults `OptimizerSettings.pretrain`: lr 1e-3, 100 warm-up steps, constant, clip 1, no EMA).
    public var optimizer = OptimizerSettings.pretrain
    /// [conditioning_dropout] probability of replacing a prompt by the null prompt "" (for CFG).
    public var conditioningDropout = 0.1
    /// [checkpoint_every] steps between checkpoints (0: only at the end).
    public var checkpointEvery = 500
    /// [seed] of timesteps, noise and prompt dropout.
    public var seed: UInt64 = 0
    /// [loss_weighting] per-timestep weight of the ε-MSE: "none" (L_simple) or "min_snr" (see `lossWeight`).
    public var lossWeighting = LossWeighting.none
    /// [min_snr_gamma] γ of min-SNR-γ weighting.
    public var minSNRGamma = 5.0
    /// [grad_shards] gradient shards per step (`GradientShards`; default one per MPI rank, 1 without a
    /// launcher): the same value gives the same weights at any rank count. Must divide batch_size.
    public var gradShards = GradientShards.perRank

    /// Per-timestep weighting of the pretraining loss.
    public enum LossWeighting: String, CaseIterable, Sendable {
        /// w_t = 1 (Ho et al. 2020's L_simple).
        case none
        /// w_t = min(SNR_t, γ) / SNR_t for ε-prediction, SNR_t = ᾱ_t / (1 − ᾱ_t): low-noise steps (SNR_t > γ) are
        /// down-weighted, so mid- and high-noise steps, where layout and shape are decided, weigh relatively more.
        /// reference: Hang et al. 2023, "Efficient Diffusion Training via Min-SNR Weighting Strategy", eq. (8)–(9).
        case minSNR = "min_snr"
    }

    public init() {}

    public static let knownKeys = ["batch_size"] + OptimizerSettings.names
        + ["conditioning_dropout", "checkpoint_every", "seed", "loss_weighting", "min_snr_gamma", "grad_shards"]

    /// The weight w_t of timestep t's per-sample ε-MSE under `lossWeighting`.
    public func lossWeight(timestep t: Int, schedule: NoiseSchedule) -> Double {
        switch lossWeighting {
        case .none: return 1
        case .minSNR:
            let snr = schedule.alphaBar[t] / (1 - schedule.alphaBar[t])
            return min(snr, minSNRGamma) / snr
        }
    }

    /// Reads the bracketed keys; old names (`learning_rate`, …) throw naming the new one, unknown keys
    /// and bad values throw a `CoreError` naming them.
    public init(dictionary: [String: Any]) throws {
        self.init()
        do { try OptimizerSettings.rejectRenamed(dictionary.keys) } catch let e as CoreError { throw CoreError("pretrain config: \(e.message)") }
        for key in dictionary.keys.sorted() where !PretrainConfig.knownKeys.contains(key) {
            throw CoreError("pretrain config: unknown key '\(key)' (known: \(PretrainConfig.knownKeys.joined(separator: ", ")))")
        }
        func int(_ k: String) throws -> Int? { try dictionary[k].map { try ConfigValue.int($0, k) } }
        func dbl(_ k: String) throws -> Double? { try dictionary[k].map { try ConfigValue.double($0, k) } }
        if let v = try int("batch_size") { batchSize = v }
        do { optimizer = try OptimizerSettings(values: dictionary, defaults: .pretrain) }
        catch let e as CoreError { throw CoreError("pretrain config: \(e.message)") }
        if let v = try dbl("conditioning_dropout") { conditioningDropout = v }
        if let v = try int("checkpoint_every") { checkpointEvery = v }
        if let v = dictionary["loss_weighting"] {
            let name = try ConfigValue.string(v, "loss_weighting")
            guard let w = LossWeighting(rawValue: name) else {
                throw CoreError("pretrain config: 'loss_weighting' must be one of \(LossWeighting.allCases.map(\.rawValue).joined(separator: ", ")), got '\(name)'")
            }
            lossWeighting = w
        }
        if let v = try dbl("min_snr_gamma") { minSNRGamma = v }
        if let v = try int("grad_shards") { gradShards = v }
        if let v = try int("seed") {
            guard v >= 0 else { throw CoreError("pretrain config: 'seed' must be ≥ 0, got \(v)") }
            seed = UInt64(v)
        }
        try validate()
    }

    public func validate() throws {
        func need(_ ok: Bool, _ m: @autoclosure () -> String) throws { if !ok { throw CoreError("pretrain config: \(m())") } }
        try need(batchSize >= 1, "'batch_size' must be ≥ 1, got \(batchSize)")
        do { try optimizer.validate() } catch let e as CoreError { throw CoreError("pretrain config: \(e.message)") }
        try need(optimizer.lr > 0, "'lr' must be > 0, got \(optimizer.lr)")
        try need(conditioningDropout >= 0 && conditioningDropout <= 1, "'conditioning_dropout' must be in [0, 1], got \(conditioningDropout)")
        try need(checkpointEvery >= 0, "'checkpoint_every' must be ≥ 0, got \(checkpointEvery)")
        try need(minSNRGamma > 0 && minSNRGamma.isFinite, "'min_snr_gamma' must be > 0, got \(minSNRGamma)")
        do { _ = try GradientShards(count: gradShards).slice(0, of: batchSize, what: "'batch_size'") }
        catch let e as CoreError { throw CoreError("pretrain config: \(e.message)") }
    }

    /// The AdamW config for a run of `totalSteps` steps (cosine only when totalSteps > warmup).
    public func adamW(totalSteps: Int) -> AdamWConfig { optimizer.adamW(totalSteps: totalSteps) }

    /// The keys of `init(dictionary:)`; the weighting keys appear only when a weighting is set.
    var dictionary: [String: Any] {
        var d = optimizer.dictionary
        d["batch_size"] = batchSize; d["conditioning_dropout"] = conditioningDropout
        d["checkpoint_every"] = checkpointEvery; d["seed"] = Int(seed)
        if lossWeighting != .none { d["loss_weighting"] = lossWeighting.rawValue; d["min_snr_gamma"] = minSNRGamma }
        if gradShards != 1 { d["grad_shards"] = gradShards }
        return d
    }
}

/// What a `Pretrainer.run` did.
public struct PretrainSummary: Sendable {
    public var startStep: Int
    public var endStep: Int
    public var finalLoss: Float
    /// Mean loss over the last min(100, steps) steps.
    public var recentLoss: Float
    public var seconds: Double
    public var imagesPerSecond: Double
}

/// Trains a `DiffusionModel` with the ε-prediction loss. Step s (0-based) draws, for sample i,
///   drop_i = U(key_s/"drop", i) < p_drop  (prompt → ""),  t_i = ⌊U(key_s/"t", i) · T⌋,  ε ~ N(0, I) from key_s/"noise"
/// with key_s = RandomKey(seed)/"pretrain"/s, and minimises L = mean_i w(t_i) · mse_θ(x_i, t_i) (see `perSampleMSE`;
/// w = 1 unless `lossWeighting` is set, see `PretrainConfig.lossWeight`).
/// reference: Ho et al. 2020 (L_simple); Ho & Salimans 2022 (conditioning dropout for CFG).
public final class Pretrainer {
    public static let checkpointFormat = "semidpo.pretrain.v1"
    public let model: DiffusionModel
    public let config: PretrainConfig
    /// EMA copy of the weights (frozen) when `emaDecay > 0`.
    public private(set) var ema: DiffusionModel?
    public private(set) var optimizer: AdamW
    /// Completed steps.
    public private(set) var step = 0
    /// Loss of every completed step (index = step − 1).
    public private(set) var losses: [Float] = []
    /// Total steps of the current run (sets the cosine schedule).
    public private(set) var totalSteps = 0

    public init(model: DiffusionModel, config: PretrainConfig) throws {
        try config.validate()
        guard !model.isFrozen else { throw CoreError("pretrain: the model is frozen") }
        self.model = model; self.config = config
        optimizer = AdamW(config: config.adamW(totalSteps: 0))
        if config.optimizer.emaDecay > 0 { let e = model.clone(); e.freeze(); ema = e }
    }

    /// One optimisation step on `batch` using the randomness of step `self.step`; returns the loss.
    @discardableResult
    public func trainStep(_ batch: PretrainBatch) throws -> Float {
        let b = batch.images.shape.first ?? 0
        guard batch.images.shape == [b] + model.imageShape, b >= 1 else {
            throw CoreError("pretrain: images must be (B, \(model.imageShape.map(String.init).joined(separator: ", "))), got \(batch.images.shape)")
        }
        guard batch.prompts.count == b else { throw CoreError("pretrain: \(batch.prompts.count) prompts for \(b) images") }
        let key = RandomKey(seed: config.seed).child("pretrain").child(UInt64(step))
        let drop = key.child("drop"), tkey = key.child("t")
        let prompts = batch.prompts.enumerated().map { drop.uniform(UInt64($0.offset)) < config.conditioningDropout ? "" : $0.element }
        let tokens = try model.tokenize(prompts)
        let timesteps = (0..<b).map { model.schedule.sampleTimestep(tkey, UInt64($0)) }
        let noise = Tensor.normal(batch.images.shape, key: key.child("noise"))   // ε: (B, C, S, S)
        let params = model.parameters()
        // Gradient shards (one, in place, without MPI): shard g takes samples [g·B/G, (g+1)·B/G), its
        // loss Σ w·mse / B, so the shards sum to the batch's mean.
        let shards = try GradientShards(count: config.gradShards)
        let perShard = try shards.run(params) { g in
            let r = shards.count == 1 ? 0..<b : try shards.slice(g, of: b, what: "pretrain: batch_size")
            let whole = shards.count == 1
            let ts = Array(timesteps[r])
            var perSample = model.perSampleMSE(x0: whole ? batch.images : batch.images.slice(batch: r),
                                               noise: whole ? noise : noise.slice(batch: r), timesteps: ts,
                                               tokens: whole ? tokens : try model.tokenize(Array(prompts[r])))   // (B/G,)
            if config.lossWeighting != .none {
                perSample = perSample * Tensor(shape: [r.count], data: ts.map { Float(config.lossWeight(timestep: $0, schedule: model.schedule)) })
            }
            let loss = whole ? mean(perSample) : scaledTotal(perSample, 1 / Double(b))
            loss.backward()
            return [Double(loss.item())]
        }
        var value: Float = 0
        for v in perShard { value += Float(v[0]) }
        if let clip = config.optimizer.clip { clipGradNorm(params, maxNorm: clip) }
        optimizer.update(params)
        model.zeroGrad()
        if let ema { updateEMA(ema.parameters(), toward: params, decay: config.optimizer.emaDecay) }
        step += 1
        losses.append(value)
        return value
    }

    /// Trains until `steps` steps are done in total. If `checkpointDir` holds a checkpoint and
    /// `resume` is true, continues from it (ending bit-identical to an uninterrupted run with the
    /// same source, config and thread count). Writes `checkpointDir/checkpoint.safetensors` every
    /// `checkpointEvery` steps and at the end, plus `model.safetensors` (and `model_ema.safetensors`).
    /// `log`: CSV path (step,loss,learning_rate), rewritten at each checkpoint and at the end, with
    /// an SVG curve beside it. `progress(step, total, loss)` is called after every step; throwing stops the run.
    @discardableResult
    public func run(source: PretrainDataSource, steps: Int, checkpointDir: String? = nil, resume: Bool = true,
                    log: String? = nil, progress: ((Int, Int, Float) throws -> Void)? = nil) throws -> PretrainSummary {
        guard steps >= 0 else { throw CoreError("pretrain: steps must be ≥ 0 (got \(steps))") }
        let checkpointPath = checkpointDir.map { ($0 as NSString).appendingPathComponent("checkpoint.safetensors") }
        if resume, let path = checkpointPath, FileManager.default.fileExists(atPath: path) { try loadCheckpoint(path: path) }
        guard step <= steps else { throw CoreError("pretrain: the checkpoint is at step \(step), beyond the requested \(steps) steps") }
        totalSteps = steps
        optimizer.config = config.adamW(totalSteps: steps)
        let start = step, clock = DispatchTime.now().uptimeNanoseconds
        while step < steps {
            let batch = try source.batch(step: step, size: config.batchSize)
            let loss = try trainStep(batch)
            try progress?(step, steps, loss)
            if let path = checkpointPath, config.checkpointEvery > 0, step % config.checkpointEvery == 0, step < steps {
                try saveCheckpoint(path: path)
                if let log { try writeLog(csvPath: log) }
            }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - clock) / 1e9
        if let dir = checkpointDir, let path = checkpointPath {
            try saveCheckpoint(path: path)
            let meta = ["pretrain_steps": String(step), "pretrain_config": try jsonText(config.dictionary)]
            try model.save(path: (dir as NSString).appendingPathComponent("model.safetensors"), metadata: meta)
            if let ema { try ema.save(path: (dir as NSString).appendingPathComponent("model_ema.safetensors"), metadata: meta) }
        }
        if let log { try writeLog(csvPath: log) }
        let recent = losses.suffix(100)
        return PretrainSummary(startStep: start, endStep: step, finalLoss: losses.last ?? .nan,
                               recentLoss: recent.isEmpty ? .nan : recent.reduce(0, +) / Float(recent.count), seconds: seconds,
                               imagesPerSecond: seconds > 0 ? Double((step - start) * config.batchSize) / seconds : 0)
    }

    /// Learning rate used at step s (1-based).
    public func learningRate(atStep s: Int) -> Double { optimizer.config.learningRate * optimizer.config.schedule.factor(step: s) }

    /// Writes model, optimizer state, EMA, step and loss history to one safetensors file, atomically.
    public func saveCheckpoint(path: String) throws {
        var tensors = model.namedTensors(prefix: "model.")
        tensors += optimizer.state().map { NamedTensor(name: "optimizer.\($0.0)", shape: $0.1.shape, data: $0.1.data) }
        if let ema { tensors += ema.namedTensors(prefix: "ema.") }
        tensors.append(NamedTensor(name: "trainer.losses", shape: [losses.count], data: losses))
        var meta = try model.checkpointMetadata()
        meta["format"] = Pretrainer.checkpointFormat
        meta["step"] = String(step)
        meta["pretrain_config"] = try jsonText(config.dictionary)
        try Safetensors.write(tensors, metadata: meta, to: path)
    }

    /// Restores what `saveCheckpoint` wrote. The model architecture and the EMA setting must match.
    public func loadCheckpoint(path: String) throws {
        let file = try SafetensorsFile(path: path)
        guard file.metadata["format"] == Pretrainer.checkpointFormat, let json = file.metadata["config"],
              let stepText = file.metadata["step"], let savedStep = Int(stepText) else {
            throw CoreError("\(path): not a pretraining checkpoint (format '\(file.metadata["format"] ?? "none")')")
        }
        guard try DiffusionConfig(json: json) == model.config else {
            throw CoreError("\(path): the checkpoint's model config differs from this model's")
        }
        let names = file.names
        guard (ema != nil) == names.contains(where: { $0.hasPrefix("ema.") }) else {
            throw CoreError("\(path): checkpoint \(ema == nil ? "has" : "lacks") EMA weights but ema_decay is \(config.optimizer.emaDecay)")
        }
        // The optimizer state is checked against the model's parameters (names and sizes) first.
        let state = try names.filter { $0.hasPrefix("optimizer.") }.map { n -> (String, Tensor) in
            let t = try file.tensor(n)
            return (String(n.dropFirst("optimizer.".count)), Tensor(shape: t.shape, data: t.data))
        }
        do { try optimizer.loadState(state, for: model.parameters()) } catch let e as CoreError { throw CoreError("\(path): \(e.message)") }
        try model.loadWeights(from: file, prefix: "model.")
        if let ema { try ema.loadWeights(from: file, prefix: "ema.") }
        losses = try file.tensor("trainer.losses").data
        guard losses.count == savedStep else { throw CoreError("\(path): \(losses.count) logged losses for step \(savedStep)") }
        step = savedStep
    }

    /// Writes the loss history as CSV (step,loss,learning_rate) and an SVG curve (raw and a moving
    /// average over 50 steps) at the same path with extension .svg.
    public func writeLog(csvPath: String) throws {
        var csv = "step,loss,learning_rate\n"
        for (i, l) in losses.enumerated() { csv += "\(i + 1),\(l),\(learningRate(atStep: i + 1))\n" }
        try AtomicFile.write(csv, to: csvPath)
        let raw = losses.map(Double.init)
        var smooth: [Double] = [], acc = 0.0
        for i in raw.indices { acc += raw[i]; if i >= 50 { acc -= raw[i - 50] }; smooth.append(acc / Double(min(i + 1, 50))) }
        let svgPath = ((csvPath as NSString).deletingPathExtension as NSString).appendingPathExtension("svg")!
        try SVGPlot.write(svgPath, title: "pretraining loss", xLabel: "step", yLabel: "ε-MSE",
                          series: [PlotSeries(name: "loss", points: raw.enumerated().map { (Double($0.offset + 1), $0.element) }),
                                   PlotSeries(name: "mean of 50", points: smooth.enumerated().map { (Double($0.offset + 1), $0.element) })])
    }
}

extension Denoiser {
    /// Held-out ε-prediction loss: mean over `draws` fixed (t, ε) draws per image of
    /// mse_θ(x, t) (see `perSampleMSE`), with draw r of image i using
    /// t = ⌊U(RandomKey(seed)/"validation"/r/"t", i)·T⌋ and ε from RandomKey(seed)/"validation"/r/"noise"
    /// — identical across models, so two models' values are directly comparable. Runs under `noGrad`.
    /// images: (N, C, S, S), tokens: N rows.
    public func validationLoss(images: Tensor, tokens: TokenBatch, seed: UInt64 = 0, draws: Int = 4) throws -> Double {
        guard images.rank == 4, tokens.batch == images.shape[0] else {
            throw CoreError("validationLoss: \(tokens.batch) token rows for images \(images.shape)")
        }
        guard draws >= 1 else { throw CoreError("validationLoss: draws must be ≥ 1 (got \(draws))") }
        var total = 0.0
        for r in 0..<draws {
            let key = RandomKey(seed: seed).child("validation").child(UInt64(r))
            let ts = (0..<tokens.batch).map { schedule.sampleTimestep(key.child("t"), UInt64($0)) }
            let noise = Tensor.normal(images.shape, key: key.child("noise"))
            total += noGrad { Double(mean(perSampleMSE(x0: images, noise: noise, timesteps: ts, tokens: tokens)).item()) }
        }
        return total / Double(draws)
    }
}

/// Compact JSON with sorted keys (the checkpoints' `pretrain_config` text; see `JSON.serialize(any:)`).
func jsonText(_ object: [String: Any]) throws -> String { try JSON.serialize(any: object) }
