// The MPI world of a run started by `mpirun`/`srun` (Open MPI's C API through CMPI): rank, size and
// the few collectives semidpo needs, all built so that their results do not depend on the rank count.
import CMPI
import Foundation

/// The processes of one distributed run. Without a launcher (no `OMPI_COMM_WORLD_SIZE`, `PMIX_RANK`
/// or `PMI_RANK` in the environment) MPI is never initialised: `rank` is 0, `size` is 1 and every
/// collective returns its input — a plain run behaves exactly as before.
///
/// Reductions are never `MPI_Allreduce` (its summation order is the library's choice): every
/// reduction gathers the ranks' values to all ranks and sums them in rank order, so a sum of the same
/// parts is the same float whatever the rank count (docs/architecture.md, "MPI").
public enum Cluster {
    public private(set) static var rank = 0
    public private(set) static var size = 1
    /// Whether `MPI_Init_thread` ran (and `MPI_Finalize` is due at exit).
    public private(set) static var isInitialized = false

    /// Whether the process was started by an MPI launcher (Open MPI's mpirun, PMIx or PMI2, e.g. srun).
    public static func launched(environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"].contains { environment[$0] != nil }
    }

    /// Initialises MPI if a launcher started the process (call once, from the main thread, before any
    /// other thread uses MPI; only the main thread calls MPI afterwards). Registers `MPI_Finalize` at exit.
    /// Ranks other than 0 stop writing to stdout (their prints and progress would repeat rank 0's) unless
    /// `SEMIDPO_MPI_ALL_OUTPUT=1`; stderr stays open on every rank.
    public static func initializeIfLaunched() {
        guard !isInitialized, launched() else { return }
        var provided: Int32 = 0
        let rc = MPI_Init_thread(nil, nil, cmpi_thread_funneled(), &provided)
        guard rc == cmpi_success() else {
            FileHandle.standardError.write(Data("semidpo: MPI_Init_thread failed (code \(rc))\n".utf8))
            exit(1)
        }
        isInitialized = true
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(cmpi_comm_world(), &r)
        MPI_Comm_size(cmpi_comm_world(), &s)
        rank = Int(r); size = Int(s)
        atexit { Cluster.finalize() }
        if rank != 0, ProcessInfo.processInfo.environment["SEMIDPO_MPI_ALL_OUTPUT"] != "1" {
            fflush(stdout)
            let null = open("/dev/null", O_WRONLY)
            if null >= 0 { dup2(null, STDOUT_FILENO); close(null) }
        }
    }

    /// Finalises MPI (every rank must call it; registered at exit by `initializeIfLaunched`).
    public static func finalize() {
        guard isInitialized else { return }
        isInitialized = false
        var done: Int32 = 0
        MPI_Finalized(&done)
        if done == 0 { MPI_Finalize() }
    }

    /// Ends every rank of the job: writes `message` (prefixed with the rank) to stderr, then
    /// `MPI_Abort` with `code`. Without MPI it just exits with `code`.
    public static func abort(_ message: String, code: Int32 = 1) -> Never {
        let prefix = size > 1 ? "[rank \(rank)] " : ""
        FileHandle.standardError.write(Data((prefix + message + "\n").utf8))
        fflush(stdout)
        if isInitialized { MPI_Abort(cmpi_comm_world(), code) }
        exit(code)
    }

    /// Waits until every rank reaches it.
    public static func barrier() {
        guard isInitialized else { return }
        MPI_Barrier(cmpi_comm_world())
    }

    // MARK: - Byte collectives (everything else is built on these three)

