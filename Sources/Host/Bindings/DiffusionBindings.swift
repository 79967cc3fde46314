// semidpo.diffusion: the text-to-image diffusion model in Lua — create/load/save/clone/freeze,
// pretraining on the world's renders, sampling and grids, per-sample loss, and oracle evaluation.
import CLua
import Core
import Foundation

extension DiffusionModel: LuaObject {
    public static let luaTypeName = "Model"
    public static let luaMethods: [LuaFunction] = [
        LuaFunction("save", model_save),
        LuaFunction("clone", model_clone),
        LuaFunction("freeze", model_freeze),
        LuaFunction("unfreeze", model_unfreeze),
        LuaFunction("frozen", model_frozen),
        LuaFunction("summary", model_summary),
        LuaFunction("parameter_count", model_parameter_count),
        LuaFunction("config", model_config),
        LuaFunction("sample", model_sample),
        LuaFunction("grid", model_grid),
        LuaFunction("loss", model_loss),
    ]
    public var luaDescription: String {
        String(format: "Model(%.3f M parameters, %d×%d, channels %@%@)", Double(parameterCount) / 1e6, config.imageSize,
               config.imageSize, config.channels.description, isFrozen ? ", frozen" : "")
    }
}

enum DiffusionBindings: LuaBindings {
    static let module: String? = "diffusion"
    static let functions: [LuaFunction] = [
        LuaFunction("new", diffusion_new),
        LuaFunction("load", diffusion_load),
        LuaFunction("pretrain", diffusion_pretrain),
        LuaFunction("evaluate", diffusion_evaluate),
        LuaFunction("evaluate_renders", diffusion_evaluate_renders),
    ]
}

/// YAML → the `[String: Any]` / `[Any]` / scalar form `DiffusionConfig(dictionary:)` reads.
private func plain(_ v: YAMLValue) -> Any {
    switch v {
    case .null: return NSNull()
    case .bool(let b): return b
    case .int(let i): return i
    case .float(let d): return d
    case .string(let s): return s
    case .seq(let a): return a.map(plain)
    case .map(let m): return Dictionary(m.map { ($0.key, plain($0.value)) }, uniquingKeysWith: { $1 })
    }
}

/// A model config from a Lua table or a YAML file path; the vocabulary defaults to the world's.
private func modelConfig(_ value: Any?, _ args: LuaArgs) throws -> DiffusionConfig {
    var dict: [String: Any]
    switch value {
    case nil: dict = [:]
    case let d as [String: Any]: dict = d
    case let a as [Any] where a.isEmpty: dict = [:]
    case let path as String:
        let full = inputPath(path)
        guard let d = plain(try YAML.load(path: full)) as? [String: Any] else {
            throw CoreError("\(path): a model config must be a YAML map")
        }
        dict = d
        do {
            if dict["vocabulary"] == nil { dict["vocabulary"] = Vocabulary.words }
            return try DiffusionConfig(dictionary: dict)
        } catch let e as CoreError { throw CoreError("\(path): \(e.message)") }
    default: throw args.error(1, "option 'config': expected a table or a YAML path, got \(LuaOptions.luaTypeName(of: value!))")
    }
    if dict["vocabulary"] == nil { dict["vocabulary"] = Vocabulary.words }
    return try DiffusionConfig(dictionary: dict)
}

/// `semidpo.diffusion.new{config = table_or_yaml_path, seed = semidpo.seed} -> Model` (prints the summary).
/// Without `config`, the reference architecture (SPEC §4) over the world's vocabulary.
private func diffusion_new(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "new") { args in
        let o = try args.options(1, allowed: ["config", "seed"])
        let config = try modelConfig(o.values["config"], args)
        let seed = try o.integer("seed") ?? args.runSeed
        guard seed >= 0 else { throw args.error(1, "option 'seed': expected ≥ 0, got \(seed)") }
        let model = try DiffusionModel(config: config, seed: UInt64(seed))
        print(model.summary)
        try args.push(model)
        return 1
    }
}

