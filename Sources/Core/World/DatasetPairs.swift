// A world dataset (or a subset of its pairs) seen as preference pairs for training and the
// confidence pass: winner first by the human label, prompts tokenized once, truths for the audit.

public final class DatasetPairs: PairSource {
    public let dataset: Dataset
    /// Dataset indices of the rows, in order; a row's pair id is its dataset index (`idx`).
    public let rows: [Int]
    public let ids: [Int64]
    public let tokenizer: Tokenizer
    /// Token row of every prompt of the dataset.
    let promptTokens: [[Int32]]

    public var count: Int { rows.count }
    public var imageShape: [Int] { [3, dataset.imageSize, dataset.imageSize] }

    /// `rows` default to every pair of the dataset.
    public init(_ dataset: Dataset, rows: [Int]? = nil, tokenizer: Tokenizer) throws {
        let rows = rows ?? Array(0..<dataset.count)
        if let bad = rows.first(where: { $0 < 0 || $0 >= dataset.count }) {
            throw CoreError("dataset pairs: pair id \(bad) outside 0…\(dataset.count - 1) of \(dataset.directory)")
        }
        guard Set(rows).count == rows.count else { throw CoreError("dataset pairs: pair ids must be unique") }
        self.dataset = dataset
        self.rows = rows
        self.ids = rows.map(Int64.init)
        self.tokenizer = tokenizer
        self.promptTokens = try dataset.prompts.map { try tokenizer.encode($0.text) }
    }

    /// The same dataset restricted to other pair ids.
    public func subset(ids: [Int]) throws -> DatasetPairs {
        try DatasetPairs(dataset, rows: ids, tokenizer: tokenizer)
    }

    public func batch(_ batchRows: [Int]) throws -> PairBatch {
        let indices = try batchRows.map { r -> Int in
            guard r >= 0 && r < rows.count else { throw CoreError("dataset pairs: row \(r) outside 0..<\(rows.count)") }
            return rows[r]
        }
        let (w, l) = try dataset.batch(indices, oriented: true)
        let shape = [indices.count] + imageShape
        var ids = [Int32]()
        ids.reserveCapacity(indices.count * tokenizer.maxLength)
        for i in indices { ids += promptTokens[dataset.promptIndex[i]] }
        return try PairBatch(winners: Tensor(shape: shape, data: w), losers: Tensor(shape: shape, data: l),
                             tokens: TokenBatch(ids: ids, batch: indices.count, length: tokenizer.maxLength),
                             ids: indices.map(Int64.init))
    }

    /// The true scores of winner and loser (alignment, aesthetics, detail, overall) for the audit.
    public func truth() throws -> PairTruth {
        var winner: [[Float]] = [], loser: [[Float]] = []
        winner.reserveCapacity(rows.count); loser.reserveCapacity(rows.count)
        for i in rows {
            let a = dataset.truth0[i], b = dataset.truth1[i]
            let (w, l) = dataset.labels[i] == -1 ? (b, a) : (a, b)
            winner.append(w.array + [w.overall]); loser.append(l.array + [l.overall])
        }
        return try PairTruth(dimensions: QualityScores.dimensionNames + ["overall"], winner: winner, loser: loser)
    }
}
