// Run-level functions in `semidpo`: writing files into the run directory, resolving paths, and
// `inspect` for printing values. (`semidpo.args/seed/threads/out` are fields set by `semidpo run`.)
import CLua
import Foundation
import Core

enum RunBindings: LuaBindings {
    static let module: String? = nil
    static let functions: [LuaFunction] = [
        LuaFunction("write_text", run_write_text),
        LuaFunction("copy_file", run_copy_file),
        LuaFunction("path", run_path),
        LuaFunction("inspect", run_inspect),
    ]
    static func register(_ lua: LuaState) {
        lua.register(module: nil, functions)
        try? lua.setField("version", SemidpoVersion.string)
    }
}

/// `semidpo.write_text(path, text) -> absolute path`: atomic write, relative paths inside the run
/// directory, recorded in the manifest.
private func run_write_text(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "write_text") { args in
        let path = try args.string(1)
        let text = try args.string(2)
        try args.push(try args.run.writeText(text, to: path))
        return 1
    }
}

/// `semidpo.copy_file(from, to) -> absolute path of the copy`: copies a file byte for byte, writing
/// `to` atomically (temp + rename); relative paths resolve in the run directory; recorded in the manifest.
private func run_copy_file(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "copy_file") { args in
        let from = try args.run.resolve(try args.string(1)), to = try args.string(2)
        do { try InputFile.requireRegular(from) } catch let e as CoreError { throw args.error(1, e.message) }
        guard let data = FileManager.default.contents(atPath: from) else { throw args.error(1, "cannot read '\(from)'") }
        try args.push(try args.run.writeData(data, to: to))
        return 1
    }
}

/// `semidpo.path(relative) -> absolute path inside the run directory` (nothing is written).
private func run_path(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "path") { args in
        try args.push(try args.run.resolve(args.string(1)))
        return 1
    }
}

/// `semidpo.inspect(value) -> string`: a readable rendering of any value (tables as YAML flow-free
/// block text, keys sorted).
private func run_inspect(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "inspect") { args in
        let v: Any?
        do { v = try LuaStack.value(args.L, 1) } catch let e as CoreError { throw args.error(1, e.message) }
        switch v {
        case let o as LuaObject: try args.push(o.luaDescription)
        case is LuaRef: try args.push("function")
        default:
            let y = (try? YAMLValue(any: v)) ?? .string(String(describing: v ?? "nil"))
            var text = YAML.dump(y)
            if text.hasSuffix("\n") { text.removeLast() }
            try args.push(text)
        }
        return 1
    }
}
