// The pseudo-label audit the synthetic world makes possible: per iteration and anchor, how often the
// pseudo-labels agree with each true quality dimension, and how many wrong human labels they fixed.

/// Per-pair ground truth: per-dimension true scores of the winner and of the loser (winner = the
/// human label's choice). Plain arrays, so the audit does not depend on the world's types.
public struct PairTruth: Sendable {
    /// Dimension names, e.g. ["alignment", "aesthetics", "detail", "overall"].
    public let dimensions: [String]
    /// Index of the dimension that stands for the overall truth (the multi-dimensional preference).
    public let overall: Int
    /// (pairs × dimensions) true scores.
    public let winner: [[Float]]
    public let loser: [[Float]]

    /// `overall` defaults to the last dimension.
    public init(dimensions: [String], winner: [[Float]], loser: [[Float]], overall: Int? = nil) throws {
        guard !dimensions.isEmpty else { throw CoreError("audit: no truth dimensions") }
        guard winner.count == loser.count else {
            throw CoreError("audit: \(winner.count) winner score rows but \(loser.count) loser score rows")
        }
        for (i, (w, l)) in zip(winner, loser).enumerated() where w.count != dimensions.count || l.count != dimensions.count {
            throw CoreError("audit: pair \(i) has \(w.count)/\(l.count) scores for \(dimensions.count) dimensions")
        }
        let o = overall ?? dimensions.count - 1
        guard o >= 0 && o < dimensions.count else { throw CoreError("audit: overall dimension \(o) outside 0..<\(dimensions.count)") }
        self.dimensions = dimensions; self.overall = o; self.winner = winner; self.loser = loser
    }

    public var count: Int { winner.count }
}

/// Audit results, one row per (iteration, anchor) plus one "all anchors" row per iteration.
public struct PseudoLabelAudit: Sendable {
    public struct Row: Equatable, Sendable {
        public var iteration: Int
        /// The anchor timestep, or nil for the row pooling all anchors of the iteration.
        public var anchor: Int?
        /// Non-zero pseudo-labels counted.
        public var labelled: Int
        /// Per dimension: share of labels y with y·sign(Δ_d) > 0, Δ_d = score_d(x_w) − score_d(x_l);
        /// a true tie Δ_d = 0 counts ½. NaN when nothing is labelled.
        public var accuracy: [Double]
        /// The same share for the human label (+1) on the same labelled pairs, against the overall truth.
        public var humanAccuracy: Double
        /// Labelled pairs whose human label opposes the overall truth (Δ_overall < 0) …
        public var opposed: Int
        /// … of which the pseudo-label flipped (y = −1): fixed the right way.
        public var flippedRight: Int
        /// Labelled pairs whose human label agrees with the overall truth (Δ_overall > 0) …
        public var agreed: Int
        /// … of which the pseudo-label flipped: broken the wrong way.
        public var flippedWrong: Int
    }

    public let dimensions: [String]
    public var rows: [Row]

    /// The audit as a table: accuracies in percent, counts as integers.
    public var table: ResultTable {
        var t = ResultTable(title: "Pseudo-label audit against the world's truth",
                            columns: ["Iteration", "Anchor", "Labels"] + dimensions.map { "Acc \($0) (%)" }
                                + ["Human acc (%)", "Opposed", "Flipped right", "Agreed", "Flipped wrong"])
        for r in rows {
            t.addRow([.number(Double(r.iteration), decimals: 0), .text(r.anchor.map(String.init) ?? "all"),
                      .number(Double(r.labelled), decimals: 0)]
                     + r.accuracy.map { .number($0 * 100, decimals: 1) }
                     + [.number(r.humanAccuracy * 100, decimals: 1), .number(Double(r.opposed), decimals: 0),
                        .number(Double(r.flippedRight), decimals: 0), .number(Double(r.agreed), decimals: 0),
                        .number(Double(r.flippedWrong), decimals: 0)])
        }
        return t
    }
}

/// Audits pseudo-labels against the truth. `labels[k]` are iteration `iterations[k]`'s labels
/// (default 1, 2, …), row-aligned with `truth`; 0 means unlabelled and is not counted.
public func auditPseudoLabels(truth: PairTruth, labels: [AnchorLabels], iterations: [Int]? = nil) throws -> PseudoLabelAudit {
    let iters = iterations ?? labels.indices.map { $0 + 1 }
    guard iters.count == labels.count else { throw CoreError("audit: \(iters.count) iteration numbers for \(labels.count) label sets") }
    let d = truth.dimensions.count
    func sign(_ x: Float) -> Int { x > 0 ? 1 : (x < 0 ? -1 : 0) }
    var rows: [PseudoLabelAudit.Row] = []
    for (k, set) in labels.enumerated() {
        guard set.rows == truth.count else {
            throw CoreError("audit: iteration \(iters[k]) has \(set.rows) label rows for \(truth.count) pairs")
        }
        let a = set.anchors.count
        var total = PseudoLabelAudit.Row(iteration: iters[k], anchor: nil, labelled: 0, accuracy: [Double](repeating: 0, count: d),
                                         humanAccuracy: 0, opposed: 0, flippedRight: 0, agreed: 0, flippedWrong: 0)
        for j in 0..<a {
            var row = PseudoLabelAudit.Row(iteration: iters[k], anchor: set.anchors[j], labelled: 0,
                                       accuracy: [Double](repeating: 0, count: d), humanAccuracy: 0,
                                       opposed: 0, flippedRight: 0, agreed: 0, flippedWrong: 0)
            for i in 0..<truth.count {
                let y = Int(set.labels[i * a + j])
                guard y != 0 else { continue }
                row.labelled += 1
                for dim in 0..<d {
                    let s = sign(truth.winner[i][dim] - truth.loser[i][dim])
                    row.accuracy[dim] += s == 0 ? 0.5 : (s == y ? 1 : 0)
                }
                let so = sign(truth.winner[i][truth.overall] - truth.loser[i][truth.overall])
                row.humanAccuracy += so == 0 ? 0.5 : (so == 1 ? 1 : 0)
                if so < 0 { row.opposed += 1; if y < 0 { row.flippedRight += 1 } }
                if so > 0 { row.agreed += 1; if y < 0 { row.flippedWrong += 1 } }
            }
            total.labelled += row.labelled
            for dim in 0..<d { total.accuracy[dim] += row.accuracy[dim] }
            total.humanAccuracy += row.humanAccuracy
            total.opposed += row.opposed; total.flippedRight += row.flippedRight
            total.agreed += row.agreed; total.flippedWrong += row.flippedWrong
            rows.append(normalised(row))
        }
        rows.append(normalised(total))
    }
    return PseudoLabelAudit(dimensions: truth.dimensions, rows: rows)
}

/// Turns summed agreement counts into shares (NaN when nothing is labelled).
private func normalised(_ r: PseudoLabelAudit.Row) -> PseudoLabelAudit.Row {
    var r = r
    let n = Double(r.labelled)
    r.accuracy = r.accuracy.map { r.labelled > 0 ? $0 / n : .nan }
    r.humanAccuracy = r.labelled > 0 ? r.humanAccuracy / n : .nan
    return r
}
