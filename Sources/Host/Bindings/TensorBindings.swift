// semidpo.tensor: Float32 tensors as Lua userdata — creation, shape, 1-based indexing and slicing,
// arithmetic with broadcasting, reductions, conversion to/from Lua tables, and safetensors files.
import CLua
import CLuaShim
import Core

extension TensorOf: LuaObject where S == Float {
    public static var luaTypeName: String { "Tensor" }
    public static var luaMethods: [LuaFunction] { TensorBindings.methods }
    /// `Tensor(2, 3) [1, 2, 3, 4, 5, 6]`: the shape and up to the first 8 values.
    public var luaDescription: String {
        let values = data.prefix(8).map { formatNumber(Double($0)) }.joined(separator: ", ")
        return "Tensor(\(shape.map(String.init).joined(separator: ", "))) [\(values)\(count > 8 ? ", …" : "")]"
    }
}

/// `%.6g`-style rendering without a trailing `.0` for integral values.
private func formatNumber(_ v: Double) -> String {
    if v.isNaN { return "nan" }
    if v.isInfinite { return v < 0 ? "-inf" : "inf" }
    if v == v.rounded() && Swift.abs(v) < 1e15 { return String(Int64(v)) }
    var s = String(format: "%.6g", v)
    if s.hasPrefix("0.") == false, s.contains("e") == false, s.contains(".") {
        while s.hasSuffix("0") { s.removeLast() }
    }
    return s
}

enum TensorBindings: LuaBindings {
    static let module: String? = "tensor"
    static let functions: [LuaFunction] = [
        LuaFunction("zeros", tensor_zeros),
        LuaFunction("ones", tensor_ones),
        LuaFunction("full", tensor_full),
        LuaFunction("normal", tensor_normal),
        LuaFunction("from", tensor_from),
        LuaFunction("save", tensor_save),
        LuaFunction("load", tensor_load),
    ]
    static let methods: [LuaFunction] = [
        LuaFunction("shape", tensor_shape),
        LuaFunction("size", tensor_size),
        LuaFunction("count", tensor_count),
        LuaFunction("get", tensor_get),
        LuaFunction("set", tensor_set),
        LuaFunction("slice", tensor_slice),
        LuaFunction("reshape", tensor_reshape),
        LuaFunction("sum", tensor_sum),
        LuaFunction("mean", tensor_mean),
        LuaFunction("max", tensor_max),
        LuaFunction("min", tensor_min),
        LuaFunction("totable", tensor_totable),
    ]
    /// Arithmetic metamethods, set on the Tensor metatable when the area is registered.
    static let metamethods: [LuaFunction] = [
        LuaFunction("__add", tensor_add),
        LuaFunction("__sub", tensor_sub),
        LuaFunction("__mul", tensor_mul),
        LuaFunction("__div", tensor_div),
        LuaFunction("__unm", tensor_unm),
    ]

    static func register(_ lua: LuaState) {
        lua.register(module: module, functions)
        let L = lua.L
        LuaStack.pushMetatable(L, Tensor.self)
        // stack: …, mt
        for m in metamethods {
            lua_pushswiftfunction(L, m.function)
            lua_setfield(L, -2, m.name)
        }
        shim_pop(L, 1)
        // stack: …
    }
}

/// Largest tensor a recipe may create: 2^28 elements (1 GiB of Float32), so a typo cannot ask for
/// terabytes; below it, `MemoryBudget` still refuses what the machine cannot hold.
private let maxElements = 1 << 28

// MARK: - Argument helpers

extension LuaArgs {
    /// A shape table `{2, 3}` at `index`: non-negative integers, at most `maxElements` elements, and
    /// no more memory than the machine has available (checked before allocating).
    fileprivate func shape(_ index: Int32) throws -> [Int] {
        let dims = try integers(index)
        var total = 1
        for (i, d) in dims.enumerated() {
            guard d >= 0 else { throw error(index, "dimension \(i + 1) is \(d); dimensions must be ≥ 0") }
            let (p, o) = total.multipliedReportingOverflow(by: d)
            guard !o, p <= maxElements else { throw error(index, "shape \(dims) has more than \(maxElements) elements") }
            total = p
        }
        do { try MemoryBudget.check(count: total, elementSize: MemoryLayout<Float>.size, what: "a tensor of shape \(dims)") }
        catch let e as CoreError { throw error(index, e.message) }
        return dims
    }

