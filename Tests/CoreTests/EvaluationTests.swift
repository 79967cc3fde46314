// The evaluation API: win rates and GenEval rates on hand-built score tables, per-prompt seeds (the
// same starting noise for any model), determinism of run, single-image reward scoring, table files.
import Foundation
import Testing
@testable import Core

/// Four prompts of the grammar, seed indices 0…3.
private func fourPrompts() throws -> [EvalPrompt] {
    try Evaluation.listPrompts(["a red circle", "a blue square", "a green ring", "two yellow triangles"])
}

private func scores(_ columns: [String: [Double]], order: [String], pass: [Bool] = [false, false, false, false],
                    seed: UInt64 = 0, prompts: [EvalPrompt]? = nil) throws -> EvalScores {
    try EvalScores(prompts: prompts ?? fourPrompts(), metrics: order, values: order.map { columns[$0]! }, genevalPass: pass,
                   seed: seed, steps: 20, guidance: 5)
}

/// A denoiser that records the x it is first called with and predicts a constant ε.
private final class NoiseRecordingDenoiser: Denoiser {
    let schedule: NoiseSchedule
    let constant: Float
    var firstInput: [Float]?
    init(constant: Float) throws {
        schedule = try DiffusionConfig(vocabulary: Vocabulary.words).noiseSchedule(); self.constant = constant
    }
    func predictNoise(_ x: Tensor, timesteps: [Int], tokens: TokenBatch) -> Tensor {
        if firstInput == nil { firstInput = x.data }
        return Tensor(shape: x.shape, data: [Float](repeating: constant, count: x.data.count))
    }
    func parameters() -> [(String, Tensor)] { [] }
}

/// A 16-pixel tiny diffusion model (the oracle scores 16×16 images).
private func tinyModel(seed: UInt64) throws -> DiffusionModel {
    var c = DiffusionConfig.tiny(vocabulary: Vocabulary.words)
    c.imageSize = 16; c.attentionResolutions = [8]; c.maxTokens = Vocabulary.maxTokens
    return try DiffusionModel(config: c, seed: seed)
}

@Suite struct EvaluationTests {
    /// pick: A = [3, 2, 5, 1], B = [1, 2, 4, 2] → A wins prompts 1 and 3, ties 2 ⇒ 2/4; B over A ⇒ 1/4.
    /// overall: equal everywhere ⇒ 0 both ways (ties are not wins).
    @Test func winRatesOnAHandBuiltTable() throws {
        let a = try scores(["pick": [3, 2, 5, 1], "overall": [0.5, 0.5, 0.5, 0.5]], order: ["pick", "overall"])
        let b = try scores(["pick": [1, 2, 4, 2], "overall": [0.5, 0.5, 0.5, 0.5], "clip": [0, 0, 0, 0]], order: ["clip", "pick", "overall"])
        let ab = try a.winRates(over: b)
        #expect(ab.map(\.metric) == ["pick", "overall"])            // shared metrics, A's order
        #expect(ab.map(\.rate) == [0.5, 0])
        #expect(try b.winRates(over: a).map(\.rate) == [0.25, 0])
        #expect(try a.winRates(over: b, metrics: ["overall"]).map(\.rate) == [0])
        #expect(a.means.map(\.mean) == [2.75, 0.5])
        #expect(try a.column("pick") == [3, 2, 5, 1])
    }

