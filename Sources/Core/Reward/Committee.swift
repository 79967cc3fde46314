// The reward committee on world datasets: members loaded from checkpoints, scores cached beside the
// dataset, the consensus partition into clean / clean-test / noisy, and its truth report (Table 6 too).
import Foundation

/// One committee member: a loaded reward checkpoint.
public final class RewardMember {
    /// The checkpoint's `reward.name` (or the file name without extension if that is empty).
    public let name: String
    public let path: String
    public let model: RewardModel
    public let info: RewardCheckpointInfo
    /// First 16 hex digits of the checkpoint file's SHA-256: names the score cache.
    public let fingerprint: String

    public init(path: String) throws {
        let (model, info) = try RewardModel.load(from: path)
        self.path = path; self.model = model; self.info = info
        let stem = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        name = info.name.isEmpty ? stem : info.name
        fingerprint = String(try SHA256.hex(fileAt: path).prefix(16))
    }

    /// A member spec as a checkpoint path: a bare name (`clip`) is `<modelsDirectory>/clip.safetensors`;
    /// anything with a `/` or ending in `.safetensors` is a path as given.
    public static func resolve(_ spec: String, modelsDirectory: String) -> String {
        if spec.contains("/") || spec.hasSuffix(".safetensors") { return spec }
        return (modelsDirectory as NSString).appendingPathComponent(spec + ".safetensors")
    }
}

/// A committee of reward models, in the order given.
public final class Committee {
    public let members: [RewardMember]
    /// Score batches actually computed by a model (cache misses), since creation.
    public private(set) var computedBatches = 0
    /// Member scorings answered from the cache, since creation.
    public private(set) var cacheHits = 0

    public init(members: [RewardMember]) throws {
        guard !members.isEmpty else { throw CoreError("committee: needs at least one member") }
        var seen = Set<String>()
        for m in members where !seen.insert(m.name).inserted {
            throw CoreError("committee: member '\(m.name)' listed twice (\(m.path))")
        }
        self.members = members
    }

    /// Members from specs (names or checkpoint paths, see `RewardMember.resolve`).
    public convenience init(specs: [String], modelsDirectory: String) throws {
        try self.init(members: specs.map { try RewardMember(path: RewardMember.resolve($0, modelsDirectory: modelsDirectory)) })
    }

    public var names: [String] { members.map(\.name) }

    /// `<dataset>/scores/<member>-<fingerprint>.safetensors`.
    public static func cachePath(_ member: RewardMember, dataset: Dataset) -> String {
        (dataset.directory as NSString).appendingPathComponent("scores/\(member.name)-\(member.fingerprint).safetensors")
    }

    /// What a cache file must say about its dataset to be reused.
    static func datasetStamp(_ dataset: Dataset) -> [String: String] {
        ["dataset.pairs": "\(dataset.count)", "dataset.seed": "\(dataset.manifest.seed)",
         "dataset.candidates": "\(dataset.manifest.candidates)", "dataset.image_size": "\(dataset.imageSize)"]
    }

    /// Member `k`'s scores (s0, s1) of every pair of `dataset` as a flat [s0, s1, …]: read from the
    /// cache when a file with this checkpoint's fingerprint and this dataset's stamp exists, else
    /// computed in batches of `batchSize` pairs and written there (atomically).
    public func memberScores(_ k: Int, dataset: Dataset, batchSize: Int = 512, useCache: Bool = true,
                             progress: ((Int, Int) throws -> Void)? = nil) throws -> [Float] {
        let member = members[k]
        let path = Committee.cachePath(member, dataset: dataset)
        let stamp = Committee.datasetStamp(dataset)
        if useCache, FileManager.default.fileExists(atPath: path),
           let file = try? SafetensorsFile(path: path),
           stamp.allSatisfy({ file.metadata[$0.key] == $0.value }),
           let t = try? file.tensor("scores"), t.shape == [dataset.count, 2] {
            cacheHits += 1
            try progress?(dataset.count, dataset.count)
            return t.data
        }
        guard member.model.config.imageSize == dataset.imageSize else {
            throw CoreError("committee: member '\(member.name)' (\(member.path)) scores \(member.model.config.imageSize)-pixel images, dataset \(dataset.directory) has \(dataset.imageSize)")
        }
        let scores = try scorePairs(member.model, data: dataset, rows: Array(0..<dataset.count), batchSize: batchSize) { done, total in
            self.computedBatches += 1
            try progress?(done, total)
        }
        if useCache {
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            var meta = stamp
            meta["format"] = "semidpo-reward-scores"
            meta["member"] = member.name
            meta["checkpoint"] = member.path
            meta["checkpoint.sha256_prefix"] = member.fingerprint
            try Safetensors.write([NamedTensor(name: "scores", shape: [dataset.count, 2], data: scores)], metadata: meta, to: path)
        }
        return scores
    }

