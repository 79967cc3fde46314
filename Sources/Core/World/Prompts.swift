// The prompt grammar of the benchmark world: shapes, colours, counts, positions, two-object scenes,
// content-free filler words; a fixed vocabulary; the training prompt set and the evaluation suites.

/// Shapes the world can draw.
public enum Shape: Int, CaseIterable, Sendable, Codable {
    case circle, square, triangle, diamond, cross, ring
    public var word: String { ["circle", "square", "triangle", "diamond", "cross", "ring"][rawValue] }
    public var plural: String { ["circles", "squares", "triangles", "diamonds", "crosses", "rings"][rawValue] }
}

/// The palette. `rgb` is in [0, 1].
public enum Colour: Int, CaseIterable, Sendable, Codable {
    case red, green, blue, yellow, purple, orange, pink, cyan
    public var word: String { ["red", "green", "blue", "yellow", "purple", "orange", "pink", "cyan"][rawValue] }
    public var rgb: (Float, Float, Float) {
        switch self {
        case .red: return (0.86, 0.12, 0.12)
        case .green: return (0.12, 0.66, 0.18)
        case .blue: return (0.14, 0.28, 0.92)
        case .yellow: return (0.96, 0.84, 0.08)
        case .purple: return (0.56, 0.16, 0.72)
        case .orange: return (0.98, 0.52, 0.04)
        case .pink: return (0.98, 0.48, 0.74)
        case .cyan: return (0.06, 0.80, 0.84)
        }
    }
}

/// Where a single object sits in the image ("on the left", …).
public enum Position: Int, CaseIterable, Sendable, Codable {
    case left, right, top, bottom, centre
    public var phrase: String { ["on the left", "on the right", "at the top", "at the bottom", "in the centre"][rawValue] }
}

/// How the two objects of a two-object scene relate: "and" (anywhere) or a spatial relation of the
/// first to the second.
public enum Relation: Int, CaseIterable, Sendable, Codable {
    case and, leftOf, rightOf, above, below
    public var phrase: String { ["and", "left of", "right of", "above", "below"][rawValue] }
}

/// One object group of a prompt: `count` copies of a shape, optionally with a colour and (only for a
/// single group of count 1) an absolute position.
public struct ObjectSpec: Hashable, Sendable, Codable {
    public var shape: Shape
    public var colour: Colour?
    public var count: Int
    public var position: Position?
    public init(shape: Shape, colour: Colour? = nil, count: Int = 1, position: Position? = nil) {
        self.shape = shape; self.colour = colour; self.count = count; self.position = position
    }
    /// "two red circles", "a square".
    public var phrase: String {
        let n = ["a", "two", "three"][count - 1]
        return ([n] + (colour.map { [$0.word] } ?? []) + [count == 1 ? shape.word : shape.plural]).joined(separator: " ")
    }
}

/// The structured content of a prompt: one or two object groups and, for two, their relation.
public struct SceneSpec: Hashable, Sendable, Codable {
    public var objects: [ObjectSpec]
    public var relation: Relation?
    public init(objects: [ObjectSpec], relation: Relation? = nil) {
        self.objects = objects; self.relation = objects.count == 2 ? (relation ?? .and) : nil
    }
    /// Checks the grammar's limits: 1 group with count 1–3 (position only when count is 1), or 2
    /// distinct groups with count 1–2 each, no absolute positions.
    public func validate() throws {
        switch objects.count {
        case 1:
            let o = objects[0]
            guard (1...3).contains(o.count) else { throw CoreError("scene: count \(o.count) outside 1…3") }
            guard o.position == nil || o.count == 1 else { throw CoreError("scene: a position needs a single object (count 1)") }
        case 2:
            guard objects.allSatisfy({ (1...2).contains($0.count) && $0.position == nil }) else {
                throw CoreError("scene: two-object scenes take counts 1…2 and no absolute position")
            }
            guard objects[0].shape != objects[1].shape || objects[0].colour != objects[1].colour else {
                throw CoreError("scene: the two objects must differ in shape or colour")
            }
        default: throw CoreError("scene: expected 1 or 2 object groups, got \(objects.count)")
        }
    }
    /// The canonical text without filler: "a red circle on the left", "two blue squares above a ring".
    public var canonicalText: String {
        if objects.count == 1 { return objects[0].phrase + (objects[0].position.map { " " + $0.phrase } ?? "") }
        return "\(objects[0].phrase) \((relation ?? .and).phrase) \(objects[1].phrase)"
    }
    /// Total number of object instances the scene asks for.
    public var instanceCount: Int { objects.reduce(0) { $0 + $1.count } }
}

