// Tests of the diffusion model's modules: tokenizer, config parsing, Float64 gradient checks of the
// UNet and text encoder, the null prompt, parameter/FLOP counts, and checkpoint round trips.
import Foundation
import Testing
@testable import Core

let testVocabulary = ["a", "red", "green", "blue", "circle", "square", "triangle", "left", "right", "and", "big"]

@Suite struct TokenizerTests {
    @Test func encodesLowercasedWordsWithoutPunctuation() throws {
        let tok = try Tokenizer(vocabulary: testVocabulary, maxLength: 8)
        #expect(try tok.encode("A red Circle, and a blue-square.") == [1, 2, 5, 10, 1, 4, 6, 0])
        #expect(try tok.encode("") == [0, 0, 0, 0, 0, 0, 0, 0])
        #expect(try tok.encode(" ... ") == [0, 0, 0, 0, 0, 0, 0, 0])
        #expect(tok.decode(try tok.encode("big  green triangle")) == "big green triangle")
        let batch = try tok.encode(["red circle", ""])
        #expect(batch.batch == 2 && batch.length == 8 && batch.paddingMask.filter { !$0 }.count == 2)
    }

    @Test func unknownWordAndLongPromptAreErrors() throws {
        let tok = try Tokenizer(vocabulary: testVocabulary, maxLength: 4)
        #expect(throws: CoreError("tokenizer: unknown word 'purple' in prompt \"a purple circle\"")) { try tok.encode("a purple circle") }
        #expect(throws: CoreError.self) { try tok.encode("a red circle and a blue square") }
        #expect(throws: CoreError.self) { try Tokenizer(vocabulary: ["red", "red"]) }
        #expect(throws: CoreError.self) { try Tokenizer(vocabulary: ["Red"]) }
    }
}

@Suite struct DiffusionConfigTests {
    @Test func scaleShiftNormConfigRoundTrip() throws {
        var c = DiffusionConfig.tiny(vocabulary: testVocabulary)
        #expect(try !c.json().contains("scale_shift_norm"))               // the reference JSON is unchanged
        c.scaleShiftNorm = true
        let back = try DiffusionConfig(json: c.json())
        #expect(back == c && back.scaleShiftNorm)
        #expect(try DiffusionConfig(dictionary: ["vocabulary": testVocabulary, "scale_shift_norm": "true"]).scaleShiftNorm)
        #expect(throws: CoreError.self) { try DiffusionConfig(dictionary: ["vocabulary": testVocabulary, "scale_shift_norm": 2]) }
        let m = try DiffusionModel(config: c, seed: 1), plain = try DiffusionModel(config: .tiny(vocabulary: testVocabulary), seed: 1)
        #expect(m.parameters().count > plain.parameters().count)
    }

    @Test func dictionaryRoundTripAndErrors() throws {
        let config = DiffusionConfig(vocabulary: testVocabulary)
        let back = try DiffusionConfig(json: try config.json())
        #expect(back == config)
        let yamlLike: [String: Any] = ["vocabulary": testVocabulary, "channels": ["16", "32"], "image_size": "8", "beta_end": 0.02,
                                       "attention_resolutions": [4], "schedule": "cosine"]
        let parsed = try DiffusionConfig(dictionary: yamlLike)
        #expect(parsed.channels == [16, 32] && parsed.imageSize == 8 && parsed.schedule == .cosine && parsed.betaEnd == 0.02)
        #expect(throws: CoreError.self) { try DiffusionConfig(dictionary: ["vocabulary": testVocabulary, "chanels": [32]]) }
        do {
            _ = try DiffusionConfig(dictionary: ["vocabulary": testVocabulary, "chanels": [32]])
        } catch let e as CoreError { #expect(e.message.contains("unknown key 'chanels'")) }
        #expect(throws: CoreError.self) { try DiffusionConfig(dictionary: ["channels": [32]]) }               // no vocabulary
        #expect(throws: CoreError.self) { try DiffusionConfig(dictionary: ["vocabulary": testVocabulary, "norm_groups": 5]) }
        #expect(throws: CoreError.self) { try DiffusionConfig(dictionary: ["vocabulary": testVocabulary, "attention_resolutions": [4]]) }
        #expect(throws: CoreError.self) { try DiffusionConfig(dictionary: ["vocabulary": testVocabulary, "image_size": 2.5]) }
        #expect(throws: CoreError.self) { try DiffusionConfig(dictionary: ["vocabulary": testVocabulary, "schedule": "quadratic"]) }
        #expect(throws: CoreError.self) { try DiffusionConfig(dictionary: ["vocabulary": testVocabulary, "attention_heads": 3]) }
        #expect(throws: CoreError.self) { try DiffusionConfig(dictionary: ["vocabulary": testVocabulary, "beta_end": 2]) }
        #expect(throws: CoreError.self) { try DiffusionConfig(dictionary: ["vocabulary": ["red", "red"]]) }
    }
}

@Suite struct UNetTests {
    /// A tiny Float64 text encoder + UNet for gradient checks.
    static func tinyDouble() -> (DiffusionConfig, TextEncoderOf<Double>, UNetOf<Double>) {
        var c = DiffusionConfig.tiny(vocabulary: testVocabulary)
        c.imageSize = 4; c.channels = [4, 8]; c.normGroups = 2; c.attentionResolutions = [2]; c.maxTokens = 3
        c.textDimension = 8; c.embeddingDimension = 8; c.timeDimension = 4
        let key = RandomKey(seed: 5)
        let text = TextEncoderOf<Double>(tokenCount: testVocabulary.count + 1, maxLength: c.maxTokens, dimension: c.textDimension,
                                         heads: c.textHeads, layers: 1, mlpRatio: c.textMLPRatio, key: key.child(1))
        text.nullEmbedding.data = (0..<c.textDimension).map { 0.1 * Double($0) - 0.3 }
        return (c, text, UNetOf<Double>(config: c, key: key.child(2)))
    }