/// `semidpo.diffusion.load(path) -> Model` (prints the summary). A model file from `model:save`, or a
/// pretraining checkpoint (its `model.` weights).
private func diffusion_load(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "load") { args in
        let path = inputPath(try args.string(1))
        guard FileManager.default.fileExists(atPath: path) else { throw args.error(1, "no such file: \(path)") }
        let file = try SafetensorsFile(path: path)
        let prefix = file.metadata["format"] == Pretrainer.checkpointFormat ? "model." : ""
        let model = try DiffusionModel.load(path: path, prefix: prefix)
        print(model.summary + " — " + path)
        try args.push(model)
        return 1
    }
}

/// `model:save(path [, metadata = {key = "value"}]) -> abs_path`: relative paths land in the run
/// directory; the file is recorded in the manifest.
private func model_save(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "save") { args in
        let model = try args.this(DiffusionModel.self)
        let path = try args.run.resolve(try args.string(2))
        var meta: [String: String] = [:]
        if !args.isNoneOrNil(3) {
            for (k, v) in try args.dictionary(3) {
                switch v {
                case let s as String: meta[k] = s
                case let i as Int: meta[k] = String(i)
                case let d as Double: meta[k] = String(d)
                case let b as Bool: meta[k] = String(b)
                default: throw args.error(3, "metadata '\(k)' must be a string, number or boolean")
                }
            }
        }
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try model.save(path: path, metadata: meta)
        try args.run.recordOutput(path)
        try args.push(path)
        return 1
    }
}

/// `model:clone() -> Model`: a deep copy, unfrozen (ready to train against a frozen source).
private func model_clone(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "clone") { args in
        let copy = try args.this(DiffusionModel.self).clone()
        copy.unfreeze()            // a copy is made to be trained: never frozen, whatever its source
        try args.push(copy)
        return 1
    }
}

/// `model:freeze() -> model` (e.g. the DPO reference; training a frozen model is an error).
private func model_freeze(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "freeze") { args in
        try args.this(DiffusionModel.self).freeze()
        lua_pushvalue(args.L, 1)
        return 1
    }
}

/// `model:unfreeze() -> model`.
private func model_unfreeze(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "unfreeze") { args in
        try args.this(DiffusionModel.self).unfreeze()
        lua_pushvalue(args.L, 1)
        return 1
    }
}

/// `model:frozen() -> boolean`.
private func model_frozen(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "frozen") { args in
        try args.push(try args.this(DiffusionModel.self).isFrozen)
        return 1
    }
}

/// `model:summary() -> string` (parameters, forward GFLOP per image, shape, channels, schedule).
private func model_summary(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "summary") { args in
        try args.push(try args.this(DiffusionModel.self).summary)
        return 1
    }
}

/// `model:parameter_count() -> integer`.
private func model_parameter_count(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "parameter_count") { args in
        try args.push(try args.this(DiffusionModel.self).parameterCount)
        return 1
    }
}

/// `model:config() -> table` (the keys `new{config = …}` accepts).
private func model_config(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "config") { args in
        try args.push(try args.this(DiffusionModel.self).config.dictionary)
        return 1
    }
}

// MARK: - Sampling

/// Sampler settings from options `steps`, `guidance` (number, or false for the conditional model
/// alone), `eta`, `method` ("ddim" | "ddpm"), `batch_size`, `winograd` (false: the 3×3 convolutions by
/// im2col + GEMM instead of Winograd F(4×4, 3×3), the default everywhere).
func samplerConfig(_ o: LuaOptions, _ args: LuaArgs, index: Int32, defaultGuidance: Double, defaultSteps: Int = 50) throws -> SamplerConfig {
    let steps = try o.integer("steps", default: defaultSteps)
    let eta = try o.number("eta", default: 0)
    let method: SamplerConfig.Method
    switch try o.string("method", default: "ddim") {
    case "ddim": method = .ddim(eta: eta)
    case "ddpm": method = .ddpm
    case let other: throw args.error(index, "option 'method': '\(other)' is not ddim or ddpm")
    }
    var guidance: Double? = defaultGuidance
    if let v = o.values["guidance"] {
        if let b = v as? Bool {
            guard !b else { throw args.error(index, "option 'guidance': expected a number or false, got true") }
            guidance = nil
        } else {
            guidance = try o.number("guidance")
        }
    }
    return SamplerConfig(method: method, steps: steps, guidanceScale: guidance, batchSize: try o.integer("batch_size", default: 64),
                         winograd: try o.boolean("winograd", default: true))
}

