// Tests of pretraining and sampling on the tiny config: overfitting a handful of images, sampler
// determinism and shared starting noise, guidance scale 1, and bit-exact resume.
import Foundation
import Testing
@testable import Core

/// Four 8×8 images: a coloured square on a dark background at a prompt-given place.
func toyImages() -> PretrainBatch {
    let specs: [(String, (Float, Float, Float), Int, Int)] = [
        ("red square left", (1, -1, -1), 0, 2), ("blue square right", (-1, -1, 1), 4, 2),
        ("green circle left", (-1, 1, -1), 0, 4), ("red triangle right", (1, -1, -1), 4, 4),
    ]
    var data = [Float](repeating: -0.8, count: specs.count * 3 * 64)   // (4, 3, 8, 8)
    for (n, (_, colour, x0, y0)) in specs.enumerated() {
        for c in 0..<3 { for y in y0..<(y0 + 3) { for x in x0..<(x0 + 3) {
            data[n * 192 + c * 64 + y * 8 + x] = [colour.0, colour.1, colour.2][c]
        } } }
    }
    return PretrainBatch(images: Tensor(shape: [4, 3, 8, 8], data: data), prompts: specs.map(\.0))
}

/// Mean ε-MSE of `model` on the toy images over 8 fixed (t, ε) draws, conditional prompts.
func evaluationLoss(_ model: DiffusionModel, _ batch: PretrainBatch) throws -> Double {
    try model.validationLoss(images: batch.images, tokens: model.tokenize(batch.prompts), seed: 4242, draws: 8)
}

@Suite(.serialized) struct DiffusionTrainingTests {
    @Test func tinyModelOverfitsAHandfulOfImages() throws {
        let model = try DiffusionModel(config: .tiny(vocabulary: testVocabulary), seed: 11)
        var config = PretrainConfig()
        config.batchSize = 4; config.optimizer.lr = 3e-3; config.optimizer.warmup = 10; config.conditioningDropout = 0
        let data = toyImages()
        let before = try evaluationLoss(model, data)
        let trainer = try Pretrainer(model: model, config: config)
        let summary = try trainer.run(source: ClosureDataSource { _, _ in data }, steps: 300)
        let after = try evaluationLoss(model, data)
        print("overfit: eval loss \(before) → \(after), \(summary.seconds) s")
        #expect(after * 10 <= before, "loss \(before) → \(after)")
    }