    @Test func winRateErrorsNameTheProblem() throws {
        let a = try scores(["pick": [3, 2, 5, 1]], order: ["pick"])
        func message(_ f: () throws -> Void) -> String {
            do { try f(); return "" } catch let e as CoreError { return e.message } catch { return "\(error)" }
        }
        let otherSeed = try scores(["pick": [1, 2, 4, 2]], order: ["pick"], seed: 1)
        #expect(message { _ = try a.winRates(over: otherSeed) }.contains("seed 1"))
        let swapped = try fourPrompts().reversed()
        let otherPrompts = try scores(["pick": [1, 2, 4, 2]], order: ["pick"], prompts: Array(swapped))
        #expect(message { _ = try a.winRates(over: otherPrompts) }.contains("prompt 1 differs"))
        let fewer = try EvalScores(prompts: Array(try fourPrompts().prefix(2)), metrics: ["pick"], values: [[1, 2]],
                                   genevalPass: [true, true], seed: 0, steps: 20, guidance: 5)
        #expect(message { _ = try a.winRates(over: fewer) }.contains("A scored 4 prompts, B 2"))
        #expect(message { _ = try a.winRates(over: a, metrics: ["hps"]) }.contains("A has no metric 'hps'"))
        #expect(message { _ = try a.column("mps") }.contains("unknown metric 'mps' (known: pick)"))
        #expect(message { _ = try EvalScores(prompts: try fourPrompts(), metrics: ["x"], values: [[1]], genevalPass: [true, true, true, true],
                                             seed: 0, steps: 1, guidance: nil) }.contains("metric 'x' has 1 values for 4 prompts"))
    }

    /// geneval with limit 2: two prompts per category, seed indices = positions in the full suite.
    /// Passes: single 2/2, two 1/2, counting 0/2, colours 1/2, position 0/2, colour attr 2/2
    /// ⇒ rates 1, .5, 0, .5, 0, 1; overall = mean = 0.5 (GenEval's overall).
    @Test func genevalSuiteLimitAndCategoryRates() throws {
        let full = PromptSuites(seed: 0, suiteSize: 500).geneval
        let prompts = try Evaluation.suitePrompts("geneval", limit: 2)
        #expect(prompts.count == 12)
        for p in prompts { #expect(full[p.seedIndex] == p.prompt) }
        let cats = prompts.map { $0.prompt.category! }
        #expect(cats == GenEvalCategory.allCases.flatMap { [$0, $0] })
        let pass = [true, true, true, false, false, false, true, false, false, false, true, true]
        let s = try EvalScores(prompts: prompts, metrics: ["overall"], values: [[Double](repeating: 0, count: 12)], genevalPass: pass,
                               seed: 0, steps: 20, guidance: 5)
        let rates = s.genevalRates
        #expect(rates.map(\.category) == GenEvalCategory.allCases.map(\.rawValue) + ["overall"])
        #expect(rates.map(\.rate) == [1, 0.5, 0, 0.5, 0, 1, 0.5])
        // A plain list has no categories: overall = share passing.
        let plain = try scores(["x": [0, 0, 0, 0]], order: ["x"], pass: [true, false, false, false])
        #expect(plain.genevalRates.map(\.category) == ["overall"] && plain.genevalRates[0].rate == 0.25)
        // Other suites: the first `limit` prompts, indices 0…limit−1.
        let parti = try Evaluation.suitePrompts("parti", limit: 5)
        #expect(parti.map(\.seedIndex) == [0, 1, 2, 3, 4] && parti.map(\.prompt) == Array(PromptSuites(seed: 0).parti.prefix(5)))
    }

    @Test func promptErrorsNameTheInput() throws {
        #expect(throws: CoreError("unknown suite 'coco' (pickapic, hpsv2, parti, geneval, or a list of prompts)")) {
            try Evaluation.suitePrompts("coco")
        }
        #expect(throws: CoreError("limit must be ≥ 1 (got 0)")) { try Evaluation.suitePrompts("hpsv2", limit: 0) }
        do {
            _ = try Evaluation.listPrompts(["a red circle", "a red banana"])
            Issue.record("an unknown word must fail")
        } catch let e as CoreError { #expect(e.message.hasPrefix("prompt 2 ('a red banana'):"), "\(e.message)") }
        #expect(throws: CoreError("the prompt list is empty")) { try Evaluation.listPrompts([]) }
    }

    /// Two different "models" get the same x_T per prompt, and it is SampleID(seed, suite index):
    /// a limited geneval list keeps each prompt's noise.
    @Test func twoModelsStartFromTheSameNoisePerPrompt() throws {
        let prompts = try Evaluation.suitePrompts("geneval", limit: 1)          // suite positions, not 0…5
        #expect(prompts.map(\.seedIndex) != Array(0..<prompts.count))
        let tokens = TokenBatch(ids: [Int32](repeating: 1, count: prompts.count), batch: prompts.count, length: 1)
        let shape = [3, 4, 4], sampler = SamplerConfig(method: .ddim(eta: 0), steps: 2, guidanceScale: nil, batchSize: 64)
        let a = try NoiseRecordingDenoiser(constant: 0.1), b = try NoiseRecordingDenoiser(constant: -0.3)
        let xa = try Evaluation.generate(denoiser: a, tokens: tokens, imageShape: shape, prompts: prompts, seed: 7, sampler: sampler)
        let xb = try Evaluation.generate(denoiser: b, tokens: tokens, imageShape: shape, prompts: prompts, seed: 7, sampler: sampler)
        let expected = prompts.flatMap { SampleID(seed: 7, index: $0.seedIndex).initialNoise(count: 48) }
        #expect(a.firstInput == expected && b.firstInput == expected)
        #expect(xa.data != xb.data, "different denoisers end at different images")
        let c = try NoiseRecordingDenoiser(constant: 0.1)
        _ = try Evaluation.generate(denoiser: c, tokens: tokens, imageShape: shape, prompts: prompts, seed: 8, sampler: sampler)
        #expect(c.firstInput != expected, "another seed, other noise")
    }

    /// The single-image path gives the pair path's scores (same forward, one image per row).
    @Test func singleImageScoresMatchThePairPath() throws {
        let config = RewardModelConfig(imageSize: 16, channels: [4, 4, 4], groups: 2, embedDimension: 4, heads: 2)
        let model = try RewardModel(config: config, key: RandomKey(seed: 3))
        let texts = ["a red circle", "a blue square", "two green rings"]
        let d = 3 * 16 * 16
        let key = RandomKey(seed: 11)
        let i0 = (0..<(3 * d)).map { Float(key.child("0").uniform(UInt64($0))) * 2 - 1 }
        let i1 = (0..<(3 * d)).map { Float(key.child("1").uniform(UInt64($0))) * 2 - 1 }
        let pairs = try scorePairs(model, data: try RewardPairArrays(image0: i0, image1: i1, tokens: try RewardTokens(texts: texts), imageSize: 16),
                                   rows: [0, 1, 2])
        let single0 = try Evaluation.scoreImages(model, images: i0, texts: texts, batchSize: 2)
        let single1 = try Evaluation.scoreImages(model, images: i1, texts: texts)
        for i in 0..<3 {
            #expect(abs(single0[i] - pairs[2 * i]) < 1e-5 && abs(single1[i] - pairs[2 * i + 1]) < 1e-5)
        }
        #expect(single0 != single1)
        #expect(throws: CoreError("reward scoring: 2 prompts need 2 images of 3×16×16 (1536 values), got 2304")) {
            try Evaluation.scoreImages(model, images: i0, texts: Array(texts.prefix(2)))
        }
    }

    /// Same model, same seed ⇒ identical per-prompt scores; the committee's members come first.
    @Test func runIsDeterministicAndScoresEveryMetric() throws {
        let dir = tempDir("eval-run")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var members: [RewardMember] = []
        for (k, name) in ["clip", "aesthetic"].enumerated() {
            let config = RewardModelConfig(imageSize: 16, channels: [4, 4, 4], groups: 2, embedDimension: 4, heads: 2, usesPrompt: k == 0)
            let path = dir + "/\(name).safetensors"
            try RewardModel(config: config, key: RandomKey(seed: UInt64(k))).save(to: path, info: RewardCheckpointInfo(name: name, config: config, rater: .human))
            members.append(try RewardMember(path: path))
        }
        let committee = try Committee(members: members)
        let model = try tinyModel(seed: 1)
        let prompts = try Evaluation.suitePrompts("hpsv2", limit: 3)
        let sampler = SamplerConfig(method: .ddim(eta: 0), steps: 2, guidanceScale: 3, batchSize: 64)
        let first = try Evaluation.run(model: model, prompts: prompts, committee: committee, seed: 4, sampler: sampler, threads: 2)
        let again = try Evaluation.run(model: model, prompts: prompts, committee: committee, seed: 4, sampler: sampler, threads: 1)
        #expect(first.metrics == ["clip", "aesthetic", "alignment", "aesthetics", "detail", "overall"])
        #expect(first.values == again.values && first.genevalPass == again.genevalPass)
        for (m, v) in zip(first.metrics, first.values) { #expect(v.count == 3 && v.allSatisfy(\.isFinite), "\(m)") }
        let overall = try first.column("overall"), dims = try ["alignment", "aesthetics", "detail"].map { try first.column($0) }
        for p in 0..<3 { #expect(abs(overall[p] - (dims[0][p] + dims[1][p] + dims[2][p]) / 3) < 1e-6) }
        let other = try Evaluation.run(model: model, prompts: prompts, committee: committee, seed: 5, sampler: sampler)
        #expect(other.values[0] != first.values[0], "another seed, other images")
        #expect(try first.winRates(over: again).allSatisfy { $0.rate == 0 }, "identical scores are ties, never wins")
    }

    @Test func tableFilesWriteAndMergeTablesJSON() throws {
        let dir = tempDir("eval-tables")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var t1 = ResultTable(title: "Table 1", columns: ["suite", "method", "pick", "overall"])
        t1.addRow([.text("hpsv2"), .text("base"), .number(0.25, decimals: 2), .number(0.5, decimals: 3)])
        t1.addRow([.text("hpsv2"), .text("semi-dpo"), .number(0.75, decimals: 2), .empty])
        let files = try TableFiles.write(t1, name: "table1", directory: dir)
        #expect(files.markdown == dir + "/table1.md" && files.csv == dir + "/table1.csv" && files.json == dir + "/tables.json")
        #expect(try String(contentsOfFile: files.csv, encoding: .utf8) == "suite,method,pick,overall\nhpsv2,base,0.25,0.5\nhpsv2,semi-dpo,0.75,\n")
        #expect(try String(contentsOfFile: files.markdown, encoding: .utf8).contains("| hpsv2 | semi-dpo | 0.75 |  |"))
        var t2 = ResultTable(title: "Table 3", columns: ["model", "single"])
        t2.addRow([.text("base"), .number(0.9, decimals: 2)])
        try TableFiles.write(t2, name: "sub/table3", directory: dir)
        #expect(FileManager.default.fileExists(atPath: dir + "/sub/table3.csv"))
        t1.rows[0][2] = .number(0.3, decimals: 2)
        try TableFiles.write(t1, name: "table1", directory: dir)         // rewrites table1, keeps table3
        let json = try JSON.parse(file: dir + "/tables.json")
        guard case let .object(top) = json else { Issue.record("tables.json is not an object"); return }
        #expect(top.map(\.key) == ["table1", "sub/table3"])
        #expect(json["table1"]?["hpsv2 / base"]?["pick"] == .number(0.3))
        #expect(json["table1"]?["hpsv2 / base"]?["overall"] == .number(0.5))
        #expect(json["table1"]?["hpsv2 / semi-dpo"]?["overall"] == nil)
        #expect(json["sub/table3"]?["base"]?["single"] == .number(0.9))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains(".tmp-") }
        #expect(leftovers.isEmpty, "atomic writes leave no temporary files")
    }

    @Test func tableFileErrors() throws {
        let dir = tempDir("eval-table-errors")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var t = ResultTable(title: "T", columns: ["method", "x"])
        t.addRow([.text("base"), .number(1, decimals: 1)])
        t.addRow([.text("base"), .number(2, decimals: 1)])
        #expect(throws: CoreError("table 'T': row key 'base' repeats (row 2); make the text cells unique")) {
            try TableFiles.write(t, name: "t", directory: dir)
        }
        t.rows.removeLast()
        #expect(throws: CoreError("table name '../t' must be a non-empty relative path inside the run directory")) {
            try TableFiles.write(t, name: "../t", directory: dir)
        }
        try AtomicFile.write("[1, 2]", to: dir + "/tables.json")
        #expect(throws: CoreError("\(dir)/tables.json: expected a JSON object of tables")) { try TableFiles.write(t, name: "t", directory: dir) }
    }
}

