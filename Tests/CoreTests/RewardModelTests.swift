// Reward model tests: Float64 gradient checks (with and without prompt), Bradley–Terry training on a
// tiny synthetic set, bit-exact checkpoints, rater labels and argument errors.
import Foundation
import Testing
@testable import Core

/// A small architecture for tests: 8×8 images, 4 channels.
let tinyRewardConfig = RewardModelConfig(imageSize: 8, channels: [4, 4, 4], groups: 2, embedDimension: 4, heads: 2)

/// `n` synthetic pairs of 8×8 images: noise plus a square of brightness b0 / b1 in channel 0; the
/// brighter square is the true preference. Returns the data and the true labels (+1: image 0).
func syntheticRewardPairs(_ n: Int, seed: UInt64) throws -> (RewardPairArrays, [Int8]) {
    var rng = RandomStream(seed: seed)
    let s = 8, d = 3 * s * s
    var a = [Float](repeating: 0, count: n * d), b = a, labels: [Int8] = []
    let texts = ["a red circle", "two blue squares", "nice green triangle on the left"]
    var prompts: [String] = []
    for i in 0..<n {
        let b0 = rng.uniform(-1, 1), b1 = rng.uniform(-1, 1)
        labels.append(b0 > b1 ? 1 : -1)
        for (img, bright) in [(0, b0), (1, b1)] {
            let x0 = rng.int(4), y0 = rng.int(4)
            for c in 0..<3 { for y in 0..<s { for x in 0..<s {
                var v = Float(0.2 * rng.normal())
                if c == 0 && x >= x0 && x < x0 + 4 && y >= y0 && y < y0 + 4 { v += Float(bright) }
                if img == 0 { a[i * d + (c * s + y) * s + x] = v } else { b[i * d + (c * s + y) * s + x] = v }
            } } }
        }
        prompts.append(texts[i % texts.count])
    }
    return (try RewardPairArrays(image0: a, image1: b, tokens: RewardTokens(texts: prompts), imageSize: s), labels)
}

@Suite struct RewardModelTests {
    @Test func gradientsWithPrompt() throws {
        let model = try RewardModelOf<Double>(config: tinyRewardConfig, key: RandomKey(seed: 1))
        let x = leaf([2, 3, 8, 8], seed: 2)
        // Row 2 is shorter than row 1, so the masked mean and the key padding mask are exercised.
        let tokens = try RewardTokens(texts: ["a red circle left of a blue square", "two cyan rings"])
        expectGradients([("x", x)] + model.parameters(), maxPerTensor: 6) { model(x, tokens: tokens) }
        #expect(model.parameters().map(\.0).contains("token_embedding.weight"))
    }

    @Test func gradientsImageOnly() throws {
        var config = tinyRewardConfig
        config.usesPrompt = false
        let model = try RewardModelOf<Double>(config: config, key: RandomKey(seed: 3))
        let x = leaf([3, 3, 8, 8], seed: 4)
        expectGradients([("x", x)] + model.parameters(), maxPerTensor: 6) { model(x, tokens: nil) }
        #expect(model.parameters().map(\.0).contains("learned_query"))
        #expect(!model.parameters().map(\.0).contains { $0.hasPrefix("token") })
    }

    @Test func bradleyTerryLossGradient() {
        // L = mean −log σ(y (r0 − r1)); at r0 = r1 every pair contributes log 2.
        let r0 = leaf([3], seed: 5), r1 = leaf([3], seed: 6)
        let report = gradientCheck([("r0", r0), ("r1", r1)]) { bradleyTerryLoss(r0, r1, labels: [1, -1, 1]) }
        #expect(report.passed, "\(report)")
        let z = T64.zeros([2])
        #expect(Swift.abs(bradleyTerryLoss(z, z, labels: [1, -1]).item() - Foundation.log(2.0)) < 1e-12)
    }

    @Test func trainingRaisesHeldOutAccuracy() throws {
        let (data, labels) = try syntheticRewardPairs(320, seed: 7)
        let train = Array(0..<256), test = Array(256..<320)
        let model = try RewardModel(config: tinyRewardConfig, key: RandomKey(seed: 8))
        let reference = test.map { Float(labels[$0]) }
        let before = try pairwiseAccuracy(scores: scorePairs(model, data: data, rows: test), reference: reference)
        let result = try trainRewardModel(model, data: data, rows: train, labels: train.map { labels[$0] },
                                          config: RewardTrainingConfig(steps: 150, batchSize: 32, optimizer: OptimizerSettings(lr: 1e-2, warmup: 10, schedule: .cosine, minLRFactor: 0.1, weightDecay: 1e-4), seed: 9))
        let after = try pairwiseAccuracy(scores: scorePairs(model, data: data, rows: test), reference: reference)
        #expect(after >= 0.8, "held-out accuracy \(after) (before \(before))")
        #expect(after > before + 0.2, "held-out accuracy \(before) → \(after)")
        #expect(result.losses.count == 150)
        let early: Double = result.losses.prefix(20).reduce(0, +) / 20
        let late: Double = result.losses.suffix(20).reduce(0, +) / 20
        #expect(late < early)
    }

