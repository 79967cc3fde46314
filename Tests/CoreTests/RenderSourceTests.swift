// RenderSource: pretraining batches of world renders are a pure function of (seed, step, index),
// independent of threads and batch size, of mixed quality, and drawn from the given prompts.
import Foundation
import Testing
@testable import Core

@Suite struct RenderSourceTests {
    let prompts: [Prompt]
    init() throws { prompts = try PromptSuites(seed: 0).training(count: 40) }

    @Test func batchesArePureFunctionsOfSeedAndStep() throws {
        let a = try RenderSource(prompts: prompts, seed: 5, threads: 2)
        let b = try RenderSource(prompts: prompts, seed: 5, threads: 1)
        let x = try a.batch(step: 3, size: 8), y = try b.batch(step: 3, size: 8)
        #expect(x.images.shape == [8, 3, 16, 16])
        #expect(x.images.data == y.images.data && x.prompts == y.prompts)      // threads do not matter
        let small = try a.batch(step: 3, size: 4)                              // image i does not depend on the batch size
        #expect(Array(x.images.data.prefix(4 * 768)) == small.images.data && Array(x.prompts.prefix(4)) == small.prompts)
        let other = try a.batch(step: 4, size: 8)
        #expect(other.images.data != x.images.data)
        let otherSeed = try RenderSource(prompts: prompts, seed: 6).batch(step: 3, size: 8)
        #expect(otherSeed.images.data != x.images.data)
        #expect(x.images.data.allSatisfy { $0 >= -1 && $0 <= 1 })
        let texts = Set(prompts.map(\.text))
        #expect(x.prompts.allSatisfy { texts.contains($0) })
    }

    @Test func rendersAreOfMixedQualityAndFollowTheirPrompts() throws {
        let source = try RenderSource(prompts: prompts, seed: 1)
        let batch = try source.batch(step: 0, size: 96)
        let scenes = try batch.prompts.map { try PromptGrammar.parse($0) }
        let report = try SampleEval.evaluate(images: batch.images.data, scenes: scenes)
        let overall = report.perImage.map { Double($0.overall) }
        let mean = overall.reduce(0, +) / Double(overall.count)
        let sd = (overall.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(overall.count)).squareRoot()
        // Random quality latents: a wide spread of scores, and most images still show what was asked.
        #expect(sd > 0.08, "overall sd \(sd)")
        #expect((overall.min() ?? 1) < 0.5 && (overall.max() ?? 0) > 0.8, "overall range \(overall.min()!)…\(overall.max()!)")
        #expect(report.colourCorrect > 0.6 && report.colourCorrect > report.chanceColour + 0.3, "\(report.colourCorrect) vs \(report.chanceColour)")
        // Prompt frequency: 96 draws over 40 prompts hit many distinct prompts.
        #expect(Set(batch.prompts).count > 25)
    }

    @Test func latentRangesNarrowTheMixAndTheWorldRangeChangesNothing() throws {
        let world = try RenderSource(prompts: prompts, seed: 5).batch(step: 2, size: 8)
        let explicit = try RenderSource(prompts: prompts, seed: 5, latents: try LatentRanges(alignment: 0...1)).batch(step: 2, size: 8)
        #expect(world.images.data == explicit.images.data && world.prompts == explicit.prompts)
        let aligned = try RenderSource(prompts: prompts, seed: 5, latents: try LatentRanges(alignment: 0.8...1))
        var scratch: [Float] = []
        for i in 0..<40 {
            let q = aligned.render(step: 0, index: i, into: &scratch).quality
            #expect(q.alignment >= 0.8 && q.alignment <= 1 && q.aesthetics >= 0 && q.aesthetics <= 1)
        }
        let fixed = try RenderSource(prompts: prompts, seed: 5, latents: try LatentRanges(alignment: 1...1, aesthetics: 1...1, detail: 1...1))
        let q = fixed.render(step: 0, index: 0, into: &scratch).quality
        #expect(q.alignment == 1 && q.aesthetics == 1 && q.detail == 1 && q.errors.isEmpty && q.blur == 0 && q.grain == 0)
        #expect(throws: CoreError("latent ranges: 'detail' must lie in [0, 1], got 0.5…1.5")) { try LatentRanges(detail: 0.5...1.5) }
    }

    @Test func referenceRendersAreDeterministicAndErrorsNameTheProblem() throws {
        let scenes = prompts.prefix(6).map(\.scene)
        let a = try RenderSource.referenceRenders(of: scenes, seed: 2, threads: 2)
        let b = try RenderSource.referenceRenders(of: scenes, seed: 2, threads: 1)
        #expect(a == b && a.count == 6 * 768)
        #expect(a != (try RenderSource.referenceRenders(of: scenes, seed: 3)))
        #expect(throws: CoreError("render source: no prompts")) { try RenderSource(prompts: [], seed: 0) }
        #expect(throws: CoreError("render source: batch size must be ≥ 1, got 0")) {
            try RenderSource(prompts: prompts, seed: 0).batch(step: 0, size: 0)
        }
    }
}