/// Prompt texts from a list of strings, or of tables with a `text` field (GenEval entries).
func promptTexts(_ value: Any?, _ args: LuaArgs, index: Int32, key: String = "prompts") throws -> [String] {
    guard let list = value as? [Any] else {
        throw args.error(index, "option '\(key)': expected a list of prompt strings, got \(value.map(LuaOptions.luaTypeName) ?? "nil")")
    }
    guard !list.isEmpty else { throw args.error(index, "option '\(key)': the list is empty") }
    return try list.enumerated().map { i, e in
        if let s = e as? String { return s }
        if let t = e as? [String: Any], let s = t["text"] as? String { return s }
        throw args.error(index, "option '\(key)': element \(i + 1) is not a string (or a table with 'text')")
    }
}

/// `model:sample{prompts = {...}, seed = semidpo.seed, steps = 50, guidance = 5, eta = 0, method = "ddim", batch_size = 64, winograd = true}
/// -> images, shape`: images is a flat array of N·C·S·S numbers (image i = CHW block i, values in
/// [−1, 1]; the form `semidpo.dpo.pairs` takes), shape = {N, C, S, S}. Image i's noise depends on
/// (seed, i) only, so two models sampled with the same seed start from the same noise.
private func model_sample(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "sample") { args in
        let model = try args.this(DiffusionModel.self)
        let o = try args.options(2, allowed: ["prompts", "seed", "steps", "guidance", "eta", "method", "batch_size", "winograd"])
        let prompts = try promptTexts(o.values["prompts"], args, index: 2)
        let seed = try o.integer("seed") ?? args.runSeed
        let config = try samplerConfig(o, args, index: 2, defaultGuidance: 5)
        let images = try model.sample(prompts: prompts, seed: UInt64(truncatingIfNeeded: seed), config: config)
        try args.push(images.data.map(Double.init))
        try args.push(images.shape)
        return 2
    }
}

/// `model:grid{prompts = {...}, seeds = {1, 2, 3, 4}, path = "samples.png", steps = 50, guidance = 5, eta = 0,
/// scale = 4} -> abs_path`: a PNG of prompts (rows, labelled) × seeds (columns), nearest-neighbour
/// upscaled; recorded in the manifest.
private func model_grid(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "grid") { args in
        let model = try args.this(DiffusionModel.self)
        let o = try args.options(2, allowed: ["prompts", "seeds", "path", "steps", "guidance", "eta", "method", "batch_size", "scale",
                                               "winograd"])
        let prompts = try promptTexts(o.values["prompts"], args, index: 2)
        let seeds = try o.integers("seeds", in: 0...Int.max) ?? [1, 2, 3, 4]
        guard !seeds.isEmpty, seeds.allSatisfy({ $0 >= 0 }) else { throw args.error(2, "option 'seeds': expected a non-empty list of integers ≥ 0") }
        let path = try args.run.resolve(try o.required("path", o.string("path")))
        let scale = try o.integer("scale", default: 4)
        guard scale >= 1 && scale <= 32 else { throw args.error(2, "option 'scale': expected 1…32, got \(scale)") }
        let config = try samplerConfig(o, args, index: 2, defaultGuidance: 5)
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        _ = try model.sampleGrid(prompts: prompts, seeds: seeds.map(UInt64.init), config: config, scale: scale, path: path)
        try args.run.recordOutput(path)
        try args.push(path)
        return 1
    }
}

// MARK: - Per-sample loss

