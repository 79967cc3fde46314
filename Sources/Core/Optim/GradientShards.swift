// The gradient of one optimizer step as a fixed number of shards summed in shard order, spread over
// the MPI ranks (Cluster): the trainers' hook for data-parallel training, bit-identical at any rank count.
import Foundation

/// Splits a step's gradient into `count` shards (each a slice of the global batch), computes the
/// shards this rank owns (`Cluster.block(of: count)`: contiguous, in rank order), gathers every
/// shard's gradient and sums them in shard order (a fixed-order reduce-scatter + allgather):
///
///     g = ((g₀ + g₁) + g₂) + … + g_{count−1}      (Float, elementwise)
///
/// The parts and the order of the sum depend only on `count`, never on the rank count, so the weights
/// after N steps are the same bits at np = 1, 2, 4 … for the same `count` (a divisor rule keeps the
/// shards whole: `count` must be a multiple of the rank count). With `count` = 1 on one rank the
/// gradient is computed in place exactly as before (no copies). Every rank ends with the same
/// gradient, so the optimizer states stay identical without communication.
public struct GradientShards: Sendable {
    public let count: Int

    /// Throws unless `count` ≥ 1 and a multiple of the number of ranks.
    public init(count: Int) throws {
        guard count >= 1 else { throw CoreError("grad_shards must be ≥ 1 (got \(count))") }
        guard count % Cluster.size == 0 else {
            throw CoreError("grad_shards = \(count) must be a multiple of the number of MPI ranks (\(Cluster.size))")
        }
        self.count = count
    }

    /// The default: one shard per rank (1 without a launcher, which is the single-process gradient).
    public static var perRank: Int { Cluster.size }

    /// The slice `lo..<hi` of `n` items (a batch) that shard `shard` covers; throws unless `count` divides `n`.
    public func slice(_ shard: Int, of n: Int, what: String) throws -> Range<Int> {
        guard n % count == 0 else {
            throw CoreError("\(what) = \(n) must be a multiple of grad_shards = \(count) (each shard takes an equal slice)")
        }
        let m = n / count
        return (shard * m)..<((shard + 1) * m)
    }

    /// Runs `compute(shard)` for every shard this rank owns, with the gradients of `parameters` cleared
    /// before each, and leaves in the parameters' `grad` the sum over all shards in shard order (nil
    /// where no shard produced a gradient). Returns what each shard's `compute` returned, for all
    /// shards in shard order, on every rank (every shard must return the same number of values).
    public func run<S: TensorScalar & BinaryFloatingPoint & BitwiseCopyable>(_ parameters: [(String, TensorOf<S>)],
                                                               _ compute: (Int) throws -> [Double]) throws -> [[Double]] {
        if count == 1 && Cluster.size == 1 {
            zeroGrad(parameters)
            return [try compute(0)]
        }
        let sizes = parameters.map { $0.1.count }
        let width = sizes.reduce(0, +) + parameters.count       // gradients, then one presence flag per parameter
        let owned = Cluster.block(of: count)
        var local = [S](), metrics = [Double]()
        local.reserveCapacity(width * owned.count)
        var metricWidth: Int?
        for shard in owned {
            zeroGrad(parameters)
            let m = try compute(shard)
            if let w = metricWidth, w != m.count { throw CoreError("gradient shards: shard \(shard) returned \(m.count) metrics, expected \(w)") }
            metricWidth = m.count
            metrics += m
            for (k, (_, p)) in parameters.enumerated() {
                if let g = p.grad { local += g } else { local += repeatElement(0, count: sizes[k]) }
            }
            for (_, p) in parameters { local.append(p.grad == nil ? 0 : 1) }
        }
        // Fixed-order reduce-scatter, then allgather: rank j sums segment j of the vector over all
        // shards in shard order (it receives that segment of every shard: rank i's shards are the
        // contiguous block i, so they arrive in shard order), then every rank gets every segment.
        // Each element is the same sum of the same parts in the same order at any rank count; a rank
        // moves ≈ 2·(np − 1)/np of the vector per step, like a ring allreduce.
        let np = Cluster.size, segments = (0..<np).map { Cluster.block(of: width, rank: $0) }
        let mineCount = owned.count
        guard local.count == width * mineCount else { throw CoreError("gradient shards: \(local.count) values for \(mineCount) shards") }
        let outgoing: [[S]] = segments.map { seg in
            var part = [S](); part.reserveCapacity(seg.count * mineCount)
            for k in 0..<mineCount { part += local[(k * width + seg.lowerBound)..<(k * width + seg.upperBound)] }
            return part
        }
        let incoming = Cluster.alltoall(outgoing)
        let segment = segments[Cluster.rank]
        var parts: [[S]] = []
        for (i, part) in incoming.enumerated() {
            let shardsOfRank = Cluster.block(of: count, rank: i).count
            guard part.count == shardsOfRank * segment.count else {
                throw CoreError("gradient shards: rank \(i) sent \(part.count) values, expected \(shardsOfRank) × \(segment.count)")
            }
            for k in 0..<shardsOfRank { parts.append(Array(part[(k * segment.count)..<((k + 1) * segment.count)])) }
        }
        guard parts.count == count else { throw CoreError("gradient shards: received \(parts.count) shards, expected \(count)") }
        let summed = try Cluster.reduceInOrder(parts, .sum)
        let sum = np == 1 ? summed : Cluster.allgather(summed).flatMap { $0 }
        guard sum.count == width else { throw CoreError("gradient shards: gathered \(sum.count) values, expected \(width)") }
        var offset = 0
        let flags = sizes.reduce(0, +)
        for (k, (_, p)) in parameters.enumerated() {
            p.grad = sum[flags + k] > 0 ? Array(sum[offset..<(offset + sizes[k])]) : nil
            offset += sizes[k]
        }
        let w = metricWidth ?? 0
        var all: [[Double]] = []
        if w == 0 { all = Array(repeating: [], count: count) }
        for part in Cluster.allgather(metrics) where w > 0 {
            guard part.count % w == 0 else { throw CoreError("gradient shards: a rank sent \(part.count) metric values, not a multiple of \(w)") }
            for s in stride(from: 0, to: part.count, by: w) { all.append(Array(part[s..<(s + w)])) }
        }
        guard all.count == count else { throw CoreError("gradient shards: gathered metrics of \(all.count) shards, expected \(count)") }
        return all
    }
}
