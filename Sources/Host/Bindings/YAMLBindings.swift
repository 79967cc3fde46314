// semidpo.yaml: load(path), decode(text), dump(value) on Core's libyaml reader and writer.
import CLua
import Core

enum YAMLBindings: LuaBindings {
    static let module: String? = "yaml"
    static let functions: [LuaFunction] = [
        LuaFunction("load", yaml_load),
        LuaFunction("decode", yaml_decode),
        LuaFunction("dump", yaml_dump),
    ]
}

/// `semidpo.yaml.load(path) -> value`: relative paths are relative to the current directory
/// (where `semidpo` was started), not the run directory.
private func yaml_load(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "load") { args in
        let path = try args.string(1)
        try args.push(try YAML.load(path: path))
        return 1
    }
}

/// `semidpo.yaml.decode(text [, name]) -> value`; `name` is used in error positions. The string's
/// bytes are parsed as they are, so invalid UTF-8 fails here exactly as in `load`.
private func yaml_decode(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "decode") { args in
        _ = try args.string(1)
        let name = try args.optional(2, args.string) ?? "<string>"
        var length = 0
        let p = lua_tolstring(args.L, 1, &length)
        let bytes = p.map { Array(UnsafeRawBufferPointer(start: $0, count: length).bindMemory(to: UInt8.self)) } ?? []
        try args.push(try YAML.decode(bytes: bytes, file: name))
        return 1
    }
}

/// `semidpo.yaml.dump(value) -> string` (map keys sorted).
private func yaml_dump(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "dump") { args in
        let value: YAMLValue
        do { value = try LuaStack.yamlValue(args.L, 1) } catch let e as CoreError { throw args.error(1, e.message) }
        try args.push(YAML.dump(value))
        return 1
    }
}