/// `model:loss{images = flat, prompts = {...}, t = 500 or {t_1, …}, noise_seed = 0} -> {mse_1, …}`
/// `model:loss{pairs = Pairs, t =, noise_seed =} -> winner_mse, loser_mse`
///
/// mse_θ(x, t) = mean over pixels of (ε_θ(sqrt(ᾱ_t) x + sqrt(1 − ᾱ_t) ε, t, c) − ε)² per image, without
/// gradients. ε ~ N(0, I) comes from `RandomKey(noise_seed)/"loss"` over the whole batch, so equal
/// (images, noise_seed) give equal noise; for pairs, winner and loser share one ε (as in DPO).
private func model_loss(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "loss") { args in
        let model = try args.this(DiffusionModel.self)
        let o = try args.options(2, allowed: ["images", "prompts", "pairs", "t", "noise_seed"])
        let noiseSeed = try o.integer("noise_seed", default: 0)
        let T = model.schedule.steps
        func timesteps(_ n: Int) throws -> [Int] {
            let ts: [Int]
            if o.values["t"] is [Any], let list = try o.integers("t") { ts = list }
            else if let one = try o.integer("t") { ts = Array(repeating: one, count: n) }
            else { throw args.error(2, "option 't' (a timestep or one per image) is required") }
            guard ts.count == n else { throw args.error(2, "option 't': \(ts.count) timesteps for \(n) images") }
            if let bad = ts.first(where: { $0 < 0 || $0 >= T }) { throw args.error(2, "option 't': \(bad) is outside 0…\(T - 1)") }
            return ts
        }
        let key = RandomKey(seed: UInt64(truncatingIfNeeded: noiseSeed)).child("loss")
        if let pairs = try o.object("pairs", PairSource.self) {
            guard !o.has("images") && !o.has("prompts") else { throw args.error(2, "give either 'pairs' or 'images' with 'prompts', not both") }
            guard pairs.imageShape == model.imageShape else {
                throw args.error(2, "option 'pairs': images are \(pairs.imageShape), the model makes \(model.imageShape)")
            }
            let n = pairs.count
            let ts = try timesteps(n)
            let batch = try pairs.batch(Array(0..<n))
            do { try model.checkTokens(batch.tokens) } catch let e as CoreError { throw args.error(2, "option 'pairs': \(e.message)") }
            let noise = Tensor.normal(batch.winners.shape, key: key)
            let (w, l) = noGrad {
                (model.perSampleMSE(x0: batch.winners, noise: noise, timesteps: ts, tokens: batch.tokens),
                 model.perSampleMSE(x0: batch.losers, noise: noise, timesteps: ts, tokens: batch.tokens))
            }
            try args.push(w.data.map(Double.init))
            try args.push(l.data.map(Double.init))
            return 2
        }
        guard let flat = try o.numbers("images") else { throw args.error(2, "option 'images' (or 'pairs') is required") }
        let prompts = try promptTexts(o.values["prompts"], args, index: 2)
        let per = model.imageShape.reduce(1, *)
        guard flat.count == prompts.count * per else {
            throw args.error(2, "option 'images': \(prompts.count) prompts need \(prompts.count * per) values (\(model.imageShape) each), got \(flat.count)")
        }
        let n = prompts.count
        let ts = try timesteps(n)
        let images = Tensor(shape: [n] + model.imageShape, data: flat.map(Float.init))
        let tokens = try model.tokenize(prompts)
        let noise = Tensor.normal(images.shape, key: key)
        let mse = noGrad { model.perSampleMSE(x0: images, noise: noise, timesteps: ts, tokens: tokens) }
        try args.push(mse.data.map(Double.init))
        return 1
    }
}

// MARK: - Pretraining

private let pretrainOptions = ["model", "steps", "batch_size", "prompts", "world_seed", "seed", "grad_shards",
                               "checkpoint_every", "checkpoint_dir", "resume", "log", "dropout",
                               "threads", "latents", "loss_weighting", "min_snr_gamma", "on_progress"]

