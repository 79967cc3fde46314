// The renderer: draws a scene from a prompt with random quality along three independent dimensions
// (alignment, aesthetics, detail). Coarse content/placement is low-frequency, detail is high-frequency.

/// One alignment error applied to an object group of the prompt.
public enum AlignmentError: String, Sendable, Codable, CaseIterable {
    case wrongColour = "colour", wrongShape = "shape", wrongCount = "count", wrongPosition = "position", missing
}

/// The random quality parameters of one render. Latents `alignment`, `aesthetics`, `detail` are in
/// [0, 1] (1 = best); the concrete degradations below are drawn from them.
public struct QualityParams: Equatable, Sendable {
    public var alignment: Double
    public var aesthetics: Double
    public var detail: Double
    /// Alignment errors as (object group index, error).
    public var errors: [(group: Int, error: AlignmentError)] = []
    /// Object radius multiplier (1 = the layout's ideal size).
    public var sizeFactor: Double = 1
    /// Placement offset from the ideal slot, in units of the image size.
    public var jitter: Double = 0
    /// Object-over-background opacity: 1 = full contrast.
    public var contrast: Double = 1
    /// Background saturation (0 = neutral, harmonious).
    public var backgroundSaturation: Double = 0
    /// Weight of the side taps of a 3-tap blur, applied twice (0 = sharp).
    public var blur: Double = 0
    /// Per-channel standard deviation of additive grain, in [0, 1] intensity units.
    public var grain: Double = 0
    /// Edges drawn aliased, with this probability of an outward bump per edge pixel (0 = smooth, anti-aliased).
    public var jagged: Double = 0

    public init(alignment: Double = 1, aesthetics: Double = 1, detail: Double = 1) {
        self.alignment = alignment; self.aesthetics = aesthetics; self.detail = detail
    }

    public static func == (a: QualityParams, b: QualityParams) -> Bool {
        a.alignment == b.alignment && a.aesthetics == b.aesthetics && a.detail == b.detail &&
            a.errors.map { "\($0.group)\($0.error)" } == b.errors.map { "\($0.group)\($0.error)" } &&
            a.sizeFactor == b.sizeFactor && a.jitter == b.jitter && a.contrast == b.contrast &&
            a.backgroundSaturation == b.backgroundSaturation && a.blur == b.blur && a.grain == b.grain && a.jagged == b.jagged
    }

    /// Draws independent latents (uniform on [0, 1]) and the degradations they imply.
    public static func random(for scene: SceneSpec, _ rng: inout RandomStream) -> QualityParams {
        random(for: scene, &rng, latents: .world)
    }

    /// Draws each latent uniformly on its range in `latents` (latent = lo + (hi − lo)·u, the same three
    /// uniforms as `random(for:_:)`, so `.world` gives exactly the world's draws) and the degradations
    /// they imply.
    public static func random(for scene: SceneSpec, _ rng: inout RandomStream, latents: LatentRanges) -> QualityParams {
        let ua = rng.uniform(), ue = rng.uniform(), ud = rng.uniform()
        var q = QualityParams(alignment: latents.alignment.at(ua), aesthetics: latents.aesthetics.at(ue), detail: latents.detail.at(ud))
        q.applyDegradations(for: scene, &rng)
        return q
    }

