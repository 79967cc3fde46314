// semidpo.stage: a recipe step whose outputs are cached on disk under a key made of its name,
// settings and inputs, so a second run (or an ablation sharing the step) loads it instead of rerunning.
import Core
import Foundation

enum StageBindings: LuaBindings {
    static let module: String? = nil
    static let functions: [LuaFunction] = [
        LuaFunction("stage", stage_run),
    ]
}

/// The file written last into a stage directory: a stage is finished iff it exists.
let stageMarkerName = "stage.yaml"

/// Stage names become directory names.
private func validStageName(_ s: String) -> Bool {
    !s.isEmpty && s != "." && s != ".." && s.unicodeScalars.allSatisfy {
        ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-" || $0 == "."
    }
}

/// An input of a stage resolved to the string its key uses: `sha256:<hex>` of a file or directory
/// (paths relative to the current directory), `stage:<key>` of an upstream stage's result table.
private func resolveInput(_ value: Any, path: String) throws -> Any {
    switch value {
    case let p as String:
        let abs = p.hasPrefix("/") ? p : FileManager.default.currentDirectoryPath + "/" + p
        return try StageKey.fingerprint(path: abs)
    case let d as [String: Any]:
        guard let key = d["key"] as? String, d["dir"] is String else {
            throw CoreError("\(path): expected a file path or a stage result (a table with 'key' and 'dir')")
        }
        return "stage:" + key
    case let a as [Any]:
        return try a.enumerated().map { try resolveInput($1, path: "\(path)[\($0 + 1)]") }
    default:
        throw CoreError("\(path): expected a file path, a stage result or a list of them, got \(LuaOptions.luaTypeName(of: value))")
    }
}

/// `semidpo.stage{name =, settings = {…}, inputs = {name = path | stage | {…}}, run = function(dir) … end, cache = root,
/// code = true} -> {name =, key =, dir =, cached =, seconds =, outputs =}`
///
/// key = sha256 of the canonical text of {name, settings, inputs resolved to file digests and upstream
/// keys, plus the executable's digest, the engine's thread count and — unless `code = false` — the
/// digests of the Lua files defining `run` and every function reachable from it} (`StageKey`). The stage lives in `<cache>/<name>/<first 16 hex digits of key>/`; `cache`
/// defaults to `--set cache=…`, else `cache` (relative to the current directory). When that directory
/// holds `stage.yaml` the stage is finished: its recorded outputs are returned and `run` is not
/// called. Otherwise any leftover of an interrupted run is removed, `run(dir)` is called, and
/// `stage.yaml` (key, settings, inputs, outputs = run's return value, seconds) is written last, atomically.
/// Under MPI rank 0 decides cached or not and broadcasts it; every rank calls `run`, rank 0 alone
/// writes the stage's files (other ranks only their own shards). The key includes the trainers' default
/// `grad_shards` when there is more than one rank (it is the rank count, and it changes training's numbers).
private func stage_run(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "stage") { args in
        if args.isNoneOrNil(1) { throw args.typeError(1, "table of options") }
        let o = try args.options(1, allowed: ["name", "settings", "inputs", "run", "cache", "code"])
        let name = try o.required("name", o.string("name"))
        guard validStageName(name) else {
            throw args.error(1, "option 'name': '\(name)' must be letters, digits, '_', '-' or '.' (it names a directory)")
        }
        let settings = o.values["settings"] ?? [String: Any]()
        guard settings is [String: Any] || settings is [Any] else {
            throw args.error(1, "option 'settings': expected a table, got \(LuaOptions.luaTypeName(of: settings))")
        }
        var inputs: [String: Any] = [:]
        switch o.values["inputs"] {
        case nil: break
        case let a as [Any] where a.isEmpty: break   // {} converts as an empty list
        case let m as [String: Any]:
            do { for (k, v) in m { inputs[k] = try resolveInput(v, path: "inputs.\(k)") } } catch let e as CoreError {
                throw args.error(1, e.message)
            }
        case let raw?:
            throw args.error(1, "option 'inputs': expected a table of name = path or stage, got \(LuaOptions.luaTypeName(of: raw))")
        }
        inputs["semidpo.executable"] = try executableFingerprint()
        inputs["semidpo.threads"] = "threads:\(Engine.threads)"
        // Under MPI the trainers' default grad_shards is the rank count, which changes their numbers: it
        // joins the key (a stage is not reused across rank counts). One process keeps its keys as before.
        if Cluster.size > 1 { inputs["semidpo.grad_shards_default"] = "grad_shards:\(GradientShards.perRank)" }
        var code: [String: String] = [:]
        switch o.values["code"] {
        case nil, true as Bool:
            guard let run = try o.function("run") else { throw args.error(1, "option 'run' (a function(dir)) is required") }
            code = try stageCode(run, args)
            inputs["semidpo.code"] = code.values.sorted()
        case false as Bool: break
        case let v?: throw args.error(1, "option 'code': expected a boolean (false leaves the Lua code out of the key), got \(LuaOptions.luaTypeName(of: v))")
        }
        return try finishStage(args, o, name: name, settings: settings, inputs: inputs, code: code)
    }
}

/// `sha256:<hex>` of the running semidpo executable, computed once per process: a rebuilt engine (or
/// any other code change) gives new keys, so a cache never answers for code that did not compute it.
private func executableFingerprint() throws -> String {
    if let known = executableDigest.value { return known }
    let digest = try StageKey.fingerprint(path: URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path)
    executableDigest.value = digest
    return digest
}
private final class Memo: @unchecked Sendable { var value: String? }
private let executableDigest = Memo()