    /// Every rank's bytes, in rank order, on every rank (`MPI_Allgather` of the lengths, then `MPI_Allgatherv`).
    public static func allgather(_ bytes: [UInt8]) -> [[UInt8]] {
        guard isInitialized, size > 1 else { return [bytes] }
        var counts = [Int32](repeating: 0, count: size)
        var mine = Int32(checkedCount(bytes.count))
        MPI_Allgather(&mine, 1, cmpi_int(), &counts, 1, cmpi_int(), cmpi_comm_world())
        let (displs, total) = displacements(counts)
        var all = [UInt8](repeating: 0, count: total)
        bytes.withUnsafeBytes { src in
            all.withUnsafeMutableBytes { dst in
                _ = MPI_Allgatherv(UnsafeMutableRawPointer(mutating: src.baseAddress), mine, cmpi_byte(),
                                   dst.baseAddress, counts, displs, cmpi_byte(), cmpi_comm_world())
            }
        }
        return (0..<size).map { Array(all[Int(displs[$0])..<Int(displs[$0]) + Int(counts[$0])]) }
    }

    /// Root's bytes on every rank.
    public static func broadcast(_ bytes: [UInt8], root: Int) -> [UInt8] {
        guard isInitialized, size > 1 else { return bytes }
        precondition(root >= 0 && root < size, "broadcast: root \(root) outside 0..<\(size)")
        var count = Int32(checkedCount(bytes.count))
        MPI_Bcast(&count, 1, cmpi_int(), Int32(root), cmpi_comm_world())
        var out = rank == root ? bytes : [UInt8](repeating: 0, count: Int(count))
        out.withUnsafeMutableBytes { _ = MPI_Bcast($0.baseAddress, count, cmpi_byte(), Int32(root), cmpi_comm_world()) }
        return out
    }

    /// Every rank's bytes in rank order on `root`; nil on the other ranks.
    public static func gather(_ bytes: [UInt8], root: Int) -> [[UInt8]]? {
        guard isInitialized, size > 1 else { return [bytes] }
        precondition(root >= 0 && root < size, "gather: root \(root) outside 0..<\(size)")
        var counts = [Int32](repeating: 0, count: size)
        var mine = Int32(checkedCount(bytes.count))
        MPI_Gather(&mine, 1, cmpi_int(), &counts, 1, cmpi_int(), Int32(root), cmpi_comm_world())
        let (displs, total) = displacements(counts)
        var all = [UInt8](repeating: 0, count: rank == root ? total : 0)
        bytes.withUnsafeBytes { src in
            all.withUnsafeMutableBytes { dst in
                _ = MPI_Gatherv(UnsafeMutableRawPointer(mutating: src.baseAddress), mine, cmpi_byte(),
                                dst.baseAddress, counts, displs, cmpi_byte(), Int32(root), cmpi_comm_world())
            }
        }
        guard rank == root else { return nil }
        return (0..<size).map { Array(all[Int(displs[$0])..<Int(displs[$0]) + Int(counts[$0])]) }
    }

    /// Personalised exchange: this rank sends `parts[j]` to rank j (one part per rank) and receives,
    /// in rank order, what every rank sent to it (`MPI_Alltoall` of the lengths, then `MPI_Alltoallv`).
    public static func alltoall(_ parts: [[UInt8]]) -> [[UInt8]] {
        precondition(parts.count == size, "alltoall: \(parts.count) parts for \(size) ranks")
        guard isInitialized, size > 1 else { return parts }
        var sendCounts = parts.map { Int32(checkedCount($0.count)) }
        var recvCounts = [Int32](repeating: 0, count: size)
        MPI_Alltoall(&sendCounts, 1, cmpi_int(), &recvCounts, 1, cmpi_int(), cmpi_comm_world())
        let (sendDispls, _) = displacements(sendCounts), (recvDispls, total) = displacements(recvCounts)
        let send = parts.flatMap { $0 }
        var recv = [UInt8](repeating: 0, count: total)
        send.withUnsafeBytes { src in
            recv.withUnsafeMutableBytes { dst in
                _ = MPI_Alltoallv(src.baseAddress, sendCounts, sendDispls, cmpi_byte(),
                                  dst.baseAddress, recvCounts, recvDispls, cmpi_byte(), cmpi_comm_world())
            }
        }
        return (0..<size).map { Array(recv[Int(recvDispls[$0])..<Int(recvDispls[$0]) + Int(recvCounts[$0])]) }
    }