/// Option `latents = {alignment = {lo, hi} | v, aesthetics = …, detail = …}`: the ranges the renders'
/// quality latents are drawn from (a number fixes the latent); absent dimensions keep [0, 1].
private func latentRanges(_ o: LuaOptions, _ args: LuaArgs) throws -> LatentRanges {
    guard let v = o.values["latents"] else { return .world }
    guard let d = v as? [String: Any] else {
        throw args.error(1, "option 'latents': expected a table {alignment =, aesthetics =, detail =}, got \(LuaOptions.luaTypeName(of: v))")
    }
    var ranges: [String: ClosedRange<Double>] = [:]
    for (key, value) in d {
        guard ["alignment", "aesthetics", "detail"].contains(key) else {
            throw args.error(1, "option 'latents': unknown dimension '\(key)' (alignment, aesthetics, detail)")
        }
        func num(_ x: Any) -> Double? { (x as? Double) ?? (x as? Int).map(Double.init) }
        if let x = num(value) { ranges[key] = x...x; continue }
        guard let a = value as? [Any], a.count == 2, let lo = num(a[0]), let hi = num(a[1]), lo <= hi else {
            throw args.error(1, "option 'latents': '\(key)' must be a number or {lo, hi} with lo ≤ hi")
        }
        ranges[key] = lo...hi
    }
    do {
        return try LatentRanges(alignment: ranges["alignment"] ?? 0...1, aesthetics: ranges["aesthetics"] ?? 0...1,
                                detail: ranges["detail"] ?? 0...1)
    } catch let e as CoreError { throw args.error(1, "option 'latents': \(e.message)") }
}

