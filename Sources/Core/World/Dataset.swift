// Preference datasets of the world: deterministic pair generation, a streaming builder (safetensors
// image shards + JSONL metadata + compact label tensors), and a lazily loading reader.
import Foundation

/// Settings of a world dataset.
public struct WorldConfig: Sendable, Equatable {
    public var imageSize: Int = 16
    public var seed: UInt64 = 0
    public var annotator = AnnotatorConfig()
    public init(imageSize: Int = 16, seed: UInt64 = 0, annotator: AnnotatorConfig = AnnotatorConfig()) {
        self.imageSize = imageSize; self.seed = seed; self.annotator = annotator
    }
}

/// Everything known about one generated pair except its pixels.
public struct PairRecord: Sendable {
    public var promptIndex: Int
    /// The candidate number it was drawn as (ties are skipped, so idx ≤ candidate).
    public var candidate: Int
    public var annotation: Annotation
    public var truth0: QualityScores
    public var truth1: QualityScores
    public var quality0: QualityParams
    public var quality1: QualityParams
}

/// Pure generation of pairs: candidate `j` is a function of (seed, j) only.
public struct PairGenerator: Sendable {
    public let config: WorldConfig
    public let prompts: [Prompt]
    let renderer: Renderer
    let oracle: Oracle
    public init(config: WorldConfig, prompts: [Prompt]) throws {
        guard !prompts.isEmpty else { throw CoreError("pair generator: no prompts") }
        try config.annotator.validate()
        self.config = config; self.prompts = prompts
        renderer = try Renderer(size: config.imageSize)
        oracle = try Oracle(size: config.imageSize)
    }

    /// Draws candidate pair `j` (prompt `j mod M`): two renders with independent quality, their
    /// oracle truths and one annotation. Images go to `image0`/`image1` (3·S·S floats each).
    public func candidate(_ j: Int, image0: inout [Float], image1: inout [Float]) -> PairRecord {
        let p = j % prompts.count
        let scene = prompts[p].scene
        var rng = RandomStream(RandomKey(seed: config.seed).child("pair").child(UInt64(j)))
        let q0 = QualityParams.random(for: scene, &rng), q1 = QualityParams.random(for: scene, &rng)
        renderer.render(scene, quality: q0, &rng, into: &image0)
        renderer.render(scene, quality: q1, &rng, into: &image1)
        // The oracle accepts any 3·S·S image, and these are exactly that size.
        let t0 = (try? oracle.score(image0, scene: scene)) ?? QualityScores(alignment: 0, aesthetics: 0, detail: 0)
        let t1 = (try? oracle.score(image1, scene: scene)) ?? QualityScores(alignment: 0, aesthetics: 0, detail: 0)
        let a = Annotator.annotate(t0, t1, config: config.annotator, &rng)
        return PairRecord(promptIndex: p, candidate: j, annotation: a, truth0: t0, truth1: t1, quality0: q0, quality1: q1)
    }

    /// Candidates `range` computed on `threads` threads with fixed contiguous partitioning; images
    /// land in row `j - range.lowerBound` of the flat outputs.
    func block(_ range: Range<Int>, threads: Int, image0: UnsafeMutablePointer<Float>, image1: UnsafeMutablePointer<Float>) -> [PairRecord] {
        let n = range.count, d = 3 * config.imageSize * config.imageSize
        let records = UnsafeMutablePointer<PairRecord?>.allocate(capacity: n)
        records.initialize(repeating: nil, count: n)
        defer { records.deinitialize(count: n); records.deallocate() }
        let parts = max(1, min(threads, n))
        let work = { (t: Int) in
            var a = [Float](repeating: 0, count: d), b = [Float](repeating: 0, count: d)
            for i in (t * n / parts)..<((t + 1) * n / parts) {
                records[i] = self.candidate(range.lowerBound + i, image0: &a, image1: &b)
                a.withUnsafeBufferPointer { (image0 + i * d).update(from: $0.baseAddress!, count: d) }
                b.withUnsafeBufferPointer { (image1 + i * d).update(from: $0.baseAddress!, count: d) }
            }
        }
        if parts == 1 { work(0) } else { DispatchQueue.concurrentPerform(iterations: parts, execute: work) }
        return (0..<n).map { records[$0]! }
    }
}

