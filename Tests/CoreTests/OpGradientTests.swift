// Float64 central-difference gradient checks for every op, on inputs and parameters.
import Testing
@testable import Core

@Suite struct OpGradientTests {
    @Test func unaryActivations() {
        let x = leaf([3, 5], seed: 1, scale: 2)
        expectGradients([("x", x)]) { sigmoid(x) }
        expectGradients([("x", x)]) { logSigmoid(x) }
        expectGradients([("x", x)]) { silu(x) }
        expectGradients([("x", x)]) { gelu(x) }
        expectGradients([("x", x)]) { relu(x) }
        expectGradients([("x", x)]) { tanh(x) }
        expectGradients([("x", x)]) { exp(x) }
        expectGradients([("x", x)]) { square(x) }
        expectGradients([("x", x)]) { abs(x) }
        expectGradients([("x", x)]) { clamp(x, min: -0.5, max: 0.7) }
        expectGradients([("x", x)]) { 3.0 * x - 1.5 }
        expectGradients([("x", x)]) { -(x / 4.0) + 2.0 }
        let p = leaf([7], seed: 2, scale: 0.3, shift: 2)
        expectGradients([("p", p)]) { log(p) }
        expectGradients([("p", p)]) { sqrt(p) }
    }

    @Test func broadcastingBinary() {
        let a = leaf([2, 3, 4, 4], seed: 3)
        let same = leaf([2, 3, 4, 4], seed: 4)
        let channel = leaf([1, 3, 1, 1], seed: 5)
        let perSample = leaf([2, 3, 1, 1], seed: 6)
        let scalar = leaf([], seed: 7)
        let lastAxis = leaf([4], seed: 8)
        let positive = leaf([2, 3, 1, 1], seed: 9, scale: 0.2, shift: 2)
        expectGradients([("a", a), ("b", same)]) { a + same }
        expectGradients([("a", a), ("b", same)]) { a * same }
        expectGradients([("a", a), ("b", channel)]) { a + channel }
        expectGradients([("a", a), ("b", perSample)]) { a * perSample }
        expectGradients([("a", a), ("b", perSample)]) { perSample - a }
        expectGradients([("a", a), ("b", scalar)]) { a * scalar }
        expectGradients([("a", a), ("b", lastAxis)]) { lastAxis - a }
        expectGradients([("a", a), ("b", positive)]) { a / positive }
        // Both sides broadcast: (2,1,3) ⊙ (1,4,1) → (2,4,3), through the general expand path.
        let u = leaf([2, 1, 3], seed: 10), v = leaf([1, 4, 1], seed: 11)
        expectGradients([("u", u), ("v", v)]) { u * v }
    }

    @Test func reductions() {
        let x = leaf([2, 3, 4], seed: 12)
        let y = leaf([2, 3, 4], seed: 13)
        expectGradients([("x", x)]) { sum(x) }
        expectGradients([("x", x)]) { mean(x) }
        expectGradients([("x", x)]) { sum(x, axis: 1) }
        expectGradients([("x", x)]) { mean(x, axis: -1) }
        expectGradients([("x", x)]) { mean(x, axis: 0) }
        expectGradients([("pred", x), ("target", y)]) { mseLossPerSample(x, y) }
    }

    @Test func matmulAndLinear() {
        let a = leaf([3, 4], seed: 14), b = leaf([4, 5], seed: 15)
        expectGradients([("a", a), ("b", b)]) { matmul(a, b) }
        let ba = leaf([2, 3, 4], seed: 16), bb = leaf([2, 4, 2], seed: 17)
        expectGradients([("a", ba), ("b", bb)]) { matmul(ba, bb) }
        let x = leaf([2, 3, 4], seed: 18), w = leaf([5, 4], seed: 19), bias = leaf([5], seed: 20)
        expectGradients([("x", x), ("weight", w), ("bias", bias)]) { linear(x, w, bias) }
        expectGradients([("x", x), ("weight", w)]) { linear(x, w, nil) }
    }

    @Test func conv2dAllConfigurations() {
        let x = leaf([2, 3, 5, 6], seed: 21)
        let w3 = leaf([4, 3, 3, 3], seed: 22, scale: 0.5), w1 = leaf([4, 3, 1, 1], seed: 23), bias = leaf([4], seed: 24)
        for (stride, padding) in [(1, 1), (2, 1), (1, 0), (2, 0)] {
            expectGradients([("x", x), ("weight", w3), ("bias", bias)]) { conv2d(x, w3, bias, stride: stride, padding: padding) }
        }
        expectGradients([("x", x), ("weight", w1), ("bias", bias)]) { conv2d(x, w1, bias) }
        expectGradients([("x", x), ("weight", w1)]) { conv2d(x, w1, nil, stride: 2) }
    }

