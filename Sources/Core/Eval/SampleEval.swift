// Scores images (a model's samples or the world's renders) with the world's oracle over a prompt
// list: per-dimension and overall means, and how often the requested colours and shapes appear.
import Foundation

/// What `SampleEval.evaluate` measured over N images.
public struct SampleEvalReport: Sendable {
    public var count: Int
    /// Means of the oracle's scores over the images.
    public var alignment: Double, aesthetics: Double, detail: Double, overall: Double
    /// Share of prompt object groups with a colour for which an image shows an object of that
    /// colour (each detection serves one group); `colourGroups` groups were checked.
    public var colourCorrect: Double
    public var colourGroups: Int
    /// Share of object groups for which an image shows an object whose best-fitting shape template
    /// is the requested shape (`Detection.shape`; stricter than the oracle's `consistent(with:)`,
    /// which accepts any template within 0.06 IoU of the best and so lets a blob pass as most shapes).
    public var shapeCorrect: Double
    public var shapeGroups: Int
    /// The same two rates with every image checked against another prompt of the list (image i vs
    /// prompt (i + ⌊N/2⌋) mod N): what an image that ignores its prompt scores. NaN when N < 2.
    public var chanceColour: Double
    public var chanceShape: Double
    /// Share of images passing the oracle's GenEval-style exact check (every group's count, shape and
    /// colour, and the position/relation).
    public var exactPass: Double
    /// Per-image oracle scores, in input order.
    public var perImage: [QualityScores]

    /// The report as a dictionary with snake_case keys (for Lua, YAML and JSON).
    public var dictionary: [String: Any] {
        ["count": count, "alignment": alignment, "aesthetics": aesthetics, "detail": detail, "overall": overall,
         "colour_correct": colourCorrect, "colour_groups": colourGroups, "shape_correct": shapeCorrect,
         "shape_groups": shapeGroups, "chance_colour": chanceColour, "chance_shape": chanceShape, "exact_pass": exactPass]
    }
}

public enum SampleEval {
    /// Colour and shape hits of one oracle report against `scene`: for each object group, a
    /// not-yet-used detection of the requested colour (resp. whose best-fitting shape template is the
    /// requested shape) counts as a hit. Returns (colour hits, groups with a colour, shape hits, groups).
    public static func correctness(_ report: OracleReport, scene: SceneSpec) -> (colourHits: Int, colourGroups: Int, shapeHits: Int, shapeGroups: Int) {
        var usedColour = [Bool](repeating: false, count: report.detections.count)
        var usedShape = usedColour
        var ch = 0, cg = 0, sh = 0
        for g in scene.objects {
            if let c = g.colour {
                cg += 1
                // The largest unused detection of that colour.
                if let j = report.detections.indices.filter({ !usedColour[$0] && report.detections[$0].colour == c })
                    .max(by: { report.detections[$0].pixels < report.detections[$1].pixels }) {
                    usedColour[j] = true; ch += 1
                }
            }
            if let j = report.detections.indices.filter({ !usedShape[$0] && report.detections[$0].shape == g.shape })
                .max(by: { report.detections[$0].pixels < report.detections[$1].pixels }) {
                usedShape[j] = true; sh += 1
            }
        }
        return (ch, cg, sh, scene.objects.count)
    }