/// Summary written beside a dataset (`dataset.json`).
public struct DatasetManifest: Sendable, Equatable {
    public var pairs: Int
    public var prompts: Int
    public var candidates: Int
    public var ties: Int
    public var imageSize: Int
    public var seed: UInt64
    public var shardSize: Int
    public var shards: [String]
    public var annotator: AnnotatorConfig
    public var seconds: Double
}

public enum DatasetBuilder {
    /// Generates `pairs` labelled pairs over `prompts` (ties dropped) into `directory`:
    ///   shard-00000.safetensors …  `image0`, `image1`: (n, 3, S, S) in [-1, 1]; `idx`: (n) as F32
    ///   labels.safetensors          `label` (N) ±1, `truth0`/`truth1` (N, 3), `prompt_index` (N)
    ///   pairs.jsonl                 one line per pair: idx, prompt, label, truths, weights, quality
    ///   prompts.jsonl               one line per prompt: index, text
    ///   dataset.json                the manifest
    /// Memory stays at one shard; work is split over `threads` with fixed partitioning, so the
    /// files are identical for any thread count.
    @discardableResult
    public static func build(directory: String, pairs: Int, prompts: [Prompt], config: WorldConfig,
                             shardSize: Int = 10_000, threads: Int = 2,
                             progress: ((_ done: Int, _ total: Int) -> Void)? = nil) throws -> DatasetManifest {
        guard pairs >= 1 else { throw CoreError("dataset: pairs must be ≥ 1, got \(pairs)") }
        guard shardSize >= 1 else { throw CoreError("dataset: shardSize must be ≥ 1") }
        let start = Date()
        let gen = try PairGenerator(config: config, prompts: prompts)
        let S = config.imageSize, d = 3 * S * S
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let jsonlPath = (directory as NSString).appendingPathComponent("pairs.jsonl")
        let jsonlTmp = jsonlPath + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: jsonlTmp, contents: nil), let jsonl = FileHandle(forWritingAtPath: jsonlTmp) else {
            throw CoreError("dataset: cannot create \(jsonlPath)")
        }
        defer { try? jsonl.close() }
        var labels = [Float](), truth0 = [Float](), truth1 = [Float](), promptIndex = [Float]()
        labels.reserveCapacity(pairs); truth0.reserveCapacity(3 * pairs); truth1.reserveCapacity(3 * pairs); promptIndex.reserveCapacity(pairs)
        let blockSize = 4096
        let blk0 = UnsafeMutablePointer<Float>.allocate(capacity: blockSize * d), blk1 = UnsafeMutablePointer<Float>.allocate(capacity: blockSize * d)
        defer { blk0.deallocate(); blk1.deallocate() }
        var shardNames: [String] = []
        var next = 0, kept = 0, ties = 0
        var pending: [PairRecord] = [], pendingRow: [Int] = [], blockStart = 0
        var records: [PairRecord] = []
        while kept < pairs {
            let n = min(shardSize, pairs - kept)
            let name = String(format: "shard-%05d.safetensors", shardNames.count)
            let w = try SafetensorsStreamWriter(path: (directory as NSString).appendingPathComponent(name),
                                                tensors: [("image0", [n, 3, S, S]), ("image1", [n, 3, S, S]), ("idx", [n])],
                                                metadata: ["format": "semidpo-world-pairs", "image_range": "[-1, 1]"])
            // Two passes over the shard's pairs (image0 block, then image1) would need both in memory
            // at once; instead gather the shard's rows into one buffer per side.
            var side0 = [Float](repeating: 0, count: n * d), side1 = [Float](repeating: 0, count: n * d)
            var filled = 0
            records.removeAll(keepingCapacity: true)
            while filled < n {
                if pending.isEmpty {
                    // Candidates are pure functions of their number, so the block size changes only
                    // how much is computed ahead, never the result.
                    let size = min(blockSize, max(64, (n - filled) * 5 / 4))
                    blockStart = next
                    pending = gen.block(next..<(next + size), threads: threads, image0: blk0, image1: blk1)
                    pendingRow = Array(0..<size)
                    next += size
                    pending.reverse(); pendingRow.reverse()
                }
                let r = pending.removeLast(), row = pendingRow.removeLast()
                _ = blockStart
                if r.annotation.label == 0 { ties += 1; continue }
                side0.withUnsafeMutableBufferPointer { $0.baseAddress!.advanced(by: filled * d).update(from: blk0 + row * d, count: d) }
                side1.withUnsafeMutableBufferPointer { $0.baseAddress!.advanced(by: filled * d).update(from: blk1 + row * d, count: d) }
                records.append(r)
                filled += 1
            }
            try w.append(side0); try w.append(side1)
            try w.append((0..<n).map { Float(kept + $0) })
            try w.finish()
            shardNames.append(name)
            var text = ""
            text.reserveCapacity(n * 600)
            for (k, r) in records.enumerated() {
                text += line(idx: kept + k, r, prompt: prompts[r.promptIndex].text)
                labels.append(Float(r.annotation.label)); promptIndex.append(Float(r.promptIndex))
                truth0 += r.truth0.array; truth1 += r.truth1.array
            }
            try jsonl.write(contentsOf: Data(text.utf8))
            kept += n
            progress?(kept, pairs)
        }
        // Ties still pending in the last block were drawn but never needed: not counted.
        let candidates = kept + ties
        try jsonl.close()
        if rename(jsonlTmp, jsonlPath) != 0 { throw CoreError("dataset: cannot move \(jsonlPath) into place") }
        try Safetensors.write([NamedTensor(name: "label", shape: [pairs], data: labels),
                               NamedTensor(name: "truth0", shape: [pairs, 3], data: truth0),
                               NamedTensor(name: "truth1", shape: [pairs, 3], data: truth1),
                               NamedTensor(name: "prompt_index", shape: [pairs], data: promptIndex)],
                              metadata: ["dimensions": "alignment,aesthetics,detail"],
                              to: (directory as NSString).appendingPathComponent("labels.safetensors"))
        let promptLines = prompts.enumerated().map { "{\"index\":\($0.offset),\"text\":\(Safetensors.jsonString($0.element.text))}\n" }.joined()
        try AtomicFile.write(promptLines, to: (directory as NSString).appendingPathComponent("prompts.jsonl"))
        let manifest = DatasetManifest(pairs: pairs, prompts: prompts.count, candidates: candidates, ties: ties, imageSize: S,
                                       seed: config.seed, shardSize: shardSize, shards: shardNames, annotator: config.annotator,
                                       seconds: Date().timeIntervalSince(start))
        try AtomicFile.write(manifestJSON(manifest), to: (directory as NSString).appendingPathComponent("dataset.json"))
        return manifest
    }

    static func line(idx: Int, _ r: PairRecord, prompt: String) -> String {
        func s(_ q: QualityScores) -> String {
            "{\"alignment\":\(q.alignment),\"aesthetics\":\(q.aesthetics),\"detail\":\(q.detail),\"overall\":\(q.overall)}"
        }
        let w = r.annotation.weights.map { String(Float($0)) }.joined(separator: ",")
        return "{\"idx\":\(idx),\"candidate\":\(r.candidate),\"prompt_index\":\(r.promptIndex),\"prompt\":\(Safetensors.jsonString(prompt)),\"label\":\(r.annotation.label),\"label_0\":\(r.annotation.label == 1 ? 1 : 0),\"weights\":[\(w)],\"difference\":\(Float(r.annotation.difference)),\"truth0\":\(s(r.truth0)),\"truth1\":\(s(r.truth1)),\"quality0\":\(r.quality0.json),\"quality1\":\(r.quality1.json)}\n"
    }

    static func manifestJSON(_ m: DatasetManifest) -> String {
        """
        {"pairs":\(m.pairs),"prompts":\(m.prompts),"candidates":\(m.candidates),"ties":\(m.ties),"image_size":\(m.imageSize),\
        "seed":\(m.seed),"shard_size":\(m.shardSize),"shards":[\(m.shards.map { "\"\($0)\"" }.joined(separator: ","))],\
        "annotator":{"concentration":\(m.annotator.concentration),"temperature":\(m.annotator.temperature),"tie_tolerance":\(m.annotator.tieTolerance)},\
        "seconds":\(m.seconds)}\n
        """
    }
}

