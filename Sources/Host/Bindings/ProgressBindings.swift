// semidpo.progress(total, label): Core's ProgressBar as a Lua object with :advance(n) and :finish().
import Core

extension ProgressBar: LuaObject {
    public static let luaTypeName = "Progress"
    public static let luaMethods: [LuaFunction] = [
        LuaFunction("advance", progress_advance),
        LuaFunction("finish", progress_finish),
    ]
    public var luaDescription: String { "Progress(\(label): \(count)/\(total))" }
}

enum ProgressBindings: LuaBindings {
    static let module: String? = nil
    static let functions: [LuaFunction] = [LuaFunction("progress", progress_new)]
}

/// `semidpo.progress(total, label) -> Progress`; total ≤ 0 means unknown.
private func progress_new(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "progress") { args in
        let total = try args.integer(1)
        let label = try args.optional(2, args.string) ?? "progress"
        try args.push(ProgressBar(total: total, label: label))
        return 1
    }
}

/// `p:advance([n = 1])`.
private func progress_advance(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "advance") { args in
        let p = try args.this(ProgressBar.self)
        let n = try args.optional(2, args.integer) ?? 1
        guard n >= 0 else { throw args.error(2, "expected a count ≥ 0, got \(n)") }
        p.advance(by: n)
        return 0
    }
}

/// `p:finish()`.
private func progress_finish(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "finish") { args in
        try args.this(ProgressBar.self).finish()
        return 0
    }
}