/// GenEval's six categories.
public enum GenEvalCategory: String, CaseIterable, Sendable, Codable {
    case singleObject = "single_object", twoObjects = "two_objects", counting, colours = "colors", position
    case colourAttribution = "color_attr"
}

/// A prompt: its text (≤ `Vocabulary.maxTokens` words) and its parse.
public struct Prompt: Hashable, Sendable {
    public let text: String
    public let scene: SceneSpec
    /// Set for GenEval-suite prompts.
    public let category: GenEvalCategory?
    public init(text: String, scene: SceneSpec, category: GenEvalCategory? = nil) {
        self.text = text; self.scene = scene; self.category = category
    }
    /// Parses a prompt of the grammar (filler words allowed, case-insensitive).
    public init(parsing text: String) throws {
        self.init(text: text, scene: try PromptGrammar.parse(text))
    }
}

/// The fixed word vocabulary. The text encoder maps word `i` to its own id (e.g. `i + reserved`).
public enum Vocabulary {
    /// Maximum words per prompt.
    public static let maxTokens = 8
    /// All words the grammar can produce, in a fixed order (never reorder: checkpoints depend on it).
    public static let words: [String] = {
        var w = ["a", "an", "two", "three", "and", "of", "left", "right", "above", "below",
                 "on", "at", "in", "the", "top", "bottom", "centre"]
        w += Colour.allCases.map(\.word) + Shape.allCases.map(\.word) + Shape.allCases.map(\.plural)
        w += PromptGrammar.fillerWords
        return w
    }()
    static let index: [String: Int] = Dictionary(uniqueKeysWithValues: words.enumerated().map { ($1, $0) })

    /// Splits a prompt into lower-case words.
    public static func split(_ text: String) -> [String] {
        text.lowercased().split(whereSeparator: { $0 == " " || $0 == "," || $0 == "\t" || $0 == "\n" }).map(String.init)
    }
    /// Word ids (indices into `words`); throws on an unknown word or more than `maxTokens` words.
    public static func ids(_ text: String) throws -> [Int] {
        let ws = split(text)
        guard ws.count <= maxTokens else { throw CoreError("prompt '\(text)' has \(ws.count) words; at most \(maxTokens)") }
        return try ws.map { w in
            guard let i = index[w] else { throw CoreError("prompt '\(text)': unknown word '\(w)'") }
            return i
        }
    }
}

/// Building, parsing and sampling prompts.
public enum PromptGrammar {
    /// Filler phrases placed before the content; they never change what the prompt asks for.
    public static let fillers: [String] = ["nice", "simple", "pretty", "clean", "cute", "photo of", "picture of",
                                           "drawing of", "image of", "a photo of", "an image of", "a drawing of"]
    static let fillerWords = ["nice", "simple", "pretty", "clean", "cute", "photo", "picture", "drawing", "image"]

    /// `filler + " " + canonical text` when it fits in `Vocabulary.maxTokens` words, else nil.
    public static func text(_ scene: SceneSpec, filler: String?) -> String? {
        let t = filler.map { $0 + " " + scene.canonicalText } ?? scene.canonicalText
        return Vocabulary.split(t).count <= Vocabulary.maxTokens ? t : nil
    }