/// A built dataset, opened lazily: labels and truths are loaded (a few floats per pair), images are
/// read from the memory-mapped shards on demand.
public final class Dataset: @unchecked Sendable {
    public let directory: String
    public let manifest: DatasetManifest
    /// Prompt texts and parses, indexed by prompt index.
    public let prompts: [Prompt]
    /// Per pair: +1 (image0 preferred) or -1, prompt index, true scores of both images.
    public let labels: [Int]
    public let promptIndex: [Int]
    public let truth0: [QualityScores]
    public let truth1: [QualityScores]
    private var shardFiles: [Int: SafetensorsFile] = [:]
    private let lock = NSLock()

    public init(directory: String) throws {
        self.directory = directory
        func path(_ f: String) -> String { (directory as NSString).appendingPathComponent(f) }
        try InputFile.requireRegular(path("dataset.json"), what: "dataset manifest")
        guard let mdata = FileManager.default.contents(atPath: path("dataset.json")),
              let m = (try? JSONSerialization.jsonObject(with: mdata)) as? [String: Any] else {
            throw CoreError("dataset: cannot read \(path("dataset.json"))")
        }
        func int(_ k: String) throws -> Int {
            guard let v = m[k] as? Int else { throw CoreError("dataset: \(path("dataset.json")) lacks integer '\(k)'") }
            return v
        }
        let ann = m["annotator"] as? [String: Any] ?? [:]
        manifest = DatasetManifest(pairs: try int("pairs"), prompts: try int("prompts"), candidates: try int("candidates"), ties: try int("ties"),
                                   imageSize: try int("image_size"), seed: UInt64(try int("seed")), shardSize: try int("shard_size"),
                                   shards: m["shards"] as? [String] ?? [],
                                   annotator: AnnotatorConfig(concentration: ann["concentration"] as? Double ?? 0,
                                                              temperature: ann["temperature"] as? Double ?? 0,
                                                              tieTolerance: ann["tie_tolerance"] as? Double ?? 0),
                                   seconds: m["seconds"] as? Double ?? 0)
        guard manifest.shards.count == (manifest.pairs + manifest.shardSize - 1) / manifest.shardSize else {
            throw CoreError("dataset: \(path("dataset.json")) lists \(manifest.shards.count) shards for \(manifest.pairs) pairs")
        }
        // prompts
        try InputFile.requireRegular(path("prompts.jsonl"), what: "dataset prompts")
        guard let ptext = FileManager.default.contents(atPath: path("prompts.jsonl")).flatMap({ String(data: $0, encoding: .utf8) }) else {
            throw CoreError("dataset: cannot read \(path("prompts.jsonl"))")
        }
        var ps: [Prompt] = []
        for (n, l) in ptext.split(separator: "\n").enumerated() {
            guard let o = (try? JSONSerialization.jsonObject(with: Data(l.utf8))) as? [String: Any], let t = o["text"] as? String else {
                throw CoreError("dataset: \(path("prompts.jsonl")) line \(n + 1) is not {\"index\", \"text\"}")
            }
            ps.append(try Prompt(parsing: t))
        }
        guard ps.count == manifest.prompts else { throw CoreError("dataset: \(path("prompts.jsonl")) has \(ps.count) prompts, manifest says \(manifest.prompts)") }
        prompts = ps
        let lf = try SafetensorsFile(path: path("labels.safetensors"))
        let l = try lf.tensor("label").data, pi = try lf.tensor("prompt_index").data
        let t0 = try lf.tensor("truth0").data, t1 = try lf.tensor("truth1").data
        let n = manifest.pairs
        guard l.count == n, pi.count == n, t0.count == 3 * n, t1.count == 3 * n else {
            throw CoreError("dataset: \(path("labels.safetensors")) does not hold \(n) pairs")
        }
        labels = l.map { Int($0) }
        promptIndex = pi.map { Int($0) }
        guard promptIndex.allSatisfy({ $0 >= 0 && $0 < ps.count }) else { throw CoreError("dataset: prompt_index out of range in \(path("labels.safetensors"))") }
        truth0 = (0..<n).map { QualityScores(alignment: t0[3 * $0], aesthetics: t0[3 * $0 + 1], detail: t0[3 * $0 + 2]) }
        truth1 = (0..<n).map { QualityScores(alignment: t1[3 * $0], aesthetics: t1[3 * $0 + 1], detail: t1[3 * $0 + 2]) }
    }

