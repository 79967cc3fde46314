// Learning-rate schedules: linear warmup followed by a constant or cosine-decayed rate.

/// Multiplier applied to the base learning rate at update step t (1-based).
public struct LearningRateSchedule: Sendable, Equatable {
    public enum Decay: Sendable, Equatable {
        case constant
        /// Cosine from 1 down to `minimumFactor` at `totalSteps` (held there afterwards).
        case cosine(totalSteps: Int, minimumFactor: Double)
    }
    public var warmupSteps: Int
    public var decay: Decay

    public init(warmupSteps: Int = 0, decay: Decay = .constant) {
        precondition(warmupSteps >= 0, "LearningRateSchedule: warmupSteps must be ≥ 0")
        if case let .cosine(total, minimum) = decay {
            precondition(total > warmupSteps && minimum >= 0 && minimum <= 1,
                         "LearningRateSchedule: cosine needs totalSteps > warmupSteps and 0 ≤ minimumFactor ≤ 1")
        }
        self.warmupSteps = warmupSteps; self.decay = decay
    }
    public static let constant = LearningRateSchedule()

    /// factor(t) = t / warmup for t ≤ warmup; then 1 (constant) or
    /// min + (1 − min) · ½(1 + cos(π · (t − warmup) / (total − warmup))) (cosine).
    public func factor(step t: Int) -> Double {
        if warmupSteps > 0 && t <= warmupSteps { return Double(t) / Double(warmupSteps) }
        switch decay {
        case .constant: return 1
        case let .cosine(total, minimum):
            let progress = min(1, Double(t - warmupSteps) / Double(total - warmupSteps))
            return minimum + (1 - minimum) * 0.5 * (1 + _cos(Double.pi * progress))
        }
    }
}