    /// Parses grammar text back into a scene (inverse of `text`).
    public static func parse(_ text: String) throws -> SceneSpec {
        var ws = Vocabulary.split(text)
        func fail(_ why: String) -> CoreError { CoreError("cannot parse prompt '\(text)': \(why)") }
        guard ws.count <= Vocabulary.maxTokens else { throw fail("more than \(Vocabulary.maxTokens) words") }
        for w in ws where Vocabulary.index[w] == nil { throw fail("unknown word '\(w)'") }
        // Strip a filler prefix (longest first); "a"/"an" followed by a filler noun belongs to the filler.
        for f in fillers.sorted(by: { $0.count > $1.count }) {
            let fw = Vocabulary.split(f)
            if ws.count > fw.count, Array(ws.prefix(fw.count)) == fw { ws.removeFirst(fw.count); break }
        }
        var i = 0
        func object() throws -> ObjectSpec {
            guard i < ws.count else { throw fail("missing object") }
            let count: Int
            switch ws[i] { case "a", "an": count = 1; case "two": count = 2; case "three": count = 3; default: throw fail("expected a, two or three, got '\(ws[i])'") }
            i += 1
            var colour: Colour?
            if i < ws.count, let c = Colour.allCases.first(where: { $0.word == ws[i] }) { colour = c; i += 1 }
            guard i < ws.count else { throw fail("missing shape") }
            let w = ws[i]; i += 1
            if let s = Shape.allCases.first(where: { (count == 1 ? $0.word : $0.plural) == w }) {
                return ObjectSpec(shape: s, colour: colour, count: count)
            }
            throw fail("expected a \(count == 1 ? "singular" : "plural") shape, got '\(w)'")
        }
        var first = try object()
        if i == ws.count { let s = SceneSpec(objects: [first]); try s.validate(); return s }
        let rest = ws[i...].joined(separator: " ")
        if let p = Position.allCases.first(where: { $0.phrase == rest }) {
            first.position = p
            let s = SceneSpec(objects: [first]); try s.validate(); return s
        }
        guard let r = Relation.allCases.first(where: { rest.hasPrefix($0.phrase + " ") }) else { throw fail("expected a position or a relation after '\(first.phrase)'") }
        i += Vocabulary.split(r.phrase).count
        let second = try object()
        guard i == ws.count else { throw fail("unexpected words after the second object") }
        let s = SceneSpec(objects: [first, second], relation: r)
        try s.validate()
        return s
    }

    /// Draws a scene from the training distribution: 40% single-object (count 1–3, colour in 7 of
    /// 8 draws, position in half of the count-1 draws), 60% two-object (counts 1–2, relation uniform).
    public static func randomScene(_ rng: inout RandomStream) -> SceneSpec {
        func colour() -> Colour? { rng.int(8) == 0 ? nil : Colour(rawValue: rng.int(8))! }
        if rng.uniform() < 0.4 {
            let count = 1 + rng.int(3)
            var o = ObjectSpec(shape: Shape(rawValue: rng.int(6))!, colour: colour(), count: count)
            if count == 1, rng.bernoulli(0.5) { o.position = Position(rawValue: rng.int(5))! }
            return SceneSpec(objects: [o])
        }
        while true {
            let a = ObjectSpec(shape: Shape(rawValue: rng.int(6))!, colour: colour(), count: 1 + rng.int(2))
            let b = ObjectSpec(shape: Shape(rawValue: rng.int(6))!, colour: colour(), count: 1 + rng.int(2))
            if a.shape != b.shape || a.colour != b.colour { return SceneSpec(objects: [a, b], relation: Relation(rawValue: rng.int(5))!) }
        }
    }

    /// A random filler (or none, half of the time) that fits the scene in `maxTokens` words.
    static func randomText(_ scene: SceneSpec, _ rng: inout RandomStream) -> String {
        if rng.bernoulli(0.5) {
            let f = fillers[rng.int(fillers.count)]
            if let t = text(scene, filler: f) { return t }
        }
        return scene.canonicalText
    }

    /// True for two-object contents reserved for evaluation (one in eight, by a hash of the content).
    static func isReserved(_ scene: SceneSpec, seed: UInt64) -> Bool {
        scene.objects.count == 2 && RandomKey(seed: seed).child("reserve").child(scene.canonicalText).bits(0) % 8 == 0
    }
}

/// The prompt sets of one world, all fixed by `seed`. Training and evaluation prompts never share
/// a text; two-object evaluation prompts also never share content with training prompts.
public struct PromptSuites: Sendable {
    public let seed: UInt64
    /// Held-out prompts from the training distribution (role of the Pick-a-Pic v2 test prompts).
    public let pickapicTest: [Prompt]
    /// Simple single-object prompts (role of HPS v2's prompts).
    public let hpsv2: [Prompt]
    /// Compositional two-object prompts with relations and counts (role of Parti prompts).
    public let parti: [Prompt]
    /// GenEval-like prompts, each with its category.
    public let geneval: [Prompt]
    /// Maximum size of the training set (the paper's number of Pick-a-Pic v2 prompts).
    public static let maxTrainingPrompts = 58_960

