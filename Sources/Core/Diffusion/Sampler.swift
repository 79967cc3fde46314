// Samplers: DDIM (any number of steps, stochasticity η) and ancestral DDPM, with classifier-free
// guidance batched as one forward of 2B; every image's noise comes from (seed, image index) alone.
import Foundation

/// How to sample.
public struct SamplerConfig: Equatable, Sendable {
    public enum Method: Equatable, Sendable {
        /// DDIM over `steps` evenly spaced timesteps; η = 0 is deterministic, η = 1 is DDPM-like.
        case ddim(eta: Double)
        /// Ancestral DDPM over every timestep T−1 … 0 (`steps` is ignored: T evaluations).
        case ddpm
    }
    public var method: Method
    /// Number of DDIM steps (1…T).
    public var steps: Int
    /// Classifier-free guidance scale s: ε = ε_uncond + s·(ε_cond − ε_uncond), computed as one
    /// forward over 2B rows (B conditional, B null prompts). nil = conditional model only (B rows).
    public var guidanceScale: Double?
    /// Images per forward pass (the guided pass runs 2 × this many rows).
    public var batchSize: Int
    /// The model's 3×3 convolutions by Winograd F(4×4, 3×3) (`withWinogradConvolutions`, as in
    /// training); false = im2col + GEMM (≈ 2× slower; rounding differs by ≤ 2e-5 of a layer's
    /// largest output).
    public var winograd: Bool

    public init(method: Method = .ddim(eta: 0), steps: Int = 50, guidanceScale: Double? = 3, batchSize: Int = 64,
                winograd: Bool = true) {
        self.method = method; self.steps = steps; self.guidanceScale = guidanceScale; self.batchSize = batchSize
        self.winograd = winograd
    }

    func validate(schedule: NoiseSchedule) throws {
        guard batchSize >= 1 else { throw CoreError("sampler: batchSize must be ≥ 1 (got \(batchSize))") }
        if case let .ddim(eta) = method {
            guard eta >= 0, eta.isFinite else { throw CoreError("sampler: DDIM eta must be ≥ 0 (got \(eta))") }
            guard steps >= 1, steps <= schedule.steps else { throw CoreError("sampler: steps must be in 1…\(schedule.steps) (got \(steps))") }
        }
        if let s = guidanceScale, !s.isFinite { throw CoreError("sampler: guidance scale must be finite (got \(s))") }
    }
}

/// Which noise an image gets: everything random about image `index` under `seed` is drawn from
/// `RandomKey(seed).child("sample").child(index)` — never from the model, the batch or the order —
/// so two models sampled with the same (seed, index) start from identical noise. `image` k > 0 is
/// another draw for the same prompt (GenEval's several images per prompt): its noise comes from
/// `….child(index).child("image").child(k)`, and image 0 is the key above — the one image per prompt
/// of an evaluation without extra images. (Not `seed + k`: that would be image 0 of the next seed.)
public struct SampleID: Equatable, Hashable, Sendable {
    public var seed: UInt64
    public var index: Int
    public var image: Int
    public init(seed: UInt64, index: Int, image: Int = 0) { self.seed = seed; self.index = index; self.image = image }

    var key: RandomKey {
        let k = RandomKey(seed: seed).child("sample").child(UInt64(index))
        return image == 0 ? k : k.child("image").child(UInt64(image))
    }
    /// x_T ~ N(0, I) for this image, `count` values.
    public func initialNoise(count: Int) -> [Float] { let k = key.child("x_T"); return (0..<count).map { Float(k.normal(UInt64($0))) } }
    /// z ~ N(0, I) of sampling step `step` (0 = first update) for this image.
    public func stepNoise(step: Int, count: Int) -> [Float] {
        let k = key.child("z").child(UInt64(step)); return (0..<count).map { Float(k.normal(UInt64($0))) }
    }
}