    /// Turns the three latents into concrete degradations (used by `random`; call it yourself to
    /// render with chosen latents).
    public mutating func applyDegradations(for scene: SceneSpec, _ rng: inout RandomStream) {
        // Alignment: each group independently gets an error with probability 0.8·(1 - a).
        let pErr = 0.8 * (1 - alignment)
        errors = []
        for g in scene.objects.indices where rng.bernoulli(pErr) {
            var options: [AlignmentError] = [.wrongColour, .wrongShape, .wrongCount, .missing]
            if scene.objects[g].position != nil || scene.relation.map({ $0 != .and }) == true { options.append(.wrongPosition) }
            if scene.objects[g].colour == nil { options.removeAll { $0 == .wrongColour } }
            errors.append((g, options[rng.int(options.count)]))
        }
        // Aesthetics: size, placement, contrast and background each degrade by (1 - e)·u.
        let bad = 1 - aesthetics
        // Larger is capped at ×1.35 so neighbouring objects do not merge; smaller goes to ×0.6.
        sizeFactor = rng.bernoulli(0.5) ? _exp(bad * rng.uniform(0.4, 1) * 0.3) : _exp(-bad * rng.uniform(0.4, 1) * 0.5)
        jitter = bad * rng.uniform(0.3, 1) * 0.08
        contrast = 1 - 0.55 * bad * rng.uniform(0.3, 1)
        backgroundSaturation = 0.75 * bad * rng.uniform(0.3, 1)
        // Detail: blur, grain and jagged edges each degrade by (1 - d)·u.
        let rough = 1 - detail
        blur = 0.22 * rough * rng.uniform(0.2, 1)
        grain = 0.07 * rough * rng.uniform(0.2, 1)
        jagged = rough * rng.uniform(0, 1) > 0.3 ? 0.3 * rough : 0
    }

    /// A one-line JSON object for metadata files.
    public var json: String {
        func f(_ x: Double) -> String { String(Float(x)) }
        let e = errors.map { "[\($0.group),\"\($0.error.rawValue)\"]" }.joined(separator: ",")
        return "{\"alignment\":\(f(alignment)),\"aesthetics\":\(f(aesthetics)),\"detail\":\(f(detail)),\"errors\":[\(e)],\"size\":\(f(sizeFactor)),\"jitter\":\(f(jitter)),\"contrast\":\(f(contrast)),\"bg_saturation\":\(f(backgroundSaturation)),\"blur\":\(f(blur)),\"grain\":\(f(grain)),\"jagged\":\(f(jagged))}"
    }
}

/// The ranges the three quality latents are drawn from (uniformly). `.world` = [0, 1] each, the
/// world's own distribution (datasets, evaluation renders); a pretraining recipe may narrow one,
/// e.g. alignment in [0.8, 1] for a mostly-aligned data mix, or fix it (lo = hi).
public struct LatentRanges: Equatable, Sendable {
    public var alignment: ClosedRange<Double>
    public var aesthetics: ClosedRange<Double>
    public var detail: ClosedRange<Double>
    public init(alignment: ClosedRange<Double> = 0...1, aesthetics: ClosedRange<Double> = 0...1, detail: ClosedRange<Double> = 0...1) throws {
        for (name, r) in [("alignment", alignment), ("aesthetics", aesthetics), ("detail", detail)] where r.lowerBound < 0 || r.upperBound > 1 {
            throw CoreError("latent ranges: '\(name)' must lie in [0, 1], got \(r.lowerBound)…\(r.upperBound)")
        }
        self.alignment = alignment; self.aesthetics = aesthetics; self.detail = detail
    }
    public static let world = try! LatentRanges()
}

extension ClosedRange where Bound == Double {
    /// lo + (hi − lo)·u (exactly u on 0…1).
    @inline(__always) func at(_ u: Double) -> Double { lowerBound == 0 && upperBound == 1 ? u : lowerBound + (upperBound - lowerBound) * u }
}

/// One drawn object instance (coordinates in pixels).
public struct Placed: Sendable {
    public var shape: Shape
    public var rgb: (Float, Float, Float)
    public var cx: Float, cy: Float, r: Float
}

/// Shape geometry shared by the renderer and the oracle's template matcher.
public enum ShapeGeometry {
    /// Approximate signed distance (pixels, negative inside) from (dx, dy) to a shape of radius r.
    @inline(__always)
    public static func distance(_ shape: Shape, _ dx: Float, _ dy: Float, _ r: Float) -> Float {
        let ax = abs(dx), ay = abs(dy)
        switch shape {
        case .circle: return (dx * dx + dy * dy).squareRoot() - r
        case .square: return max(ax, ay) - 0.86 * r
        case .diamond: return (ax + ay - 1.12 * r) * 0.7071
        case .triangle:  // apex (0, -r), base y = 0.8r, half-width r
            let d1 = dy - 0.8 * r
            let d2 = (1.8 * ax - (dy + r)) * 0.4856  // 1/√(1.8² + 1)
            return max(d1, d2)
        case .cross:
            let w = 0.36 * r
            return min(max(ax - r, ay - w), max(ax - w, ay - r))
        case .ring: return abs((dx * dx + dy * dy).squareRoot() - 0.7 * r) - 0.3 * r
        }
    }
}

