// The preference trainer's options beyond the loss (issue #20): reference refresh, label swap,
// dropped pairs, EMA, the robust-loss window and timestep cut-off, in-training validation, and the
// optimizer settings shared by the three trainers (issue #15).
import Foundation
import Testing
@testable import Core

private let beta = 200.0

private func tempPath(_ name: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("semidpo-\(name)-\(getpid())").path
}

private func dpoConfig(steps: Int, _ kind: PreferenceLossKind = .sigmoid) -> PreferenceTrainingConfig {
    var c = PreferenceTrainingConfig()
    c.objective = .dpo(PreferenceLossConfig(kind: kind, beta: beta))
    c.steps = steps; c.batchSize = 3; c.seed = 5
    c.optimizer = OptimizerSettings(lr: 3e-3)
    return c
}

/// Refreshing the reference every 3 steps of a 6-step run equals two separate runs: 3 steps, then a
/// run resumed from their checkpoint with the reference replaced by the policy's weights — bit for bit.
@Test func referenceRefreshEqualsSeparateRuns() throws {
    let pairs = try toyPairs(7, seed: 21)
    let dir = tempPath("refresh")
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    var refreshed = dpoConfig(steps: 6)
    refreshed.referenceUpdateEvery = 3
    let base = TinyDenoiser(seed: 1)
    let a = try PreferenceTrainer(policy: TinyDenoiser(seed: 1), reference: base.frozenCopy(), labeled: try LabelledPairs(pairs),
                                  config: refreshed)
    try a.train()

    let policy = TinyDenoiser(seed: 1)
    let first = try PreferenceTrainer(policy: policy, reference: base.frozenCopy(), labeled: try LabelledPairs(pairs),
                                      config: dpoConfig(steps: 6))
    try first.train(until: 3)
    try first.saveCheckpoint("\(dir)/step3.safetensors")
    let second = try PreferenceTrainer(policy: policy, reference: policy.frozenCopy(), labeled: try LabelledPairs(pairs),
                                       config: dpoConfig(steps: 6))
    try second.loadCheckpoint("\(dir)/step3.safetensors")
    try second.train()

    #expect(sameParameters(a.policy.parameters(), second.policy.parameters()))
    #expect(sameParameters(a.reference!.parameters(), second.reference!.parameters()))
    #expect(a.history.suffix(3) == second.history.suffix(3))
    // The refresh changed the reference (step 3) but not after the last step.
    #expect(!sameParameters(a.reference!.parameters(), base.parameters()))
    #expect(!sameParameters(a.reference!.parameters(), a.policy.parameters()))
    // Resuming the refreshed run from its own step-4 checkpoint restores the refreshed reference too.
    var withCheckpoints = refreshed
    withCheckpoints.checkpointEvery = 4; withCheckpoints.checkpointPath = "\(dir)/a.safetensors"
    let partial = try PreferenceTrainer(policy: TinyDenoiser(seed: 1), reference: base.frozenCopy(), labeled: try LabelledPairs(pairs),
                                        config: withCheckpoints)
    try partial.train(until: 4)
    let resumed = try PreferenceTrainer(policy: TinyDenoiser(seed: 9), reference: base.frozenCopy(), labeled: try LabelledPairs(pairs),
                                        config: withCheckpoints)
    try resumed.loadCheckpoint("\(dir)/a.safetensors")
    try resumed.train()
    #expect(sameParameters(a.policy.parameters(), resumed.policy.parameters()))
}

/// Per epoch: 7 active pairs, batch 3, accumulation 1 ⇒ every ⌊7/3⌋ = 2 steps.
@Test func referenceRefreshPerEpochInterval() throws {
    var c = dpoConfig(steps: 4)
    c.referenceUpdatePerEpoch = true
    let t = try PreferenceTrainer(policy: TinyDenoiser(seed: 1), reference: TinyDenoiser(seed: 1).frozenCopy(),
                                  labeled: try LabelledPairs(try toyPairs(7, seed: 21)), config: c)
    #expect(t.referenceUpdateInterval == 2)
}

