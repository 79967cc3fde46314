// Preference pairs for training and the confidence pass: a source of (winner, loser, prompt) rows,
// an in-memory implementation, per-pair or per-anchor labels, and the anchor intervals t is drawn from.

/// A batch of preference pairs, winner first (the human label's orientation).
public struct PairBatch {
    /// winners, losers: (B, C, H, W)
    public var winners: Tensor
    public var losers: Tensor
    /// One token row per pair (B rows).
    public var tokens: TokenBatch
    /// The pairs' ids (the official files' `idx`).
    public var ids: [Int64]

    public init(winners: Tensor, losers: Tensor, tokens: TokenBatch, ids: [Int64]) throws {
        guard winners.rank == 4, winners.shape == losers.shape else {
            throw CoreError("pair batch: winners \(winners.shape) and losers \(losers.shape) must both be (B, C, H, W)")
        }
        guard tokens.batch == winners.shape[0], ids.count == winners.shape[0] else {
            throw CoreError("pair batch: \(winners.shape[0]) pairs but \(tokens.batch) token rows and \(ids.count) ids")
        }
        self.winners = winners; self.losers = losers; self.tokens = tokens; self.ids = ids
    }

    public var count: Int { ids.count }
}

/// Where pairs come from. Rows are numbered 0..<count; `batch` gathers any rows in the given order.
/// The world dataset adapts to this protocol; `InMemoryPairs` is the simple implementation.
public protocol PairSource: AnyObject {
    /// Number of pairs.
    var count: Int { get }
    /// Pair id of every row (unique).
    var ids: [Int64] { get }
    /// Image shape (C, H, W) shared by all pairs.
    var imageShape: [Int] { get }
    /// The pairs at `rows` (each in 0..<count), in that order.
    func batch(_ rows: [Int]) throws -> PairBatch
}

/// Pairs held in memory as flat (N, C, H, W) arrays.
public final class InMemoryPairs: PairSource {
    public let imageShape: [Int]
    public let ids: [Int64]
    /// winners, losers: (N, C, H, W) row-major.
    public let winners: [Float]
    public let losers: [Float]
    /// (N, tokenLength) token ids.
    public let tokenIds: [Int32]
    public let tokenLength: Int

    /// winners, losers: (N, C, H, W); tokens: N rows; ids default to 0..<N and must be unique.
    public init(winners: Tensor, losers: Tensor, tokens: TokenBatch, ids: [Int64]? = nil) throws {
        guard winners.rank == 4, winners.shape == losers.shape else {
            throw CoreError("pairs: winners \(winners.shape) and losers \(losers.shape) must both be (N, C, H, W)")
        }
        let n = winners.shape[0]
        guard tokens.batch == n else { throw CoreError("pairs: \(n) pairs but \(tokens.batch) token rows") }
        let ids = ids ?? (0..<n).map(Int64.init)
        guard ids.count == n else { throw CoreError("pairs: \(n) pairs but \(ids.count) ids") }
        guard Set(ids).count == n else { throw CoreError("pairs: pair ids must be unique") }
        self.imageShape = Array(winners.shape.dropFirst())
        self.ids = ids
        self.winners = winners.data
        self.losers = losers.data
        self.tokenIds = tokens.ids
        self.tokenLength = tokens.length
    }

    public var count: Int { ids.count }

    public func batch(_ rows: [Int]) throws -> PairBatch {
        let m = imageShape.reduce(1, *)
        var w = [Float](), l = [Float](), tok = [Int32](), bid = [Int64]()
        w.reserveCapacity(rows.count * m); l.reserveCapacity(rows.count * m)
        for r in rows {
            guard r >= 0 && r < count else { throw CoreError("pairs: row \(r) outside 0..<\(count)") }
            w.append(contentsOf: winners[(r * m)..<((r + 1) * m)])
            l.append(contentsOf: losers[(r * m)..<((r + 1) * m)])
            tok.append(contentsOf: tokenIds[(r * tokenLength)..<((r + 1) * tokenLength)])
            bid.append(ids[r])
        }
        let shape = [rows.count] + imageShape
        return try PairBatch(winners: Tensor(shape: shape, data: w), losers: Tensor(shape: shape, data: l),
                             tokens: TokenBatch(ids: tok, batch: rows.count, length: tokenLength), ids: bid)
    }

    /// A new in-memory set with the given rows of this one (e.g. disjoint thirds of the clean set).
    public func subset(_ rows: [Int]) throws -> InMemoryPairs {
        let b = try batch(rows)
        return try InMemoryPairs(winners: b.winners, losers: b.losers, tokens: b.tokens, ids: b.ids)
    }
}

/// Timestep-conditional labels: one label in {−1, 0, +1} per row and anchor, row-aligned with a
/// `PairSource`. Anchor a stands for the interval [a − halfWidth, a + halfWidth) ∩ [0, T).
public struct AnchorLabels: Equatable, Sendable {
    public let anchors: [Int]
    /// (rows, anchors) row-major; 0 = unlabelled at that anchor.
    public let labels: [Int8]

    public init(anchors: [Int], labels: [Int8]) throws {
        guard !anchors.isEmpty else { throw CoreError("anchor labels: no anchors") }
        guard labels.count % anchors.count == 0 else {
            throw CoreError("anchor labels: \(labels.count) labels do not fill rows of \(anchors.count) anchors")
        }
        for v in labels where v < -1 || v > 1 { throw CoreError("anchor labels: label \(v) is not -1, 0 or +1") }
        self.anchors = anchors; self.labels = labels
    }

