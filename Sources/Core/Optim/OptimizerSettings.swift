// The one optimizer/clip configuration shared by the three trainers (preference training, reward
// models, diffusion pretraining): AdamW, its learning-rate schedule, gradient clipping and an EMA.

/// Optimizer settings as recipes name them (`lr`, `warmup`, `schedule`, `min_lr_factor`,
/// `weight_decay`, `adam_beta1`, `adam_beta2`, `adam_epsilon`, `grad_clip`, `ema_decay`). Each
/// trainer starts from its own defaults (`.preference`, `.reward`, `.pretrain`).
public struct OptimizerSettings: Equatable, Sendable {
    /// Learning-rate shape after the warm-up.
    public enum Schedule: String, CaseIterable, Sendable {
        case constant
        /// Cosine from the peak down to `minLRFactor`·lr at the run's last step.
        case cosine
    }

    /// [lr] peak AdamW learning rate.
    public var lr: Double
    /// [warmup] steps of linear warm-up from 0.
    public var warmup: Int
    /// [schedule] "constant" or "cosine".
    public var schedule: Schedule
    /// [min_lr_factor] floor of the cosine decay, as a fraction of the peak.
    public var minLRFactor: Double
    /// [weight_decay] decoupled AdamW weight decay.
    public var weightDecay: Double
    /// [adam_beta1], [adam_beta2], [adam_epsilon] AdamW moment decays and denominator ε.
    public var adamBeta1: Double
    public var adamBeta2: Double
    public var adamEpsilon: Double
    /// [grad_clip] maximum global gradient norm (0 = no clipping).
    public var gradClip: Double
    /// [ema_decay] EMA of the weights, shadow ← d·shadow + (1 − d)·θ after each step (0 = no EMA).
    public var emaDecay: Double

    public init(lr: Double, warmup: Int = 0, schedule: Schedule = .constant, minLRFactor: Double = 0,
                weightDecay: Double = 0, adamBeta1: Double = 0.9, adamBeta2: Double = 0.999, adamEpsilon: Double = 1e-8,
                gradClip: Double = 1, emaDecay: Double = 0) {
        self.lr = lr; self.warmup = warmup; self.schedule = schedule; self.minLRFactor = minLRFactor
        self.weightDecay = weightDecay; self.adamBeta1 = adamBeta1; self.adamBeta2 = adamBeta2
        self.adamEpsilon = adamEpsilon; self.gradClip = gradClip; self.emaDecay = emaDecay
    }

    /// `semidpo.dpo.train`'s defaults: lr 1e-5, no warm-up, constant, no weight decay, clip 1.
    public static let preference = OptimizerSettings(lr: 1e-5)
    /// Reward-model training's defaults: lr 3e-3, 100 warm-up steps, cosine to 0.1, weight decay 1e-4, clip 1.
    public static let reward = OptimizerSettings(lr: 3e-3, warmup: 100, schedule: .cosine, minLRFactor: 0.1, weightDecay: 1e-4)
    /// Diffusion pretraining's defaults: lr 1e-3, 100 warm-up steps, constant (cosine floor 0.1), clip 1.
    public static let pretrain = OptimizerSettings(lr: 1e-3, warmup: 100, minLRFactor: 0.1)

    /// The setting names, in the order of the option tables.
    public static let names = ["lr", "warmup", "schedule", "min_lr_factor", "weight_decay", "adam_beta1", "adam_beta2",
                               "adam_epsilon", "grad_clip", "ema_decay"]

    /// Names used before issue #15's single vocabulary, with the name that replaced each.
    public static let renamed: [String: String] = [
        "learning_rate": "lr", "warmup_steps": "warmup", "lr_decay": "schedule", "max_grad_norm": "grad_clip",
        "beta1": "adam_beta1", "beta2": "adam_beta2", "epsilon": "adam_epsilon", "ema": "ema_decay",
        "on_step": "on_progress", "on_batch": "on_progress",
    ]

    /// Throws `option 'max_grad_norm' was renamed to 'grad_clip'` for the first old name among `keys`
    /// (sorted, so the message does not depend on table order). No old name is accepted as an alias.
    public static func rejectRenamed<K: Sequence>(_ keys: K) throws where K.Element == String {
        for k in keys.sorted() { if let new = renamed[k] { throw CoreError("option '\(k)' was renamed to '\(new)'") } }
    }