/// label_swap = 1 swaps every label: the same run as all labels −1. p = 0.5 is seeded: the same
/// seed swaps the same pairs, and about half of them.
@Test func labelSwapIsSeededAndFlipsLabels() throws {
    let pairs = try toyPairs(40, seed: 22)
    var swapAll = dpoConfig(steps: 2)
    swapAll.labelSwapProbability = 1
    let a = try PreferenceTrainer(policy: TinyDenoiser(seed: 1), reference: TinyDenoiser(seed: 2), labeled: try LabelledPairs(pairs), config: swapAll)
    let b = try PreferenceTrainer(policy: TinyDenoiser(seed: 1), reference: TinyDenoiser(seed: 2),
                                  labeled: try LabelledPairs(pairs, labels: .perPair([Int8](repeating: -1, count: 40))), config: dpoConfig(steps: 2))
    try a.train(); try b.train()
    #expect(a.swappedLabels == 40)
    #expect(sameParameters(a.policy.parameters(), b.policy.parameters()) && a.history == b.history)
    var half = dpoConfig(steps: 1)
    half.labelSwapProbability = 0.5
    let h1 = try PreferenceTrainer(policy: TinyDenoiser(seed: 1), reference: TinyDenoiser(seed: 2), labeled: try LabelledPairs(pairs), config: half)
    let h2 = try PreferenceTrainer(policy: TinyDenoiser(seed: 1), reference: TinyDenoiser(seed: 2), labeled: try LabelledPairs(pairs), config: half)
    guard case .perPair(let l1) = h1.labeled!.labels, case .perPair(let l2) = h2.labeled!.labels else { Issue.record("labels"); return }
    #expect(l1 == l2 && h1.swappedLabels == l1.filter { $0 == -1 }.count)
    #expect(h1.swappedLabels > 10 && h1.swappedLabels < 30, "\(h1.swappedLabels) of 40 swapped")
}

/// Dropping ids equals labelling those pairs 0; an unknown id is an error.
@Test func droppedIdsEqualZeroLabels() throws {
    let pairs = try toyPairs(6, seed: 23)                  // ids 100…105
    var drop = dpoConfig(steps: 3)
    drop.droppedIDs = [101, 104]
    let a = try PreferenceTrainer(policy: TinyDenoiser(seed: 1), reference: TinyDenoiser(seed: 2), labeled: try LabelledPairs(pairs), config: drop)
    let b = try PreferenceTrainer(policy: TinyDenoiser(seed: 1), reference: TinyDenoiser(seed: 2),
                                  labeled: try LabelledPairs(pairs, labels: .perPair([1, 0, 1, 1, 0, 1])), config: dpoConfig(steps: 3))
    try a.train(); try b.train()
    #expect(a.labeled!.activeRows == [0, 2, 3, 5])
    #expect(sameParameters(a.policy.parameters(), b.policy.parameters()) && a.history == b.history)
    drop.droppedIDs = [7]
    #expect(throws: CoreError.self) {
        try PreferenceTrainer(policy: TinyDenoiser(seed: 1), reference: TinyDenoiser(seed: 2), labeled: try LabelledPairs(pairs), config: drop)
    }
}