    /// Scores `images` ((N, 3, S, S) flat, CHW in [−1, 1]) against `scenes` (one per image) on
    /// `threads` threads (fixed partition; results do not depend on it).
    public static func evaluate(images: [Float], scenes: [SceneSpec], size: Int = 16, threads: Int = 2) throws -> SampleEvalReport {
        let n = scenes.count, d = 3 * size * size
        guard n >= 1 else { throw CoreError("sample eval: no prompts") }
        guard images.count == n * d else {
            throw CoreError("sample eval: \(n) prompts need \(n) images of 3×\(size)×\(size) (\(n * d) values), got \(images.count) values")
        }
        let oracle = try Oracle(size: size)
        // Per image: scores, exact pass, (ch, cg, sh, sg) on its prompt, (ch, sh) on the shifted prompt.
        struct Row { var scores: QualityScores; var exact: Bool; var own: (Int, Int, Int, Int); var chance: (Int, Int, Int, Int) }
        let rows = UnsafeMutablePointer<Row?>.allocate(capacity: n)
        rows.initialize(repeating: nil, count: n)
        defer { rows.deinitialize(count: n); rows.deallocate() }
        var failure: Error?
        let lock = NSLock()
        let parts = max(1, min(threads, n))
        let body = { (t: Int) in
            for i in (t * n / parts)..<((t + 1) * n / parts) {
                do {
                    let image = Array(images[(i * d)..<((i + 1) * d)])
                    let own = try oracle.evaluate(image, scene: scenes[i])
                    let other = scenes[(i + n / 2) % n]
                    let shifted = n >= 2 ? try oracle.evaluate(image, scene: other) : own
                    rows[i] = Row(scores: own.scores, exact: own.genevalPass, own: correctness(own, scene: scenes[i]),
                                  chance: correctness(shifted, scene: other))
                } catch {
                    lock.lock(); if failure == nil { failure = error }; lock.unlock()
                }
            }
        }
        if parts == 1 { body(0) } else { DispatchQueue.concurrentPerform(iterations: parts, execute: body) }
        if let failure { throw failure }
        var sums = [Double](repeating: 0, count: 4), exact = 0
        var own = (0, 0, 0, 0), chance = (0, 0, 0, 0)
        var perImage: [QualityScores] = []
        perImage.reserveCapacity(n)
        for i in 0..<n {
            let r = rows[i]!
            perImage.append(r.scores)
            sums[0] += Double(r.scores.alignment); sums[1] += Double(r.scores.aesthetics)
            sums[2] += Double(r.scores.detail); sums[3] += Double(r.scores.overall)
            if r.exact { exact += 1 }
            own = (own.0 + r.own.0, own.1 + r.own.1, own.2 + r.own.2, own.3 + r.own.3)
            chance = (chance.0 + r.chance.0, chance.1 + r.chance.1, chance.2 + r.chance.2, chance.3 + r.chance.3)
        }
        func rate(_ a: Int, _ b: Int) -> Double { b > 0 ? Double(a) / Double(b) : .nan }
        let N = Double(n)
        return SampleEvalReport(count: n, alignment: sums[0] / N, aesthetics: sums[1] / N, detail: sums[2] / N, overall: sums[3] / N,
                                colourCorrect: rate(own.0, own.1), colourGroups: own.1,
                                shapeCorrect: rate(own.2, own.3), shapeGroups: own.3,
                                chanceColour: n >= 2 ? rate(chance.0, chance.1) : .nan,
                                chanceShape: n >= 2 ? rate(chance.2, chance.3) : .nan,
                                exactPass: Double(exact) / N, perImage: perImage)
    }

    /// A Markdown table comparing reports (one column per named report).
    public static func markdown(_ reports: [(name: String, report: SampleEvalReport)]) -> String {
        func f(_ x: Double) -> String { x.isNaN ? "–" : String(format: "%.3f", x) }
        var s = "| oracle score | " + reports.map(\.name).joined(separator: " | ") + " |\n"
        s += "|---|" + reports.map { _ in "---:|" }.joined() + "\n"
        let rows: [(String, (SampleEvalReport) -> String)] = [
            ("images", { String($0.count) }),
            ("alignment", { f($0.alignment) }), ("aesthetics", { f($0.aesthetics) }),
            ("detail", { f($0.detail) }), ("overall", { f($0.overall) }),
            ("correct colour", { f($0.colourCorrect) }), ("correct colour, chance (shifted prompts)", { f($0.chanceColour) }),
            ("correct shape", { f($0.shapeCorrect) }), ("correct shape, chance (shifted prompts)", { f($0.chanceShape) }),
            ("exact pass (count, shape, colour, place)", { f($0.exactPass) }),
        ]
        for (name, value) in rows { s += "| \(name) | " + reports.map { value($0.report) }.joined(separator: " | ") + " |\n" }
        return s
    }
}
