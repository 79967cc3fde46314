// Issue #14 regression tests on the Core side: sizes checked before allocating (model and reward
// configs, memory budget), token ids against the vocabulary, optimizer state against the parameters,
// top_k / test counts beyond Int, and id lists beyond 2^53. Each test holds the bad input and the
// exact error text.
import Foundation
import Testing
@testable import Core

private func message(_ body: () throws -> Void) -> String? {
    do { try body() } catch let e as CoreError { return e.message } catch { return "\(error)" }
    return nil
}

@Suite struct HardeningTests {
    // MARK: configs checked before allocating

    @Test func diffusionConfigCapsEverySizeBeforeAllocating() throws {
        let vocab = ["red", "cube"]
        #expect(message { _ = try DiffusionConfig(dictionary: ["vocabulary": vocab, "time_dimension": 1 << 40]) }
                == "model config: 'time_dimension' is 1099511627776, above the cap of 65536")
        #expect(message { _ = try DiffusionConfig(dictionary: ["vocabulary": vocab, "channels": Array(repeating: 8, count: 70)]) }
                == "model config: 'channels' has 70 levels, above the cap of 10")
        // Every size within its cap, but together 16 × 4 ResBlocks of 8192 channels: the parameter cap.
        let big: [String: Any] = ["vocabulary": vocab, "channels": [8192, 8192], "res_blocks": 4, "norm_groups": 8,
                                  "attention_resolutions": [Int](), "image_size": 16]
        #expect(message { _ = try DiffusionConfig(dictionary: big) }?.hasSuffix("parameters, above the cap of 134217728") == true)
    }

    @Test func parameterCountEstimateIsExact() throws {
        let vocab = Vocabulary.words
        var configs = [DiffusionConfig(vocabulary: vocab), DiffusionConfig.tiny(vocabulary: vocab)]
        var film = DiffusionConfig.tiny(vocabulary: vocab); film.scaleShiftNorm = true; film.textLayers = 2
        configs.append(film)
        for c in configs {
            let model = try DiffusionModel(config: c)
            #expect(c.parameterCountEstimate == Double(model.parameterCount), "\(c.channels)")
        }
    }

    /// A 120-byte safetensors file (header only) whose config asks for a huge time_dimension: an error
    /// naming the key, not a malloc abort while building the model.
    @Test func tinyCheckpointWithHugeConfigIsRefused() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("huge-\(UInt32.random(in: 0...UInt32.max)).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Safetensors.write([], metadata: ["config": #"{"vocabulary":["a"],"time_dimension":1099511627776}"#], to: path)
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0
        #expect(size < 200)
        #expect(message { _ = try DiffusionModel.load(path: path) }
                == "\(path): model config: 'time_dimension' is 1099511627776, above the cap of 65536")
    }

    @Test func rewardConfigCapsSizesAndParameters() throws {
        #expect(message { try RewardModelConfig(imageSize: 1 << 20).validate() }
                == "reward model: imageSize 1048576 is above the cap of 1024")
        #expect(message { try RewardModelConfig(imageSize: 1 << 40).validate() }
                == "reward model: imageSize 1099511627776 is above the cap of 1024")
        #expect(message { try RewardModelConfig(imageSize: 1024, channels: [8, 16, 4096]).validate() }
                == "reward model: this architecture has 269443617 parameters, above the cap of 134217728")
        for c in [RewardModelConfig(), RewardModelConfig(imageSize: 32, channels: [4, 8, 12], groups: 2, embedDimension: 12, heads: 3, usesPrompt: false)] {
            let m = try RewardModel(config: c, key: RandomKey(seed: 1))
            #expect(c.parameterCount == Double(m.parameterCount))
        }
    }

    @Test func memoryBudgetRefusesWhatCannotBeHeld() throws {
        #expect(message { try MemoryBudget.check(count: Int.max / 2, elementSize: 4, what: "a tensor") }
                == "a tensor: 4611686018427387903 elements of 4 bytes overflow the address space")
        if MemoryBudget.availableBytes() != nil {
            let m = message { try MemoryBudget.check(count: 1 << 40, elementSize: 4, what: "a tensor of shape [1099511627776]") }
            #expect(m?.hasPrefix("a tensor of shape [1099511627776] needs 4096.0 GiB, but only ") == true)
        }
        #expect(message { try MemoryBudget.check(count: 1000, elementSize: 4, what: "x") } == nil)
    }

    // MARK: token ids

    @Test func tokenIdsOutsideTheVocabularyAreErrors() throws {
        let model = try DiffusionModel(config: .tiny(vocabulary: ["red", "cube"]), seed: 1)   // ids 0…2
        let l = model.config.maxTokens
        func batch(_ bad: Int32) -> TokenBatch { TokenBatch(ids: [1, 2] + [bad] + [Int32](repeating: 0, count: 2 * l - 3), batch: 2, length: l) }
        #expect(message { try model.checkTokens(batch(3)) }
                == "token id 3 (row 1, position 3) is outside the vocabulary: ids are 0…2")
        #expect(message { try model.checkTokens(batch(-1)) }
                == "token id -1 (row 1, position 3) is outside the vocabulary: ids are 0…2")
        #expect(message { try model.checkTokens(batch(100_000_000)) }
                == "token id 100000000 (row 1, position 3) is outside the vocabulary: ids are 0…2")
        #expect(message { try model.checkTokens(batch(2)) } == nil)
        // decode skips what is not a word (it once indexed vocabulary[-2] for id −1).
        #expect(model.tokenizer.decode([1, -1, 3, 100_000_000, 2]) == "red cube")
        #expect(message { try model.checkTokens(TokenBatch(ids: [1], batch: 1, length: 1)) }
                == "token rows have length 1, the model expects \(l)")
        // The same check guards the training entry: evaluatePairs refuses before any forward pass.
        let shape = [1] + model.imageShape
        let pairs = try PairBatch(winners: .zeros(shape), losers: .zeros(shape),
                                  tokens: TokenBatch(ids: [Int32(3)] + [Int32](repeating: 0, count: l - 1), batch: 1, length: l), ids: [0])
        #expect(message {
            _ = try evaluatePairs(policy: model, reference: nil, batch: pairs, labels: [1], timesteps: [10],
                                  noise: .zeros(shape), objective: .sft)
        } == "token id 3 (row 1, position 1) is outside the vocabulary: ids are 0…2")
    }

    // MARK: optimizer state

    @Test func shortAdamWMomentsAreRefused() throws {
        let w = Tensor.zeros([6], requiresGrad: true)
        let opt = AdamW(config: AdamWConfig(learningRate: 0.01))
        let short: [(String, Tensor)] = [("step", .full([1], 3)), ("m.w", .zeros([3])), ("v.w", .zeros([3]))]
        #expect(message { try opt.loadState(short, for: [("w", w)]) }
                == "AdamW.loadState: moments of 'w' have 3 values, the parameter has 6")
        let stray: [(String, Tensor)] = [("step", .full([1], 3)), ("m.x", .zeros([6])), ("v.x", .zeros([6]))]
        #expect(message { try opt.loadState(stray, for: [("w", w)]) }
                == "AdamW.loadState: moments for 'x', which is not a parameter of this model")
        #expect(message { try opt.loadState([("step", .full([1], .nan))], for: [("w", w)]) }
                == "AdamW.loadState: 'step' must be one whole number ≥ 0, got nan")
        #expect(opt.step == 0)
    }

    // MARK: counts beyond Int

    @Test func topKBeyondIntKeepsEveryPair() throws {
        // |z| = 3, 1, 2 at one anchor: top_k 2 keeps ids 1 and 3; 1e15 and 1e19 keep all three.
        let table = try ConfidenceTable(anchors: [50], ids: [1, 2, 3], values: [3, -1, 2])
        func kept(_ k: Double) throws -> [Int64] { try selectPseudoLabels(table, rules: [AnchorRule(.topK, k)]).labels.ids }
        #expect(try kept(2) == [1, 3])
        #expect(try kept(1e15) == [1, 2, 3])
        #expect(try kept(1e19) == [1, 2, 3])
        #expect(message { _ = try kept(2.5) } == "anchor 50: top_k must be a whole number ≥ 0 (got 2.5)")
    }

    @Test func testCountBeyondIntTakesEveryPair() throws {
        let clean: [Int64] = [4, 8, 15, 16]
        #expect(try splitCleanTest(clean, fraction: 1e19, seed: 1).test == clean)
        #expect(try splitCleanTest(clean, fraction: 2, seed: 1).test.count == 2)
        #expect(message { _ = try splitCleanTest(clean, fraction: 2.5, seed: 1) }
                == "test share 2.5 is neither a fraction in [0, 1) nor a whole count of pairs")
    }

    @Test func idListsBeyond2To53AreExact() throws {
        // Ids are read digit by digit as Int64: 2^53 + 1 stays 2^53 + 1 (it used to become 2^53 through Double).
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ids-\(UInt32.random(in: 0...UInt32.max)).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "[1, 9007199254740993]".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try readIdList(path) == [1, 9007199254740993])
        try "[1, 9007199254740993.0]".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(message { _ = try readIdList(path) } != nil)
    }
}