    @Test func unetAndTextEncoderGradientsFloat64() {
        let (c, text, unet) = Self.tinyDouble()
        // Row 0: two words; row 1: the null prompt (exercises the null embedding and fully masked cross-attention).
        let tokens = TokenBatch(ids: [2, 5, 0, 0, 0, 0], batch: 2, length: c.maxTokens)
        let x = leaf([2, 3, c.imageSize, c.imageSize], seed: 31)
        let params = [("x", x)] + prefixed("text", text.parameters()) + prefixed("unet", unet.parameters())
        expectGradients(params, maxPerTensor: 3, rtol: 1e-4, atol: 1e-6) {
            let (ctx, pooled) = text(tokens)
            return unet(x, timesteps: [17, 930], context: ctx, contextMask: tokens.paddingMask, pooled: pooled)
        }
    }

    @Test func textEncoderPooledIsMaskedMeanOrNullVector() {
        let (c, text, _) = Self.tinyDouble()
        let tokens = TokenBatch(ids: [3, 4, 0, 0, 0, 0], batch: 2, length: c.maxTokens)
        let (t, pooled) = noGrad { text(tokens) }
        let d = c.textDimension
        for j in 0..<d {
            #expect(Swift.abs(pooled[0, j] - (t[0, 0, j] + t[0, 1, j]) / 2) < 1e-12)
            #expect(pooled[1, j] == text.nullEmbedding.data[j])
        }
        #expect(t.data.allSatisfy { $0.isFinite })
    }

    @Test func referenceArchitectureSizeAndCost() throws {
        let model = try DiffusionModel(config: DiffusionConfig(vocabulary: testVocabulary), seed: 1)
        let params = model.parameterCount, gflop = model.forwardFLOPs / 1e9
        print(model.summary)
        // Counted by hand from SPEC §4 (see docs/diffusion.md): 0.6–0.75 M parameters, 0.1–0.14 GFLOP.
        #expect(params > 600_000 && params < 750_000, "\(params)")
        #expect(gflop > 0.10 && gflop < 0.14, "\(gflop)")
        let x = Tensor.normal([2, 3, 16, 16], key: RandomKey(seed: 2))
        let eps = noGrad { model.predictNoise(x, timesteps: [0, 999], tokens: try! model.tokenize(["a red circle", ""])) }
        #expect(eps.shape == [2, 3, 16, 16] && eps.data.allSatisfy { $0.isFinite })
        #expect(Set(model.parameters().map(\.0)).count == model.parameters().count)
    }

    @Test func checkpointRoundTripIsBitExactAndCloneIsDeep() throws {
        let model = try DiffusionModel(config: .tiny(vocabulary: testVocabulary), seed: 3)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("semidpo-unet-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("m.safetensors").path
        try model.save(path: path, metadata: ["note": "test"])
        let loaded = try DiffusionModel.load(path: path)
        #expect(loaded.config == model.config)
        for ((n1, p), (n2, q)) in zip(model.parameters(), loaded.parameters()) {
            #expect(n1 == n2 && p.shape == q.shape)
            #expect(p.data.map(\.bitPattern) == q.data.map(\.bitPattern), "\(n1)")
        }
        #expect(try SafetensorsFile(path: path).metadata["note"] == "test")
        let x = Tensor.normal([1, 3, 8, 8], key: RandomKey(seed: 9)), tok = try model.tokenize(["red square"])
        let a = noGrad { model.predictNoise(x, timesteps: [500], tokens: tok) }, b = noGrad { loaded.predictNoise(x, timesteps: [500], tokens: tok) }
        #expect(a.data == b.data)

        let copy = model.clone()
        copy.unet.convIn.weight.data[0] += 1
        #expect(copy.unet.convIn.weight.data[0] != model.unet.convIn.weight.data[0])
        copy.freeze()
        #expect(copy.parameters().allSatisfy { !$0.1.requiresGrad } && model.parameters().allSatisfy { $0.1.requiresGrad })
        #expect(copy.clone().isFrozen)

        // A checkpoint of another architecture is refused with a message naming the tensor.
        var other = DiffusionConfig.tiny(vocabulary: testVocabulary); other.channels = [8, 8]
        let wrong = try DiffusionModel(config: other)
        #expect(throws: CoreError.self) { try wrong.loadWeights(from: SafetensorsFile(path: path)) }
    }
}