    /// A tensor, or a number as a 0-d tensor (for arithmetic with scalars).
    fileprivate func tensorOrNumber(_ index: Int32) throws -> Tensor {
        let t = lua_type(L, index)
        if t == LUA_TNUMBER { return Tensor.scalar(Float(try number(index))) }
        if t == LUA_TUSERDATA { return try object(index, Tensor.self) }
        throw typeError(index, "Tensor or number")
    }

    /// A 1-based index into dimension `dim` (0-based) of `t` at argument `index`, as 0-based.
    fileprivate func position(_ index: Int32, in t: Tensor, dim: Int) throws -> Int {
        let i = try integer(index)
        guard i >= 1 && i <= t.shape[dim] else {
            throw error(index, "index \(i) out of range for dimension \(dim + 1) of size \(t.shape[dim]) (shape \(t.shape))")
        }
        return i - 1
    }

    /// A dimension number (1-based) of `t` at argument `index`, as 0-based.
    fileprivate func dimension(_ index: Int32, of t: Tensor) throws -> Int {
        let d = try integer(index)
        guard d >= 1 && d <= t.rank else {
            throw error(index, "dimension \(d) out of range for a tensor with \(t.rank) dimension\(t.rank == 1 ? "" : "s") (shape \(t.shape))")
        }
        return d - 1
    }
}

// MARK: - Creation

/// `semidpo.tensor.zeros(shape) -> Tensor`, e.g. `zeros({2, 3})`.
private func tensor_zeros(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "zeros") { args in try args.push(Tensor.zeros(try args.shape(1))); return 1 }
}

/// `semidpo.tensor.ones(shape) -> Tensor`.
private func tensor_ones(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "ones") { args in try args.push(Tensor.ones(try args.shape(1))); return 1 }
}

/// `semidpo.tensor.full(shape, value) -> Tensor`.
private func tensor_full(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "full") { args in
        let shape = try args.shape(1)
        try args.push(Tensor.full(shape, try args.float(2)))
        return 1
    }
}

/// `semidpo.tensor.normal(shape, seed [, {mean = 0, std = 1}]) -> Tensor`: element i is a pure
/// function of (seed, i), the same for any thread count.
private func tensor_normal(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "normal") { args in
        let shape = try args.shape(1)
        let seed = try args.integer(2)
        guard seed >= 0 else { throw args.error(2, "seed must be ≥ 0, got \(seed)") }
        let o = try args.options(3, allowed: ["mean", "std"])
        let mean = try o.number("mean", default: 0), std = try o.number("std", default: 1)
        guard std >= 0 else { throw args.error(3, "std must be ≥ 0, got \(std)") }
        try args.push(Tensor.normal(shape, key: RandomKey(seed: UInt64(seed)), mean: mean, std: std))
        return 1
    }
}