public enum Sampler {
    /// Samples one image per token row: row i uses `ids[i]`'s noise. Runs under `noGrad`, with the
    /// Winograd convolutions unless `config.winograd` is false.
    /// imageShape: (C, S, S). Returns x_0 (N, C, S, S) clamped to [−1, 1].
    ///
    /// DDIM step t → prev: x_prev = c_x x_t + c_ε ε̂ + σ z (`NoiseSchedule.ddimCoefficients`);
    /// DDPM step t → t−1: the same form with `ddpmCoefficients`.
    /// reference: Song et al. 2021 (DDIM) eq. 12; Ho et al. 2020 Algorithm 2; Ho & Salimans 2022 (CFG).
    public static func sample(_ model: Denoiser, tokens: TokenBatch, ids: [SampleID], imageShape: [Int],
                              config: SamplerConfig) throws -> Tensor {
        try config.validate(schedule: model.schedule)
        guard ids.count == tokens.batch else { throw CoreError("sampler: \(ids.count) sample ids for \(tokens.batch) prompts") }
        guard imageShape.count == 3, imageShape.allSatisfy({ $0 > 0 }) else { throw CoreError("sampler: imageShape must be (C, S, S), got \(imageShape)") }
        let per = imageShape.reduce(1, *)
        var out = [Float](); out.reserveCapacity(ids.count * per)                   // (N, C, S, S)
        var start = 0
        while start < ids.count {
            let end = min(ids.count, start + config.batchSize)
            out += noGrad {
                withWinogradConvolutions(config.winograd) {
                    sampleChunk(model, tokens: tokens.rows(start..<end), ids: Array(ids[start..<end]),
                                imageShape: imageShape, config: config)
                }
            }
            start = end
        }
        return Tensor(shape: [ids.count] + imageShape, data: out)
    }

    /// The timesteps a sampler visits, descending, and the count of denoiser calls.
    public static func timesteps(schedule: NoiseSchedule, config: SamplerConfig) throws -> [Int] {
        switch config.method {
        case .ddim: return try schedule.samplingTimesteps(count: config.steps)
        case .ddpm: return Array((0..<schedule.steps).reversed())
        }
    }

    static func sampleChunk(_ model: Denoiser, tokens: TokenBatch, ids: [SampleID], imageShape: [Int],
                            config: SamplerConfig) -> [Float] {
        let b = ids.count, per = imageShape.reduce(1, *), shape = [b] + imageShape
        let schedule = model.schedule
        let ts = try! timesteps(schedule: schedule, config: config)
        var x = ids.flatMap { $0.initialNoise(count: per) }                            // x_t: (B, C, S, S)
        let guided = config.guidanceScale != nil
        let inputTokens = guided ? tokens.appending(TokenBatch(ids: [Int32](repeating: TokenBatch.pad, count: tokens.ids.count),
                                                               batch: b, length: tokens.length)) : tokens
        for (i, t) in ts.enumerated() {
            let xt = Tensor(shape: shape, data: x)
            var eps: [Float]                                                           // ε̂: (B, C, S, S)
            if let s = config.guidanceScale {
                let both = model.predictNoise(concat([xt, xt], axis: 0), timesteps: [Int](repeating: t, count: 2 * b),
                                              tokens: inputTokens).data                // (2B, C, S, S)
                // ε = ε_c + (s − 1)(ε_c − ε_u)  ≡  ε_u + s(ε_c − ε_u)
                let g = Float(s - 1)
                eps = [Float](repeating: 0, count: b * per)
                for j in 0..<(b * per) { let c = both[j], u = both[b * per + j]; eps[j] = c + g * (c - u) }
            } else {
                eps = model.predictNoise(xt, timesteps: [Int](repeating: t, count: b), tokens: inputTokens).data
            }
            let (cx, ceps, cz): (Float, Float, Float)
            switch config.method {
            case let .ddim(eta): (cx, ceps, cz) = schedule.ddimCoefficients(t: t, prev: i + 1 < ts.count ? ts[i + 1] : -1, eta: eta)
            case .ddpm: (cx, ceps, cz) = schedule.ddpmCoefficients(t: t)
            }
            for r in 0..<b {
                let z = cz != 0 ? ids[r].stepNoise(step: i, count: per) : []
                for j in 0..<per {
                    let k = r * per + j
                    x[k] = cx * x[k] + ceps * eps[k] + (cz != 0 ? cz * z[j] : 0)
                }
            }
        }
        return x.map { min(1, max(-1, $0)) }
    }

