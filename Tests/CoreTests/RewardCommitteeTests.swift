// Committee tests on a tiny world dataset: the score cache (second scoring computes nothing, a new
// checkpoint recomputes), a hand-worked partition and accuracy table from hand-written cache files,
// member resolution and errors.
import Foundation
import Testing
@testable import Core

/// A 6-pair world dataset (16 px) and two tiny reward checkpoints "a" (image + prompt) and "b"
/// (image only) in a fresh directory.
func tinyCommitteeWorld() throws -> (dir: String, dataset: Dataset, paths: [String]) {
    let dir = NSTemporaryDirectory() + "semidpo-committee-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir + "/models", withIntermediateDirectories: true)
    let prompts = try PromptSuites(seed: 0).training(count: 3)
    try DatasetBuilder.build(directory: dir + "/data", pairs: 6, prompts: prompts, config: WorldConfig(seed: 5), shardSize: 4, threads: 1)
    var paths: [String] = []
    for (k, name) in ["a", "b"].enumerated() {
        let config = RewardModelConfig(imageSize: 16, channels: [4, 4, 4], groups: 2, embedDimension: 4, heads: 2, usesPrompt: k == 0)
        let model = try RewardModel(config: config, key: RandomKey(seed: UInt64(k)))
        let path = dir + "/models/\(name).safetensors"
        try model.save(to: path, info: RewardCheckpointInfo(name: name, config: config, rater: .human))
        paths.append(path)
    }
    return (dir, try Dataset(directory: dir + "/data"), paths)
}