    @Test func samplerIsDeterministicAndStartsFromSharedNoise() throws {
        let a = try DiffusionModel(config: .tiny(vocabulary: testVocabulary), seed: 1)
        let b = try DiffusionModel(config: .tiny(vocabulary: testVocabulary), seed: 2)
        let prompts = ["red circle", "blue square left", ""]
        let cfg = SamplerConfig(method: .ddim(eta: 0.5), steps: 4, guidanceScale: 2, batchSize: 2)
        let s1 = try a.sample(prompts: prompts, seed: 7, config: cfg), s2 = try a.sample(prompts: prompts, seed: 7, config: cfg)
        #expect(s1.data == s2.data)
        #expect(s1.shape == [3, 3, 8, 8] && s1.data.allSatisfy { $0 >= -1 && $0 <= 1 })
        #expect(try a.sample(prompts: prompts, seed: 8, config: cfg).data != s1.data)
        #expect(try b.sample(prompts: prompts, seed: 7, config: cfg).data != s1.data)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("semidpo-grid-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        let grid = try a.sampleGrid(prompts: ["red circle", ""], seeds: [7, 8, 9], config: cfg, scale: 2,
                                    path: dir.appendingPathComponent("g.png").path)
        #expect(grid.shape == [6, 3, 8, 8])
        #expect(Array(grid.data[(3 * 192)..<(4 * 192)]) != Array(grid.data[0..<192]))   // row 1 (null prompt) ≠ row 0
        #expect(try Data(contentsOf: dir.appendingPathComponent("g.png")).prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]))
        // Both models see the same x_T for each (seed, index), whatever the batch it is in.
        let ra = ModelCallRecorder(a), rb = ModelCallRecorder(b)
        _ = try Sampler.sample(ra, tokens: a.tokenize(prompts), ids: (0..<3).map { SampleID(seed: 7, index: $0) },
                               imageShape: a.imageShape, config: cfg)
        _ = try Sampler.sample(rb, tokens: b.tokenize([prompts[1]]), ids: [SampleID(seed: 7, index: 1)],
                               imageShape: b.imageShape, config: cfg)
        let per = 3 * 64
        let firstA = ra.inputs[0].data, firstB = rb.inputs[0].data   // a: rows 0,1 (+ their null copies); b: row for index 1
        #expect(Array(firstA[per..<(2 * per)]) == Array(firstB[0..<per]))
        #expect(Array(firstA[per..<(2 * per)]) == SampleID(seed: 7, index: 1).initialNoise(count: per))
        #expect(Array(firstA[0..<per]) != Array(firstA[per..<(2 * per)]))
    }

    @Test func guidanceScaleOneEqualsTheConditionalSample() throws {
        let model = try DiffusionModel(config: .tiny(vocabulary: testVocabulary), seed: 3)
        let prompts = ["green triangle", "a big red square"]
        var cfg = SamplerConfig(method: .ddim(eta: 0), steps: 5, guidanceScale: nil)
        let conditional = try model.sample(prompts: prompts, seed: 1, config: cfg)
        cfg.guidanceScale = 1
        let guided1 = try model.sample(prompts: prompts, seed: 1, config: cfg)
        assertClose(guided1, conditional, rtol: 1e-4, atol: 1e-5)
        cfg.guidanceScale = 4
        let guided4 = try model.sample(prompts: prompts, seed: 1, config: cfg)
        #expect(zip(guided4.data, conditional.data).map { Swift.abs($0 - $1) }.max()! > 1e-3)
    }

    @Test func ancestralDDPMRunsEveryTimestep() throws {
        var config = DiffusionConfig.tiny(vocabulary: testVocabulary)
        config.timesteps = 12
        let model = try DiffusionModel(config: config, seed: 4)
        let rec = ModelCallRecorder(model)
        let cfg = SamplerConfig(method: .ddpm, guidanceScale: 2)
        let x = try Sampler.sample(rec, tokens: model.tokenize(["red circle"]), ids: [SampleID(seed: 3, index: 0)],
                                   imageShape: model.imageShape, config: cfg)
        #expect(rec.timesteps == (0..<12).reversed().map { [$0, $0] })
        let again = try Sampler.sample(model, tokens: model.tokenize(["red circle"]), ids: [SampleID(seed: 3, index: 0)],
                                       imageShape: model.imageShape, config: cfg)
        #expect(x.data == again.data && x.data.allSatisfy { $0.isFinite && Swift.abs($0) <= 1 })
        #expect(throws: CoreError.self) { try model.sample(prompts: ["red"], seed: 1, config: SamplerConfig(steps: 13)) }
        #expect(throws: CoreError.self) { try model.sample(prompts: ["purple"], seed: 1) }
    }

    @Test func resumedRunEqualsUninterruptedRun() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("semidpo-resume-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        var config = PretrainConfig()
        config.batchSize = 3; config.optimizer.warmup = 2; config.optimizer.schedule = .cosine; config.optimizer.emaDecay = 0.8
        config.conditioningDropout = 0.4; config.checkpointEvery = 2; config.seed = 21
        struct Interrupted: Error {}
        func source(failAt: Int?) -> ClosureDataSource {
            ClosureDataSource { step, size in
                if step == failAt { throw Interrupted() }
                let prompts = ["red circle", "blue square", "green triangle left", "big circle"]
                return PretrainBatch(images: Tensor.uniform([size, 3, 8, 8], key: RandomKey(seed: 5).child(UInt64(step)), low: -1, high: 1),
                                     prompts: (0..<size).map { prompts[($0 + step) % 4] })
            }
        }
        let straight = try Pretrainer(model: DiffusionModel(config: .tiny(vocabulary: testVocabulary), seed: 5), config: config)
        try straight.run(source: source(failAt: nil), steps: 7, checkpointDir: dir.appendingPathComponent("a").path,
                         log: dir.appendingPathComponent("a/loss.csv").path)

        let first = try Pretrainer(model: DiffusionModel(config: .tiny(vocabulary: testVocabulary), seed: 5), config: config)
        #expect(throws: Interrupted.self) { try first.run(source: source(failAt: 5), steps: 7, checkpointDir: dir.appendingPathComponent("b").path) }
        #expect(first.step == 5)
        // A new process: different initial weights, state comes from the checkpoint at step 4.
        let second = try Pretrainer(model: DiffusionModel(config: .tiny(vocabulary: testVocabulary), seed: 99), config: config)
        var seen: [Int] = []
        let summary = try second.run(source: source(failAt: nil), steps: 7, checkpointDir: dir.appendingPathComponent("b").path) { s, _, _ in seen.append(s) }
        #expect(summary.startStep == 4 && seen == [5, 6, 7])
        #expect(second.losses == straight.losses)
        for ((n, p), (_, q)) in zip(straight.model.parameters(), second.model.parameters()) {
            #expect(p.data.map(\.bitPattern) == q.data.map(\.bitPattern), "\(n)")
        }
        for ((n, p), (_, q)) in zip(straight.ema!.parameters(), second.ema!.parameters()) {
            #expect(p.data.map(\.bitPattern) == q.data.map(\.bitPattern), "ema \(n)")
        }
        let csv = try String(contentsOfFile: dir.appendingPathComponent("a/loss.csv").path, encoding: .utf8)
        #expect(csv.split(separator: "\n").count == 8)
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("a/loss.svg").path))
        let saved = try DiffusionModel.load(path: dir.appendingPathComponent("a/model_ema.safetensors").path)
        #expect(saved.parameters()[0].1.data == straight.ema!.parameters()[0].1.data)
    }

    @Test func minSNRWeightOnHandComputedValues() throws {
        // w_t = min(SNR_t, γ)/SNR_t, SNR_t = ᾱ_t/(1 − ᾱ_t).
        // Linear schedule, T = 2, β = (0.1, 0.5): ᾱ = (0.9, 0.45), SNR = (9, 0.8181…) → w = (5/9, 1) at γ = 5.
        var config = PretrainConfig()
        let tiny = try NoiseSchedule(kind: .linear, steps: 2, betaStart: 0.1, betaEnd: 0.5)
        #expect(config.lossWeight(timestep: 0, schedule: tiny) == 1)        // "none" by default
        config.lossWeighting = .minSNR
        #expect(abs(config.lossWeight(timestep: 0, schedule: tiny) - 5.0 / 9.0) < 1e-12)
        #expect(config.lossWeight(timestep: 1, schedule: tiny) == 1)
        // SD's schedule, t = 0: ᾱ_0 = 1 − 0.00085, w = 5 · 0.00085 / 0.99915 = 0.0042536155732373 (python: 5*(1-a)/a).
        #expect(abs(config.lossWeight(timestep: 0, schedule: .stableDiffusion) - 0.0042536155732373) < 1e-12)
        #expect(config.lossWeight(timestep: 999, schedule: .stableDiffusion) == 1)
        let parsed = try PretrainConfig(dictionary: ["loss_weighting": "min_snr", "min_snr_gamma": 2.5])
        #expect(parsed.lossWeighting == .minSNR && parsed.minSNRGamma == 2.5)
        #expect(throws: CoreError.self) { try PretrainConfig(dictionary: ["loss_weighting": "p2"]) }
        #expect(throws: CoreError.self) { try PretrainConfig(dictionary: ["min_snr_gamma": 0]) }
        #expect(PretrainConfig().dictionary["loss_weighting"] == nil)     // default configs serialise as before
    }

    @Test func minSNRStepLossIsTheWeightedMeanOfPerSampleMSE() throws {
        // The first step's loss equals mean_i w(t_i) · mse_i recomputed from the same draws (before the update).
        var config = PretrainConfig()
        config.batchSize = 4; config.conditioningDropout = 0; config.lossWeighting = .minSNR; config.seed = 3
        let model = try DiffusionModel(config: .tiny(vocabulary: testVocabulary), seed: 7)
        let reference = model.clone()
        let data = toyImages()
        let loss = try Pretrainer(model: model, config: config).trainStep(data)
        let key = RandomKey(seed: 3).child("pretrain").child(0)
        let ts = (0..<4).map { reference.schedule.sampleTimestep(key.child("t"), UInt64($0)) }
        let mse = noGrad { reference.perSampleMSE(x0: data.images, noise: Tensor.normal(data.images.shape, key: key.child("noise")),
                                                  timesteps: ts, tokens: try! reference.tokenize(data.prompts)) }
        let expected = zip(ts, mse.data).map { config.lossWeight(timestep: $0, schedule: reference.schedule) * Double($1) }.reduce(0, +) / 4
        #expect(abs(Double(loss) - expected) < 1e-5 * max(1, expected), "\(loss) vs \(expected)")
    }
}

/// Passes calls through to a model and records every input and timestep list.
final class ModelCallRecorder: Denoiser {
    let model: DiffusionModel
    var inputs: [Tensor] = [], timesteps: [[Int]] = []
    init(_ model: DiffusionModel) { self.model = model }
    var schedule: NoiseSchedule { model.schedule }
    func predictNoise(_ x: Tensor, timesteps t: [Int], tokens: TokenBatch) -> Tensor {
        inputs.append(x); timesteps.append(t)
        return model.predictNoise(x, timesteps: t, tokens: tokens)
    }
    func parameters() -> [(String, Tensor)] { model.parameters() }
}