    /// Lays out images (N, 3, S, S) in [−1, 1] as a grid of `columns` columns, each image upscaled
    /// `scale`× with nearest neighbour. `rowLabels` (one per row) are drawn to the left of the rows
    /// in the 3×5 bitmap font.
    public static func grid(_ images: Tensor, columns: Int, scale: Int = 4, rowLabels: [String]? = nil) throws -> RGBImage {
        guard images.rank == 4, images.shape[1] == 3, images.shape[2] == images.shape[3] else {
            throw CoreError("sample grid: expected images (N, 3, S, S), got \(images.shape)")
        }
        guard scale >= 1, columns >= 1 else { throw CoreError("sample grid: scale and columns must be ≥ 1 (got \(scale), \(columns))") }
        let n = images.shape[0], s = images.shape[2], per = 3 * s * s
        let tiles = try (0..<n).map { try RGBImage(chw: Array(images.data[($0 * per)..<(($0 + 1) * per)]), size: s).upscaled(by: scale) }
        let body = try RGBImage.grid(tiles, columns: columns)
        guard let labels = rowLabels else { return body }
        let rows = (n + columns - 1) / columns
        guard labels.count == rows else { throw CoreError("sample grid: \(labels.count) row labels for \(rows) rows") }
        let margin = (labels.map { RGBImage.textWidth($0) }.max() ?? 0) + 4
        var out = RGBImage(width: body.width + margin, height: body.height)
        out.paste(body, x: margin, y: 0)
        let tile = s * scale
        for (r, text) in labels.enumerated() { out.drawText(text, x: 2, y: 2 + r * (tile + 2) + tile / 2 - 2) }
        return out
    }
}

extension DiffusionModel {
    /// Samples `prompts[i]` with `SampleID(seed: seed, index: i)` → (N, C, S, S) in [−1, 1].
    public func sample(prompts: [String], seed: UInt64, config: SamplerConfig = SamplerConfig()) throws -> Tensor {
        try Sampler.sample(self, tokens: tokenize(prompts), ids: prompts.indices.map { SampleID(seed: seed, index: $0) },
                           imageShape: imageShape, config: config)
    }

    /// A prompts × seeds grid: row p, column s is `SampleID(seed: seeds[s], index: p)`. Returns the
    /// images (P·S, C, S, S) in row-major grid order and writes the PNG (prompts as row labels) to
    /// `path` if given.
    public func sampleGrid(prompts: [String], seeds: [UInt64], config: SamplerConfig = SamplerConfig(),
                           scale: Int = 4, path: String? = nil) throws -> Tensor {
        guard !prompts.isEmpty, !seeds.isEmpty else { throw CoreError("sample grid: needs at least one prompt and one seed") }
        let rows = try tokenize(prompts)
        var ids: [SampleID] = [], tokenIds: [Int32] = []
        for p in prompts.indices {
            for s in seeds { ids.append(SampleID(seed: s, index: p)); tokenIds += rows.rows(p..<(p + 1)).ids }
        }
        let images = try Sampler.sample(self, tokens: TokenBatch(ids: tokenIds, batch: ids.count, length: rows.length), ids: ids,
                                        imageShape: imageShape, config: config)
        if let path { try PNG.write(Sampler.grid(images, columns: seeds.count, scale: scale, rowLabels: prompts.map { $0.isEmpty ? "(null)" : $0 }), to: path) }
        return images
    }

    /// (C, S, S) of the images this model makes.
    public var imageShape: [Int] { [config.imageChannels, config.imageSize, config.imageSize] }
}
