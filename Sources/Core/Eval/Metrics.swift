// Summary statistics used by the evaluation tables: means, standard errors, paired win rates.
import Foundation

public enum Metrics {
    /// Arithmetic mean (NaN for an empty array).
    public static func mean(_ v: [Double]) -> Double { v.isEmpty ? .nan : v.reduce(0, +) / Double(v.count) }

    /// Standard error of the mean, sample standard deviation / sqrt(n) (NaN for n < 2).
    public static func standardError(_ v: [Double]) -> Double {
        guard v.count >= 2 else { return .nan }
        let m = mean(v)
        let ss = v.reduce(0) { $0 + ($1 - m) * ($1 - m) }
        return (ss / Double(v.count - 1)).squareRoot() / Double(v.count).squareRoot()
    }

    /// Paired win rate of A over B: the share of prompts where A's score is strictly higher than B's,
    /// as the authors' report computes it (ties count as losses for A).
    public static func winRate(_ a: [Double], over b: [Double]) throws -> Double {
        guard a.count == b.count else {
            throw CoreError("win rate: the two score lists differ in length (\(a.count) vs \(b.count)); score the same prompts")
        }
        guard !a.isEmpty else { throw CoreError("win rate: no prompts scored") }
        return Double(zip(a, b).filter { $0 > $1 }.count) / Double(a.count)
    }
}
