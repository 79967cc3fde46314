// Gradient shards (data-parallel training's hook) and the rank-independent pieces of Cluster, in one
// process: block partition, reduction order, the shard sum, and a DPO step cut into shards.
// (The same runs under mpirun are in Tests/HostTests/MPITests.swift.)
import Foundation
import Testing
@testable import Core

@Test func blocksAreContiguousInRankOrder() {
    // 10 items over 3 ranks: ⌊10·r/3⌋ … ⌊10·(r+1)/3⌋ = 0..<3, 3..<6, 6..<10.
    #expect((0..<3).map { Cluster.block(of: 10, rank: $0, size: 3) } == [0..<3, 3..<6, 6..<10])
    #expect((0..<4).map { Cluster.block(of: 2, rank: $0, size: 4) } == [0..<0, 0..<1, 1..<1, 1..<2])
    #expect(Cluster.block(of: 7) == 0..<7)   // one process owns everything
}

@Test func reductionCombinesPartsInOrder() throws {
    // Float sums in order: (1e8 + 1) + (−1e8) = 0 in Float (1 is lost), whereas 1e8 + (−1e8) + 1 would be 1.
    let parts: [[Float]] = [[1e8, 2, 5], [1, -3, .nan], [-1e8, 7, 1]]
    let sum = try Cluster.reduceInOrder(parts, .sum)
    #expect(sum[0] == 0 && sum[1] == 6 && sum[2].isNaN)
    #expect(try Cluster.reduceInOrder(parts, .max).prefix(2) == [1e8, 7])
    #expect(try Cluster.reduceInOrder([[3.0, -1], [2, 4]], .min) == [2, -1])
    #expect(try Cluster.allreduce([1.5, 2], .sum) == [1.5, 2])   // one rank: the input
    #expect(throws: CoreError.self) { try Cluster.reduceInOrder([[1.0], [1, 2]], .sum) }
    #expect(!Cluster.launched(environment: ["PATH": "/bin"]))
    #expect(Cluster.launched(environment: ["OMPI_COMM_WORLD_SIZE": "2"]) && Cluster.launched(environment: ["PMIX_RANK": "0"]))
}

@Test func shardGradientsAreSummedInShardOrder() throws {
    // loss_g = Σ_i w_i · x_g,i ⇒ ∂loss_g/∂w = x_g; the step's gradient is (x₀ + x₁) + x₂; `unused` gets none.
    let w = Tensor(shape: [3], data: [0.5, -1, 2]); w.requiresGrad = true
    let unused = Tensor(shape: [2], data: [1, 1]); unused.requiresGrad = true
    let xs: [[Float]] = [[1, 2, 3], [0.25, -4, 0], [1e-3, 1e8, -3]]
    let shards = try GradientShards(count: 3)
    var seen: [Int] = []
    let metrics = try shards.run([("w", w), ("unused", unused)]) { g in
        seen.append(g)
        #expect(w.grad == nil)   // cleared before every shard
        sum(w * Tensor(shape: [3], data: xs[g])).backward()
        return [Double(g) * 10, 1]
    }
    #expect(seen == [0, 1, 2])
    #expect(metrics == [[0, 1], [10, 1], [20, 1]])
    let expected: [Float] = (0..<3).map { i in (xs[0][i] + xs[1][i]) + xs[2][i] }
    #expect(w.grad == expected)
    #expect(unused.grad == nil)
    #expect(throws: CoreError.self) { try GradientShards(count: 0) }
    #expect(try shards.slice(1, of: 6, what: "batch_size") == 2..<4)
    #expect(throws: CoreError.self) { try shards.slice(0, of: 4, what: "batch_size") }
}

@Test func dpoStepInShardsMatchesTheWholeBatchAndRejectsBadSizes() throws {
    // Labels with zeros: the shards hold different numbers of labelled pairs, so a per-shard mean
    // would be wrong; each shard's loss is scaled by its share of the batch's labelled pairs.
    let pairs = try toyPairs(8, seed: 21)
    let labels: [Int8] = [1, 0, 0, 1, -1, 1, 0, 1]
    func run(_ shards: Int) throws -> (PreferenceTrainer, TinyDenoiser) {
        let policy = TinyDenoiser(seed: 2)
        var config = PreferenceTrainingConfig()
        config.objective = .dpo(PreferenceLossConfig(kind: .sigmoid, beta: 500))
        config.steps = 3; config.batchSize = 4; config.accumulation = 2; config.gradShards = shards
        config.optimizer = OptimizerSettings(lr: 3e-3)
        let t = try PreferenceTrainer(policy: policy, reference: policy.frozenCopy(),
                                      labeled: try LabelledPairs(pairs, labels: .perPair(labels)), config: config)
        try t.train()
        return (t, policy)
    }
    let (whole, p1) = try run(1), (cut, p4) = try run(4)
    for ((_, a), (_, b)) in zip(p1.parameters(), p4.parameters()) {
        for (x, y) in zip(a.data, b.data) { #expect(abs(x - y) <= 1e-5 * max(1, abs(x)), "\(x) vs \(y)") }
    }
    // Step 1 starts from the same weights: the loss (a mean over the labelled pairs of the whole
    // batch, recombined from the shards) agrees to rounding; later steps to the weights' rounding.
    #expect(abs(whole.history[0].loss - cut.history[0].loss) <= 1e-9 * whole.history[0].loss)
    for (m1, m4) in zip(whole.history, cut.history) {
        #expect(abs(m1.loss - m4.loss) <= 1e-4 * abs(m1.loss), "loss \(m1.loss) vs \(m4.loss)")
        #expect(m1.implicitAccuracy == m4.implicitAccuracy)
        #expect(abs(m1.gradNorm - m4.gradNorm) <= 1e-4 * m1.gradNorm)
    }
    // The same shards twice: the same bits.
    let (_, again) = try run(4)
    for ((_, a), (_, b)) in zip(p4.parameters(), again.parameters()) { #expect(a.data == b.data) }

    var bad = PreferenceTrainingConfig()
    bad.batchSize = 4; bad.gradShards = 3
    #expect(throws: CoreError("batch_size = 4 must be a multiple of grad_shards = 3 (each shard takes an equal slice)")) { try bad.validate() }
    bad.gradShards = 2; bad.objective = .kto(beta: 100)
    #expect(throws: CoreError.self) { try bad.validate() }
}