    /// `defaults` with the settings present in `values` (keys `names`; other keys are ignored, so a
    /// trainer's own options can share the table). Numbers may be Int or Double; `warmup` must be
    /// whole; `schedule` a string. The result is validated.
    public init(values: [String: Any], defaults: OptimizerSettings) throws {
        self = defaults
        func number(_ k: String) throws -> Double? {
            guard let v = values[k] else { return nil }
            if let d = v as? Double { return d }
            if let i = v as? Int { return Double(i) }
            throw CoreError("option '\(k)': expected a number, got \(v)")
        }
        if let v = try number("lr") { lr = v }
        if let v = try number("warmup") {
            guard v.rounded() == v, abs(v) < 1e15 else { throw CoreError("option 'warmup': expected an integer, got \(v)") }
            warmup = Int(v)
        }
        if let v = values["schedule"] {
            guard let name = v as? String, let kind = Schedule(rawValue: name) else {
                throw CoreError("option 'schedule': expected \(Schedule.allCases.map { "'\($0.rawValue)'" }.joined(separator: " or ")), got \(v)")
            }
            schedule = kind
        }
        if let v = try number("min_lr_factor") { minLRFactor = v }
        if let v = try number("weight_decay") { weightDecay = v }
        if let v = try number("adam_beta1") { adamBeta1 = v }
        if let v = try number("adam_beta2") { adamBeta2 = v }
        if let v = try number("adam_epsilon") { adamEpsilon = v }
        if let v = try number("grad_clip") { gradClip = v }
        if let v = try number("ema_decay") { emaDecay = v }
        try validate()
    }

    /// The settings as a dictionary with the keys `names` (for JSON metadata).
    public var dictionary: [String: Any] {
        ["lr": lr, "warmup": warmup, "schedule": schedule.rawValue, "min_lr_factor": minLRFactor, "weight_decay": weightDecay,
         "adam_beta1": adamBeta1, "adam_beta2": adamBeta2, "adam_epsilon": adamEpsilon, "grad_clip": gradClip, "ema_decay": emaDecay]
    }

    /// Throws a `CoreError` naming the first bad setting.
    public func validate() throws {
        guard lr >= 0, lr.isFinite else { throw CoreError("'lr' must be a finite number ≥ 0, got \(lr)") }
        guard warmup >= 0 else { throw CoreError("'warmup' must be ≥ 0, got \(warmup)") }
        guard minLRFactor >= 0, minLRFactor <= 1 else { throw CoreError("'min_lr_factor' must be in [0, 1], got \(minLRFactor)") }
        guard weightDecay >= 0, weightDecay.isFinite else { throw CoreError("'weight_decay' must be a finite number ≥ 0, got \(weightDecay)") }
        guard adamBeta1 >= 0, adamBeta1 < 1 else { throw CoreError("'adam_beta1' must be in [0, 1), got \(adamBeta1)") }
        guard adamBeta2 >= 0, adamBeta2 < 1 else { throw CoreError("'adam_beta2' must be in [0, 1), got \(adamBeta2)") }
        guard adamEpsilon > 0, adamEpsilon.isFinite else { throw CoreError("'adam_epsilon' must be a finite number > 0, got \(adamEpsilon)") }
        guard gradClip >= 0, gradClip.isFinite else { throw CoreError("'grad_clip' must be a finite number ≥ 0 (0 = off), got \(gradClip)") }
        guard emaDecay >= 0, emaDecay < 1 else { throw CoreError("'ema_decay' must be in [0, 1) (0 = off), got \(emaDecay)") }
    }

    /// The AdamW config of a run of `totalSteps` steps. A cosine schedule needs totalSteps > warmup
    /// (checked by `validate(totalSteps:)`); below that the rate stays constant after the warm-up.
    public func adamW(totalSteps: Int) -> AdamWConfig {
        let decay: LearningRateSchedule.Decay = schedule == .cosine && totalSteps > warmup
            ? .cosine(totalSteps: totalSteps, minimumFactor: minLRFactor) : .constant
        return AdamWConfig(learningRate: lr, beta1: adamBeta1, beta2: adamBeta2, epsilon: adamEpsilon, weightDecay: weightDecay,
                           schedule: LearningRateSchedule(warmupSteps: warmup, decay: decay))
    }

    /// `validate()` plus the check that a cosine schedule has steps to decay over.
    public func validate(totalSteps: Int) throws {
        try validate()
        if schedule == .cosine && totalSteps <= warmup {
            throw CoreError("a cosine schedule needs steps > warmup (got steps = \(totalSteps), warmup = \(warmup))")
        }
    }

    /// The global gradient-norm clip as the trainers apply it (nil = off).
    public var clip: Double? { gradClip > 0 ? gradClip : nil }

    /// The settings as `name = value` strings (for checkpoint and model metadata).
    public var record: [String: String] {
        ["lr": "\(lr)", "warmup": "\(warmup)", "schedule": schedule.rawValue, "min_lr_factor": "\(minLRFactor)",
         "weight_decay": "\(weightDecay)", "adam_beta1": "\(adamBeta1)", "adam_beta2": "\(adamBeta2)",
         "adam_epsilon": "\(adamEpsilon)", "grad_clip": "\(gradClip)", "ema_decay": "\(emaDecay)"]
    }
}