/// Renders scenes to CHW float images (3×size×size, values in [-1, 1]).
public struct Renderer: Sendable {
    public let size: Int
    public init(size: Int = 16) throws {
        guard size >= 8 && size <= 256 else { throw CoreError("renderer: image size \(size) outside 8…256") }
        self.size = size
    }

    /// The ideal radius (pixels) of each object for a scene — the world's definition of good size.
    public func idealRadius(_ scene: SceneSpec) -> Float {
        let S = Float(size)
        if scene.objects.count == 1 {
            let o = scene.objects[0]
            switch o.count {
            case 1: return o.position == nil || o.position == .centre ? 0.27 * S : 0.18 * S
            case 2: return 0.17 * S
            default: return 0.165 * S  // 2.64 px at S = 16: a circle of radius 2.4 would rasterise to a 4×4 square
            }
        }
        return scene.objects.contains { $0.count == 2 } ? 0.13 * S : 0.19 * S
    }

    /// Object instances for a scene under the given quality (errors, size, jitter), before drawing.
    public func layout(_ scene: SceneSpec, quality q: QualityParams, _ rng: inout RandomStream) -> [Placed] {
        let S = Float(size)
        var groups = scene.objects
        var relation = scene.relation
        for (g, e) in q.errors {
            switch e {
            case .wrongColour:
                let c = groups[g].colour!
                groups[g].colour = Colour(rawValue: (c.rawValue + 1 + rng.int(Colour.allCases.count - 1)) % Colour.allCases.count)
            case .wrongShape:
                groups[g].shape = Shape(rawValue: (groups[g].shape.rawValue + 1 + rng.int(5)) % 6)!
            case .wrongCount:
                let n = groups[g].count
                if groups.count == 2 { groups[g].count = 3 - n }  // two-object scenes hold 1–2 per group
                else { groups[g].count = n == 1 ? 2 : (n == 3 || rng.bernoulli(0.5) ? n - 1 : n + 1) }
                if groups.count == 1 && groups[g].count > 1 { groups[g].position = nil }
            case .wrongPosition:
                if let p = groups[g].position {
                    groups[g].position = Position(rawValue: (p.rawValue + 1 + rng.int(4)) % 5)
                } else if let r = relation {
                    relation = [Relation.rightOf, .leftOf, .below, .above][r.rawValue - 1]
                }
            case .missing: groups[g].count = 0
            }
        }
        let baseR = idealRadius(scene) * Float(q.sizeFactor)
        // Random colours for groups the prompt leaves uncoloured.
        let colours: [Colour] = groups.map { $0.colour ?? Colour(rawValue: rng.int(8))! }
        var slots: [(Float, Float, Int)] = []  // (x, y) in units of S, group
        func arrange(_ n: Int, cx: Float, cy: Float, vertical: Bool, spread: Float, group: Int) {
            switch n {
            case 0: break
            case 1: slots.append((cx, cy, group))
            case 2:
                if vertical { slots += [(cx, cy - spread, group), (cx, cy + spread, group)] }
                else { slots += [(cx - spread, cy, group), (cx + spread, cy, group)] }
            default:
                slots += [(cx - 0.23, cy - 0.2, group), (cx + 0.23, cy - 0.2, group), (cx, cy + 0.23, group)]
            }
        }
        if groups.count == 1 {
            let g = groups[0]
            let p = g.position ?? .centre
            let (x, y): (Float, Float) = [(0.3, 0.5), (0.7, 0.5), (0.5, 0.3), (0.5, 0.7), (0.5, 0.5)][p.rawValue]
            arrange(g.count, cx: x, cy: y, vertical: rng.bernoulli(0.5), spread: 0.23, group: 0)
        } else {
            // First group takes one half, second the other; "and" picks the arrangement at random.
            var r = relation ?? .and
            if r == .and { r = Relation(rawValue: 1 + rng.int(4))! }
            let (a, b): ((Float, Float), (Float, Float))
            switch r {
            case .leftOf: (a, b) = ((0.27, 0.5), (0.73, 0.5))
            case .rightOf: (a, b) = ((0.73, 0.5), (0.27, 0.5))
            case .above: (a, b) = ((0.5, 0.27), (0.5, 0.73))
            default: (a, b) = ((0.5, 0.73), (0.5, 0.27))
            }
            let vertical = r == .leftOf || r == .rightOf
            arrange(min(groups[0].count, 2), cx: a.0, cy: a.1, vertical: vertical, spread: 0.22, group: 0)
            arrange(min(groups[1].count, 2), cx: b.0, cy: b.1, vertical: vertical, spread: 0.22, group: 1)
        }
        return slots.map { (x, y, g) in
            let angle = Float(rng.uniform()) * 2 * .pi
            let off = Float(q.jitter) * S
            return Placed(shape: groups[g].shape, rgb: colours[g].rgb,
                          cx: x * S + off * _cosf(angle), cy: y * S + off * _sinf(angle), r: baseR)
        }
    }

