// The oracle: scores any image (rendered or generated) for a prompt from pixels alone, per quality
// dimension in [0, 1], and GenEval-like pass/fail. Evaluation only — never used for training.

/// A connected foreground region found by the oracle.
public struct Detection: Sendable, Equatable {
    public var pixels: Int
    public var centroid: (x: Float, y: Float)
    public var bbox: (x0: Int, y0: Int, x1: Int, y1: Int)
    /// Mean colour in [0, 1].
    public var meanRGB: (Float, Float, Float)
    /// Nearest palette colour after undoing a blend with the background, and the blend opacity.
    public var colour: Colour
    public var opacity: Float
    /// Best-matching shape and its template IoU.
    public var shape: Shape
    public var shapeIoU: Float
    /// Radius of the fitted template, in pixels.
    public var radius: Float
    /// Best template IoU per shape (indexed by `Shape.rawValue`).
    public var shapeIoUs: [Float]
    /// True if `shape` fits nearly as well as the best shape (within 0.06 IoU): at 16×16 with blur
    /// and jagged edges, neighbouring shapes differ by a few pixels.
    public func consistent(with shape: Shape) -> Bool { shapeIoUs[shape.rawValue] >= shapeIoU - 0.06 }
    public static func == (a: Detection, b: Detection) -> Bool {
        a.pixels == b.pixels && a.colour == b.colour && a.shape == b.shape && a.bbox == b.bbox
    }
}

/// Per-dimension scores in [0, 1] and their equal-weight mean.
public struct QualityScores: Sendable, Equatable {
    public var alignment: Float
    public var aesthetics: Float
    public var detail: Float
    public var overall: Float { (alignment + aesthetics + detail) / 3 }
    public init(alignment: Float, aesthetics: Float, detail: Float) {
        self.alignment = alignment; self.aesthetics = aesthetics; self.detail = detail
    }
    /// Scores as an array in dimension order (alignment, aesthetics, detail).
    public var array: [Float] { [alignment, aesthetics, detail] }
    public static let dimensionNames = ["alignment", "aesthetics", "detail"]
}

/// The oracle's full judgement of one image.
public struct OracleReport: Sendable {
    public var scores: QualityScores
    public var detections: [Detection]
    public var background: (Float, Float, Float)
    /// GenEval-like: every group has exactly its count with the right shape (and colour if given),
    /// and the position or relation holds.
    public var genevalPass: Bool
    /// Sub-scores, for inspection.
    public var parts: [String: Float]
}

/// The analytic detector-based scorer.
public struct Oracle: Sendable {
    public let size: Int
    let renderer: Renderer
    public init(size: Int = 16) throws { self.size = size; renderer = try Renderer(size: size) }

    /// Scores a CHW image (3×size×size, [-1, 1]) for a scene.
    public func score(_ image: [Float], scene: SceneSpec) throws -> QualityScores {
        try evaluate(image, scene: scene).scores
    }