    /// Builds row-aligned labels from id-keyed rows (e.g. a pseudo-label file): row r of the result
    /// holds the labels of `sourceIds[r]`, or zeros when that id has none. Values outside {−1, 0, +1}
    /// (such as a file reader's "absent" marker) count as 0.
    public init(anchors: [Int], ids: [Int64], labels: [Int8], alignedTo sourceIds: [Int64]) throws {
        let a = anchors.count
        guard a > 0, labels.count == ids.count * a else {
            throw CoreError("anchor labels: \(labels.count) labels for \(ids.count) ids × \(a) anchors")
        }
        var rowOf: [Int64: Int] = [:]
        rowOf.reserveCapacity(ids.count)
        for (r, id) in ids.enumerated() { rowOf[id] = r }
        var out = [Int8](repeating: 0, count: sourceIds.count * a)
        for (r, id) in sourceIds.enumerated() {
            guard let src = rowOf[id] else { continue }
            for j in 0..<a {
                let v = labels[src * a + j]
                out[r * a + j] = (v >= -1 && v <= 1) ? v : 0
            }
        }
        try self.init(anchors: anchors, labels: out)
    }

    /// Row-aligned labels from a pseudo-label file (`PseudoLabels.read`, or a selection's result);
    /// pairs the file does not list, and its absent entries, are unlabelled.
    public init(_ pseudo: PseudoLabels, alignedTo sourceIds: [Int64]) throws {
        try self.init(anchors: pseudo.anchors, ids: pseudo.ids, labels: pseudo.labels, alignedTo: sourceIds)
    }

    public var rows: Int { labels.count / anchors.count }

    /// The labels of one row.
    public func row(_ r: Int) -> ArraySlice<Int8> { labels[(r * anchors.count)..<((r + 1) * anchors.count)] }
}

/// How a pair set is labelled.
public enum PairLabels: Equatable, Sendable {
    /// One label per row; t ~ U{0, …, T−1}. Human-labelled and clean sets use all +1.
    case perPair([Int8])
    /// Per-anchor pseudo-labels; t is drawn from the union of the row's labelled intervals.
    case perAnchor(AnchorLabels)
}

/// A pair source with its labels: what the trainer draws batches from.
public struct LabelledPairs {
    public let source: PairSource
    public let labels: PairLabels
    /// Rows with at least one non-zero label — the only rows the trainer draws (the others would
    /// contribute nothing: SPEC §2 "pairs with no non-zero label are dropped").
    public let activeRows: [Int]

    /// `labels` nil means every pair +1 (the human label as given).
    public init(_ source: PairSource, labels: PairLabels? = nil) throws {
        let labels = labels ?? .perPair([Int8](repeating: 1, count: source.count))
        switch labels {
        case .perPair(let l):
            guard l.count == source.count else { throw CoreError("labels: \(l.count) labels for \(source.count) pairs") }
            for v in l where v < -1 || v > 1 { throw CoreError("labels: label \(v) is not -1, 0 or +1") }
            activeRows = l.indices.filter { l[$0] != 0 }
        case .perAnchor(let a):
            guard a.rows == source.count else { throw CoreError("labels: \(a.rows) label rows for \(source.count) pairs") }
            activeRows = (0..<a.rows).filter { r in a.row(r).contains { $0 != 0 } }
        }
        self.source = source
        self.labels = labels
    }
}

/// The timestep intervals of a list of anchors: anchor a ↦ [a − halfWidth, a + halfWidth) ∩ [0, T).
/// Intervals must be non-empty and must not overlap, so every t belongs to at most one anchor.
public struct AnchorIntervals: Equatable, Sendable {
    public let anchors: [Int]
    public let intervals: [Range<Int>]

    public init(anchors: [Int], halfWidth: Int = 50, steps: Int = 1000) throws {
        guard !anchors.isEmpty else { throw CoreError("anchors: the list is empty") }
        guard halfWidth >= 1 else { throw CoreError("anchors: interval half-width must be ≥ 1 (got \(halfWidth))") }
        var iv: [Range<Int>] = []
        for a in anchors {
            guard a >= 0 && a < steps else { throw CoreError("anchors: timestep \(a) outside 0..<\(steps)") }
            iv.append(max(0, a - halfWidth)..<min(steps, a + halfWidth))
        }
        let order = iv.indices.sorted { iv[$0].lowerBound < iv[$1].lowerBound }
        for k in 1..<max(1, order.count) where iv[order[k]].lowerBound < iv[order[k - 1]].upperBound {
            throw CoreError("anchors: intervals of anchors \(anchors[order[k - 1]]) and \(anchors[order[k]]) overlap (half-width \(halfWidth))")
        }
        self.anchors = anchors; self.intervals = iv
    }

    /// The paper's ten anchors 50, 150, …, 950.
    public static let paperAnchors: [Int] = Array(stride(from: 50, through: 950, by: 100))

    /// t drawn uniformly from the union of the intervals whose label is non-zero, with that
    /// interval's label, from one uniform u ∈ [0, 1): with L = Σ|I_j| over labelled j, the
    /// k = ⌊u·L⌋-th timestep of the labelled intervals in anchor order. Nil if nothing is labelled.
    public func draw(labels: ArraySlice<Int8>, u: Double) -> (t: Int, label: Int8)? {
        precondition(labels.count == anchors.count, "draw: \(labels.count) labels for \(anchors.count) anchors")
        var total = 0
        for (j, v) in labels.enumerated() where v != 0 { total += intervals[j].count }
        guard total > 0 else { return nil }
        var k = min(Int(u * Double(total)), total - 1)
        for (j, v) in labels.enumerated() where v != 0 {
            if k < intervals[j].count { return (intervals[j].lowerBound + k, v) }
            k -= intervals[j].count
        }
        return nil  // unreachable: k < total
    }
}