    public var count: Int { manifest.pairs }
    public var imageSize: Int { manifest.imageSize }

    private func shard(_ k: Int) throws -> SafetensorsFile {
        lock.lock(); defer { lock.unlock() }
        if let f = shardFiles[k] { return f }
        let f = try SafetensorsFile(path: (directory as NSString).appendingPathComponent(manifest.shards[k]))
        let n = min(manifest.shardSize, manifest.pairs - k * manifest.shardSize)
        let S = manifest.imageSize
        for t in ["image0", "image1"] where try f.entry(t).shape != [n, 3, S, S] {
            throw CoreError("dataset: \(f.path) tensor '\(t)' has shape \(try f.entry(t).shape), expected \([n, 3, S, S])")
        }
        shardFiles[k] = f
        return f
    }

    /// The two images of pair `i` (CHW, [-1, 1]) as stored, image0 and image1.
    public func pair(_ i: Int) throws -> (image0: [Float], image1: [Float]) {
        guard i >= 0 && i < count else { throw CoreError("dataset: pair \(i) out of range 0..<\(count)") }
        let f = try shard(i / manifest.shardSize), r = i % manifest.shardSize
        return (try f.rows("image0", r..<(r + 1)), try f.rows("image1", r..<(r + 1)))
    }

    /// Winner and loser of pair `i` according to its label.
    public func winnerLoser(_ i: Int) throws -> (winner: [Float], loser: [Float]) {
        let p = try pair(i)
        return labels[i] == 1 ? (p.image0, p.image1) : (p.image1, p.image0)
    }

