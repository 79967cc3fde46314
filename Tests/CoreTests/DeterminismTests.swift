// Same seed and thread count ⇒ bit-identical results; random creation independent of threads.
import Testing
@testable import Core

private func trainingStepFingerprint() -> ([Float], [Float]) {
    let k = RandomKey(seed: 42)
    let conv = Conv2D(inputChannels: 3, outputChannels: 16, kernelSize: 3, key: k.child("conv"))
    let gn = GroupNorm(groups: 4, channels: 16)
    let attn = MultiHeadAttention(embedDimension: 16, heads: 4, key: k.child("attn"))
    let x = Tensor.normal([8, 3, 16, 16], key: k.child("x"))
    var h = silu(gn(conv(x)))                                    // (8, 16, 16, 16)
    let tokens = transposeLastTwo(h.reshaped([8, 16, 256]))      // (8, 256, 16)
    h = h + transposeLastTwo(attn(tokens)).reshaped([8, 16, 16, 16])
    let loss = mean(mseLossPerSample(h, Tensor.zeros(h.shape)))
    loss.backward()
    return (h.data, conv.weight.grad! + attn.query.weight.grad! + gn.weight.grad!)
}

@Suite(.serialized) struct DeterminismTests {
    @Test func sameSeedSameThreadsIsBitIdentical() {
        let a = trainingStepFingerprint(), b = trainingStepFingerprint()
        #expect(a.0 == b.0)
        #expect(a.1 == b.1)
    }

    /// conv2d splits its batch over the threads by samples and linear splits C into blocks, each a
    /// full-K product on single-threaded OpenBLAS: outputs and input gradients are the same at any
    /// thread count (only weight gradients are reduced per thread).
    @Test func convAndLinearOutputsDoNotDependOnThreads() {
        Engine.threadsLock.lock()
        defer { Engine.threadsLock.unlock() }
        let saved = Engine.threads
        defer { Engine.setThreads(saved) }
        func run() -> ([Float], [Float]) {
            let k = RandomKey(seed: 5)
            let conv = Conv2D(inputChannels: 8, outputChannels: 16, kernelSize: 3, key: k.child("conv"))
            let down = Conv2D(inputChannels: 16, outputChannels: 16, kernelSize: 3, stride: 2, key: k.child("down"))
            let proj = Linear(inputFeatures: 64, outputFeatures: 96, key: k.child("proj"))
            let x = TensorOf(shape: [16, 8, 16, 16], data: Tensor.normal([16, 8, 16, 16], key: k.child("x")).data, requiresGrad: true)
            let h = down(conv(x))                                      // (16, 16, 8, 8): 3 and 2 sample groups
            let y = proj(h.reshaped([256, 64]))                        // (256, 96)
            mean(square(y)).backward()
            return (y.data, x.grad!)
        }
        Engine.setThreads(1)
        let one = run()
        Engine.setThreads(2)
        let two = run()
        #expect(one.0 == two.0)
        #expect(one.1 == two.1)
    }

    @Test func randomCreationDoesNotDependOnThreads() {
        Engine.threadsLock.lock()
        defer { Engine.threadsLock.unlock() }
        let saved = Engine.threads
        defer { Engine.setThreads(saved) }
        Engine.setThreads(1)
        let one = Tensor.normal([100_000], key: RandomKey(seed: 9)).data
        Engine.setThreads(2)
        let two = Tensor.normal([100_000], key: RandomKey(seed: 9)).data
        #expect(one == two)
        let mean = one.reduce(0, +) / Float(one.count)
        #expect(Swift.abs(mean) < 0.02)
    }

    @Test func updatesSplitOverThreadsMatchOneThread() {
        // AdamW, gradient clipping and the EMA update spread whole parameters over the threads: on
        // parameters of mixed sizes they give the same bits at 1 and 2 threads.
        func run(threads: Int) -> [[Float]] {
            Engine.threadsLock.lock()
            defer { Engine.threadsLock.unlock() }
            let saved = Engine.threads
            Engine.setThreads(threads)
            defer { Engine.setThreads(saved) }
            let sizes = [40_000, 3, 70_000, 17, 25_000, 1, 9_000]
            let params = sizes.enumerated().map { i, n in
                ("p\(i)", Tensor(shape: [n], data: (0..<n).map { Float(($0 * 7 + i) % 13) / 13 - 0.5 }, requiresGrad: true))
            }
            let shadow = params.map { ($0.0, Tensor.zeros([$0.1.count])) }
            let opt = AdamW(config: AdamWConfig(learningRate: 0.01, weightDecay: 0.1))
            for step in 0..<3 {
                for (i, (_, p)) in params.enumerated() { p.grad = (0..<p.count).map { Float(($0 + step + i) % 5) - 2 } }
                clipGradNorm(params, maxNorm: 50)
                opt.update(params)
                updateEMA(shadow, toward: params, decay: 0.9)
            }
            return params.map { $0.1.data } + shadow.map { $0.1.data }
        }
        #expect(run(threads: 1) == run(threads: 2))
    }

    /// evaluatePairs runs the policy and reference forwards of two DiffusionModels on two threads at
    /// once; hiding the model type (a wrapper) takes the one-after-the-other path. Same thread count,
    /// so the loss, the per-image errors and every gradient must be the same bits.
    @Test func concurrentReferenceForwardMatchesSequential() throws {
        Engine.threadsLock.lock()
        defer { Engine.threadsLock.unlock() }
        let saved = Engine.threads
        defer { Engine.setThreads(saved) }
        Engine.setThreads(2)
        let words = ["a", "red", "blue", "circle", "square"]
        let policy = try DiffusionModel(config: .tiny(vocabulary: words), seed: 3)
        let reference = policy.clone()
        reference.freeze()
        let key = RandomKey(seed: 8)
        let shape = [4, 3, 8, 8]
        let batch = try PairBatch(winners: Tensor.normal(shape, key: key.child("w")), losers: Tensor.normal(shape, key: key.child("l")),
                              tokens: try policy.tokenize(["a red circle", "a blue square", "", "a red square"]), ids: [1, 2, 3, 4])
        let noise = Tensor.normal(shape, key: key.child("noise"))
        // Move the policy off the reference so the loss has a gradient.
        for (_, p) in policy.parameters() { p.data = p.data.enumerated().map { $0.element + 0.01 * Float($0.offset % 7 - 3) } }
        func run(_ policyView: Denoiser, _ referenceView: Denoiser) throws -> (PairEvaluation, [Float]) {
            zeroGrad(policy.parameters())
            let e = try evaluatePairs(policy: policyView, reference: referenceView, batch: batch, labels: [1, -1, 1, 0],
                                      timesteps: [10, 300, 650, 990], noise: noise,
                                      objective: .dpo(PreferenceLossConfig(kind: .sigmoid, beta: 500)), backwardScale: 1)
            return (e, flatGrads(policy.parameters()))
        }
        let (c, cg) = try run(policy, reference)
        let (s, sg) = try run(RecordingDenoiser(policy), RecordingDenoiser(reference))
        #expect(c.loss == s.loss && c.policyWinner == s.policyWinner && c.referenceLoser == s.referenceLoser)
        #expect(cg == sg)
        #expect(cg.contains { $0 != 0 })
    }
}