/// `semidpo.tensor.from(table [, shape]) -> Tensor`: a nested table `{{1, 2}, {3, 4}}` (shape
/// inferred, every row the same length), or a flat table with an explicit shape.
private func tensor_from(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "from") { args in
        guard lua_type(args.L, 1) == LUA_TTABLE else { throw args.typeError(1, "table") }
        let value = try args.value(1)
        var shape: [Int] = []
        var values: [Float] = []
        // Shape from the first element at each depth; then every element is checked against it.
        var probe: Any? = value
        while let a = probe as? [Any] { shape.append(a.count); probe = a.first }
        if value is [String: Any] { throw args.error(1, "expected a (nested) array of numbers, got a table with string keys") }
        func walk(_ v: Any, depth: Int, path: String) throws {
            if depth == shape.count {
                switch v {
                case let i as Int: values.append(Float(i))
                case let d as Double: values.append(Float(d))
                default: throw args.error(1, "element \(path) is \(v is [Any] || v is [String: Any] ? "a table" : LuaOptions.luaTypeName(of: v)), expected a number")
                }
                return
            }
            guard let a = v as? [Any] else { throw args.error(1, "element \(path) is a number, expected a table of \(shape[depth]) (rows must all have the same shape)") }
            guard a.count == shape[depth] else {
                throw args.error(1, "ragged table: element \(path.isEmpty ? "at top level" : path) has \(a.count) entries, expected \(shape[depth])")
            }
            for (i, e) in a.enumerated() { try walk(e, depth: depth + 1, path: path + "[\(i + 1)]") }
        }
        try walk(value as Any, depth: 0, path: "")
        if !args.isNoneOrNil(2) {
            let target = try args.shape(2)
            guard shape.count == 1 || values.isEmpty else {
                throw args.error(2, "a shape can only be given with a flat table (the table is \(shape))")
            }
            guard target.reduce(1, *) == values.count else {
                throw args.error(2, "shape \(target) needs \(target.reduce(1, *)) values, the table has \(values.count)")
            }
            shape = target
        }
        try args.push(Tensor(shape: shape, data: values))
        return 1
    }
}

// MARK: - Inspection and indexing

/// `t:shape() -> {d1, d2, …}`.
private func tensor_shape(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "shape") { args in try args.push(try args.this(Tensor.self).shape); return 1 }
}

/// `t:size(dim) -> integer` (1-based dimension).
private func tensor_size(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "size") { args in
        let t = try args.this(Tensor.self)
        try args.push(t.shape[try args.dimension(2, of: t)])
        return 1
    }
}

/// `t:count() -> number of elements`.
private func tensor_count(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "count") { args in try args.push(try args.this(Tensor.self).count); return 1 }
}

/// The flat offset of the 1-based indices in arguments 2…rank+1.
private func flatIndex(_ args: LuaArgs, _ t: Tensor, _ name: String, extra: Int32) throws -> Int {
    let given = Int(args.count) - 1 - Int(extra)
    guard given == t.rank else {
        throw LuaArgumentError("'\(name)' needs \(t.rank) index\(t.rank == 1 ? "" : "es") for shape \(t.shape)\(extra > 0 ? " and a value" : ""), got \(max(given, 0))")
    }
    var flat = 0
    for d in 0..<t.rank { flat = flat * t.shape[d] + (try args.position(Int32(d + 2), in: t, dim: d)) }
    return flat
}

/// `t:get(i, j, …) -> number`: one index per dimension, 1-based.
private func tensor_get(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "get") { args in
        let t = try args.this(Tensor.self)
        try args.push(Double(t.data[try flatIndex(args, t, "get", extra: 0)]))
        return 1
    }
}

/// `t:set(i, j, …, value)`: writes one element in place (1-based indices).
private func tensor_set(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "set") { args in
        let t = try args.this(Tensor.self)
        let flat = try flatIndex(args, t, "set", extra: 1)
        t.data[flat] = try args.float(args.count)
        return 0
    }
}

/// `t:slice(dim, from, to) -> Tensor`: entries from…to (1-based, inclusive) along `dim`, copied.
private func tensor_slice(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "slice") { args in
        let t = try args.this(Tensor.self)
        let d = try args.dimension(2, of: t)
        let from = try args.position(3, in: t, dim: d)
        let to = try args.integer(4)
        guard to >= from + 1 && to <= t.shape[d] else {
            throw args.error(4, "end \(to) out of range: must be in \(from + 1)…\(t.shape[d]) for dimension \(d + 1) of shape \(t.shape)")
        }
        let outer = t.shape[..<d].reduce(1, *), inner = t.shape[(d + 1)...].reduce(1, *)
        let n = to - from, size = t.shape[d]
        var out = [Float](); out.reserveCapacity(outer * n * inner)
        t.data.withUnsafeBufferPointer { p in
            for o in 0..<outer {
                let start = (o * size + from) * inner
                out.append(contentsOf: p[start..<(start + n * inner)])
            }
        }
        var shape = t.shape; shape[d] = n
        try args.push(Tensor(shape: shape, data: out))
        return 1
    }
}

