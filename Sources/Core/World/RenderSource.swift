// Pretraining data from the world: mixed-quality renders (random quality latents, like web data) of
// training prompts, each image a pure function of (seed, step, index), rendered on both cores.
import Foundation

/// A `PretrainDataSource` over the world's renders. Image i of step s uses the stream
/// `RandomKey(seed)/"render"/s/i`: first the prompt index ⌊U·M⌋ over the M prompts, then
/// `QualityParams.random` (alignment, aesthetics, detail latents ~ U(0, 1) — or on narrower `latents`
/// ranges — and their degradations),
/// then the renderer's own draws. So a batch depends on (seed, step, size) only — not on threads or
/// on earlier steps — which is what bit-exact resume needs.
public struct RenderSource: PretrainDataSource, Sendable {
    public let prompts: [Prompt]
    public let seed: UInt64
    public let renderer: Renderer
    /// Threads rendering a batch (contiguous, fixed partition; the output does not depend on it).
    public let threads: Int
    /// Ranges of the quality latents (default: the world's, U(0, 1) each) — the pretraining data mix.
    public let latents: LatentRanges

    public init(prompts: [Prompt], seed: UInt64, imageSize: Int = 16, threads: Int = 2, latents: LatentRanges = .world) throws {
        guard !prompts.isEmpty else { throw CoreError("render source: no prompts") }
        guard threads >= 1 else { throw CoreError("render source: threads must be ≥ 1, got \(threads)") }
        self.prompts = prompts
        self.seed = seed
        self.renderer = try Renderer(size: imageSize)
        self.threads = threads
        self.latents = latents
    }

    public var imageSize: Int { renderer.size }

    /// Renders image `index` of step `step` into `out` (3·S·S floats, CHW in [−1, 1]); returns the
    /// prompt index and the quality parameters it drew.
    @discardableResult
    public func render(step: Int, index: Int, into out: inout [Float]) -> (prompt: Int, quality: QualityParams) {
        var rng = RandomStream(RandomKey(seed: seed).child("render").child(UInt64(step)).child(UInt64(index)))
        let p = rng.int(prompts.count)
        let scene = prompts[p].scene
        let q = QualityParams.random(for: scene, &rng, latents: latents)
        renderer.render(scene, quality: q, &rng, into: &out)
        return (p, q)
    }

    public func batch(step: Int, size: Int) throws -> PretrainBatch {
        guard size >= 1 else { throw CoreError("render source: batch size must be ≥ 1, got \(size)") }
        guard step >= 0 else { throw CoreError("render source: step must be ≥ 0, got \(step)") }
        let d = 3 * imageSize * imageSize
        var promptIndex = [Int](repeating: 0, count: size)
        var data = [Float](repeating: 0, count: size * d)   // images: (B, 3, S, S)
        Self.parallel(count: size, threads: threads) { i, scratch in
            let (p, _) = render(step: step, index: i, into: &scratch)
            return (p, scratch)
        } store: { i, p, image in
            promptIndex[i] = p
            data.replaceSubrange((i * d)..<((i + 1) * d), with: image)
        }
        return PretrainBatch(images: Tensor(shape: [size, 3, imageSize, imageSize], data: data),
                             prompts: promptIndex.map { prompts[$0].text })
    }

    /// One mixed-quality render of each of `scenes` (image i from `RandomKey(seed)/"reference"/i`,
    /// the world's quality distribution unless `latents` narrows it) — the "renders it learned from"
    /// that evaluation puts beside the model's samples. Returns (N, 3, S, S) flat.
    public static func referenceRenders(of scenes: [SceneSpec], seed: UInt64, imageSize: Int = 16, threads: Int = 2,
                                        latents: LatentRanges = .world) throws -> [Float] {
        let renderer = try Renderer(size: imageSize)
        let d = 3 * imageSize * imageSize
        var data = [Float](repeating: 0, count: scenes.count * d)
        parallel(count: scenes.count, threads: threads) { i, scratch in
            var rng = RandomStream(RandomKey(seed: seed).child("reference").child(UInt64(i)))
            let q = QualityParams.random(for: scenes[i], &rng, latents: latents)
            renderer.render(scenes[i], quality: q, &rng, into: &scratch)
            return (0, scratch)
        } store: { i, _, image in
            data.replaceSubrange((i * d)..<((i + 1) * d), with: image)
        }
        return data
    }

    /// Runs `work(i, scratch)` for i in 0..<count on `threads` contiguous parts, then `store`s every
    /// result in index order on the calling thread.
    static func parallel(count: Int, threads: Int, work: (Int, inout [Float]) -> (Int, [Float]),
                         store: (Int, Int, [Float]) -> Void) {
        guard count > 0 else { return }
        let results = UnsafeMutablePointer<(Int, [Float])?>.allocate(capacity: count)
        results.initialize(repeating: nil, count: count)
        defer { results.deinitialize(count: count); results.deallocate() }
        let parts = max(1, min(threads, count))
        withoutActuallyEscaping(work) { work in
            let body = { (t: Int) in
                var scratch: [Float] = []
                for i in (t * count / parts)..<((t + 1) * count / parts) { results[i] = work(i, &scratch) }
            }
            if parts == 1 { body(0) } else { DispatchQueue.concurrentPerform(iterations: parts, execute: body) }
        }
        for i in 0..<count { let r = results[i]!; store(i, r.0, r.1) }
    }
}