    public init(seed: UInt64, suiteSize: Int = 500) {
        self.seed = seed
        let key = RandomKey(seed: seed).child("prompts")
        var used = Set<String>()
        func take(_ n: Int, _ label: String, _ draw: (inout RandomStream) -> SceneSpec?) -> [Prompt] {
            var rng = RandomStream(key.child(label))
            var out: [Prompt] = []
            var attempts = 0
            while out.count < n && attempts < n * 200 {
                attempts += 1
                guard let s = draw(&rng) else { continue }
                let t = PromptGrammar.randomText(s, &rng)
                if used.insert(t).inserted { out.append(Prompt(text: t, scene: s)) }
            }
            return out
        }
        pickapicTest = take(suiteSize, "pickapic") { rng in
            let s = PromptGrammar.randomScene(&rng)
            return s.objects.count == 1 || PromptGrammar.isReserved(s, seed: seed) ? s : nil
        }
        hpsv2 = take(suiteSize * 4 / 5, "hpsv2") { rng in
            var s = PromptGrammar.randomScene(&rng)
            guard s.objects.count == 1 else { return nil }
            s.objects[0].count = 1
            return s
        }
        parti = take(suiteSize * 4 / 5, "parti") { rng in
            let s = PromptGrammar.randomScene(&rng)
            return s.objects.count == 2 && s.relation != .and && PromptGrammar.isReserved(s, seed: seed) ? s : nil
        }
        // GenEval: fixed templates per category, as in GenEval's generated prompt lists.
        var g: [Prompt] = []
        func add(_ s: SceneSpec, _ c: GenEvalCategory, fillers: [String?]) {
            for f in fillers {
                if let t = PromptGrammar.text(s, filler: f), used.insert(t).inserted { g.append(Prompt(text: t, scene: s, category: c)) }
            }
        }
        let templates: [String?] = ["a photo of", "an image of", "a drawing of", "picture of", "photo of", "image of", "drawing of", nil]
        for s in Shape.allCases { add(SceneSpec(objects: [ObjectSpec(shape: s)]), .singleObject, fillers: templates) }
        for a in Shape.allCases { for b in Shape.allCases where a != b {
            add(SceneSpec(objects: [ObjectSpec(shape: a), ObjectSpec(shape: b)], relation: .and), .twoObjects, fillers: ["a photo of", "picture of"])
        } }
        for s in Shape.allCases { for n in 1...3 {
            add(SceneSpec(objects: [ObjectSpec(shape: s, count: n)]), .counting, fillers: templates)
        } }
        for s in Shape.allCases { for c in Colour.allCases {
            add(SceneSpec(objects: [ObjectSpec(shape: s, colour: c)]), .colours, fillers: ["a photo of", "an image of", "a drawing of"])
        } }
        for a in Shape.allCases { for b in Shape.allCases where a != b { for r in [Relation.leftOf, .rightOf, .above, .below] {
            add(SceneSpec(objects: [ObjectSpec(shape: a), ObjectSpec(shape: b)], relation: r), .position, fillers: ["photo of"])
        } } }
        var rng = RandomStream(key.child("geneval-colour-attr"))
        var attr = 0, tries = 0
        while attr < 100 && tries < 100_000 {
            tries += 1
            let a = ObjectSpec(shape: Shape(rawValue: rng.int(6))!, colour: Colour(rawValue: rng.int(8))!)
            let b = ObjectSpec(shape: Shape(rawValue: rng.int(6))!, colour: Colour(rawValue: rng.int(8))!)
            guard a.shape != b.shape, a.colour != b.colour else { continue }
            let before = g.count
            add(SceneSpec(objects: [a, b], relation: .and), .colourAttribution, fillers: [nil])
            attr += g.count - before
        }
        geneval = g
    }

    /// Every evaluation prompt text (training prompts avoid all of them).
    public var evaluationTexts: Set<String> { Set((pickapicTest + hpsv2 + parti + geneval).map(\.text)) }

    /// `count` distinct training prompts (≤ 58,960), deterministic from the seed: drawn from the
    /// training distribution, never an evaluation text, never a reserved two-object content.
    public func training(count: Int) throws -> [Prompt] {
        guard count >= 0, count <= Self.maxTrainingPrompts else {
            throw CoreError("training prompts: count \(count) outside 0…\(Self.maxTrainingPrompts)")
        }
        var used = evaluationTexts
        var rng = RandomStream(RandomKey(seed: seed).child("prompts").child("train"))
        var out: [Prompt] = []
        out.reserveCapacity(count)
        while out.count < count {
            let s = PromptGrammar.randomScene(&rng)
            if PromptGrammar.isReserved(s, seed: seed) { continue }
            let t = PromptGrammar.randomText(s, &rng)
            if used.insert(t).inserted { out.append(Prompt(text: t, scene: s)) }
        }
        return out
    }
}
