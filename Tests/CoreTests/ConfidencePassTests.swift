// Tests of the confidence pass (batch-size and order independence, one noise per pair reused across
// anchors, progress, bad input) and of accuracy per anchor on a hand-built z table.
import Foundation
import Testing
@testable import Core

@Test func confidencePassDoesNotDependOnBatchSizeOrOrder() throws {
    let pairs = try toyPairs(7, seed: 21, separable: false)
    let model = TinyDenoiser(seed: 1), reference = TinyDenoiser(seed: 2)
    var results: [ConfidenceTable] = []
    for batchSize in [1, 3, 16] {
        results.append(try confidencePass(model: model, reference: reference, pairs: pairs,
                                          config: ConfidencePassConfig(beta: 100, batchSize: batchSize, seed: 4)))
    }
    let base = results[0]
    #expect(base.values.count == 70 && base.ids == pairs.ids)
    #expect(base.values.allSatisfy { $0 != 0 && $0.isFinite })
    for r in results.dropFirst() {
        for i in 0..<70 { #expect(Swift.abs(r.values[i] - base.values[i]) <= 1e-4 * max(1, Swift.abs(base.values[i]))) }
    }
    // The same pairs in reverse order get the same z per id (noise is keyed by id, not position).
    let reversed = try pairs.subset(Array((0..<7).reversed()))
    let r = try confidencePass(model: model, reference: reference, pairs: reversed,
                               config: ConfidencePassConfig(beta: 100, batchSize: 3, seed: 4))
    for k in 0..<7 {
        let i = 6 - k
        for j in 0..<10 { #expect(Swift.abs(r.value(row: k, anchor: j) - base.value(row: i, anchor: j)) <= 1e-4 * max(1, Swift.abs(base.value(row: i, anchor: j)))) }
    }
    // Another seed draws other noise.
    let other = try confidencePass(model: model, reference: reference, pairs: pairs,
                                   config: ConfidencePassConfig(beta: 100, batchSize: 3, seed: 5))
    #expect(other.values != base.values)
}

@Test func confidencePassReusesOneNoisePerPairAcrossAnchors() throws {
    let pairs = try toyPairs(5, seed: 22, separable: false)
    let model = RecordingDenoiser(TinyDenoiser(seed: 1))
    let anchors = [50, 450, 950]
    var progress: [(Int, Int)] = []
    _ = try confidencePass(model: model, reference: TinyDenoiser(seed: 2), pairs: pairs,
                           config: ConfidencePassConfig(anchors: anchors, beta: 100, batchSize: 2, seed: 9)) { progress.append(($0, $1)) }
    #expect(progress.map(\.0) == [2, 4, 5] && progress.allSatisfy { $0.1 == 5 })
    #expect(model.calls.count == 3 * anchors.count)          // 3 batches × 3 anchors
    let m = 48
    for (c, call) in model.calls.enumerated() {
        let start = (c / anchors.count) * 2, b = call.x.shape[0] / 2
        let t = anchors[c % anchors.count]
        #expect(call.timesteps == [Int](repeating: t, count: 2 * b))
        let (s, sigma) = model.schedule.noisingCoefficients(t)
        for i in 0..<b {
            let row = start + i
            let eps = confidenceNoise(id: pairs.ids[row], seed: 9, shape: [3, 4, 4]).data
            for k in 0..<m {
                let fromWinner = (call.x.data[i * m + k] - s * pairs.winners[row * m + k]) / sigma
                let fromLoser = (call.x.data[(b + i) * m + k] - s * pairs.losers[row * m + k]) / sigma
                #expect(Swift.abs(fromWinner - eps[k]) < 1e-4 && Swift.abs(fromLoser - eps[k]) < 1e-4,
                        "anchor \(t) pair \(row) element \(k)")
            }
        }
    }
}

@Test func accuracyPerAnchorOnAHandBuiltTable() throws {
    // rows = pairs, columns = anchors 50, 150, 250:
    //   anchor 50:  1, 2, −3, 0.1   → 3 of 4 positive                          = 0.75
    //   anchor 150: −1, 0, −1, 0    → two ties at ½ each: 1/4                    = 0.25
    //   anchor 250: 0, NaN, 0.5, NaN → NaN skipped: (½ + 1) / 2                  = 0.75
    let nan = Double.nan
    let table = try ConfidenceTable(anchors: [50, 150, 250], ids: [1, 2, 3, 4],
                                    values: [1, -1, 0, 2, 0, nan, -3, -1, 0.5, 0.1, 0, nan])
    #expect(table.accuracy() == [0.75, 0.25, 0.75])
    #expect(table.accuracyTable().markdown.contains("| Accuracy (%) | 75.0 | 25.0 | 75.0 |"))
    let empty = try ConfidenceTable(anchors: [50], ids: [1], values: [nan])
    #expect(empty.accuracyTable().markdown.contains("| Accuracy (%) | — |"))
}

@Test func confidencePassRoundTripsThroughTheOfficialShardFormat() throws {
    let pairs = try toyPairs(5, seed: 24, separable: false)
    let table = try confidencePass(model: TinyDenoiser(seed: 1), reference: TinyDenoiser(seed: 2), pairs: pairs,
                                   config: ConfidencePassConfig(anchors: [50, 550, 950], beta: 100, batchSize: 2, seed: 1))
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("semidpo-conf-\(getpid())").path
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try table.write(to: dir, shards: 2)
    let back = try ConfidenceTable.read(dir)
    #expect(back.anchors == [50, 550, 950])
    #expect(Set(back.ids) == Set(pairs.ids))
    for (r, id) in back.ids.enumerated() {
        let src = try #require(table.ids.firstIndex(of: id))
        for j in 0..<3 { #expect(back.value(row: r, anchor: j) == table.value(row: src, anchor: j)) }
    }
    let first = try String(contentsOfFile: "\(dir)/confidence_rank000.jsonl", encoding: .utf8).split(separator: "\n")[0]
    #expect(first.hasPrefix("{\"idx\": 100, \"timestep_50\": "))
}

@Test func badConfidenceSettingsAreCoreErrors() throws {
    let pairs = try toyPairs(2, seed: 23)
    let m = TinyDenoiser(seed: 1), r = TinyDenoiser(seed: 2)
    for config in [ConfidencePassConfig(anchors: [50, 50]), ConfidencePassConfig(anchors: [1000]),
                   ConfidencePassConfig(anchors: []), ConfidencePassConfig(batchSize: 0), ConfidencePassConfig(beta: 0)] {
        #expect(throws: CoreError.self) { try confidencePass(model: m, reference: r, pairs: pairs, config: config) }
    }
}
