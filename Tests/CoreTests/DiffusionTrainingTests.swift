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

/// Mean ε-MSE of `model` on the toy images over fixed (t, ε) draws, conditional prompts.
func evaluationLoss(_ model: DiffusionModel, _ batch: PretrainBatch) throws -> Float {
    let tokens = try model.tokenize(batch.prompts)
    var total: Float = 0
    for r in 0..<8 {
        let key = RandomKey(seed: 4242).child(UInt64(r))
        let ts = (0..<4).map { model.schedule.sampleTimestep(key.child("t"), UInt64($0)) }
        let noise = Tensor.normal(batch.images.shape, key: key.child("noise"))
        total += noGrad { mean(model.perSampleMSE(x0: batch.images, noise: noise, timesteps: ts, tokens: tokens)).item() }
    }
    return total / 8
}

@Suite(.serialized) struct DiffusionTrainingTests {
    @Test func tinyModelOverfitsAHandfulOfImages() throws {
        let model = try DiffusionModel(config: .tiny(vocabulary: testVocabulary), seed: 11)
        var config = PretrainConfig()
        config.batchSize = 4; config.learningRate = 3e-3; config.warmupSteps = 10; config.conditioningDropout = 0
        let data = toyImages()
        let before = try evaluationLoss(model, data)
        let trainer = try Pretrainer(model: model, config: config)
        let summary = try trainer.run(source: ClosureDataSource { _, _ in data }, steps: 300)
        let after = try evaluationLoss(model, data)
        print("overfit: eval loss \(before) → \(after), \(summary.seconds) s")
        #expect(after * 10 <= before, "loss \(before) → \(after)")
    }
}