/// GenEval's several images per prompt (`suitePrompts(minImages:)`, `SampleID.image`, `genevalPasses`).
@Suite struct GenevalImagesTests {
    /// limit 2, minImages 5: two prompts per category ⇒ ⌈5 / 2⌉ = 3 images each (6 per category ≥ 5), each
    /// prompt's images 0, 1, 2 together, with the prompt's seed index; minImages 1 is the one-image list.
    @Test func imagesPerPromptRule() throws {
        let one = try Evaluation.suitePrompts("geneval", limit: 2)
        let many = try Evaluation.suitePrompts("geneval", limit: 2, minImages: 5)
        #expect(many.count == 36)
        #expect(many.map(\.image) == Array(repeating: [0, 1, 2], count: 12).flatMap { $0 })
        #expect(many.enumerated().allSatisfy { $1.prompt == one[$0 / 3].prompt && $1.seedIndex == one[$0 / 3].seedIndex })
        #expect(try Evaluation.suitePrompts("geneval", limit: 2, minImages: 1) == one)
        // The world's suite at the paper's settings: 23 / 60 / 75 / 90 / 100 / 100 prompts ⇒ 5 / 2 / 2 / 2 / 1 / 1 images.
        let paper = try Evaluation.suitePrompts("geneval", limit: 100, minImages: 100)
        let perCategory = GenEvalCategory.allCases.map { c in paper.filter { $0.prompt.category == c }.count }
        #expect(perCategory == [115, 120, 150, 180, 100, 100] && paper.count == 765)
        #expect(throws: CoreError("min images must be ≥ 1 (got 0)")) { try Evaluation.suitePrompts("geneval", minImages: 0) }
        #expect(throws: CoreError("min images: only the geneval suite samples several images per prompt (suite 'parti')")) {
            try Evaluation.suitePrompts("parti", minImages: 4)
        }
    }

    /// Image 0 keeps the one-image noise; image k has other noise, not that of the next seed's image 0.
    @Test func imageNoise() {
        let a = SampleID(seed: 3, index: 5), a0 = SampleID(seed: 3, index: 5, image: 0)
        #expect(a.initialNoise(count: 8) == a0.initialNoise(count: 8) && a.stepNoise(step: 2, count: 8) == a0.stepNoise(step: 2, count: 8))
        let a1 = SampleID(seed: 3, index: 5, image: 1), a2 = SampleID(seed: 3, index: 5, image: 2)
        #expect(a1.initialNoise(count: 8) != a.initialNoise(count: 8) && a2.initialNoise(count: 8) != a1.initialNoise(count: 8))
        #expect(a1.initialNoise(count: 8) != SampleID(seed: 4, index: 5).initialNoise(count: 8))
        #expect(a1.stepNoise(step: 0, count: 8) != a.stepNoise(step: 0, count: 8))
    }

    /// limit 1, minImages 2: one prompt per category, two images each (12 rows). Passes per image (category
    /// order): single 1 1, two 1 0, counting 0 0, colours 0 1, position 1 1, colour attr 0 0 ⇒ per-prompt
    /// rates 1, ½, 0, ½, 1, 0; category rates the same (one prompt each); overall = 3 / 6 = 0.5.
    @Test func passesGroupedByPrompt() throws {
        let prompts = try Evaluation.suitePrompts("geneval", limit: 1, minImages: 2)
        let pass = [true, true, true, false, false, false, false, true, true, true, false, false]
        let s = try EvalScores(prompts: prompts, metrics: ["overall"], values: [[Double](repeating: 0, count: 12)], genevalPass: pass,
                               seed: 0, steps: 20, guidance: 5)
        #expect(s.genevalPasses["two_objects"] == [[1, 0]] && s.genevalPasses["colors"] == [[0, 1]] && s.genevalPasses.count == 6)
        #expect(s.genevalRates.map(\.rate) == [1, 0.5, 0, 0.5, 1, 0, 0.5])
        let csv = s.perPromptTable.csv
        #expect(csv.hasPrefix("prompt,seed_index,image,category,overall,geneval_pass\n"), "several images: an image column")
        #expect(try scores(["x": [0, 0, 0, 0]], order: ["x"]).perPromptTable.columns == ["prompt", "seed_index", "category", "x", "geneval_pass"])
    }
}
