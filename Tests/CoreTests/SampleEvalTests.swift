// SampleEval: oracle means and colour/shape correctness of images against prompts — clean renders
// score as correct, wrong colours and blank images do not, the shifted-prompt chance rate is low.
import Foundation
import Testing
@testable import Core

@Suite struct SampleEvalTests {
    /// Clean renders (no degradation) of `texts`, flat (N, 3, 16, 16).
    func clean(_ texts: [String], seed: UInt64 = 0) throws -> ([Float], [SceneSpec]) {
        let renderer = try Renderer(size: 16)
        var images: [Float] = []
        var scenes: [SceneSpec] = []
        for (i, t) in texts.enumerated() {
            let scene = try PromptGrammar.parse(t)
            var rng = RandomStream(RandomKey(seed: seed).child(UInt64(i)))
            images += renderer.render(scene, quality: QualityParams(alignment: 1, aesthetics: 1, detail: 1), &rng)
            scenes.append(scene)
        }
        return (images, scenes)
    }

    @Test func cleanRendersAreCorrectAndChanceIsLow() throws {
        let texts = ["a red circle", "a blue square", "a green triangle", "a yellow diamond", "a purple cross", "a cyan ring",
                     "a orange circle", "a pink square"]
        let (images, scenes) = try clean(texts)
        let r = try SampleEval.evaluate(images: images, scenes: scenes)
        #expect(r.count == 8 && r.colourGroups == 8 && r.shapeGroups == 8)
        #expect(r.colourCorrect == 1, "colour \(r.colourCorrect)")
        #expect(r.shapeCorrect >= 0.875, "shape \(r.shapeCorrect)")
        // Every prompt has its own colour, so an image checked against another prompt never has it.
        #expect(r.chanceColour == 0)
        #expect(r.alignment > 0.8 && r.overall > 0.8, "alignment \(r.alignment) overall \(r.overall)")
        // The means are the means of the per-image scores.
        let mean = r.perImage.map { Double($0.overall) }.reduce(0, +) / 8
        #expect(abs(mean - r.overall) < 1e-9)
    }

    @Test func wrongColourAndBlankImagesAreCaught() throws {
        let (images, _) = try clean(["a red circle", "a red circle"])
        let asked = try ["a blue circle", "a red square"].map { try PromptGrammar.parse($0) }
        let hits0 = SampleEval.correctness(try Oracle(size: 16).evaluate(Array(images[0..<768]), scene: asked[0]), scene: asked[0])
        #expect(hits0.colourHits == 0 && hits0.colourGroups == 1 && hits0.shapeHits == 1)   // right shape, wrong colour
        let hits1 = SampleEval.correctness(try Oracle(size: 16).evaluate(Array(images[768...]), scene: asked[1]), scene: asked[1])
        #expect(hits1.colourHits == 1 && hits1.shapeHits == 0)                               // right colour, wrong shape
        // A blank grey image shows nothing: no colour, no shape, low alignment.
        let blank = [Float](repeating: 0.2, count: 2 * 768)
        let r = try SampleEval.evaluate(images: blank, scenes: asked)
        #expect(r.colourCorrect == 0 && r.shapeCorrect == 0 && r.exactPass == 0 && r.alignment < 0.2)
        // Two groups, each detection serves one group: one red circle cannot satisfy "two red circles" twice.
        let two = try PromptGrammar.parse("two red circles")
        let h = SampleEval.correctness(try Oracle(size: 16).evaluate(Array(images[0..<768]), scene: two), scene: two)
        #expect(h.colourGroups == 1 && h.colourHits == 1)
        let pair = try PromptGrammar.parse("a red circle and a red square")
        let hp = SampleEval.correctness(try Oracle(size: 16).evaluate(Array(images[0..<768]), scene: pair), scene: pair)
        #expect(hp.colourGroups == 2 && hp.colourHits == 1 && hp.shapeHits == 1)
    }

    @Test func sizeMismatchNamesCounts() throws {
        let scene = try PromptGrammar.parse("a red circle")
        #expect(throws: CoreError("sample eval: 1 prompts need 1 images of 3×16×16 (768 values), got 10 values")) {
            try SampleEval.evaluate(images: [Float](repeating: 0, count: 10), scenes: [scene])
        }
        #expect(throws: CoreError("sample eval: no prompts")) { try SampleEval.evaluate(images: [], scenes: []) }
        let one = try SampleEval.evaluate(images: try clean(["a red circle"]).0, scenes: [scene])
        #expect(one.chanceColour.isNaN && one.colourCorrect == 1)
        let md = SampleEval.markdown([("renders", one)])
        #expect(md.contains("| correct colour | 1.000 |") && md.contains("| correct colour, chance (shifted prompts) | – |"))
    }
}
