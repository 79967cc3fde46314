// Tests of preference training on a tiny real denoiser: labels (+1 = plain DPO, −1 = swap, 0 = mask),
// shared noise and t, t drawn from labelled intervals, learning (DPO/KTO/SFT), resume, and bad input.
import Foundation
import Testing
@testable import Core

private let beta = 200.0

/// A batch with fixed noise and timesteps for direct `evaluatePairs` calls.
private func fixedBatch(_ pairs: InMemoryPairs, rows: [Int], seed: UInt64 = 5) throws -> (PairBatch, Tensor, [Int]) {
    let b = try pairs.batch(rows)
    let noise = Tensor.normal(b.winners.shape, key: RandomKey(seed: seed))
    let ts = rows.indices.map { [37, 420, 880, 150, 999, 0, 512, 700][$0 % 8] }
    return (b, noise, ts)
}

@Test func allPlusOneLabelsEqualPlainDPOWrittenWithAutograd() throws {
    let policy = TinyDenoiser(seed: 1), reference = TinyDenoiser(seed: 2)
    reference.setRequiresGradFalse()
    let pairs = try toyPairs(6, seed: 3)
    let (batch, noise, ts) = try fixedBatch(pairs, rows: Array(0..<6))
    let e = try evaluatePairs(policy: policy, reference: reference, batch: batch, labels: [Int8](repeating: 1, count: 6),
                              timesteps: ts, noise: noise, objective: .dpo(PreferenceLossConfig(kind: .sigmoid, beta: beta)),
                              backwardScale: 1)
    let gradsTrainer = flatGrads(policy.parameters())
    zeroGrad(policy.parameters())

    // The same loss built directly from the SPEC formula with autograd ops, winners and losers
    // forwarded separately: L = mean −log σ(β[(r_w − r_l) − (θ_w − θ_l)]).
    let pw = policy.perSampleMSE(x0: batch.winners, noise: noise, timesteps: ts, tokens: batch.tokens)
    let pl = policy.perSampleMSE(x0: batch.losers, noise: noise, timesteps: ts, tokens: batch.tokens)
    let (rw, rl) = noGrad { (reference.perSampleMSE(x0: batch.winners, noise: noise, timesteps: ts, tokens: batch.tokens),
                             reference.perSampleMSE(x0: batch.losers, noise: noise, timesteps: ts, tokens: batch.tokens)) }
    let z = Float(beta) * ((rw - rl) - (pw - pl))
    let loss = mean(0 - logSigmoid(z))
    loss.backward()
    let gradsDirect = flatGrads(policy.parameters())

    #expect(Swift.abs(e.loss - Double(loss.item())) < 1e-5 * max(1, Swift.abs(e.loss)))
    for i in 0..<6 { #expect(Swift.abs(e.z[i] - Double(z.data[i])) < 1e-3 * max(1, Swift.abs(e.z[i]))) }
    #expect(e.z.contains { $0 != 0 })
    #expect(maxAbsDiff(gradsTrainer, gradsDirect) < 1e-4 * max(1, maxAbs(gradsDirect)))
    #expect(maxAbs(gradsDirect) > 0)
}

@Test(arguments: PreferenceLossKind.allCases)
func labelMinusOneEqualsSwappingWinnerAndLoser(kind: PreferenceLossKind) throws {
    let policy = TinyDenoiser(seed: 1), reference = TinyDenoiser(seed: 2)
    reference.setRequiresGradFalse()
    let pairs = try toyPairs(4, seed: 4)
    let (batch, noise, ts) = try fixedBatch(pairs, rows: Array(0..<4))
    let swapped = try PairBatch(winners: batch.losers, losers: batch.winners, tokens: batch.tokens, ids: batch.ids)
    let objective = PreferenceObjective.dpo(PreferenceLossConfig(kind: kind, beta: beta))
    let a = try evaluatePairs(policy: policy, reference: reference, batch: batch, labels: [-1, -1, -1, -1],
                              timesteps: ts, noise: noise, objective: objective, backwardScale: 1)
    let ga = flatGrads(policy.parameters()); zeroGrad(policy.parameters())
    let b = try evaluatePairs(policy: policy, reference: reference, batch: swapped, labels: [1, 1, 1, 1],
                              timesteps: ts, noise: noise, objective: objective, backwardScale: 1)
    let gb = flatGrads(policy.parameters())
    #expect(Swift.abs(a.loss - b.loss) < 1e-9 * max(1, Swift.abs(a.loss)))
    for i in 0..<4 { #expect(Swift.abs(a.z[i] - b.z[i]) < 1e-6 * max(1, Swift.abs(a.z[i]))) }
    #expect(a.implicitAccuracy == b.implicitAccuracy)
    #expect(maxAbsDiff(ga, gb) < 1e-5 * max(1, maxAbs(gb)))
    #expect(maxAbs(gb) > 0)
}

@Test func labelZeroMasksThePair() throws {
    let policy = TinyDenoiser(seed: 1), reference = TinyDenoiser(seed: 2)
    reference.setRequiresGradFalse()
    let pairs = try toyPairs(4, seed: 6)
    let (batch, noise, ts) = try fixedBatch(pairs, rows: [0, 1, 2, 3])
    let objective = PreferenceObjective.dpo(PreferenceLossConfig(kind: .sigmoid, beta: beta))
    let full = try evaluatePairs(policy: policy, reference: reference, batch: batch, labels: [1, 0, -1, 1],
                                 timesteps: ts, noise: noise, objective: objective, backwardScale: 1)
    let gFull = flatGrads(policy.parameters()); zeroGrad(policy.parameters())
    // The same three labelled pairs alone (pair 1 removed), same noise rows and timesteps.
    let keep = [0, 2, 3]
    let m = 3 * 4 * 4
    let sub = try pairs.batch(keep)
    let subNoise = Tensor(shape: [3, 3, 4, 4], data: keep.flatMap { Array(noise.data[($0 * m)..<(($0 + 1) * m)]) })
    let part = try evaluatePairs(policy: policy, reference: reference, batch: sub, labels: [1, -1, 1],
                                 timesteps: keep.map { ts[$0] }, noise: subNoise, objective: objective, backwardScale: 1)
    let gPart = flatGrads(policy.parameters())
    #expect(full.labelled == 3)
    #expect(full.z[1] == 0)
    #expect(Swift.abs(full.loss - part.loss) < 1e-9)
    #expect(full.implicitAccuracy == part.implicitAccuracy)
    #expect(maxAbsDiff(gFull, gPart) < 1e-5 * max(1, maxAbs(gPart)))
    // KTO masks too: the masked pair's images are not part of the batch of images.
    let kFull = try evaluatePairs(policy: policy, reference: reference, batch: batch, labels: [1, 0, -1, 1],
                                  timesteps: ts, noise: noise, objective: .kto(beta: beta))
    let kPart = try evaluatePairs(policy: policy, reference: reference, batch: sub, labels: [1, -1, 1],
                                  timesteps: keep.map { ts[$0] }, noise: subNoise, objective: .kto(beta: beta))
    #expect(Swift.abs(kFull.loss - kPart.loss) < 1e-9)
}

@Test func anchorIntervalDrawsStayInsideLabelledIntervals() throws {
    let iv = try AnchorIntervals(anchors: AnchorIntervals.paperAnchors)
    #expect(iv.intervals.first == 0..<100 && iv.intervals.last == 900..<1000)
    // Labelled: 150 → +1, 650 → −1, 950 → +1; everything else unlabelled.
    var row = [Int8](repeating: 0, count: 10)
    row[1] = 1; row[6] = -1; row[9] = 1
    var hits = [Int](repeating: 0, count: 10)
    let key = RandomKey(seed: 11)
    for i in 0..<30_000 {
        let (t, label) = try #require(iv.draw(labels: row[...], u: key.uniform(UInt64(i))))
        let j = t / 100
        #expect(row[j] != 0, "t = \(t) is in an unlabelled interval")
        #expect(label == row[j])
        hits[j] += 1
    }
    // Uniform over the union: each labelled interval gets about a third of the draws.
    for j in [1, 6, 9] { #expect(Swift.abs(Double(hits[j]) / 30_000 - 1.0 / 3) < 0.02) }
    #expect(iv.draw(labels: [Int8](repeating: 0, count: 10)[...], u: 0.5) == nil)
    // Edges: u → 0 gives the first labelled timestep, u → 1 the last.
    #expect(iv.draw(labels: row[...], u: 0)?.t == 100)
    #expect(iv.draw(labels: row[...], u: 0.999_999_9)?.t == 999)
    #expect(throws: CoreError.self) { try AnchorIntervals(anchors: [50, 120]) }
    #expect(throws: CoreError.self) { try AnchorIntervals(anchors: [1000]) }
}

@Test func trainerDrawsTimestepsOnlyInsideEachPairsLabelledIntervals() throws {
    let pairs = try toyPairs(5, seed: 7)
    let anchors = AnchorIntervals.paperAnchors
    var stream = RandomStream(seed: 12)
    var labels = (0..<50).map { _ in Int8(stream.int(3) - 1) }
    labels[30..<40] = [Int8](repeating: 0, count: 10)[...]           // row 3 has no label: never drawn
    let set = try LabelledPairs(pairs, labels: .perAnchor(try AnchorLabels(anchors: anchors, labels: labels)))
    #expect(set.activeRows == [0, 1, 2, 4])
    var config = PreferenceTrainingConfig()
    config.batchSize = 3; config.accumulation = 2
    let trainer = try PreferenceTrainer(policy: TinyDenoiser(seed: 1), reference: TinyDenoiser(seed: 2),
                                        labeled: nil, unlabeled: set, config: config)
    var seen = 0
    for step in 0..<300 {
        for micro in 0..<2 {
            let d = trainer.draw(tag: 1, step: step, micro: micro)
            for (k, row) in d.rows.enumerated() {
                let j = d.timesteps[k] / 100
                #expect(labels[row * 10 + j] != 0, "row \(row): t = \(d.timesteps[k]) is unlabelled")
                #expect(d.labels[k] == labels[row * 10 + j])
                #expect(row != 3)
                seen += 1
            }
        }
    }
    #expect(seen == 300 * 2 * 3)
}

@Test func winnerAndLoserShareNoiseAndTimestep() throws {
    let pairs = try toyPairs(6, seed: 8)
    let policy = RecordingDenoiser(TinyDenoiser(seed: 1)), reference = TinyDenoiser(seed: 2)
    var config = PreferenceTrainingConfig()
    config.batchSize = 4
    config.objective = .dpo(PreferenceLossConfig(kind: .sigmoid, beta: beta))
    let trainer = try PreferenceTrainer(policy: policy, reference: reference, labeled: try LabelledPairs(pairs),
                                        config: config)
    let d = trainer.draw(tag: 0, step: 0, micro: 0)
    try trainer.trainStep()
    let call = try #require(policy.calls.first)
    #expect(call.x.shape == [8, 3, 4, 4])
    #expect(Array(call.timesteps[0..<4]) == Array(call.timesteps[4..<8]))
    #expect(call.timesteps[0..<4].elementsEqual(d.timesteps))
    #expect(Set(d.timesteps).count > 1)   // pairs get their own t
    // x_t(w) − x_t(l) = sqrt(ᾱ_t)·(x_w − x_l) exactly when ε and t are shared.
    let m = 48
    for i in 0..<4 {
        let (s, _) = reference.schedule.noisingCoefficients(call.timesteps[i])
        for k in 0..<m {
            let lhs = call.x.data[i * m + k] - call.x.data[(4 + i) * m + k]
            let rhs = s * (pairs.winners[d.rows[i] * m + k] - pairs.losers[d.rows[i] * m + k])
            #expect(Swift.abs(lhs - rhs) < 1e-5, "pair \(i) element \(k)")
        }
    }
}

/// Mean implicit accuracy over the anchors of a confidence pass on the training pairs.
private func meanAnchorAccuracy(_ model: Denoiser, _ reference: Denoiser, _ pairs: PairSource) throws -> Double {
    let c = try confidencePass(model: model, reference: reference, pairs: pairs,
                               config: ConfidencePassConfig(beta: beta, batchSize: 8, seed: 3))
    return Metrics.mean(c.accuracy().map { $0 ?? .nan })
}

@Test func dpoTrainingOnAClearlyBetterImageRaisesImplicitAccuracy() throws {
    let pairs = try toyPairs(16, seed: 9)
    let policy = TinyDenoiser(seed: 1)
    let reference = policy.frozenCopy()
    // Policy = reference: every z is exactly 0, so every anchor's accuracy is ½.
    #expect(try meanAnchorAccuracy(policy, reference, pairs) == 0.5)
    var config = PreferenceTrainingConfig()
    config.objective = .dpo(PreferenceLossConfig(kind: .sigmoid, beta: beta))
    config.steps = 30; config.batchSize = 8
    config.optimizer = OptimizerSettings(lr: 3e-3, warmup: 3)
    let trainer = try PreferenceTrainer(policy: policy, reference: reference, labeled: try LabelledPairs(pairs), config: config)
    var calls = 0
    try trainer.train { step, total, _ in calls += 1; #expect(step == calls && total == 30) }
    #expect(calls == 30)
    let after = try meanAnchorAccuracy(policy, reference, pairs)
    #expect(after > 0.8, "mean anchor accuracy after training: \(after)")
    let first = trainer.history.prefix(5).map(\.loss), last = trainer.history.suffix(5).map(\.loss)
    #expect(Metrics.mean(last) < Metrics.mean(first))
    #expect(trainer.history[0].learningRate == 1e-3)   // warmup: step 1 of 3
}

@Test func ktoAndSFTTrainingReduceTheirLosses() throws {
    let pairs = try toyPairs(8, seed: 10)
    let (batch, noise, ts) = try fixedBatch(pairs, rows: Array(0..<8))
    for objective in [PreferenceObjective.kto(beta: beta), .sft] {
        let policy = TinyDenoiser(seed: 1)
        let reference = policy.frozenCopy()
        let labels = [Int8](repeating: 1, count: 8)
        let before = try evaluatePairs(policy: policy, reference: reference, batch: batch, labels: labels,
                                       timesteps: ts, noise: noise, objective: objective).loss
        var config = PreferenceTrainingConfig()
        config.objective = objective; config.steps = 25; config.batchSize = 8
        config.optimizer = OptimizerSettings(lr: 3e-3)
        let trainer = try PreferenceTrainer(policy: policy, reference: objective == .sft ? nil : reference,
                                            labeled: try LabelledPairs(pairs), config: config)
        try trainer.train()
        let after = try evaluatePairs(policy: policy, reference: reference, batch: batch, labels: labels,
                                      timesteps: ts, noise: noise, objective: objective).loss
        if objective == .sft { #expect(before > 0.3) } else { #expect(before == 0.5) }  // KTO at θ = ref: 1 − σ(0)
        #expect(after < 0.8 * before, "\(objective.name): \(before) → \(after)")
    }
}

@Test func resumedRunEqualsUninterruptedRunBitForBit() throws {
    let clean = try toyPairs(6, seed: 11)
    let noisy = try toyPairs(7, seed: 12, separable: false, idBase: 500)
    var stream = RandomStream(seed: 13)
    let pseudo = try AnchorLabels(anchors: AnchorIntervals.paperAnchors, labels: (0..<70).map { _ in Int8(stream.int(3) - 1) })
    var config = PreferenceTrainingConfig()
    config.objective = .dpo(PreferenceLossConfig(kind: .sigmoid, beta: beta))
    config.steps = 6; config.batchSize = 2; config.unlabeledBatchSize = 3; config.accumulation = 2
    config.unlabeledWeight = 0.5; config.seed = 77
    config.optimizer = OptimizerSettings(lr: 1e-3, warmup: 2, schedule: .cosine, minLRFactor: 0.1, weightDecay: 0.01)
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("semidpo-resume-\(getpid())").path
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let reference = TinyDenoiser(seed: 2)
    func makeTrainer(initSeed: UInt64) throws -> PreferenceTrainer {
        try PreferenceTrainer(policy: TinyDenoiser(seed: initSeed), reference: reference, labeled: try LabelledPairs(clean),
                              unlabeled: try LabelledPairs(noisy, labels: .perAnchor(pseudo)), config: config)
    }
    let full = try makeTrainer(initSeed: 1)
    try full.train()

    let first = try makeTrainer(initSeed: 1)
    try first.train(until: 3)
    try first.saveCheckpoint("\(dir)/step3.safetensors")
    let resumed = try makeTrainer(initSeed: 999)                  // different init: everything must come from the file
    try resumed.loadCheckpoint("\(dir)/step3.safetensors")
    #expect(resumed.step == 3 && resumed.history.count == 3)
    try resumed.train()

    #expect(resumed.step == 6)
    #expect(sameParameters(full.policy.parameters(), resumed.policy.parameters()))
    #expect(full.history == resumed.history)
    #expect(full.optimizer.state().map(\.1.data) == resumed.optimizer.state().map(\.1.data))
    #expect(full.history.allSatisfy { !$0.unlabeledLoss.isNaN && !$0.unlabeledAccuracy.isNaN })
    #expect(full.logCSV == resumed.logCSV)

    // The log files.
    try full.writeLog(csv: "\(dir)/log.csv", svg: "\(dir)/log.svg")
    let csv = try String(contentsOfFile: "\(dir)/log.csv", encoding: .utf8)
    #expect(csv.split(separator: "\n").count == 7)
    #expect(csv.hasPrefix("step,loss,labeled_loss,unlabeled_loss,implicit_accuracy"))
    #expect(try String(contentsOfFile: "\(dir)/log.svg", encoding: .utf8).contains("<polyline"))

    // A checkpoint from another configuration is refused.
    config.seed = 78
    let other = try makeTrainer(initSeed: 1)
    #expect(throws: CoreError.self) { try other.loadCheckpoint("\(dir)/step3.safetensors") }
}

@Test func periodicCheckpointsAreWritten() throws {
    let pairs = try toyPairs(4, seed: 14)
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("semidpo-ckpt-\(getpid())").path
    defer { try? FileManager.default.removeItem(atPath: dir) }
    var config = PreferenceTrainingConfig()
    config.objective = .sft; config.steps = 4; config.batchSize = 2
    config.checkpointEvery = 2; config.checkpointPath = "\(dir)/ckpt.safetensors"
    let trainer = try PreferenceTrainer(policy: TinyDenoiser(seed: 1), reference: nil, labeled: try LabelledPairs(pairs), config: config)
    try trainer.train()
    let (_, meta) = try Safetensors.read("\(dir)/ckpt.safetensors")
    #expect(meta["step"] == "4")
    #expect(meta["objective"] == "sft")
}

@Test func badTrainingInputIsACoreError() throws {
    let pairs = try toyPairs(3, seed: 15)
    let policy = TinyDenoiser(seed: 1)
    let config = PreferenceTrainingConfig()
    #expect(throws: CoreError.self) { try PreferenceTrainer(policy: policy, reference: policy, labeled: try LabelledPairs(pairs), config: config) }
    #expect(throws: CoreError.self) { try PreferenceTrainer(policy: policy, reference: nil, labeled: try LabelledPairs(pairs), config: config) }
    #expect(throws: CoreError.self) { try LabelledPairs(pairs, labels: .perPair([1, 2, 1])) }
    #expect(throws: CoreError.self) { try LabelledPairs(pairs, labels: .perPair([1, 1])) }
    #expect(throws: CoreError.self) {
        try PreferenceTrainer(policy: policy, reference: TinyDenoiser(seed: 2), labeled: try LabelledPairs(pairs, labels: .perPair([0, 0, 0])), config: config)
    }
    var bad = config; bad.batchSize = 0
    #expect(throws: CoreError.self) { try PreferenceTrainer(policy: policy, reference: TinyDenoiser(seed: 2), labeled: try LabelledPairs(pairs), config: bad) }
    bad = config; bad.objective = .dpo(PreferenceLossConfig(kind: .sigmoid, beta: -1))
    #expect(throws: CoreError.self) { try PreferenceTrainer(policy: policy, reference: TinyDenoiser(seed: 2), labeled: try LabelledPairs(pairs), config: bad) }
    let (batch, noise, ts) = try fixedBatch(pairs, rows: [0, 1, 2])
    #expect(throws: CoreError.self) {
        try evaluatePairs(policy: policy, reference: TinyDenoiser(seed: 2), batch: batch, labels: [1, 1, 1],
                          timesteps: [0, 1, 1000], noise: noise, objective: .dpo(PreferenceLossConfig()))
    }
    _ = ts
}

extension TinyDenoiser {
    func setRequiresGradFalse() { for (_, p) in parameters() { p.requiresGrad = false } }
}