    @Test func normalisations() {
        let x = leaf([2, 4, 3, 3], seed: 25, scale: 2, shift: 1)
        let gw = leaf([4], seed: 26, shift: 1), gb = leaf([4], seed: 27)
        expectGradients([("x", x), ("weight", gw), ("bias", gb)]) { groupNorm(x, groups: 2, weight: gw, bias: gb) }
        expectGradients([("x", x), ("weight", gw), ("bias", gb)]) { groupNorm(x, groups: 4, weight: gw, bias: gb) }
        expectGradients([("x", x), ("weight", gw), ("bias", gb)]) { groupNormSiLU(x, groups: 2, weight: gw, bias: gb) }
        expectGradients([("x", x), ("weight", gw), ("bias", gb)]) { groupNormSiLU(x, groups: 1, weight: gw, bias: gb) }
        let ms = leaf([2, 4], seed: 57, scale: 0.5), mh = leaf([2, 4], seed: 58, scale: 0.5)
        expectGradients([("x", x), ("weight", gw), ("bias", gb), ("scale", ms), ("shift", mh)]) {
            groupNormModulatedSiLU(x, groups: 2, weight: gw, bias: gb, scale: ms, shift: mh)
        }
        let off = leaf([2, 4], seed: 59, scale: 0.8)
        expectGradients([("x", x), ("weight", gw), ("bias", gb), ("inputOffset", off)]) {
            groupNormSiLU(x, inputOffset: off, groups: 2, weight: gw, bias: gb)
        }
        expectGradients([("x", x), ("weight", gw), ("bias", gb), ("inputOffset", off)]) {
            groupNormSiLU(x, inputOffset: off, groups: 1, weight: gw, bias: gb)
        }
        let t = leaf([3, 5, 6], seed: 28, scale: 2, shift: -1)
        let lw = leaf([6], seed: 29, shift: 1), lb = leaf([6], seed: 30)
        expectGradients([("x", t), ("weight", lw), ("bias", lb)]) { layerNorm(t, weight: lw, bias: lb) }
    }

    /// The fused op gives exactly the unfused composition's output and gradients in Float (the same
    /// expressions in the same order), at the UNet's shapes (8 groups, 16×16 and 8×8). Neither op's
    /// result depends on the thread count (one (sample, group) per task), so the test leaves it alone.
    @Test func groupNormSiLUEqualsUnfusedComposition() {
        for shape in [[3, 32, 16, 16], [2, 64, 8, 8], [2, 16, 5, 3]] {
            let c = shape[1]
            func inputs() -> (TensorOf<Float>, TensorOf<Float>, TensorOf<Float>) {
                let x = TensorOf<Float>.normal(shape, key: RandomKey(seed: 41), mean: 0.5, std: 2)
                let w = TensorOf<Float>.normal([c], key: RandomKey(seed: 42), mean: 1, std: 0.5)
                let b = TensorOf<Float>.normal([c], key: RandomKey(seed: 43), std: 0.5)
                for t in [x, w, b] { t.requiresGrad = true }
                return (x, w, b)
            }
            let upstream = TensorOf<Float>.normal(shape, key: RandomKey(seed: 44)).data
            let (x1, w1, b1) = inputs(), (x2, w2, b2) = inputs()
            let fused = groupNormSiLU(x1, groups: 8, weight: w1, bias: b1)
            let unfused = silu(groupNorm(x2, groups: 8, weight: w2, bias: b2))
            #expect(fused.data == unfused.data)
            fused.backward(gradient: upstream)
            unfused.backward(gradient: upstream)
            #expect(x1.grad! == x2.grad!)
            #expect(w1.grad! == w2.grad!)
            #expect(b1.grad! == b2.grad!)
            let inference = noGrad { groupNormSiLU(x1, groups: 8, weight: w1, bias: b1) }
            #expect(inference.data == fused.data)
        }
    }

