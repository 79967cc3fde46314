// Online Semi-DPO (§6.7): the ensemble combiners on a hand-worked z table, the ensemble pass against
// the single-couple confidence pass, generated pairs (shape, ids, determinism with a seed and across
// thread counts), and the self-label audit on a hand-worked case.
import Foundation
import Testing
@testable import Core

/// Two couples' z for 3 pairs × 2 anchors (rows = pairs, columns = anchors 50, 450).
private func handTables() throws -> [ConfidenceTable] {
    let a = try ConfidenceTable(anchors: [50, 450], ids: [7, 8, 9], values: [ 2.0, -1.0,
                                                                            -3.0, -4.0,
                                                                             0.5,  0.0])
    let b = try ConfidenceTable(anchors: [50, 450], ids: [7, 8, 9], values: [ 4.0,  3.0,
                                                                            -1.0, -2.0,
                                                                            -0.5,  6.0])
    return [a, b]
}

@Test func ensembleCombinersOnAHandWorkedTable() throws {
    let t = try handTables()
    // mean: (z_a + z_b) / 2 per entry.
    //   pair 7: (2+4)/2 = 3, (−1+3)/2 = 1;  pair 8: (−3−1)/2 = −2, (−4−2)/2 = −3;  pair 9: (0.5−0.5)/2 = 0, (0+6)/2 = 3
    #expect(try combineEnsemble(t, rule: .mean).values == [3, 1, -2, -3, 0, 3])
    // agree: the mean where both signs are the same and non-zero, else 0.
    //   pair 7: 3 (both +), 0 (−1 vs +3);  pair 8: −2, −3 (both −);  pair 9: 0 (+ vs −), 0 (a is exactly 0)
    #expect(try combineEnsemble(t, rule: .agree).values == [3, 0, -2, -3, 0, 0])
    // A custom rule sees the members' z in couple order, the anchor and the pair id: here z_a·z_b + anchor/1000 + id.
    let custom = try combineEnsemble(t, rule: .custom { z, anchor, id in z[0] * z[1] + Double(anchor) / 1000 + Double(id) })
    let products: [Double] = [8, -3, 3, 8, -0.25, 0], anchorTerms: [Double] = [0.05, 0.45], idTerms: [Double] = [7, 8, 9]
    let expected: [Double] = (0..<6).map { products[$0] + anchorTerms[$0 % 2] + idTerms[$0 / 2] }
    #expect(custom.values == expected)
    // One member: mean and agree return it (agree zeroes only exact zeros).
    #expect(try combineEnsemble([t[0]], rule: .mean).values == t[0].values)
    #expect(try combineEnsemble([t[0]], rule: .agree).values == [2, -1, -3, -4, 0.5, 0])
    // NaN propagates through the built-in rules.
    let withNaN = try ConfidenceTable(anchors: [50, 450], ids: [7, 8, 9], values: [.nan, 1, 1, 1, 1, 1])
    #expect(try combineEnsemble([withNaN, t[1]], rule: .agree).values[0].isNaN)
}

@Test func ensembleCombinerRejectsMismatchedMembers() throws {
    let t = try handTables()
    let otherIds = try ConfidenceTable(anchors: [50, 450], ids: [7, 9, 8], values: t[1].values)
    #expect(throws: CoreError.self) { try combineEnsemble([t[0], otherIds], rule: .mean) }
    let otherAnchors = try ConfidenceTable(anchors: [50, 550], ids: [7, 8, 9], values: t[1].values)
    #expect(throws: CoreError.self) { try combineEnsemble([t[0], otherAnchors], rule: .mean) }
    #expect(throws: CoreError.self) { try combineEnsemble([], rule: .mean) }
    #expect(throws: CoreError.self) { try combineEnsemble(t, rule: .custom { _, _, _ in .infinity }) }
}

/// Each member of the ensemble is exactly the single-couple confidence pass; a model shared by two
/// couples (round i − 1 as policy and as reference) changes nothing.
@Test func ensembleMembersEqualTheConfidencePass() throws {
    let pairs = try toyPairs(5, seed: 31, separable: false)
    let m2 = TinyDenoiser(seed: 1), m1 = TinyDenoiser(seed: 2), m0 = TinyDenoiser(seed: 3)
    let config = ConfidencePassConfig(anchors: [50, 550, 950], beta: 100, batchSize: 2, seed: 6)
    let e = try ensembleConfidence(couples: [(m2, m1), (m1, m0)], pairs: pairs, config: config, rule: .mean)
    let a = try confidencePass(model: m2, reference: m1, pairs: pairs, config: config)
    let b = try confidencePass(model: m1, reference: m0, pairs: pairs, config: config)
    #expect(e.members.count == 2)
    #expect(e.members[0].values == a.values && e.members[1].values == b.values)
    #expect(e.combined.values == zip(a.values, b.values).map { ($0 + $1) / 2 })
    #expect(e.combined.ids == pairs.ids && e.combined.anchors == [50, 550, 950])
    // Same object as model and reference is refused.
    #expect(throws: CoreError.self) { try ensembleConfidence(couples: [(m1, m1)], pairs: pairs, config: config, rule: .mean) }
}

