// The pseudo-label audit on a hand-built example whose every count is worked out below.
import Testing
@testable import Core

/// Dimensions (alignment, aesthetics, detail, overall); Δ = winner − loser:
///   pair 0: Δ = (+, −, 0, +)   human label agrees with the overall truth
///   pair 1: Δ = (−, −, −, −)   human label opposes it
///   pair 2: Δ = (0, +, −, 0)   overall tie
///   pair 3: Δ = (−, +, +, +)   agrees
/// Iteration 1, anchor 50, labels (+1, −1, 0, −1): labelled pairs 0, 1, 3 (n = 3)
///   alignment  y·sign(Δ): +, +, +          → 3/3
///   aesthetics            −, +, −          → 1/3
///   detail                tie, +, −        → 1.5/3 = 0.5
///   overall               +, +, −          → 2/3;  human (+1 each): +, −, + → 2/3
///   opposed {1}, flipped right {1}; agreed {0, 3}, flipped wrong {3}
/// Iteration 1, anchor 950, labels (0, +1, +1, +1): pairs 1, 2, 3
///   alignment −, tie, − → 0.5/3;  aesthetics −, +, + → 2/3;  detail −, −, + → 1/3
///   overall −, tie, + → 1.5/3 = 0.5 (= human);  opposed {1} flipped 0; agreed {3} flipped 0
/// Iteration 1, all anchors: n = 6; overall 3.5/6, alignment 3.5/6, aesthetics 3/6, detail 2.5/6,
///   human 3.5/6; opposed 2, flipped right 1, agreed 3, flipped wrong 1.
/// Iteration 2, anchor 50, labels (+1, −1, −1, +1): overall +, +, tie, + → 3.5/4; opposed 1 flipped 1;
///   agreed 2 flipped 0. Anchor 950 all 0: nothing labelled, accuracies NaN.
@Test func auditCountsOnAHandWorkedExample() throws {
    let truth = try PairTruth(dimensions: ["alignment", "aesthetics", "detail", "overall"],
                              winner: [[0.9, 0.2, 0.5, 0.6], [0.2, 0.3, 0.3, 0.3], [0.5, 0.9, 0.1, 0.5], [0.1, 0.2, 0.9, 0.4]],
                              loser: [[0.1, 0.8, 0.5, 0.4], [0.8, 0.4, 0.9, 0.7], [0.5, 0.1, 0.6, 0.5], [0.3, 0.1, 0.2, 0.3]])
    // Row-major (pairs, anchors [50, 950]).
    let iter1 = try AnchorLabels(anchors: [50, 950], labels: [1, 0, -1, 1, 0, 1, -1, 1])
    let iter2 = try AnchorLabels(anchors: [50, 950], labels: [1, 0, -1, 0, -1, 0, 1, 0])
    let audit = try auditPseudoLabels(truth: truth, labels: [iter1, iter2])
    #expect(audit.rows.count == 6)
    func close(_ a: [Double], _ b: [Double]) -> Bool { zip(a, b).allSatisfy { Swift.abs($0 - $1) < 1e-12 } }
    let r50 = audit.rows[0], r950 = audit.rows[1], all1 = audit.rows[2], r2 = audit.rows[3], empty = audit.rows[4]
    #expect(r50.iteration == 1 && r50.anchor == 50 && r50.labelled == 3)
    #expect(close(r50.accuracy, [1, 1.0 / 3, 0.5, 2.0 / 3]) && Swift.abs(r50.humanAccuracy - 2.0 / 3) < 1e-12)
    #expect(r50.opposed == 1 && r50.flippedRight == 1 && r50.agreed == 2 && r50.flippedWrong == 1)
    #expect(r950.anchor == 950 && r950.labelled == 3)
    #expect(close(r950.accuracy, [0.5 / 3, 2.0 / 3, 1.0 / 3, 0.5]) && r950.humanAccuracy == 0.5)
    #expect(r950.opposed == 1 && r950.flippedRight == 0 && r950.agreed == 1 && r950.flippedWrong == 0)
    #expect(all1.anchor == nil && all1.labelled == 6)
    #expect(close(all1.accuracy, [3.5 / 6, 3.0 / 6, 2.5 / 6, 3.5 / 6]) && Swift.abs(all1.humanAccuracy - 3.5 / 6) < 1e-12)
    #expect(all1.opposed == 2 && all1.flippedRight == 1 && all1.agreed == 3 && all1.flippedWrong == 1)
    #expect(r2.iteration == 2 && r2.labelled == 4 && Swift.abs(r2.accuracy[3] - 3.5 / 4) < 1e-12)
    #expect(r2.opposed == 1 && r2.flippedRight == 1 && r2.agreed == 2 && r2.flippedWrong == 0)
    #expect(empty.labelled == 0 && empty.accuracy.allSatisfy(\.isNaN) && empty.opposed == 0)
    let md = audit.table.markdown
    #expect(md.contains("| 1 | 50 | 3 | 100.0 | 33.3 | 50.0 | 66.7 | 66.7 | 1 | 1 | 2 | 1 |"))
    #expect(md.contains("| 2 | 950 | 0 | — | — | — | — | — | 0 | 0 | 0 | 0 |"))
    // Mismatched sizes are errors.
    #expect(throws: CoreError.self) { try auditPseudoLabels(truth: truth, labels: [try AnchorLabels(anchors: [50], labels: [1, 1])]) }
    #expect(throws: CoreError.self) { try PairTruth(dimensions: ["a"], winner: [[1, 2]], loser: [[1, 2]]) }
}

@Test func anchorLabelsAlignByIdAndDropUnknownMarkers() throws {
    // File rows for ids 7 and 3 (−128 = a reader's "absent" marker); the source has ids 3, 5, 7.
    let a = try AnchorLabels(anchors: [50, 150], ids: [7, 3], labels: [1, -128, -1, 0], alignedTo: [3, 5, 7])
    #expect(a.labels == [-1, 0, 0, 0, 1, 0])
    #expect(throws: CoreError.self) { try AnchorLabels(anchors: [50], labels: [2]) }
}