    @Test func checkpointRoundTripIsBitExact() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("reward-ckpt-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for usesPrompt in [true, false] {
            var config = tinyRewardConfig
            config.usesPrompt = usesPrompt
            let model = try RewardModel(config: config, key: RandomKey(seed: 10))
            let rater = RewardRater.weighted(weights: [0.7, 0.2, 0.1], temperature: 0.02, seed: 11)
            let info = RewardCheckpointInfo(name: "probe", config: config, rater: rater, training: ["steps": "5"])
            let path = dir + "/probe-\(usesPrompt).safetensors"
            try model.save(to: path, info: info)
            let (loaded, back) = try RewardModel.load(from: path)
            #expect(back == info)
            for ((n1, p), (n2, q)) in zip(model.parameters(), loaded.parameters()) {
                #expect(n1 == n2 && p.shape == q.shape)
                #expect(p.data.map(\.bitPattern) == q.data.map(\.bitPattern), "\(n1) differs after load")
            }
            let (data, _) = try syntheticRewardPairs(4, seed: 12)
            #expect(try scorePairs(model, data: data, rows: [0, 1, 2, 3]).map(\.bitPattern)
                    == scorePairs(loaded, data: data, rows: [0, 1, 2, 3]).map(\.bitPattern))
        }
        // Not a reward checkpoint: the error names the file and the key.
        let other = dir + "/other.safetensors"
        try Safetensors.write([NamedTensor(name: "w", shape: [1], data: [1])], metadata: ["format": "x"], to: other)
        #expect(throws: CoreError("reward checkpoint \(other): metadata 'format' is 'x', expected 'semidpo-reward'")) {
            try RewardModel.load(from: other)
        }
        #expect(throws: CoreError("reward checkpoint \(dir)/missing.safetensors: no such file")) {
            try RewardModel.load(from: dir + "/missing.safetensors")
        }
    }

    @Test func raterLabels() throws {
        let t0 = [QualityScores(alignment: 1, aesthetics: 0, detail: 0), QualityScores(alignment: 0, aesthetics: 1, detail: 0)]
        let t1 = [QualityScores(alignment: 0, aesthetics: 1, detail: 0), QualityScores(alignment: 1, aesthetics: 0, detail: 0)]
        // A cold alignment judge (τ = 1e-4: σ(±1/τ) is 0 or 1 in Double) prefers the better-aligned image.
        let cold = RewardRater.weighted(weights: [1, 0, 0], temperature: 1e-4, seed: 1)
        #expect(try cold.labels(labels: [-1, -1], truth0: t0, truth1: t1, rows: [0, 1]) == [1, -1])
        let aesthetic = RewardRater.weighted(weights: [0, 1, 0], temperature: 1e-4, seed: 1)
        #expect(try aesthetic.labels(labels: [-1, -1], truth0: t0, truth1: t1, rows: [0, 1]) == [-1, 1])
        #expect(try RewardRater.human.labels(labels: [-1, 1], truth0: t0, truth1: t1, rows: [1, 0]) == [1, -1])
        // A hot rater is a coin flip: about half of 2000 identical pairs go each way.
        let hot = RewardRater.weighted(weights: [1, 0, 0], temperature: 1e6, seed: 2)
        let many = try hot.labels(labels: [1], truth0: [t0[0]], truth1: [t1[0]], rows: [Int](repeating: 0, count: 1))
        #expect(many.count == 1)
        let n = 2000
        let ones = try hot.labels(labels: [Int](repeating: 1, count: n), truth0: [QualityScores](repeating: t0[0], count: n),
                                  truth1: [QualityScores](repeating: t1[0], count: n), rows: Array(0..<n)).filter { $0 == 1 }.count
        #expect(ones > 900 && ones < 1100, "\(ones) of \(n)")
        #expect(throws: CoreError("rater: temperature must be > 0, got 0.0")) {
            try RewardRater.weighted(weights: [1, 0, 0], temperature: 0, seed: 0).validate()
        }
        #expect(throws: CoreError("rater: weights must be three non-negative numbers (alignment, aesthetics, detail), not all 0; got [1.0, 0.0]")) {
            try RewardRater.weighted(weights: [1, 0], temperature: 1, seed: 0).validate()
        }
    }

    @Test func configErrors() {
        #expect(throws: CoreError("reward model: groups 3 must divide every channel count [4, 4, 4]")) {
            try RewardModel(config: RewardModelConfig(imageSize: 8, channels: [4, 4, 4], groups: 3), key: RandomKey(seed: 0))
        }
        #expect(throws: CoreError("reward model: imageSize must be a positive multiple of 4, got 10")) {
            try RewardModel(config: RewardModelConfig(imageSize: 10), key: RandomKey(seed: 0))
        }
        #expect(throws: CoreError("prompt 'a red blorb': unknown word 'blorb'")) {
            try RewardTokens(texts: ["a red blorb"])
        }
    }
}