/// `semidpo.diffusion.pretrain{model =, steps =, batch_size = 32, prompts = 5000, world_seed = 0, seed = semidpo.seed,
/// checkpoint_every = 500, checkpoint_dir = "pretrain", resume = path, log = "pretrain", dropout = 0.1,
/// lr = 1e-3, warmup = 100, schedule = "constant"|"cosine", min_lr_factor = 0.1, weight_decay = 0,
/// adam_beta1 = 0.9, adam_beta2 = 0.999, adam_epsilon = 1e-8, grad_clip = 1, ema_decay = 0,
/// latents = {alignment = {lo, hi}, aesthetics = …, detail = …}, loss_weighting = "none"|"min_snr", min_snr_gamma = 5,
/// grad_shards = MPI rank count (1 without mpirun; docs/recipes.md "semidpo.mpi"),
/// on_progress = function(step, total, {loss =, learning_rate =}) end}
/// -> {steps, start_step, final_loss, recent_loss, seconds, images_per_second, checkpoint, model_path, ema}`
///
/// Trains `model` in place on `RenderSource`: mixed-quality renders of the first `prompts` training
/// prompts of `PromptSuites(seed: world_seed)` (or of a given list of prompt strings), drawn per
/// (seed, step), each quality latent uniform on its `latents` range (default [0, 1], the world's own
/// mix). `checkpoint_dir` (in the run directory) gets checkpoint.safetensors every
/// `checkpoint_every` steps, then model.safetensors (+ model_ema.safetensors); `log` gets
/// `<log>.csv` and `<log>.svg`. `resume` = a checkpoint file or directory to continue from.
/// `ema_decay` (0 = none) also returns the EMA weights as a second Model.
private func diffusion_pretrain(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "pretrain") { args in
        let o = try trainerOptions(args, 1, allowed: pretrainOptions)
        guard let model = try o.object("model", DiffusionModel.self) else { throw args.error(1, "option 'model' (a Model) is required") }
        let steps = try o.required("steps", o.integer("steps"))
        guard steps >= 1 else { throw args.error(1, "option 'steps': expected ≥ 1, got \(steps)") }
        var pc = PretrainConfig()
        pc.batchSize = try o.integer("batch_size", default: 32)
        pc.optimizer = try optimizerSettings(o, defaults: .pretrain)
        pc.checkpointEvery = try o.integer("checkpoint_every", default: 500)
        pc.conditioningDropout = try o.number("dropout", default: 0.1)
        let weighting = try o.string("loss_weighting", default: "none")
        guard let w = PretrainConfig.LossWeighting(rawValue: weighting) else {
            throw args.error(1, "option 'loss_weighting': '\(weighting)' is not none or min_snr")
        }
        pc.lossWeighting = w
        pc.minSNRGamma = try o.number("min_snr_gamma", default: 5)
        pc.gradShards = try o.integer("grad_shards", default: GradientShards.perRank)
        let seed = try o.integer("seed", default: runSeed(args.L))
        guard seed >= 0 else { throw args.error(1, "option 'seed': expected ≥ 0, got \(seed)") }
        pc.seed = UInt64(seed)
        do { try pc.validate() } catch let e as CoreError { throw args.error(1, e.message) }

        let worldSeed = try o.integer("world_seed", default: 0)
        let prompts: [Prompt]
        if let list = o.values["prompts"] as? [Any] {
            let texts = try promptTexts(list, args, index: 1)
            prompts = try texts.map { t in
                do { return try Prompt(parsing: t) } catch let e as CoreError { throw args.error(1, "option 'prompts': \(e.message)") }
            }
        } else {
            let count = try o.integer("prompts", default: 5000)
            guard count >= 1 && count <= PromptSuites.maxTrainingPrompts else {
                throw args.error(1, "option 'prompts': expected 1…\(PromptSuites.maxTrainingPrompts) or a list, got \(count)")
            }
            prompts = try PromptSuites(seed: UInt64(max(0, worldSeed))).training(count: count)
        }
        // Every prompt must tokenize before hours of training start.
        _ = try model.tokenize(prompts.map(\.text))
        let threads = try o.integer("threads", default: max(1, Engine.threads))
        let source = try RenderSource(prompts: prompts, seed: UInt64(seed), imageSize: model.config.imageSize, threads: max(1, threads),
                                      latents: try latentRanges(o, args))

        let dir = try args.run.resolve(try o.string("checkpoint_dir", default: "pretrain"))
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let logName = try o.string("log", default: "pretrain")
        let csv = try args.run.resolve(logName + ".csv")
        let trainer = try Pretrainer(model: model, config: pc)
        if let resume = try o.string("resume") {
            var path = inputPath(resume)
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
                path = (path as NSString).appendingPathComponent("checkpoint.safetensors")
            }
            guard FileManager.default.fileExists(atPath: path) else { throw args.error(1, "option 'resume': no checkpoint at \(path)") }
            try trainer.loadCheckpoint(path: path)
            print("pretrain: resumed from \(path) at step \(trainer.step)")
        }
        let start = trainer.step
        guard start <= steps else { throw args.error(1, "option 'steps': the checkpoint is already at step \(start), beyond \(steps)") }
        let onProgress = try o.function("on_progress")
        let bar = ProgressBar(total: steps - start, label: "pretrain")
        let every = max(1, steps / 20)
        var window: [Float] = []
        let summary = try trainer.run(source: source, steps: steps, checkpointDir: dir, resume: false, log: csv) { step, total, loss in
            bar.advance(by: 1)
            window.append(loss)
            if step % every == 0 || step == total {
                let mean = window.reduce(0, +) / Float(window.count)
                print(String(format: "pretrain: step %d/%d  loss %.4f (mean of last %d)  lr %.2e", step, total, mean, window.count,
                             trainer.learningRate(atStep: step)))
                fflush(stdout)   // a log file sees each line as it comes (stdout to a file is block-buffered)
                window.removeAll()
            }
            _ = try onProgress?.call([step, total, ["loss": Double(loss), "learning_rate": trainer.learningRate(atStep: step)] as [String: Any]],
                                     results: 0, on: args.L)
        }
        bar.finish()
        let svg = ((csv as NSString).deletingPathExtension as NSString).appendingPathExtension("svg")!
        let modelPath = (dir as NSString).appendingPathComponent("model.safetensors")
        let checkpoint = (dir as NSString).appendingPathComponent("checkpoint.safetensors")
        for p in [csv, svg, modelPath, checkpoint] { try args.run.recordOutput(p) }
        var result: [String: Any] = [
            "steps": summary.endStep, "start_step": summary.startStep, "final_loss": Double(summary.finalLoss),
            "recent_loss": Double(summary.recentLoss), "seconds": summary.seconds, "images_per_second": summary.imagesPerSecond,
            "checkpoint": checkpoint, "model_path": modelPath, "log": csv, "prompts": prompts.count,
        ]
        if let ema = trainer.ema {
            let emaPath = (dir as NSString).appendingPathComponent("model_ema.safetensors")
            try args.run.recordOutput(emaPath)
            result["ema_path"] = emaPath
            let copy = ema.clone()
            copy.unfreeze()
            result["ema"] = copy
        }
        try args.push(result)
        return 1
    }
}