    public func evaluate(_ image: [Float], scene: SceneSpec) throws -> OracleReport {
        let S = size, plane = S * S
        guard image.count == 3 * plane else { throw CoreError("oracle: expected 3×\(S)×\(S) = \(3 * plane) values, got \(image.count)") }
        // rgb: (3, S, S) in [0, 1]
        var rgb = [Float](repeating: 0, count: 3 * plane)
        for i in 0..<(3 * plane) { let v = image[i]; rgb[i] = v.isFinite ? max(0, min(1, (v + 1) * 0.5)) : 0.5 }

        // 1. Background: per-channel median of the border pixels; noise from their spread.
        var border: [Int] = []
        for x in 0..<S { border.append(x); border.append((S - 1) * S + x) }
        for y in 1..<(S - 1) { border.append(y * S); border.append(y * S + S - 1) }
        var bg: (Float, Float, Float) = (0, 0, 0)
        var tmp = [Float](repeating: 0, count: border.count)
        for c in 0..<3 {
            for (j, i) in border.enumerated() { tmp[j] = rgb[c * plane + i] }
            let m = median(&tmp)
            if c == 0 { bg.0 = m } else if c == 1 { bg.1 = m } else { bg.2 = m }
        }

        // 2. Foreground mask on a smoothed distance-from-background map.
        var rawD = [Float](repeating: 0, count: plane)
        for i in 0..<plane { rawD[i] = dist((rgb[i], rgb[plane + i], rgb[2 * plane + i]), bg) }
        var smooth = [Float](repeating: 0, count: plane)
        for y in 0..<S {
            for x in 0..<S {
                var s: Float = 0, w: Float = 0
                for dy in -1...1 { for dx in -1...1 {
                    let xx = x + dx, yy = y + dy
                    guard xx >= 0, xx < S, yy >= 0, yy < S else { continue }
                    let k: Float = (dx == 0 ? 2 : 1) * (dy == 0 ? 2 : 1)
                    s += k * rawD[yy * S + xx]; w += k
                } }
                smooth[y * S + x] = s / w
            }
        }
        // Noise: robust spread of the raw distance over the border (mostly background).
        for (j, i) in border.enumerated() { tmp[j] = rawD[i] }
        let noiseD = median(&tmp)  // median distance of background pixels from the background colour
        let threshold = max(0.1, min(0.22, 2.2 * noiseD))
        var mask = [Bool](repeating: false, count: plane)
        var level = [Float](repeating: 0, count: plane)
        for i in 0..<plane { level[i] = 0.5 * (smooth[i] + rawD[i]); mask[i] = level[i] > threshold && rawD[i] > 0.7 * threshold }
        // Blur bridges nearby objects with faint halos: drop pixels below 40% of the strongest
        // level within 2 px (a gap between objects is a local minimum, an object edge is not).
        var keep = mask
        for y in 0..<S {
            for x in 0..<S where mask[y * S + x] {
                var peak: Float = 0
                for yy in max(0, y - 2)...min(S - 1, y + 2) { for xx in max(0, x - 2)...min(S - 1, x + 2) { peak = max(peak, level[yy * S + xx]) } }
                if level[y * S + x] < 0.4 * peak { keep[y * S + x] = false }
            }
        }
        mask = keep

        // 3. Connected components (4-connectivity), at least 3 pixels.
        var label = [Int](repeating: -1, count: plane)
        var comps: [[Int]] = []
        var stack: [Int] = []
        for start in 0..<plane where mask[start] && label[start] < 0 {
            var members: [Int] = []
            stack.append(start); label[start] = comps.count
            while let p = stack.popLast() {
                members.append(p)
                let x = p % S, y = p / S
                for q in [x > 0 ? p - 1 : -1, x < S - 1 ? p + 1 : -1, y > 0 ? p - S : -1, y < S - 1 ? p + S : -1]
                where q >= 0 && mask[q] && label[q] < 0 {
                    label[q] = comps.count; stack.append(q)
                }
            }
            comps.append(members)
        }
        var detections: [Detection] = []
        var compIndex: [Int] = []
        // Specks (grain, stray bumps) are not objects: keep components of ≥ 3 px and ≥ 25% of the largest.
        let largest = comps.map(\.count).max() ?? 0
        for (ci, m) in comps.enumerated() where m.count >= max(3, largest / 4) {
            detections.append(describe(m, component: ci, labels: label, rgb: rgb, bg: bg))
            compIndex.append(ci)
        }

        // 4. Alignment: match prompt groups to detections.
        var used = [Bool](repeating: false, count: detections.count)
        var groupScores: [Float] = []
        var groupMembers: [[Int]] = []
        var exact = true
        for g in scene.objects {
            var members: [Int] = []
            for (j, d) in detections.enumerated() where !used[j] && d.consistent(with: g.shape) && (g.colour == nil || d.colour == g.colour) {
                members.append(j)
            }
            // Keep at most `count` exact matches (the largest) for this group; the rest are extras.
            members.sort { detections[$0].pixels > detections[$1].pixels }
            let extrasOfGroup = max(0, members.count - g.count)
            members = Array(members.prefix(g.count))
            for j in members { used[j] = true }
            var partial: Float = 0
            if members.count < g.count {  // near-misses: right shape or right colour
                var near = 0
                for (j, d) in detections.enumerated() where !used[j] && near < g.count - members.count && (d.consistent(with: g.shape) || (g.colour != nil && d.colour == g.colour)) {
                    used[j] = true; near += 1
                }
                partial = 0.4 * Float(near)
            }
            let have = Float(members.count) + partial
            var s = have / Float(g.count)
            s -= 0.5 * Float(extrasOfGroup) / Float(g.count)
            if members.count != g.count || extrasOfGroup > 0 { exact = false }
            groupScores.append(max(0, s))
            groupMembers.append(members)
        }
        var terms = groupScores
        let S1 = Float(S)
        if scene.objects.count == 1, let p = scene.objects[0].position {
            var ok: Float = 0
            if let j = groupMembers[0].first {
                let c = detections[j].centroid
                switch p {
                case .left: ok = c.x < 0.42 * S1 ? 1 : 0
                case .right: ok = c.x > 0.58 * S1 ? 1 : 0
                case .top: ok = c.y < 0.42 * S1 ? 1 : 0
                case .bottom: ok = c.y > 0.58 * S1 ? 1 : 0
                case .centre: ok = abs(c.x - 0.5 * S1) < 0.14 * S1 && abs(c.y - 0.5 * S1) < 0.14 * S1 ? 1 : 0
                }
            }
            if ok < 1 { exact = false }
            terms.append(ok)
        }
        if scene.objects.count == 2, let r = scene.relation, r != .and {
            var ok: Float = 0
            if !groupMembers[0].isEmpty && !groupMembers[1].isEmpty {
                func mean(_ js: [Int]) -> (Float, Float) {
                    let n = Float(js.count)
                    return (js.reduce(0) { $0 + detections[$1].centroid.x } / n, js.reduce(0) { $0 + detections[$1].centroid.y } / n)
                }
                let a = mean(groupMembers[0]), b = mean(groupMembers[1])
                let m: Float = 0.1 * S1
                switch r {
                case .leftOf: ok = a.0 < b.0 - m ? 1 : 0
                case .rightOf: ok = a.0 > b.0 + m ? 1 : 0
                case .above: ok = a.1 < b.1 - m ? 1 : 0
                case .below: ok = a.1 > b.1 + m ? 1 : 0
                case .and: ok = 1
                }
            }
            if ok < 1 { exact = false }
            terms.append(ok)
        }
        let extras = used.enumerated().filter { !$0.element }.count
        // 85% discrete content checks, 15% fidelity of the matched objects (template IoU of the
        // requested shape), so two correct images still differ slightly on alignment.
        let matched = groupMembers.flatMap { $0 }
        let fidelity = zip(scene.objects, groupMembers).reduce(Float(0)) { acc, gm in
            acc + gm.1.reduce(0) { $0 + detections[$1].shapeIoUs[gm.0.shape.rawValue] }
        } / Float(max(1, matched.count))
        let content = terms.reduce(0, +) / Float(terms.count) - 0.15 * Float(extras)
        let alignment = max(0, min(1, 0.85 * content + 0.15 * fidelity))

        // 5. Aesthetics: contrast, size, placement (margins and spacing), background harmony.
        var parts: [String: Float] = [:]
        let idealR = renderer.idealRadius(scene)
        var contrast: Float = 0, sizeS: Float = 0, place: Float = 0
        if !detections.isEmpty {
            let n = Float(detections.count)
            contrast = detections.reduce(0) { $0 + max(0, min(1, ($1.opacity - 0.4) / 0.55)) } / n
            sizeS = detections.reduce(0) { acc, d in
                let l = _logf(max(0.5, d.radius) / (idealR + 0.4))
                return acc + _expf(-(l * l) / (2 * 0.2 * 0.2))
            } / n
            let unit = S1 / 16
            var pl: Float = 0
            for (j, d) in detections.enumerated() {
                let margin = Float(min(d.bbox.x0, d.bbox.y0, S - 1 - d.bbox.x1, S - 1 - d.bbox.y1))
                var gap: Float = 10
                for (k, e) in detections.enumerated() where k != j {
                    let gx = max(e.bbox.x0 - d.bbox.x1, d.bbox.x0 - e.bbox.x1) - 1
                    let gy = max(e.bbox.y0 - d.bbox.y1, d.bbox.y0 - e.bbox.y1) - 1
                    gap = min(gap, Float(max(gx, gy)))
                }
                pl += min(max(0, min(1, margin / unit)), max(0, min(1, (gap + 1) / unit)))
            }
            place = pl / n
        }
        let bgSat = max(bg.0, bg.1, bg.2) - min(bg.0, bg.1, bg.2)
        let bgScore = max(0, min(1, 1 - (bgSat - 0.05) / 0.4))
        let aesthetics = (contrast + sizeS + place + bgScore) / 4
        parts["contrast"] = contrast; parts["size"] = sizeS; parts["placement"] = place; parts["background"] = bgScore

        // 6. Detail: background noise, edge sharpness, edge smoothness (template IoU).
        // Noise: mean absolute Laplacian over background pixels at least 2 px from any foreground.
        var lap: Float = 0, nl = 0
        for y in 1..<(S - 1) {
            for x in 1..<(S - 1) {
                var far = true
                for dy in -2...2 { for dx in -2...2 {
                    let xx = x + dx, yy = y + dy
                    if xx >= 0, xx < S, yy >= 0, yy < S, mask[yy * S + xx] { far = false }
                } }
                guard far else { continue }
                let i = y * S + x
                for c in 0..<3 {
                    let b = c * plane
                    lap += abs(4 * rgb[b + i] - rgb[b + i - 1] - rgb[b + i + 1] - rgb[b + i - S] - rgb[b + i + S])
                }
                nl += 3
            }
        }
        let noise = nl > 0 ? lap / Float(nl) : 0   // ≈ 3.9·sd for Gaussian grain
        let noiseScore = max(0, min(1, 1 - (noise - 0.01) / 0.2))
        var sharp: Float = 0, smoothS: Float = 0
        if !detections.isEmpty {
            for (j, d) in detections.enumerated() {
                // Largest colour step across the component's boundary, relative to its contrast.
                var steps: [Float] = []
                for p in comps[compIndex[j]] {
                    let x = p % S, y = p / S
                    var best: Float = 0
                    for q in [x > 0 ? p - 1 : -1, x < S - 1 ? p + 1 : -1, y > 0 ? p - S : -1, y < S - 1 ? p + S : -1] where q >= 0 && !mask[q] {
                        best = max(best, dist((rgb[p], rgb[plane + p], rgb[2 * plane + p]), (rgb[q], rgb[plane + q], rgb[2 * plane + q])))
                    }
                    if best > 0 { steps.append(best) }
                }
                let c = max(0.05, dist(d.meanRGB, bg))
                steps.sort()
                let step = steps.isEmpty ? 0 : steps[(3 * steps.count) / 4]
                sharp += max(0, min(1, (step / c - 0.3) / 0.45))
                smoothS += max(0, min(1, (d.shapeIoU - 0.55) / 0.35))
            }
            sharp /= Float(detections.count); smoothS /= Float(detections.count)
        }
        let detail = (noiseScore + sharp + smoothS) / 3
        parts["noise"] = noiseScore; parts["sharpness"] = sharp; parts["smoothness"] = smoothS

        return OracleReport(scores: QualityScores(alignment: alignment, aesthetics: aesthetics, detail: detail),
                            detections: detections, background: bg, genevalPass: exact,
                            parts: parts)
    }