@Suite struct RewardCommitteeTests {
    @Test func secondScoringHitsTheCache() throws {
        let (dir, ds, paths) = try tinyCommitteeWorld()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try Committee(members: paths.map { try RewardMember(path: $0) })
        var reported: [String] = []
        let t1 = try first.score(ds, batchSize: 4) { name, done, total in reported.append("\(name) \(done)/\(total)") }
        // 6 pairs in batches of 4: two batches per member, both computed.
        #expect(first.computedBatches == 4 && first.cacheHits == 0)
        #expect(reported == ["a 4/6", "a 6/6", "b 4/6", "b 6/6"])
        for m in first.members { #expect(FileManager.default.fileExists(atPath: Committee.cachePath(m, dataset: ds))) }
        // A fresh committee (new process in practice) finds the files and computes nothing.
        let second = try Committee(members: paths.reversed().map { try RewardMember(path: $0) })
        let t2 = try second.score(ds, batchSize: 4)
        #expect(second.computedBatches == 0 && second.cacheHits == 2)
        #expect(t2.members == ["b_score", "a_score"])
        for i in 0..<6 {
            let p1 = t1.pair(i), p2 = t2.pair(i)
            #expect(p1.scores[0] == p2.scores[1] && p1.scores[1] == p2.scores[0] && p1.winner == p2.winner)
        }
        // Cached scores equal fresh ones bit for bit (same batching: GEMM blocking depends on the
        // batch size, so another batch size may differ in the last bit).
        let fresh = try scorePairs(first.members[0].model, data: ds, rows: Array(0..<6), batchSize: 4)
        #expect(fresh.map(Double.init) == (0..<6).flatMap { [t2.pair($0).scores[1].0, t2.pair($0).scores[1].1] })
        // A retrained checkpoint has another fingerprint, so it is scored again.
        let (m, info) = try RewardModel.load(from: paths[0])
        m.output.bias!.data[0] += 1
        try m.save(to: paths[0], info: info)
        let third = try Committee(members: [try RewardMember(path: paths[0])])
        _ = try third.score(ds, batchSize: 4)
        #expect(third.computedBatches == 2 && third.cacheHits == 0)
        // useCache false always computes.
        let fourth = try Committee(members: [try RewardMember(path: paths[1])])
        _ = try fourth.score(ds, batchSize: 8, useCache: false)
        #expect(fourth.computedBatches == 1 && fourth.cacheHits == 0)
    }

    /// Hand-written cache files fix the scores; votes relative to the human winner of each pair:
    ///   pair:    0      1         2      3         4      5
    ///   a:       agree  agree     tie    disagree  agree  agree
    ///   b:       agree  disagree  agree  agree     agree  agree
    /// unanimous → clean {0, 4, 5}, noisy {1, 2, 3}; 2-of-2 is the same; 1-of-2 → all clean
    /// (pair 2: b agrees; pair 3: b agrees; pair 1: a agrees).
    @Test func handWorkedPartitionAndAccuracy() throws {
        let (dir, ds, paths) = try tinyCommitteeWorld()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let c = try Committee(members: paths.map { try RewardMember(path: $0) })
        enum Vote { case agree, disagree, tie }
        let votes: [[Vote]] = [[.agree, .agree, .tie, .disagree, .agree, .agree],
                               [.agree, .disagree, .agree, .agree, .agree, .agree]]
        for (k, member) in c.members.enumerated() {
            var s: [Float] = []
            for i in 0..<6 {
                let winnerFirst = ds.labels[i] == 1
                switch votes[k][i] {
                case .agree: s += winnerFirst ? [2, 1] : [1, 2]
                case .disagree: s += winnerFirst ? [1, 2] : [2, 1]
                case .tie: s += [1.5, 1.5]
                }
            }
            let path = Committee.cachePath(member, dataset: ds)
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Safetensors.write([NamedTensor(name: "scores", shape: [6, 2], data: s)],
                                  metadata: Committee.datasetStamp(ds), to: path)
        }
        let table = try c.score(ds)
        #expect(c.computedBatches == 0 && c.cacheHits == 2)
        let split = try table.partition(rule: .unanimous(), testFraction: 0, seed: 1)
        #expect(split == ConsensusSplit(clean: [0, 4, 5], test: [], noisy: [1, 2, 3]))
        #expect(try table.partition(rule: .kOfN(k: 2), testFraction: 0).clean == [0, 4, 5])
        #expect(try table.partition(rule: .kOfN(k: 1), testFraction: 0).clean == [0, 1, 2, 3, 4, 5])
        // ceil(3 · 0.34) = 2 test pairs among the clean ones.
        let withTest = try table.partition(rule: .unanimous(), testFraction: 0.34, seed: 1)
        #expect(withTest.test.count == 2 && Set(withTest.clean + withTest.test) == [0, 4, 5])

        let report = try partitionTruthReport(dataset: ds, split: split, rule: "unanimous", members: c.names)
        #expect(report.total == 6 && report.cleanFraction == 0.5)
        #expect(report.sets.map(\.name) == ["all", "clean", "clean train", "clean test", "noisy"])
        #expect(report.sets.map(\.pairs) == [6, 3, 3, 0, 3])
        // Each row is the dataset's own statistics of those pairs.
        let clean = try ds.statistics(of: [0, 4, 5])
        #expect(report.sets[1].agreement == clean.agreeRate && report.sets[1].overall == clean.overallAgreement)
        let all = try ds.statistics()
        #expect(report.sets[0].agreement == all.agreeRate && report.sets[0].anyConflict == all.anyConflictRate)
        #expect(report.table.markdown.contains("| clean | 3 | 50.0 |"))

        // Accuracy against the human labels: a = (4 agree + ½ tie) / 6 = 75%, b = 5/6 = 83.33%.
        let acc = try rewardAccuracyTable(c, dataset: ds)
        let human = acc.columns.firstIndex(of: "human")!
        #expect(acc.rows[0][human] == .number(75, decimals: 2))
        if case let .number(v, _) = acc.rows[1][human] { #expect(Swift.abs(v - 500.0 / 6) < 1e-9) } else { Issue.record("not a number") }
    }

    @Test func membersResolveAndErrors() throws {
        #expect(RewardMember.resolve("clip", modelsDirectory: "models/rewards") == "models/rewards/clip.safetensors")
        #expect(RewardMember.resolve("x/y.safetensors", modelsDirectory: "m") == "x/y.safetensors")
        #expect(RewardMember.resolve("z.safetensors", modelsDirectory: "m") == "z.safetensors")
        let (dir, ds, paths) = try tinyCommitteeWorld()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = try RewardMember(path: paths[0])
        #expect(throws: CoreError("committee: member 'a' listed twice (\(paths[0]))")) { try Committee(members: [a, a]) }
        #expect(throws: CoreError("committee: needs at least one member")) { try Committee(members: []) }
        #expect(throws: CoreError("reward checkpoint \(dir)/models/nope.safetensors: no such file")) {
            try Committee(specs: ["nope"], modelsDirectory: dir + "/models")
        }
        // A cache file for another dataset (stamp mismatch) is ignored and overwritten.
        let path = Committee.cachePath(a, dataset: ds)
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        var stamp = Committee.datasetStamp(ds)
        stamp["dataset.seed"] = "999"
        try Safetensors.write([NamedTensor(name: "scores", shape: [6, 2], data: [Float](repeating: 0, count: 12))], metadata: stamp, to: path)
        let c = try Committee(members: [a])
        _ = try c.score(ds)
        #expect(c.computedBatches == 1 && c.cacheHits == 0)
        #expect(try SafetensorsFile(path: path).metadata["dataset.seed"] == "\(ds.manifest.seed)")
    }
}