/// EMA after one step: shadow = d·θ_0 + (1 − d)·θ_1 (in Float, as `updateEMA` computes it); the
/// checkpoint carries it; ema_decay = 0 keeps none; training numbers are unchanged by the EMA.
@Test func emaFollowsThePolicyAndIsCheckpointed() throws {
    let pairs = try toyPairs(6, seed: 24)
    let dir = tempPath("ema")
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    var c = dpoConfig(steps: 2)
    c.optimizer.emaDecay = 0.75
    let policy = TinyDenoiser(seed: 1)
    let theta0 = policy.parameters().map { $0.1.data }
    let t = try PreferenceTrainer(policy: policy, reference: TinyDenoiser(seed: 2), labeled: try LabelledPairs(pairs), config: c)
    try t.train(until: 1)
    let theta1 = policy.parameters().map { $0.1.data }
    for (k, (_, e)) in t.ema!.enumerated() {
        let expected = zip(theta0[k], theta1[k]).map { Float(0.75) * $0 + Float(0.25) * $1 }
        #expect(e.data == expected)
    }
    try t.train()
    try t.saveCheckpoint("\(dir)/c.safetensors")
    let (tensors, _) = try Safetensors.read("\(dir)/c.safetensors")
    #expect(tensors.filter { $0.name.hasPrefix("ema.") }.map(\.data) == t.ema!.map(\.1.data))
    let plain = try PreferenceTrainer(policy: TinyDenoiser(seed: 1), reference: TinyDenoiser(seed: 2), labeled: try LabelledPairs(pairs),
                                      config: dpoConfig(steps: 2))
    try plain.train()
    #expect(plain.ema == nil && sameParameters(plain.policy.parameters(), t.policy.parameters()))
}

/// GCE whose robust window starts after the run is the sigmoid run; with a timestep cut-off of 1 every
/// drawn pair with t ≥ 1 gets weight 0.
@Test func robustWindowAndTimestepCutoff() throws {
    let pairs = try toyPairs(6, seed: 25)
    var late = dpoConfig(steps: 3, .gce)
    late.robustStart = 10; late.robustEnd = 20
    let a = try PreferenceTrainer(policy: TinyDenoiser(seed: 1), reference: TinyDenoiser(seed: 2), labeled: try LabelledPairs(pairs), config: late)
    let b = try PreferenceTrainer(policy: TinyDenoiser(seed: 1), reference: TinyDenoiser(seed: 2), labeled: try LabelledPairs(pairs),
                                  config: dpoConfig(steps: 3))
    try a.train(); try b.train()
    #expect(sameParameters(a.policy.parameters(), b.policy.parameters()))
    // Inside the window (the default) GCE differs from sigmoid.
    let c = try PreferenceTrainer(policy: TinyDenoiser(seed: 1), reference: TinyDenoiser(seed: 2), labeled: try LabelledPairs(pairs),
                                  config: dpoConfig(steps: 3, .gce))
    try c.train()
    #expect(c.history[0].loss != b.history[0].loss)
    #expect(a.objective(atStep: 9) != a.objective(atStep: 10) && a.objective(atStep: 20) == a.objective(atStep: 10))

    var cut = dpoConfig(steps: 1, .gce)
    cut.robustTimestepCutoff = 500
    cut.labeledRobustWeights = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    let d = try PreferenceTrainer(policy: TinyDenoiser(seed: 1), reference: TinyDenoiser(seed: 2), labeled: try LabelledPairs(pairs), config: cut)
    let drawn = d.draw(tag: 0, step: 0, micro: 0)
    for (k, t) in drawn.timesteps.enumerated() {
        #expect(drawn.weights[k] == (t >= 500 ? 0 : cut.labeledRobustWeights![drawn.rows[k]]))
    }
    cut.labeledRobustWeights = [0.5]
    #expect(throws: CoreError.self) {
        try PreferenceTrainer(policy: TinyDenoiser(seed: 1), reference: TinyDenoiser(seed: 2), labeled: try LabelledPairs(pairs), config: cut)
    }
}