    private static func checkedCount(_ n: Int) -> Int {
        precondition(n <= Int(Int32.max), "MPI message of \(n) bytes is larger than 2 GiB")
        return n
    }

    private static func displacements(_ counts: [Int32]) -> ([Int32], Int) {
        var displs = [Int32](), total = 0
        for c in counts { displs.append(Int32(checkedCount(total))); total += Int(c) }
        _ = checkedCount(total)
        return (displs, total)
    }

    // MARK: - Typed collectives

    /// Every rank's values in rank order, on every rank.
    public static func allgather<T: BitwiseCopyable>(_ values: [T]) -> [[T]] {
        guard isInitialized, size > 1 else { return [values] }
        let bytes = values.withUnsafeBytes { Array($0) }
        return allgather(bytes).map { b in
            b.withUnsafeBytes { raw in Array(raw.bindMemory(to: T.self)) }
        }
    }

    /// `alltoall` of typed values.
    public static func alltoall<T: BitwiseCopyable>(_ parts: [[T]]) -> [[T]] {
        guard isInitialized, size > 1 else { return parts }
        return alltoall(parts.map { p in p.withUnsafeBytes { Array($0) } }).map { b in
            b.withUnsafeBytes { raw in Array(raw.bindMemory(to: T.self)) }
        }
    }

    /// Root's values on every rank.
    public static func broadcast<T: BitwiseCopyable>(_ values: [T], root: Int) -> [T] {
        guard isInitialized, size > 1 else { return values }
        let out = broadcast(values.withUnsafeBytes { Array($0) }, root: root)
        return out.withUnsafeBytes { Array($0.bindMemory(to: T.self)) }
    }

    public enum Reduction: String, CaseIterable, Sendable { case sum, max, min }

    /// Elementwise reduction of every rank's `values` (same length on every rank), the same on every
    /// rank: gathered, then combined in rank order ((v₀ + v₁) + v₂) + …, so the result is a fixed
    /// function of the parts. Throws if the ranks' lengths differ.
    public static func allreduce(_ values: [Double], _ op: Reduction) throws -> [Double] {
        try reduceInOrder(allgather(values), op)
    }

    public static func allreduce(_ values: [Float], _ op: Reduction) throws -> [Float] {
        try reduceInOrder(allgather(values), op)
    }

    /// Combines equal-length parts in order (the reduction of `allreduce`, also used for gradient shards).
    public static func reduceInOrder<T: BinaryFloatingPoint>(_ parts: [[T]], _ op: Reduction) throws -> [T] {
        guard var out = parts.first else { return [] }
        for (k, p) in parts.enumerated().dropFirst() {
            guard p.count == out.count else {
                throw CoreError("allreduce: rank/part \(k) has \(p.count) values, part 0 has \(out.count)")
            }
            switch op {
            case .sum: for i in out.indices { out[i] += p[i] }
            case .max: for i in out.indices where p[i] > out[i] || (p[i].isNaN && !out[i].isNaN) { out[i] = p[i] }
            case .min: for i in out.indices where p[i] < out[i] || (p[i].isNaN && !out[i].isNaN) { out[i] = p[i] }
            }
        }
        return out
    }

    /// The items `0..<count` this rank owns when they are dealt in contiguous blocks in rank order:
    /// rank r gets ⌊count·r/size⌋ ..< ⌊count·(r+1)/size⌋ (blocks differ by at most one item).
    public static func block(of count: Int, rank r: Int = rank, size n: Int = size) -> Range<Int> {
        (count * r / n)..<(count * (r + 1) / n)
    }

    /// Whether this rank writes files that are not its own shards (rank 0 owns the run directory,
    /// manifest, tables, checkpoints and stage cache; `AtomicWriter.commit` consults this).
    public static var ownsSharedFiles: Bool { rank == 0 }
}
