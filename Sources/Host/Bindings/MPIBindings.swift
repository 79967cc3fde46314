// semidpo.mpi: the ranks of a run started by mpirun/srun (Core's Cluster) — rank, size, barrier and
// the collectives on Lua values (numbers, strings, booleans, tables of them, tensors).
import Core
import Foundation

enum MPIBindings: LuaBindings {
    static let module: String? = "mpi"
    static let functions: [LuaFunction] = [
        LuaFunction("rank", mpi_rank),
        LuaFunction("size", mpi_size),
        LuaFunction("barrier", mpi_barrier),
        LuaFunction("allreduce", mpi_allreduce),
        LuaFunction("broadcast", mpi_broadcast),
        LuaFunction("gather", mpi_gather),
    ]
}

/// `semidpo.mpi.rank() -> integer` (0 without a launcher).
private func mpi_rank(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "rank") { args in try args.push(Cluster.rank); return 1 }
}

/// `semidpo.mpi.size() -> integer` (1 without a launcher).
private func mpi_size(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "size") { args in try args.push(Cluster.size); return 1 }
}

/// `semidpo.mpi.barrier()`: waits for every rank.
private func mpi_barrier(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "barrier") { _ in Cluster.barrier(); return 0 }
}

/// The root argument at `index` (default 0), checked against the size.
private func rootArgument(_ args: LuaArgs, _ index: Int32) throws -> Int {
    let root = try args.optional(index, args.integer) ?? 0
    guard root >= 0 && root < Cluster.size else {
        throw args.error(index, "root must be a rank in 0..\(Cluster.size - 1), got \(root)")
    }
    return root
}

/// `semidpo.mpi.allreduce(x [, op = "sum"]) -> same kind as x`: x a number or a Tensor (same shape on
/// every rank); op "sum", "max" or "min", elementwise. Values are gathered and combined in rank order,
/// so the result is identical on every rank. Integers stay integers when every rank passes one.
private func mpi_allreduce(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "allreduce") { args in
        let opName = try args.optional(2, args.string) ?? "sum"
        guard let op = Cluster.Reduction(rawValue: opName) else {
            throw args.error(2, "expected \"sum\", \"max\" or \"min\", got \"\(opName)\"")
        }
        let v = try args.value(1)
        guard v is Int || v is Double || v is Tensor else { throw args.typeError(1, "number or Tensor") }
        let parts = try Cluster.allgather(MPIValue.encode(v)).map { try MPIValue.decode($0) }
        if let t = v as? Tensor {
            var data: [[Float]] = []
            for (r, p) in parts.enumerated() {
                guard let pt = p as? Tensor, pt.shape == t.shape else {
                    throw args.error(1, "rank \(r) passed \(MPIValue.describe(p)), rank \(Cluster.rank) a Tensor of shape \(t.shape)")
                }
                data.append(pt.data)
            }
            try args.push(Tensor(shape: t.shape, data: try Cluster.reduceInOrder(data, op)))
            return 1
        }
        var numbers: [Double] = [], allIntegers = true
        for (r, p) in parts.enumerated() {
            switch p {
            case let i as Int: numbers.append(Double(i))
            case let d as Double: numbers.append(d); allIntegers = false
            default: throw args.error(1, "rank \(r) passed \(MPIValue.describe(p)), rank \(Cluster.rank) a number")
            }
        }
        if allIntegers {
            let ints = parts.map { $0 as! Int }
            var out = ints[0]
            for i in ints.dropFirst() {
                switch op {
                case .sum:
                    let (s, overflow) = out.addingReportingOverflow(i)
                    guard !overflow else { throw args.error(1, "the integer sum overflows") }
                    out = s
                case .max: out = max(out, i)
                case .min: out = min(out, i)
                }
            }
            try args.push(out)
        } else {
            try args.push(try Cluster.reduceInOrder(numbers.map { [$0] }, op)[0])
        }
        return 1
    }
}

/// `semidpo.mpi.broadcast(value [, root = 0]) -> value`: root's value on every rank (nil, booleans,
/// numbers, strings, tables of them, Tensors; every rank must call it, the others' values are ignored).
private func mpi_broadcast(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "broadcast") { args in
        let root = try rootArgument(args, 2)
        var bytes: [UInt8] = []
        if Cluster.rank == root {
            do { bytes = try MPIValue.encode(try args.value(1)) } catch let e as CoreError { throw args.error(1, e.message) }
        }
        try args.push(try MPIValue.decode(Cluster.broadcast(bytes, root: root)))
        return 1
    }
}

/// `semidpo.mpi.gather(value [, root = 0]) -> {value of rank 0, value of rank 1, …}` on root, nil on
/// the other ranks (a nil value leaves a hole; use `semidpo.mpi.size()` for the length).
private func mpi_gather(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "gather") { args in
        let root = try rootArgument(args, 2)
        let bytes: [UInt8]
        do { bytes = try MPIValue.encode(try args.value(1)) } catch let e as CoreError { throw args.error(1, e.message) }
        guard let parts = Cluster.gather(bytes, root: root) else { try args.push(nil); return 1 }
        try args.push(try parts.map { try MPIValue.decode($0) } as [Any?])
        return 1
    }
}