/// Finds the Lua code a stage's `run` can execute: `run` itself and every Lua function reachable from
/// it through upvalues, walking functions and tables (not `_ENV`, the `semidpo` table or
/// `package.loaded`, nor metatables). Returns, per function source, a file path → `true` when the file
/// is readable, else the hex of the stripped bytecode (`string.dump(f, true)`) keyed by source name.
private let stageCodeWalker = """
local getinfo, getupvalue, dump, loaded, open = debug.getinfo, debug.getupvalue, string.dump, package.loaded, io.open
local format, byte, gsub = string.format, string.byte, string.gsub
return function(root)
  local files, dumps, seen = {}, {}, {}
  local function visit(v)
    local t = type(v)
    if (t ~= "function" and t ~= "table") or seen[v] then return end
    seen[v] = true
    if t == "table" then
      if v == loaded.semidpo or v == loaded or v == _G then return end
      for k, x in next, v do visit(k); visit(x) end
      return
    end
    local info = getinfo(v, "S")
    if info.what == "C" then return end
    local src = info.source
    local f = src:sub(1, 1) == "@" and open(src:sub(2), "rb")
    if f then f:close(); files[src:sub(2)] = true
    else dumps[src .. ":" .. info.linedefined] = gsub(dump(v, true), ".", function(c) return format("%02x", byte(c)) end) end
    local i = 1
    while true do
      local name, x = getupvalue(v, i)
      if name == nil then break end
      if name ~= "_ENV" then visit(x) end
      i = i + 1
    end
  end
  visit(root)
  return files, dumps
end
"""

/// Path (or chunk:line) → `sha256:<hex>` of the code `run` can execute (`stageCodeWalker`): the bytes
/// of each source file, or the stripped bytecode of a function not loaded from a file.
private func stageCode(_ run: LuaRef, _ args: LuaArgs) throws -> [String: String] {
    let walker = try args.lua.helper("semidpo.stage_code", stageCodeWalker)
    let found = try walker.call([run], results: 2, on: args.L)
    var code: [String: String] = [:]
    for (path, _) in (found.first as? [String: Any]) ?? [:] {
        code[path] = try StageKey.fingerprint(path: path)
    }
    for (name, hex) in (found.count > 1 ? found[1] as? [String: Any] : nil) ?? [:] {
        code[name] = "sha256:" + SHA256.hex(Array((hex as? String ?? "").utf8))
    }
    return code
}

private func finishStage(_ args: LuaArgs, _ o: LuaOptions, name: String, settings: Any, inputs: [String: Any],
                         code: [String: String]) throws -> Int32 {
    guard let run = try o.function("run") else { throw args.error(1, "option 'run' (a function(dir)) is required") }
    let key: String
    do { key = try StageKey.key(name: name, settings: settings, inputs: inputs) } catch let e as CoreError { throw args.error(1, e.message) }
    var root = try o.string("cache")
    if root == nil { root = try args.lua.commandSettings?.builtIn("cache") }
    var base = root ?? "cache"
    if !base.hasPrefix("/") { base = FileManager.default.currentDirectoryPath + "/" + base }
    let short = String(key.prefix(16))
    let dir = URL(fileURLWithPath: base).appendingPathComponent(name).appendingPathComponent(short).standardizedFileURL.path
    let marker = dir + "/" + stageMarkerName
    let fm = FileManager.default

    // Under MPI rank 0 decides (cached or not) and tells the others, so every rank takes the same branch.
    var cached = Cluster.rank == 0 && fm.fileExists(atPath: marker)
    if Cluster.size > 1 { cached = Cluster.broadcast([UInt8(cached ? 1 : 0)], root: 0) == [1] }
    if cached {
        let record = try YAML.load(path: marker)
        guard record["key"]?.stringValue == key else {
            throw CoreError("stage '\(name)': \(marker) records key \(record["key"]?.stringValue ?? "none"), expected \(key); remove that directory")
        }
        let seconds = record["seconds"]?.doubleValue ?? 0
        print(String(format: "stage %@ [%@]: cached (ran %.1f s on %@)", name, short, seconds, record["finished"]?.stringValue ?? "?"))
        try args.push(["name": name, "key": key, "dir": dir, "cached": true, "seconds": seconds,
                       "outputs": record["outputs"] ?? .null] as [String: Any])
        return 1
    }
    if Cluster.rank == 0 {
        if fm.fileExists(atPath: dir) {
            print("stage \(name) [\(short)]: removing the unfinished directory of an interrupted run")
            try fm.removeItem(atPath: dir)
        }
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    Cluster.barrier()
    print("stage \(name) [\(short)]: running in \(dir)")
    fflush(stdout)
    let t0 = Date()
    let results = try run.call([dir], results: 1, on: args.L)
    let seconds = Date().timeIntervalSince(t0)
    let outputs: YAMLValue
    do { outputs = try YAMLValue(any: results.first ?? nil, path: "outputs") } catch let e as CoreError {
        throw CoreError("stage '\(name)': the run function must return plain values (strings, numbers, booleans, tables): \(e.message)")
    }
    let f = ISO8601DateFormatter()
    let record: YAMLValue = .map([
        ("name", .string(name)), ("key", .string(key)), ("seconds", .float(seconds)), ("finished", .string(f.string(from: Date()))),
        ("settings", try YAMLValue(any: settings)), ("inputs", try YAMLValue(any: inputs)),
        ("code", try YAMLValue(any: code as [String: Any])), ("outputs", outputs),
    ])
    try AtomicFile.write(YAML.dump(record), to: marker)   // rank 0 only (AtomicWriter)
    Cluster.barrier()   // the other ranks go on once rank 0 has written the stage's files
    print(String(format: "stage %@ [%@]: finished in %.1f s", name, short, seconds))
    try args.push(["name": name, "key": key, "dir": dir, "cached": false, "seconds": seconds, "outputs": outputs] as [String: Any])
    return 1
}