/// Two diffusion models run concurrently in the ensemble pass: still the same bits as the pass.
@Test func ensembleOfDiffusionModelsEqualsTheConfidencePass() throws {
    Engine.threadsLock.lock()
    defer { Engine.threadsLock.unlock() }
    let saved = Engine.threads
    defer { Engine.setThreads(saved) }
    Engine.setThreads(2)
    let base = try DiffusionModel(config: .tiny(vocabulary: Vocabulary.words), seed: 4)
    let tuned = base.clone()
    for (_, p) in tuned.parameters() { p.data = p.data.enumerated().map { $0.element + 0.02 * Float($0.offset % 5 - 2) } }
    let pairs = try generatePairs(model: base, prompts: ["a red circle", "two blue squares", "a green triangle"],
                                  config: PairGenerationConfig(first: SamplerConfig(steps: 3, guidanceScale: 2), seed: 5))
    let config = ConfidencePassConfig(anchors: [150, 750], beta: 500, batchSize: 2, seed: 1)
    let e = try ensembleConfidence(couples: [(tuned, base)], pairs: pairs, config: config, rule: .agree)
    let single = try confidencePass(model: tuned, reference: base, pairs: pairs, config: config)
    #expect(e.members[0].values == single.values)
    // The im2col convolutions round differently (≈ 1e-5 of each mse; z = β·Δ amplifies it): close, not equal.
    let w = try ensembleConfidence(couples: [(tuned, base)], pairs: pairs, config: config, rule: .agree, winograd: false)
    let gap = zip(w.members[0].values, single.values).map { Swift.abs($0 - $1) }.max() ?? .infinity
    #expect(gap < 0.05 && w.members[0].values != single.values, "gap \(gap)")
}

@Test func generatedPairsShapeIdsAndDeterminism() throws {
    Engine.threadsLock.lock()
    defer { Engine.threadsLock.unlock() }
    let saved = Engine.threads
    defer { Engine.setThreads(saved) }
    let model = try DiffusionModel(config: .tiny(vocabulary: Vocabulary.words), seed: 2)
    let prompts = ["a red circle", "two blue squares", "a green triangle", "a yellow square"]
    let config = PairGenerationConfig(first: SamplerConfig(steps: 4, guidanceScale: 3, batchSize: 3), seed: 11, firstID: 100)
    Engine.setThreads(2)
    let g = try generatePairs(model: model, prompts: prompts, config: config)
    #expect(g.count == 4 && g.ids == [100, 101, 102, 103] && g.imageShape == [3, 8, 8] && g.prompts == prompts)
    #expect(g.pairs.winners.count == 4 * 192 && g.pairs.losers.count == 4 * 192)
    #expect(g.pairs.winners != g.pairs.losers)                   // different noise per image
    #expect(g.pairs.winners.allSatisfy { $0 >= -1 && $0 <= 1 })
    // Image k of pair j is the sampler's image from SampleID(seed, 2j + k).
    let direct = try Sampler.sample(model, tokens: try model.tokenize([prompts[1], prompts[1]]),
                                    ids: [SampleID(seed: 11, index: 202), SampleID(seed: 11, index: 203)],
                                    imageShape: [3, 8, 8], config: config.first)
    // (Other batches around the same image may round differently: compare to 1e-4.)
    func maxDiff(_ x: [Float], _ y: ArraySlice<Float>) -> Float { zip(x, y).map { Swift.abs($0 - $1) }.max() ?? .infinity }
    let b = try g.batch([1])
    #expect(maxDiff(b.winners.data, direct.data[0..<192]) < 1e-4 && maxDiff(b.losers.data, direct.data[192...]) < 1e-4)
    // Same seed: the same pairs, at 1 thread as at 2; another seed: other pairs.
    Engine.setThreads(1)
    let again = try generatePairs(model: model, prompts: prompts, config: config)
    #expect(again.pairs.winners == g.pairs.winners && again.pairs.losers == g.pairs.losers)
    var other = config; other.seed = 12
    #expect(try generatePairs(model: model, prompts: prompts, config: other).pairs.winners != g.pairs.winners)
    // Image 1 with other sampler settings (here no guidance): image 0 is unchanged, image 1 differs.
    var mixed = config; mixed.second = SamplerConfig(steps: 4, guidanceScale: nil, batchSize: 3)
    let m = try generatePairs(model: model, prompts: prompts, config: mixed)
    #expect(maxDiff(m.pairs.winners, g.pairs.winners[...]) < 1e-4 && maxDiff(m.pairs.losers, g.pairs.losers[...]) > 1e-3)
    // Truth: oracle scores, image 0 as "winner"; a subset keeps rows, prompts and scores.
    let truth = try g.truth()
    #expect(truth.dimensions == ["alignment", "aesthetics", "detail", "overall"] && truth.count == 4)
    let oracle = try Oracle(size: 8)
    let s0 = try oracle.score(Array(g.pairs.winners[192..<384]), scene: try PromptGrammar.parse(prompts[1]))
    #expect(truth.winner[1] == s0.array + [s0.overall])
    let sub = try g.subset([3, 1])
    let subTruth = try sub.truth()
    #expect(sub.ids == [103, 101] && sub.prompts == [prompts[3], prompts[1]] && subTruth.winner[1] == truth.winner[1])
    // Rater labels are a function of (seed, id): a subset gets the same labels for the same ids.
    let raters = try g.raterLabels(seed: 3)
    #expect(raters.count == 4 && raters.allSatisfy { $0 >= -1 && $0 <= 1 })
    #expect(try sub.raterLabels(seed: 3) == [raters[3], raters[1]])
    // A prompt outside the world's grammar can be sampled but has no truth.
    let odd = try generatePairs(model: model, prompts: ["red red"], config: config)
    #expect(throws: CoreError.self) { try odd.truth() }
    #expect(throws: CoreError.self) { try generatePairs(model: model, prompts: [], config: config) }
}