    /// The background colour for a quality draw: a light neutral when harmonious, a saturated tone
    /// far from every object colour when not.
    func background(_ q: QualityParams, objects: [Placed], _ rng: inout RandomStream) -> (Float, Float, Float) {
        let light = Float(rng.uniform(0.84, 0.94))
        let grey = (light, light * Float(rng.uniform(0.97, 1.0)), light * Float(rng.uniform(0.92, 1.0)))
        let s = Float(q.backgroundSaturation)
        guard s > 0.02 else { return grey }
        var best = grey, bestDist: Float = -1
        for _ in 0..<6 {  // a tone whose hue is far from the objects'
            let h = Float(rng.uniform()) * 6
            let hue = hueRGB(h)
            let c = (grey.0 * (1 - s) + hue.0 * s * 0.8, grey.1 * (1 - s) + hue.1 * s * 0.8, grey.2 * (1 - s) + hue.2 * s * 0.8)
            let d = objects.map { dist(c, $0.rgb) }.min() ?? 1
            if d > bestDist { bestDist = d; best = c }
        }
        return best
    }

    /// Draws a scene into `out` (3·size·size floats, CHW, [-1, 1]); `rng` drives layout, colours
    /// and grain, so equal streams give equal images.
    public func render(_ scene: SceneSpec, quality q: QualityParams, _ rng: inout RandomStream, into out: inout [Float]) {
        let S = size, plane = S * S
        if out.count != 3 * plane { out = [Float](repeating: 0, count: 3 * plane) }
        let objects = layout(scene, quality: q, &rng)
        let bg = background(q, objects: objects, &rng)
        let a = Float(q.contrast)
        let jag = Float(q.jagged)
        let noiseKey = RandomKey(seed: rng.next())
        out.withUnsafeMutableBufferPointer { o in
            for i in 0..<plane { o[i] = bg.0; o[plane + i] = bg.1; o[2 * plane + i] = bg.2 }
            var k: UInt64 = 0
            for obj in objects {
                let col = (bg.0 + a * (obj.rgb.0 - bg.0), bg.1 + a * (obj.rgb.1 - bg.1), bg.2 + a * (obj.rgb.2 - bg.2))
                let x0 = max(0, Int(obj.cx - obj.r - 2)), x1 = min(S - 1, Int(obj.cx + obj.r + 2))
                let y0 = max(0, Int(obj.cy - obj.r - 2)), y1 = min(S - 1, Int(obj.cy + obj.r + 2))
                guard x0 <= x1, y0 <= y1 else { continue }
                for y in y0...y1 {
                    for x in x0...x1 {
                        let d = ShapeGeometry.distance(obj.shape, Float(x) + 0.5 - obj.cx, Float(y) + 0.5 - obj.cy, obj.r)
                        var cov: Float
                        if jag > 0 {  // aliased edges with random outward bumps (never splitting a shape)
                            cov = d < 0 ? 1 : 0
                            if d >= 0 && d < 0.8 { k &+= 1; if noiseKey.uniformFloat(k) < jag { cov = 1 } }
                        } else {
                            cov = max(0, min(1, 0.5 - d))
                        }
                        if cov > 0 {
                            let i = y * S + x
                            o[i] += cov * (col.0 - o[i]); o[plane + i] += cov * (col.1 - o[plane + i]); o[2 * plane + i] += cov * (col.2 - o[2 * plane + i])
                        }
                    }
                }
            }
            // Blur: a separable [w, 1-2w, w] kernel, twice, clamped at the borders.
            if q.blur > 0.005 {
                let w = Float(q.blur)
                var tmp = [Float](repeating: 0, count: S)
                for _ in 0..<2 {
                    for c in 0..<3 {
                        let base = c * plane
                        for y in 0..<S {
                            for x in 0..<S { tmp[x] = o[base + y * S + x] }
                            for x in 0..<S { o[base + y * S + x] = (1 - 2 * w) * tmp[x] + w * (tmp[max(0, x - 1)] + tmp[min(S - 1, x + 1)]) }
                        }
                        for x in 0..<S {
                            for y in 0..<S { tmp[y] = o[base + y * S + x] }
                            for y in 0..<S { o[base + y * S + x] = (1 - 2 * w) * tmp[y] + w * (tmp[max(0, y - 1)] + tmp[min(S - 1, y + 1)]) }
                        }
                    }
                }
            }
            // Grain (approximately normal: sum of four 16-bit uniforms), then map [0,1] → [-1,1].
            let sd = Float(q.grain)
            for i in 0..<(3 * plane) {
                var v = o[i]
                if sd > 0 {
                    let b = noiseKey.bits(UInt64(i) &+ 0x1_0000_0000)
                    let u = Float(b & 0xFFFF) + Float((b >> 16) & 0xFFFF) + Float((b >> 32) & 0xFFFF) + Float(b >> 48)
                    v += sd * (u * (1 / 65536) - 2) * 1.7320508  // variance of the sum is 4/12
                }
                o[i] = max(-1, min(1, 2 * v - 1))
            }
        }
    }