    /// Every member's scores of every pair as a `ScoreTable` (ids = dataset indices, winner = 0 when
    /// label = +1). `progress(member, done, total)` reports each member's batches.
    public func score(_ dataset: Dataset, batchSize: Int = 512, useCache: Bool = true,
                      progress: ((String, Int, Int) throws -> Void)? = nil) throws -> ScoreTable {
        var perMember: [[Float]] = []
        for k in members.indices {
            let name = members[k].name
            perMember.append(try memberScores(k, dataset: dataset, batchSize: batchSize, useCache: useCache) { d, t in
                try progress?(name, d, t)
            })
        }
        var table = ScoreTable(members: names)
        for i in 0..<dataset.count {
            try table.append(id: Int64(i), winner: dataset.labels[i] == 1 ? 0 : 1,
                             scores: perMember.map { (Double($0[2 * i]), Double($0[2 * i + 1])) })
        }
        return table
    }
}

// MARK: - Truth reports

/// How the labels of a set of pairs agree with the world's truth.
public struct SetAgreement: Sendable, Equatable {
    public var name: String
    public var pairs: Int
    /// Share of all scored pairs.
    public var fraction: Double
    /// Per dimension (alignment, aesthetics, detail): share of pairs whose label agrees with it
    /// (Δ_k > 0 for the labelled winner; exact ties on k count as not agreeing).
    public var agreement: [Double]
    /// Share whose labelled winner has the higher equal-weight overall truth.
    public var overall: Double
    /// Share that disagrees with at least one dimension.
    public var anyConflict: Double
}

/// The partition report: each part's size and its labels' agreement with the truth.
public struct PartitionTruthReport: Sendable {
    public var rule: String
    public var members: [String]
    public var total: Int
    /// Rows: all, clean (train + test), clean train, clean test, noisy.
    public var sets: [SetAgreement]

    /// Clean (train + test) pairs / all pairs — the paper kept 21% (176,999 of 851,293).
    public var cleanFraction: Double { sets.first { $0.name == "clean" }?.fraction ?? 0 }

    public var table: ResultTable {
        var t = ResultTable(title: "Consensus partition (\(members.joined(separator: ", ")); \(rule)): human labels vs the true dimensions (%)",
                            columns: ["set", "pairs", "share", "alignment", "aesthetics", "detail", "overall", "conflict ≥1 dim"])
        for s in sets {
            t.addRow([.text(s.name), .number(Double(s.pairs), decimals: 0), .number(100 * s.fraction, decimals: 1)]
                     + s.agreement.map { .number(100 * $0, decimals: 1) }
                     + [.number(100 * s.overall, decimals: 1), .number(100 * s.anyConflict, decimals: 1)])
        }
        return t
    }
}

/// Measures how the human labels of each part of `split` agree with the truth of `dataset`.
/// Ids are dataset indices.
public func partitionTruthReport(dataset: Dataset, split: ConsensusSplit, rule: String, members: [String]) throws -> PartitionTruthReport {
    let total = split.clean.count + split.test.count + split.noisy.count
    func measure(_ name: String, _ ids: [Int64]) throws -> SetAgreement {
        let rows = try ids.map { id -> Int in
            guard id >= 0 && id < dataset.count else { throw CoreError("partition report: pair id \(id) outside 0..<\(dataset.count)") }
            return Int(id)
        }
        let st = try dataset.statistics(of: rows)
        return SetAgreement(name: name, pairs: rows.count, fraction: total == 0 ? 0 : Double(rows.count) / Double(total),
                            agreement: rows.isEmpty ? [0, 0, 0] : st.agreeRate, overall: rows.isEmpty ? 0 : st.overallAgreement,
                            anyConflict: rows.isEmpty ? 0 : st.anyConflictRate)
    }
    return PartitionTruthReport(rule: rule, members: members, total: total, sets: [
        try measure("all", split.clean + split.test + split.noisy),
        try measure("clean", split.clean + split.test),
        try measure("clean train", split.clean),
        try measure("clean test", split.test),
        try measure("noisy", split.noisy),
    ])
}

/// The Table 6 analogue: each member's pairwise accuracy (%) against each true dimension, the
/// overall truth and the human labels on `rows` of `dataset` (pairs with an exact truth tie on a
/// column are skipped for that column; equal scores count ½). Uses the committee's score cache.
public func rewardAccuracyTable(_ committee: Committee, dataset: Dataset, rows: [Int]? = nil, batchSize: Int = 512,
                                title: String = "Reward models: pairwise accuracy against the true dimensions (%)") throws -> ResultTable {
    let rows = rows ?? Array(0..<dataset.count)
    let refs = truthReferences(dataset, rows: rows)
    let columns = ["overall", "aesthetics", "alignment", "detail", "human"]
    var t = ResultTable(title: title, columns: ["member", "rater"] + columns)
    for k in committee.members.indices {
        let all = try committee.memberScores(k, dataset: dataset, batchSize: batchSize)
        var s: [Float] = []
        s.reserveCapacity(2 * rows.count)
        for r in rows { s.append(all[2 * r]); s.append(all[2 * r + 1]) }
        let member = committee.members[k]
        t.addRow([.text(member.name), .text(member.info.rater.description)]
                 + (try columns.map { .number(100 * (try pairwiseAccuracy(scores: s, reference: refs[$0]!)), decimals: 2) }))
    }
    return t
}
