// The diffusion model against an independent PyTorch 2.13 implementation (float64): ε̂ of the tiny
// model on fixed inputs, from Fixtures/make_diffusion_golden.py reading Fixtures/diffusion_tiny.safetensors.
import Foundation
import Testing
@testable import Core

@Suite struct DiffusionGoldenTests {
    /// The recipe of Fixtures/diffusion_tiny.safetensors: `.tiny` config, seed 7, norms and the null
    /// vector shifted by N(0, 0.2²) from RandomKey(seed: 8) so the golden exercises them.
    static func fixtureModel() throws -> DiffusionModel {
        let m = try DiffusionModel(config: .tiny(vocabulary: testVocabulary), seed: 7)
        let key = RandomKey(seed: 8)
        for (i, (name, p)) in m.parameters().enumerated() where name.contains("norm") || name.hasSuffix("null") {
            let noise = Tensor.normal(p.shape, key: key.child(UInt64(i)), std: 0.2)
            for j in 0..<p.count { p.data[j] += noise.data[j] }
        }
        return m
    }

    @Test func fixtureWeightsAreReproducedBitExactly() throws {
        let url = try #require(Bundle.module.url(forResource: "diffusion_tiny", withExtension: "safetensors", subdirectory: "Fixtures"))
        let loaded = try DiffusionModel.load(path: url.path)
        let rebuilt = try Self.fixtureModel()
        #expect(loaded.config == rebuilt.config)
        for ((n, p), (_, q)) in zip(loaded.parameters(), rebuilt.parameters()) {
            #expect(p.data.map(\.bitPattern) == q.data.map(\.bitPattern), "\(n)")
        }
    }

    @Test func predictNoiseMatchesPyTorch() throws {
        let url = try #require(Bundle.module.url(forResource: "diffusion_tiny", withExtension: "safetensors", subdirectory: "Fixtures"))
        let goldenURL = try #require(Bundle.module.url(forResource: "diffusion_golden", withExtension: "json", subdirectory: "Fixtures"))
        let golden = try JSON.parse(file: goldenURL.path)
        func doubles(_ key: String) throws -> [Double] {
            let items = golden[key]?.arrayValue ?? []
            let values = items.compactMap(\.doubleValue)
            try #require(!values.isEmpty && values.count == items.count, "\(key) is not a list of numbers")
            return values
        }
        func ints(_ key: String) throws -> [Int] {
            let items = golden[key]?.arrayValue ?? []
            let values = items.compactMap(\.intValue)
            try #require(!values.isEmpty && values.count == items.count, "\(key) is not a list of integers")
            return values
        }
        let model = try DiffusionModel.load(path: url.path)
        let x = try doubles("x").map(Float.init), shape = try ints("shape")
        let tokens = TokenBatch(ids: try ints("tokens").map(Int32.init), batch: shape[0], length: model.config.maxTokens)
        #expect(model.tokenizer.decode(Array(tokens.ids[0..<4])) == "red circle")
        let timesteps = try ints("timesteps")
        let eps = noGrad { model.predictNoise(Tensor(shape: shape, data: x), timesteps: timesteps, tokens: tokens) }
        assertClose(eps, try doubles("eps"), shape: shape, rtol: 1e-4, atol: 2e-5)
    }
}