/// `t:reshape(shape) -> Tensor` with the same elements (one dimension may be -1).
private func tensor_reshape(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "reshape") { args in
        let t = try args.this(Tensor.self)
        var shape = try args.integers(2)
        let unknown = shape.indices.filter { shape[$0] == -1 }
        guard unknown.count <= 1, shape.allSatisfy({ $0 >= -1 }) else {
            throw args.error(2, "dimensions must be ≥ 0, with at most one -1, got \(shape)")
        }
        if let u = unknown.first {
            let known = shape.enumerated().filter { $0.offset != u }.map(\.element).reduce(1, *)
            guard known > 0 && t.count % known == 0 else { throw args.error(2, "cannot infer -1 in \(shape) for \(t.count) elements") }
            shape[u] = t.count / known
        }
        guard shape.reduce(1, *) == t.count else {
            throw args.error(2, "shape \(shape) has \(shape.reduce(1, *)) elements, the tensor \(t.shape) has \(t.count)")
        }
        try args.push(Tensor(shape: shape, data: t.data))
        return 1
    }
}

// MARK: - Reductions

/// Applies `f` to the data of self, which must be non-empty.
private func reduce(_ L: OpaquePointer?, _ name: String, _ f: @escaping ([Float]) -> Double) -> Int32 {
    lua_method(L, name) { args in
        let t = try args.this(Tensor.self)
        guard t.count > 0 else { throw args.error(1, "'\(name)' of an empty tensor (shape \(t.shape))") }
        try args.push(f(t.data))
        return 1
    }
}

/// `t:sum() -> number` (accumulated in Float64, in element order).
private func tensor_sum(_ L: OpaquePointer?) -> Int32 {
    reduce(L, "sum") { d in d.reduce(0.0) { $0 + Double($1) } }
}
/// `t:mean() -> number`.
private func tensor_mean(_ L: OpaquePointer?) -> Int32 {
    reduce(L, "mean") { d in d.reduce(0.0) { $0 + Double($1) } / Double(d.count) }
}
/// `t:max() -> number` (NaN if any element is NaN).
private func tensor_max(_ L: OpaquePointer?) -> Int32 {
    reduce(L, "max") { d in d.contains { $0.isNaN } ? .nan : Double(d.max()!) }
}
/// `t:min() -> number` (NaN if any element is NaN).
private func tensor_min(_ L: OpaquePointer?) -> Int32 {
    reduce(L, "min") { d in d.contains { $0.isNaN } ? .nan : Double(d.min()!) }
}

/// `t:totable() -> nested table` (a number for a 0-d tensor).
private func tensor_totable(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "totable") { args in
        let t = try args.this(Tensor.self)
        let L = args.L
        guard lua_checkstack(L, Int32(t.rank) + 2) != 0 else { throw CoreError("totable: Lua stack overflow") }
        if t.rank == 0 { lua_pushnumber(L, Double(t.data[0])); return 1 }
        t.data.withUnsafeBufferPointer { p in
            var offset = 0
            func build(_ d: Int) {
                let n = t.shape[d]
                lua_createtable(L, Int32(clamping: n), 0)
                for i in 0..<n {
                    if d == t.rank - 1 { lua_pushnumber(L, Double(p[offset])); offset += 1 } else { build(d + 1) }
                    lua_rawseti(L, -2, lua_Integer(i + 1))
                }
            }
            build(0)
        }
        // stack: …, table
        return 1
    }
}

// MARK: - Arithmetic