/// The audit on 4 pairs, 2 anchors, by hand. Truth (image 0 − image 1) per dimension (a, b, overall):
///   pair 0: (+, −, +)   pair 1: (−, −, −)   pair 2: (+, +, +)   pair 3: (0, +, +)
/// Raters: +1, +1, 0, −1. Self-labels at anchor 50: +1, −1, 0, +1; at anchor 950: −1, 0, +1, 0.
@Test func selfLabelAuditOnAHandWorkedCase() throws {
    let truth = try PairTruth(dimensions: ["a", "b", "overall"],
                              winner: [[1, 0, 1], [0, 0, 0], [1, 1, 1], [0.5, 1, 1]],
                              loser: [[0, 1, 0], [1, 1, 1], [0, 0, 0], [0.5, 0, 0]])
    let labels = try AnchorLabels(anchors: [50, 950], labels: [1, -1, -1, 0, 0, 1, 1, 0])
    let audit = try auditSelfLabels(truth: truth, raters: [1, 1, 0, -1], labels: [labels], names: ["round 1"])
    #expect(audit.rows.count == 3)
    // Anchor 50: labelled pairs 0 (+1), 1 (−1), 3 (+1).
    //   self acc a: pair0 + vs + → 1, pair1 − vs − → 1, pair3 tie → ½  ⇒ 2.5/3
    //   self acc b: pair0 − vs + → 0, pair1 1, pair3 1 ⇒ 2/3;  overall: 1, 1, 1 ⇒ 1
    //   raters on the same pairs (none tied): pair0 +1, pair1 +1, pair3 −1
    //     a: 1, 0, ½ ⇒ 1.5/3;  b: 0, 0, 0 ⇒ 0;  overall: 1, 0, 0 ⇒ 1/3;  agreement: pair0 yes, pair1 no, pair3 no ⇒ 1/3
    let r50 = audit.rows[0]
    #expect(r50.anchor == 50 && r50.labelled == 3 && r50.raterTies == 0)
    #expect(r50.accuracy == [2.5 / 3, 2.0 / 3, 1] && r50.raterAccuracy == [0.5, 0, 1.0 / 3] && r50.agreement == 1.0 / 3)
    // Anchor 950: labelled pairs 0 (−1), 2 (+1); pair 2's raters tied.
    //   self a: 0, 1 ⇒ ½;  b: 1, 1 ⇒ 1;  overall: 0, 1 ⇒ ½;  raters (pair 0 only, +1): a 1, b 0, overall 1; agreement 0
    let r950 = audit.rows[1]
    #expect(r950.labelled == 2 && r950.raterTies == 1)
    #expect(r950.accuracy == [0.5, 1, 0.5] && r950.raterAccuracy == [1, 0, 1] && r950.agreement == 0)
    // All anchors pooled: 5 labels; self a (2.5 + 1)/5, b (2 + 2)/5, overall (3 + 1)/5; raters over 4 non-tie entries.
    let all = audit.rows[2]
    #expect(all.anchor == nil && all.labelled == 5 && all.raterTies == 1)
    #expect(all.accuracy == [3.5 / 5, 4.0 / 5, 4.0 / 5] && all.raterAccuracy == [2.5 / 4, 0, 2.0 / 4] && all.agreement == 1.0 / 4)
    // The raters on every pair: pairs 0, 1, 3 (pair 2 tied): a 1, 0, ½; b 0, 0, 0; overall 1, 0, 0.
    #expect(audit.raterPairs == 4 && audit.raterAllTies == 1 && audit.raterAllAccuracy == [0.5, 0, 1.0 / 3])
    #expect(audit.table.markdown.contains("Self overall (%)"))
    #expect(throws: CoreError.self) { try auditSelfLabels(truth: truth, raters: [1, 1, 0], labels: [labels], names: ["x"]) }
    #expect(throws: CoreError.self) { try auditSelfLabels(truth: truth, raters: [1, 1, 0, 2], labels: [labels], names: ["x"]) }
}