/// Validation every 2 steps: its scores are `val_` columns of the CSV (empty elsewhere), series of the
/// SVG, and survive a checkpoint round trip; they do not change training.
@Test func validationScoresAreLogged() throws {
    let pairs = try toyPairs(6, seed: 26)
    let dir = tempPath("validation")
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let t = try PreferenceTrainer(policy: TinyDenoiser(seed: 1), reference: TinyDenoiser(seed: 2), labeled: try LabelledPairs(pairs),
                                  config: dpoConfig(steps: 4))
    var calls: [Int] = []
    t.validation = TrainingValidation(every: 2) { step in calls.append(step); return [("score", Double(step) / 10)] }
    try t.train()
    #expect(calls == [2, 4])
    let lines = t.logCSV.split(separator: "\n").map(String.init)
    #expect(lines[0].hasSuffix(",grad_norm,val_score"))
    #expect(lines[1].hasSuffix(",") && lines[2].hasSuffix(",0.2") && lines[4].hasSuffix(",0.4"))
    try t.writeLog(csv: "\(dir)/log.csv", svg: "\(dir)/log.svg")
    #expect(try String(contentsOfFile: "\(dir)/log.svg", encoding: .utf8).contains("validation score"))
    try t.saveCheckpoint("\(dir)/c.safetensors")
    let back = try PreferenceTrainer(policy: TinyDenoiser(seed: 1), reference: TinyDenoiser(seed: 2), labeled: try LabelledPairs(pairs),
                                     config: dpoConfig(steps: 4))
    try back.loadCheckpoint("\(dir)/c.safetensors")
    #expect(back.logCSV == t.logCSV)
    let plain = try PreferenceTrainer(policy: TinyDenoiser(seed: 1), reference: TinyDenoiser(seed: 2), labeled: try LabelledPairs(pairs),
                                      config: dpoConfig(steps: 4))
    try plain.train()
    #expect(plain.history == t.history)
}

/// One optimizer shape: the defaults of each trainer, the AdamW config it yields, old names refused.
@Test func optimizerSettingsSharedShape() throws {
    let p = OptimizerSettings.preference.adamW(totalSteps: 100)
    #expect(p == AdamWConfig(learningRate: 1e-5, weightDecay: 0))
    let r = OptimizerSettings.reward.adamW(totalSteps: 2000)
    #expect(r == AdamWConfig(learningRate: 3e-3, weightDecay: 1e-4,
                             schedule: LearningRateSchedule(warmupSteps: 100, decay: .cosine(totalSteps: 2000, minimumFactor: 0.1))))
    // Pretraining: cosine only when there are steps after the warm-up.
    var pre = OptimizerSettings.pretrain; pre.schedule = .cosine
    #expect(pre.adamW(totalSteps: 50).schedule.decay == .constant)
    #expect(pre.adamW(totalSteps: 500).schedule.decay == .cosine(totalSteps: 500, minimumFactor: 0.1))
    let parsed = try OptimizerSettings(values: ["lr": 2e-4, "warmup": 5, "schedule": "cosine", "adam_beta2": 0.99,
                                                "adam_epsilon": 1e-6, "weight_decay": 0.01, "grad_clip": 0, "other": 1],
                                       defaults: .preference)
    #expect(parsed.lr == 2e-4 && parsed.warmup == 5 && parsed.schedule == .cosine && parsed.adamBeta2 == 0.99
            && parsed.adamEpsilon == 1e-6 && parsed.weightDecay == 0.01 && parsed.clip == nil)
    #expect(throws: CoreError.self) { try OptimizerSettings(values: ["schedule": "linear"], defaults: .preference) }
    #expect(throws: CoreError.self) { try OptimizerSettings(values: ["adam_beta1": 1.0], defaults: .preference) }
    #expect(throws: CoreError.self) { try OptimizerSettings(lr: 1, warmup: 5, schedule: .cosine).validate(totalSteps: 5) }
    do { try OptimizerSettings.rejectRenamed(["steps", "max_grad_norm"]); Issue.record("no error") }
    catch let e as CoreError { #expect(e.message == "option 'max_grad_norm' was renamed to 'grad_clip'") }
    #expect(throws: CoreError.self) { try PretrainConfig(dictionary: ["learning_rate": 1e-3]) }
    #expect(try PretrainConfig(dictionary: ["lr": 2e-3, "ema_decay": 0.9]).optimizer.emaDecay == 0.9)
    #expect(throws: CoreError.self) { try RewardTrainingConfig(steps: 10, optimizer: OptimizerSettings(lr: 1e-3, emaDecay: 0.5)).validate() }
}