    /// The offset form (a ResBlock's second norm: conv1's output plus the embedding) gives the unfused
    /// `silu(groupNorm(x + offset.reshaped([B, C, 1, 1])))`'s output and every gradient in Float (`==`:
    /// the fused op may keep a −0 where the unfused one's zero-filled buffer makes +0), and the same
    /// bits at one and two threads. An offset that needs no gradient, and x that needs none, too.
    @Test func groupNormSiLUWithOffsetEqualsUnfusedComposition() {
        Engine.threadsLock.lock()
        defer { Engine.threadsLock.unlock() }
        let saved = Engine.threads
        defer { Engine.setThreads(saved) }
        for shape in [[3, 32, 16, 16], [2, 64, 8, 8], [2, 16, 5, 3]] {
            let b = shape[0], c = shape[1]
            func inputs(offsetGrad: Bool, xGrad: Bool) -> [TensorOf<Float>] {
                let x = TensorOf<Float>.normal(shape, key: RandomKey(seed: 61), mean: 0.5, std: 2)
                let w = TensorOf<Float>.normal([c], key: RandomKey(seed: 62), mean: 1, std: 0.5)
                let bi = TensorOf<Float>.normal([c], key: RandomKey(seed: 63), std: 0.5)
                let o = TensorOf<Float>.normal([b, c], key: RandomKey(seed: 64), std: 1.5)
                x.requiresGrad = xGrad; w.requiresGrad = true; bi.requiresGrad = true; o.requiresGrad = offsetGrad
                return [x, w, bi, o]
            }
            let upstream = TensorOf<Float>.normal(shape, key: RandomKey(seed: 65)).data
            for (offsetGrad, xGrad) in [(true, true), (false, true), (true, false)] {
                var results: [[[Float]]] = []
                for threads in [1, 2] {
                    Engine.setThreads(threads)
                    let f = inputs(offsetGrad: offsetGrad, xGrad: xGrad), u = inputs(offsetGrad: offsetGrad, xGrad: xGrad)
                    let fused = groupNormSiLU(f[0], inputOffset: f[3], groups: 8, weight: f[1], bias: f[2])
                    let unfused = silu(groupNorm(u[0] + u[3].reshaped([b, c, 1, 1]), groups: 8, weight: u[1], bias: u[2]))
                    #expect(fused.data == unfused.data)
                    fused.backward(gradient: upstream)
                    unfused.backward(gradient: upstream)
                    for (a, e) in zip(f, u) { #expect(a.grad == e.grad) }
                    #expect((f[0].grad != nil) == xGrad && (f[3].grad != nil) == offsetGrad)
                    let inference = noGrad { groupNormSiLU(f[0], inputOffset: f[3], groups: 8, weight: f[1], bias: f[2]) }
                    #expect(inference.data == fused.data)
                    results.append([fused.data] + f.compactMap(\.grad))
                }
                #expect(results[0].count == results[1].count)
                for (one, two) in zip(results[0], results[1]) { #expect(one.map(\.bitPattern) == two.map(\.bitPattern)) }
            }
        }
    }

    @Test func groupNormModulatedSiLUEqualsUnfusedComposition() {
        for shape in [[3, 32, 16, 16], [2, 64, 8, 8], [2, 16, 5, 3]] {
            let b = shape[0], c = shape[1]
            func inputs() -> [TensorOf<Float>] {
                let x = TensorOf<Float>.normal(shape, key: RandomKey(seed: 51), mean: 0.5, std: 2)
                let w = TensorOf<Float>.normal([c], key: RandomKey(seed: 52), mean: 1, std: 0.5)
                let bi = TensorOf<Float>.normal([c], key: RandomKey(seed: 53), std: 0.5)
                let s = TensorOf<Float>.normal([b, c], key: RandomKey(seed: 54), std: 0.7)
                let h = TensorOf<Float>.normal([b, c], key: RandomKey(seed: 55), std: 0.7)
                for t in [x, w, bi, s, h] { t.requiresGrad = true }
                return [x, w, bi, s, h]
            }
            let upstream = TensorOf<Float>.normal(shape, key: RandomKey(seed: 56)).data
            let f = inputs(), u = inputs()
            let fused = groupNormModulatedSiLU(f[0], groups: 8, weight: f[1], bias: f[2], scale: f[3], shift: f[4])
            let scale = u[3].reshaped([b, c, 1, 1]), shift = u[4].reshaped([b, c, 1, 1])
            let unfused = silu(groupNorm(u[0], groups: 8, weight: u[1], bias: u[2]) * (scale + 1) + shift)
            #expect(fused.data == unfused.data)
            fused.backward(gradient: upstream)
            unfused.backward(gradient: upstream)
            for (a, e) in zip(f, u) { #expect(a.grad! == e.grad!) }
            let inference = noGrad { groupNormModulatedSiLU(f[0], groups: 8, weight: f[1], bias: f[2], scale: f[3], shift: f[4]) }
            #expect(inference.data == fused.data)
        }
    }

    @Test func softmaxAndAttention() {
        let x = leaf([3, 7], seed: 31, scale: 2)
        expectGradients([("x", x)]) { softmax(x) }
        let q = leaf([2, 5, 8], seed: 32), k = leaf([2, 5, 8], seed: 33), v = leaf([2, 5, 8], seed: 34)
        expectGradients([("q", q), ("k", k), ("v", v)]) { attention(q, k, v, heads: 2) }
        // Cross-attention with 3 keys, the last key of sample 0 and two of sample 1 padded.
        let kc = leaf([2, 3, 8], seed: 35), vc = leaf([2, 3, 8], seed: 36)
        let mask = [false, false, true, false, true, true]
        expectGradients([("q", q), ("k", kc), ("v", vc)]) { attention(q, kc, vc, heads: 4, keyPaddingMask: mask) }
    }

    @Test func shapeOps() {
        let x = leaf([2, 3, 2, 2], seed: 37), y = leaf([2, 1, 2, 2], seed: 38)
        expectGradients([("x", x)]) { square(x.reshaped([6, -1])) }
        expectGradients([("x", x), ("y", y)]) { concat([x, y, x], axis: 1) }
        expectGradients([("x", x)]) { square(x.slice(batch: 1..<2)) }
        expectGradients([("x", x)]) { upsampleNearest2x(x) }
        let t = leaf([2, 3, 4], seed: 39)
        expectGradients([("x", t)]) { transposeLastTwo(t) }
        expectGradients([("x", t)]) { expand(t.reshaped([2, 1, 3, 4]), to: [2, 2, 3, 4]) }
    }

    /// Backward passes that reach each input element once write a new gradient instead of adding to
    /// zeros, and add when one exists: an input used twice takes both paths (the first consumer's
    /// backward writes, the second adds). Float64 checks of such compositions cover both.
    @Test func writtenAndAccumulatedGradientsAgree() {
        let x = leaf([2, 4, 3, 3], seed: 71, scale: 2, shift: 1)
        let gw = leaf([4], seed: 72, shift: 1), gb = leaf([4], seed: 73), off = leaf([2, 4], seed: 74)
        expectGradients([("x", x), ("weight", gw), ("bias", gb), ("inputOffset", off)]) {
            groupNormSiLU(x, inputOffset: off, groups: 2, weight: gw, bias: gb) * groupNorm(x, groups: 4, weight: gw, bias: gb)
                + groupNormSiLU(x, groups: 2, weight: gw, bias: gb)
        }
        expectGradients([("x", x)]) { silu(x) * tanh(x) + gelu(x) }
        expectGradients([("x", x)]) { upsampleNearest2x(x) * upsampleNearest2x(silu(x)) }
        let t = leaf([3, 5, 6], seed: 75, scale: 2), lw = leaf([6], seed: 76, shift: 1), lb = leaf([6], seed: 77)
        expectGradients([("x", t), ("weight", lw), ("bias", lb)]) {
            layerNorm(t, weight: lw, bias: lb) * transposeLastTwo(transposeLastTwo(t)) + layerNorm(t, weight: lw, bias: lb)
        }
        expectGradients([("x", t)]) { concat([t, transposeLastTwo(t).reshaped([3, 5, 6])], axis: 2) * concat([t, t], axis: 2) }
    }

    @Test func embeddingLookup() {
        let w = leaf([5, 3], seed: 40)
        expectGradients([("weight", w)]) { embedding([1, 4, 0, 1, 2, 0], shape: [2, 3], weight: w) }
        // The padding row gets no gradient (and the numeric check agrees it is unused… so test directly).
        w.grad = nil
        sum(embedding([0, 2, 0], shape: [3], weight: w, paddingIndex: 0)).backward()
        #expect(w.grad![0..<3].allSatisfy { $0 == 0 })
        #expect(w.grad![6..<9].allSatisfy { $0 == 1 })
    }
}