    /// Describes one component: centroid, bbox, mean colour, palette colour, shape by template IoU.
    func describe(_ members: [Int], component: Int, labels: [Int], rgb: [Float], bg: (Float, Float, Float)) -> Detection {
        let S = size, plane = S * S
        var sx: Float = 0, sy: Float = 0, r: Float = 0, g: Float = 0, b: Float = 0
        var x0 = S, y0 = S, x1 = 0, y1 = 0
        for p in members {
            let x = p % S, y = p / S
            sx += Float(x) + 0.5; sy += Float(y) + 0.5
            r += rgb[p]; g += rgb[plane + p]; b += rgb[2 * plane + p]
            x0 = min(x0, x); x1 = max(x1, x); y0 = min(y0, y); y1 = max(y1, y)
        }
        let n = Float(members.count)
        var mean = (r / n, g / n, b / n)
        // Prefer interior pixels (all 4 neighbours in the component): edges are mixed with background.
        var ir: Float = 0, ig: Float = 0, ib: Float = 0, ni: Float = 0
        for p in members {
            let x = p % S, y = p / S
            guard x > 0, x < S - 1, y > 0, y < S - 1, labels[p - 1] == component, labels[p + 1] == component,
                  labels[p - S] == component, labels[p + S] == component else { continue }
            ir += rgb[p]; ig += rgb[plane + p]; ib += rgb[2 * plane + p]; ni += 1
        }
        if ni > 0 { mean = (ir / ni, ig / ni, ib / ni) }
        // Colour: the palette entry p and opacity α minimising |mean - (bg + α(p - bg))|.
        var bestC = Colour.red, bestErr = Float.infinity, bestA: Float = 1
        for c in Colour.allCases {
            let p = c.rgb
            let v = (p.0 - bg.0, p.1 - bg.1, p.2 - bg.2), m = (mean.0 - bg.0, mean.1 - bg.1, mean.2 - bg.2)
            let vv = v.0 * v.0 + v.1 * v.1 + v.2 * v.2
            let a = vv > 1e-6 ? max(0.25, min(1.1, (v.0 * m.0 + v.1 * m.1 + v.2 * m.2) / vv)) : 1
            let e = dist(m, (a * v.0, a * v.1, a * v.2))
            if e < bestErr { bestErr = e; bestC = c; bestA = a }
        }
        // Shape: refine the mask to pixels more than half covered (projection of the pixel onto the
        // background→object colour line), then take the IoU with each shape's template fitted to it.
        let v = (mean.0 - bg.0, mean.1 - bg.1, mean.2 - bg.2)
        let vv = max(1e-6, v.0 * v.0 + v.1 * v.1 + v.2 * v.2)
        let bx0 = max(0, x0 - 2), bx1 = min(S - 1, x1 + 2), by0 = max(0, y0 - 2), by1 = min(S - 1, y1 + 2)
        let bw = bx1 - bx0 + 1
        var refined = [Bool](repeating: false, count: bw * (by1 - by0 + 1))
        var rx0 = S, rx1 = -1, ry0 = S, ry1 = -1
        for y in by0...by1 {
            for x in bx0...bx1 {
                let p = y * S + x
                guard labels[p] == component || labels[p] < 0 else { continue }
                let cov = ((rgb[p] - bg.0) * v.0 + (rgb[plane + p] - bg.1) * v.1 + (rgb[2 * plane + p] - bg.2) * v.2) / vv
                if cov > 0.5 {
                    refined[(y - by0) * bw + (x - bx0)] = true
                    rx0 = min(rx0, x); rx1 = max(rx1, x); ry0 = min(ry0, y); ry1 = max(ry1, y)
                }
            }
        }
        if rx1 < 0 {  // nothing more than half covered: fall back to the component itself
            for p in members { refined[(p / S - by0) * bw + (p % S - bx0)] = true }
            (rx0, rx1, ry0, ry1) = (x0, x1, y0, y1)
        }
        let w = Float(rx1 - rx0 + 1), h = Float(ry1 - ry0 + 1)
        var bestS = Shape.circle, bestIoU: Float = -1, bestR: Float = 0
        var ious = [Float](repeating: 0, count: Shape.allCases.count)
        for s in Shape.allCases {
            // Half-extent of each shape in units of r: (x, y-top, y-bottom).
            let (ex, et, eb): (Float, Float, Float)
            switch s {
            case .square: (ex, et, eb) = (0.86, 0.86, 0.86)
            case .diamond: (ex, et, eb) = (1.12, 1.12, 1.12)
            case .triangle: (ex, et, eb) = (1, 1, 0.8)
            default: (ex, et, eb) = (1, 1, 1)
            }
            let rBase = max(w / (2 * ex), h / (et + eb))
            for dr in [-0.2, -0.1, 0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6] as [Float] {  // a bbox of w pixels holds a shape of width w…w+1
                let rr = rBase + dr
                let cx = Float(rx0) + w / 2, cy = Float(ry0) + h / 2 + (et - eb) * rr / 2
                var inter = 0, uni = 0
                for y in by0...by1 {
                    for x in bx0...bx1 {
                        let t = ShapeGeometry.distance(s, Float(x) + 0.5 - cx, Float(y) + 0.5 - cy, rr) < 0
                        let m = refined[(y - by0) * bw + (x - bx0)]
                        if t && m { inter += 1 }
                        if t || m { uni += 1 }
                    }
                }
                let iou = uni > 0 ? Float(inter) / Float(uni) : 0
                ious[s.rawValue] = max(ious[s.rawValue], iou)
                if iou > bestIoU { bestIoU = iou; bestS = s; bestR = rr }
            }
        }
        return Detection(pixels: members.count, centroid: (sx / n, sy / n), bbox: (x0, y0, x1, y1), meanRGB: mean,
                         colour: bestC, opacity: bestA, shape: bestS, shapeIoU: bestIoU, radius: bestR, shapeIoUs: ious)
    }
}

/// Median by sorting in place (small arrays).
func median(_ a: inout [Float]) -> Float {
    guard !a.isEmpty else { return 0 }
    a.sort()
    let n = a.count
    return n % 2 == 1 ? a[n / 2] : 0.5 * (a[n / 2 - 1] + a[n / 2])
}

#if canImport(Glibc)
import Glibc
@inline(__always) func _logf(_ x: Float) -> Float { Glibc.logf(x) }
@inline(__always) func _expf(_ x: Float) -> Float { Glibc.expf(x) }
#else
import Foundation
@inline(__always) func _logf(_ x: Float) -> Float { Foundation.log(x) }
@inline(__always) func _expf(_ x: Float) -> Float { Foundation.exp(x) }
#endif