/// a ∘ b for tensors or numbers with NumPy broadcasting; the result never records gradients.
private func arithmetic(_ L: OpaquePointer?, _ name: String, _ op: @escaping (Tensor, Tensor) -> Tensor) -> Int32 {
    lua_wrap(L, name) { args in
        let a = try args.tensorOrNumber(1), b = try args.tensorOrNumber(2)
        let r = max(a.rank, b.rank)
        for i in 0..<r {
            let da = i < r - a.rank ? 1 : a.shape[i - (r - a.rank)]
            let db = i < r - b.rank ? 1 : b.shape[i - (r - b.rank)]
            guard da == db || da == 1 || db == 1 else {
                throw LuaArgumentError("'\(name)': shapes \(a.shape) and \(b.shape) cannot be broadcast (dimension \(i + 1) of the result: \(da) vs \(db))")
            }
        }
        try args.push(noGrad { op(a, b) })
        return 1
    }
}

private func tensor_add(_ L: OpaquePointer?) -> Int32 { arithmetic(L, "+") { $0 + $1 } }
private func tensor_sub(_ L: OpaquePointer?) -> Int32 { arithmetic(L, "-") { $0 - $1 } }
private func tensor_mul(_ L: OpaquePointer?) -> Int32 { arithmetic(L, "*") { $0 * $1 } }
private func tensor_div(_ L: OpaquePointer?) -> Int32 { arithmetic(L, "/") { $0 / $1 } }

/// `-t`.
private func tensor_unm(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "-") { args in
        let t = try args.object(1, Tensor.self)
        try args.push(Tensor(shape: t.shape, data: t.data.map { -$0 }))
        return 1
    }
}

// MARK: - Files

/// `semidpo.tensor.save(path, {name = t, …} [, metadata]) -> absolute path`: a safetensors file
/// (tensors in name order, metadata values as strings). Relative paths go into the run directory;
/// the file is written atomically and recorded as a run output.
private func tensor_save(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "save") { args in
        let path = try args.string(1)
        guard lua_type(args.L, 2) == LUA_TTABLE else { throw args.typeError(2, "table of name = Tensor") }
        var tensors: [(String, Tensor)] = []
        switch try args.value(2) {
        case let d as [String: Any]:
            for name in d.keys.sorted() {
                guard let t = d[name] as? Tensor else {
                    throw args.error(2, "entry '\(name)' is \(LuaOptions.luaTypeName(of: d[name]!)), expected Tensor")
                }
                tensors.append((name, t))
            }
        case let a as [Any] where a.isEmpty: break
        default: throw args.error(2, "expected a table of name = Tensor (string keys)")
        }
        var metadata: [String: String] = [:]
        if !args.isNoneOrNil(3) {
            guard lua_type(args.L, 3) == LUA_TTABLE else { throw args.typeError(3, "table of metadata strings") }
            if let d = try args.value(3) as? [String: Any] {
                for (k, v) in d {
                    switch v {
                    case let s as String: metadata[k] = s
                    case let i as Int: metadata[k] = String(i)
                    case let x as Double: metadata[k] = formatNumber(x)
                    case let b as Bool: metadata[k] = b ? "true" : "false"
                    default: throw args.error(3, "metadata '\(k)' is \(LuaOptions.luaTypeName(of: v)), expected a string or number")
                    }
                }
            }
        }
        let resolved = try args.run.resolve(path)
        try TensorIO.save(tensors, metadata: metadata, to: resolved)
        try args.run.recordOutput(resolved)
        try args.push(resolved)
        return 1
    }
}

/// `semidpo.tensor.load(path) -> {name = Tensor, …}, metadata`: relative paths resolve in the run
/// directory (use an absolute path or `semidpo.path` for other files).
private func tensor_load(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "load") { args in
        let path = try args.run.resolve(try args.string(1))
        let (tensors, metadata) = try TensorIO.load(path)
        var table: [String: Any] = [:]
        for (name, t) in tensors { table[name] = t }
        try args.push(table)
        try args.push(metadata)
        return 2
    }
}