/// A small tagged binary form of the Lua values that can travel between ranks.
enum MPIValue {
    private enum Tag: UInt8 { case null = 0, no, yes, int, double, string, array, dictionary, tensor }

    static func describe(_ v: Any?) -> String {
        switch v {
        case nil: return "nil"
        case is Int, is Double: return "a number"
        case let t as Tensor: return "a Tensor of shape \(t.shape)"
        case is String: return "a string"
        default: return "a \(LuaOptions.luaTypeName(of: v as Any))"
        }
    }

    static func encode(_ v: Any?) throws -> [UInt8] {
        var out: [UInt8] = []
        try encode(v, into: &out, depth: 0)
        return out
    }

    private static func append<T: FixedWidthInteger>(_ x: T, _ out: inout [UInt8]) {
        withUnsafeBytes(of: x.littleEndian) { out.append(contentsOf: $0) }
    }

    private static func encode(_ v: Any?, into out: inout [UInt8], depth: Int) throws {
        guard depth < 64 else { throw CoreError("cannot send a value nested deeper than 64 tables") }
        switch v {
        case nil: out.append(Tag.null.rawValue)
        case let b as Bool: out.append(b ? Tag.yes.rawValue : Tag.no.rawValue)
        case let i as Int: out.append(Tag.int.rawValue); append(Int64(i), &out)
        case let d as Double: out.append(Tag.double.rawValue); append(d.bitPattern, &out)
        case let s as String:
            out.append(Tag.string.rawValue); append(UInt64(s.utf8.count), &out); out.append(contentsOf: s.utf8)
        case let t as Tensor:
            out.append(Tag.tensor.rawValue); append(UInt64(t.shape.count), &out)
            for d in t.shape { append(Int64(d), &out) }
            t.data.withUnsafeBytes { out.append(contentsOf: $0) }
        case let a as [Any]:
            out.append(Tag.array.rawValue); append(UInt64(a.count), &out)
            for e in a { try encode(e, into: &out, depth: depth + 1) }
        case let d as [String: Any]:
            out.append(Tag.dictionary.rawValue); append(UInt64(d.count), &out)
            for k in d.keys.sorted() {
                try encode(k, into: &out, depth: depth + 1)
                try encode(d[k]!, into: &out, depth: depth + 1)
            }
        default:
            throw CoreError("cannot send \(describe(v)) to other ranks (only nil, booleans, numbers, strings, tables of them and Tensors)")
        }
    }

    static func decode(_ bytes: [UInt8]) throws -> Any? {
        var pos = 0
        let v = try decode(bytes, &pos)
        guard pos == bytes.count else { throw CoreError("mpi: \(bytes.count - pos) stray bytes after a value") }
        return v
    }

    private static func read<T: FixedWidthInteger>(_ bytes: [UInt8], _ pos: inout Int, _: T.Type) throws -> T {
        let n = MemoryLayout<T>.size
        guard pos + n <= bytes.count else { throw CoreError("mpi: truncated value") }
        var x: T = 0
        withUnsafeMutableBytes(of: &x) { $0.copyBytes(from: bytes[pos..<pos + n]) }
        pos += n
        return T(littleEndian: x)
    }

    private static func count(_ bytes: [UInt8], _ pos: inout Int) throws -> Int {
        let n = try read(bytes, &pos, UInt64.self)
        guard n <= UInt64(bytes.count) else { throw CoreError("mpi: bad length \(n)") }
        return Int(n)
    }

    private static func decode(_ bytes: [UInt8], _ pos: inout Int) throws -> Any? {
        guard pos < bytes.count, let tag = Tag(rawValue: bytes[pos]) else { throw CoreError("mpi: bad value tag") }
        pos += 1
        switch tag {
        case .null: return nil
        case .no: return false
        case .yes: return true
        case .int: return Int(try read(bytes, &pos, Int64.self))
        case .double: return Double(bitPattern: try read(bytes, &pos, UInt64.self))
        case .string:
            let n = try count(bytes, &pos)
            guard pos + n <= bytes.count else { throw CoreError("mpi: truncated string") }
            defer { pos += n }
            return String(decoding: bytes[pos..<pos + n], as: UTF8.self)
        case .tensor:
            let rank = try count(bytes, &pos)
            var shape: [Int] = []
            for _ in 0..<rank { shape.append(Int(try read(bytes, &pos, Int64.self))) }
            let n = shape.reduce(1, *), size = n * MemoryLayout<Float>.size
            guard shape.allSatisfy({ $0 >= 0 }), pos + size <= bytes.count else { throw CoreError("mpi: truncated tensor") }
            let data = bytes[pos..<pos + size].withUnsafeBytes { raw in
                (0..<n).map { raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<Float>.size, as: Float.self) }
            }
            pos += size
            return Tensor(shape: shape, data: data)
        case .array:
            let n = try count(bytes, &pos)
            var a: [Any?] = []
            for _ in 0..<n { a.append(try decode(bytes, &pos)) }
            return a
        case .dictionary:
            let n = try count(bytes, &pos)
            var d: [String: Any] = [:]
            for _ in 0..<n {
                guard let k = try decode(bytes, &pos) as? String else { throw CoreError("mpi: bad table key") }
                d[k] = try decode(bytes, &pos)
            }
            return d
        }
    }
}