    /// A batch: images of `indices` stacked as (B, 3, S, S) flat arrays, winners first if `oriented`.
    public func batch(_ indices: [Int], oriented: Bool = true) throws -> (image0: [Float], image1: [Float]) {
        let d = 3 * imageSize * imageSize
        var a = [Float](repeating: 0, count: indices.count * d), b = a
        for (k, i) in indices.enumerated() {
            guard i >= 0 && i < count else { throw CoreError("dataset: pair \(i) out of range 0..<\(count)") }
            let f = try shard(i / manifest.shardSize), r = i % manifest.shardSize
            let swap = oriented && labels[i] == -1
            try f.readRow(swap ? "image1" : "image0", r, into: &a, at: k * d)
            try f.readRow(swap ? "image0" : "image1", r, into: &b, at: k * d)
        }
        return (a, b)
    }

    /// Splits pair indices by prompt: a prompt goes to test with probability `testFraction`
    /// (by a hash of seed and prompt index), so no prompt is in both parts.
    public func splitByPrompt(testFraction: Double, seed: UInt64) throws -> (train: [Int], test: [Int]) {
        guard testFraction >= 0 && testFraction <= 1 else { throw CoreError("dataset: testFraction \(testFraction) outside [0, 1]") }
        let key = RandomKey(seed: seed).child("split")
        let inTest = (0..<prompts.count).map { key.uniform(UInt64($0)) < testFraction }
        var train: [Int] = [], test: [Int] = []
        for i in 0..<count { if inTest[promptIndex[i]] { test.append(i) } else { train.append(i) } }
        return (train, test)
    }

    /// Label statistics over the whole dataset (ties from the manifest).
    public func statistics() throws -> WorldStatistics {
        try WorldStatistics.measure(labels: labels, truth0: truth0, truth1: truth1, droppedTies: manifest.ties)
    }

    /// Statistics over a subset of pairs (no tie information).
    public func statistics(of indices: [Int]) throws -> WorldStatistics {
        try WorldStatistics.measure(labels: indices.map { labels[$0] }, truth0: indices.map { truth0[$0] }, truth1: indices.map { truth1[$0] })
    }
}