    /// Convenience: a new image.
    public func render(_ scene: SceneSpec, quality: QualityParams, _ rng: inout RandomStream) -> [Float] {
        var out = [Float](repeating: 0, count: 3 * size * size)
        render(scene, quality: quality, &rng, into: &out)
        return out
    }
}

@inline(__always) func dist(_ a: (Float, Float, Float), _ b: (Float, Float, Float)) -> Float {
    let x = a.0 - b.0, y = a.1 - b.1, z = a.2 - b.2
    return (x * x + y * y + z * z).squareRoot()
}

/// A fully saturated colour for hue h in [0, 6).
func hueRGB(_ h: Float) -> (Float, Float, Float) {
    let x = 1 - abs(h.truncatingRemainder(dividingBy: 2) - 1)
    switch Int(h) {
    case 0: return (1, x, 0)
    case 1: return (x, 1, 0)
    case 2: return (0, 1, x)
    case 3: return (0, x, 1)
    case 4: return (x, 0, 1)
    default: return (1, 0, x)
    }
}

#if canImport(Glibc)
import Glibc
@inline(__always) func _exp(_ x: Double) -> Double { Glibc.exp(x) }
@inline(__always) func _cosf(_ x: Float) -> Float { Glibc.cosf(x) }
@inline(__always) func _sinf(_ x: Float) -> Float { Glibc.sinf(x) }
#else
import Foundation
@inline(__always) func _exp(_ x: Double) -> Double { Foundation.exp(x) }
@inline(__always) func _cosf(_ x: Float) -> Float { Foundation.cos(x) }
@inline(__always) func _sinf(_ x: Float) -> Float { Foundation.sin(x) }
#endif
