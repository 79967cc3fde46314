// Float64 gradient checks of each NN module on inputs and parameters, plus parameter naming.
import Testing
@testable import Core

@Suite struct ModuleTests {
    @Test func linearAndConvModules() {
        let lin = LinearOf<Double>(inputFeatures: 4, outputFeatures: 3, key: RandomKey(seed: 1))
        let x = leaf([2, 4], seed: 2)
        expectGradients([("x", x)] + lin.parameters()) { lin(x) }
        #expect(lin.parameters().map(\.0) == ["weight", "bias"])
        let conv = Conv2DOf<Double>(inputChannels: 2, outputChannels: 3, kernelSize: 3, stride: 2, key: RandomKey(seed: 3))
        let img = leaf([2, 2, 5, 5], seed: 4)
        expectGradients([("x", img)] + conv.parameters()) { conv(img) }
        #expect(conv(img).shape == [2, 3, 3, 3])
    }

    @Test func normModules() {
        let gn = GroupNormOf<Double>(groups: 2, channels: 4)
        gn.weight.data = [0.5, 1.5, -1, 2]; gn.bias.data = [0.1, 0, -0.2, 0.3]
        let x = leaf([2, 4, 2, 3], seed: 5)
        expectGradients([("x", x)] + gn.parameters()) { gn(x) }
        let ln = LayerNormOf<Double>(features: 5)
        ln.weight.data = [1, 2, 0.5, -1, 1.5]
        let t = leaf([2, 3, 5], seed: 6)
        expectGradients([("x", t)] + ln.parameters()) { ln(t) }
    }

    @Test func embeddingModuleKeepsPaddingRowZero() {
        let emb = EmbeddingOf<Double>(count: 6, dimension: 4, paddingIndex: 0, key: RandomKey(seed: 7))
        #expect(emb.weight.data[0..<4].allSatisfy { $0 == 0 })
        expectGradients(emb.parameters()) { emb([3, 4, 5, 4, 1, 2], shape: [2, 3]) }  // padding row: see OpGradientTests
    }

    @Test func selfAndCrossAttentionModules() {
        let selfAttn = MultiHeadAttentionOf<Double>(embedDimension: 8, heads: 2, key: RandomKey(seed: 8))
        let x = leaf([2, 4, 8], seed: 9)
        expectGradients([("x", x)] + selfAttn.parameters(), maxPerTensor: 12) { selfAttn(x) }
        let cross = MultiHeadAttentionOf<Double>(embedDimension: 8, heads: 4, contextDimension: 6, key: RandomKey(seed: 10))
        let ctx = leaf([2, 3, 6], seed: 11)
        let mask = [false, false, true, false, true, true]
        expectGradients([("x", x), ("context", ctx)] + cross.parameters(), maxPerTensor: 12) {
            cross(x, context: ctx, keyPaddingMask: mask)
        }
        #expect(cross.parameters().count == 8)
        #expect(cross.parameters()[2].0 == "key.weight")
    }

    @Test func smallResBlockComposesFromPieces() {
        // The shape of a UNet ResBlock: GN → SiLU → conv → + per-sample embedding → GN → SiLU → conv, 1×1 skip.
        let k = RandomKey(seed: 12)
        let gn1 = GroupNormOf<Double>(groups: 2, channels: 2), conv1 = Conv2DOf<Double>(inputChannels: 2, outputChannels: 4, kernelSize: 3, key: k.child(1))
        let emb = LinearOf<Double>(inputFeatures: 3, outputFeatures: 4, key: k.child(2))
        let gn2 = GroupNormOf<Double>(groups: 2, channels: 4), conv2 = Conv2DOf<Double>(inputChannels: 4, outputChannels: 4, kernelSize: 3, key: k.child(3))
        let skip = Conv2DOf<Double>(inputChannels: 2, outputChannels: 4, kernelSize: 1, key: k.child(4))
        let x = leaf([2, 2, 4, 4], seed: 13), t = leaf([2, 3], seed: 14)
        let params = [("x", x), ("t", t)] + prefixed("gn1", gn1.parameters()) + prefixed("conv1", conv1.parameters())
            + prefixed("emb", emb.parameters()) + prefixed("gn2", gn2.parameters()) + prefixed("conv2", conv2.parameters())
            + prefixed("skip", skip.parameters())
        expectGradients(params, maxPerTensor: 10) {
            var h = conv1(silu(gn1(x)))
            h = h + emb(silu(t)).reshaped([2, 4, 1, 1])
            h = conv2(silu(gn2(h)))
            return h + skip(x)
        }
    }

    @Test func scaleShiftResBlockGradients() {
        // FiLM form: conv2(SiLU(GN2(h) · (1 + W_s e) + W_e e)); inputs, embedding and every parameter.
        let block = ResBlockOf<Double>(inputChannels: 2, outputChannels: 4, embeddingDimension: 3, groups: 2, scaleShift: true,
                                       key: RandomKey(seed: 15))
        #expect(block.parameters().map(\.0).contains("embedding_scale.weight"))
        let x = leaf([2, 2, 4, 4], seed: 16), e = leaf([2, 3], seed: 17)
        expectGradients([("x", x), ("e", e)] + block.parameters(), maxPerTensor: 10) { block(x, embedding: e) }
        let plain = ResBlockOf<Double>(inputChannels: 2, outputChannels: 4, embeddingDimension: 3, groups: 2, key: RandomKey(seed: 15))
        #expect(plain.parameters().count + 2 == block.parameters().count)
    }

    @Test func copyAndLoadParameters() throws {
        let a = Linear(inputFeatures: 3, outputFeatures: 2, key: RandomKey(seed: 1))
        let b = Linear(inputFeatures: 3, outputFeatures: 2, key: RandomKey(seed: 2))
        #expect(a.weight.data != b.weight.data)
        b.copyParameters(from: a)
        #expect(a.weight.data == b.weight.data && a.bias!.data == b.bias!.data)
        #expect(throws: CoreError.self) { try b.loadParameters(["weight": (shape: [3, 2], data: [Float](repeating: 0, count: 6))]) }
    }
}