// MARK: - Evaluation

/// Prompts for `evaluate_renders`: a list (strings or {text =} tables) or a suite name ("pickapic", "hpsv2",
/// "parti", "geneval", "training") of `PromptSuites(seed: world_seed, suiteSize: size)`, first `limit`.
private func evaluationPrompts(_ o: LuaOptions, _ args: LuaArgs) throws -> [Prompt] {
    let texts: [String]
    if let name = o.values["suite"] as? String {
        let worldSeed = UInt64(max(0, try o.integer("world_seed", default: 0)))
        let size = try o.integer("size", default: 500)
        guard size >= 1 else { throw args.error(1, "option 'size': expected ≥ 1, got \(size)") }
        let s = PromptSuites(seed: worldSeed, suiteSize: size)
        switch name {
        case "pickapic": texts = s.pickapicTest.map(\.text)
        case "hpsv2": texts = s.hpsv2.map(\.text)
        case "parti": texts = s.parti.map(\.text)
        case "geneval": texts = s.geneval.map(\.text)
        case "training": texts = try s.training(count: size).map(\.text)
        default: throw args.error(1, "option 'suite': unknown suite '\(name)' (pickapic, hpsv2, parti, geneval, training or a list)")
        }
    } else {
        texts = try promptTexts(o.values["suite"], args, index: 1, key: "suite")
    }
    let count = try o.integer("limit", default: texts.count)
    guard count >= 1 else { throw args.error(1, "option 'limit': expected ≥ 1, got \(count)") }
    return try texts.prefix(count).map { t in
        do { return try Prompt(parsing: t) } catch let e as CoreError { throw args.error(1, "option 'suite': \(e.message)") }
    }
}

private func reportTable(_ r: SampleEvalReport, seconds: Double) -> [String: Any] {
    var d = r.dictionary
    d["seconds"] = seconds
    return d
}

/// `semidpo.diffusion.evaluate{…}` was merged into `semidpo.eval.run` (issue 15: one evaluator): the
/// old name fails naming the new one.
private func diffusion_evaluate(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "evaluate") { _ in
        throw CoreError("semidpo.diffusion.evaluate was merged into semidpo.eval.run{model =, suite =, limit =} (steps default 20, "
                        + "seed default semidpo.seed); its colour/shape report is scores:oracle_report()")
    }
}

/// `semidpo.diffusion.evaluate_renders{suite = list_or_suite_name, limit =, world_seed = 0, size = 500,
/// seed = semidpo.seed, image_size = 16, latents = {…}} -> the table of `scores:oracle_report()` for one mixed-quality world
/// render per prompt (random quality latents, the pretraining distribution; image i from (seed, i));
/// `latents` narrows or fixes them as in `pretrain` (e.g. all 1: perfect renders, the oracle's ceiling).
private func diffusion_evaluate_renders(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "evaluate_renders") { args in
        let o = try args.options(1, allowed: ["suite", "limit", "world_seed", "size", "seed", "image_size", "latents"])
        let prompts = try evaluationPrompts(o, args)
        let seed = try o.integer("seed") ?? args.runSeed
        let imageSize = try o.integer("image_size", default: 16)
        let t0 = Date()
        let threads = max(1, Engine.threads)
        let images = try RenderSource.referenceRenders(of: prompts.map(\.scene), seed: UInt64(truncatingIfNeeded: seed),
                                                       imageSize: imageSize, threads: threads, latents: try latentRanges(o, args))
        let report = try SampleEval.evaluate(images: images, scenes: prompts.map(\.scene), size: imageSize, threads: threads)
        try args.push(reportTable(report, seconds: Date().timeIntervalSince(t0)))
        return 1
    }
}
