// Options shared by the three trainer bindings (dpo.train, reward.train, diffusion.pretrain): the one
// optimizer/clip shape (`OptimizerSettings`), old names rejected with the new one, the run's seed.
import CLua
import CLuaShim
import Core

/// `args.options(index, allowed:)` for a trainer: the shared optimizer names are allowed too, and an
/// old name fails first with `option 'max_grad_norm' was renamed to 'grad_clip'`.
func trainerOptions(_ args: LuaArgs, _ index: Int32, allowed: [String]) throws -> LuaOptions {
    let raw = try args.options(index)
    do { try OptimizerSettings.rejectRenamed(raw.values.keys.filter { !allowed.contains($0) }) }
    catch let e as CoreError { throw args.error(index, e.message) }
    return try args.options(index, allowed: allowed + OptimizerSettings.names)
}

/// The shared optimizer settings in `o` over a trainer's `defaults`; errors name the option.
func optimizerSettings(_ o: LuaOptions, defaults: OptimizerSettings, steps: Int? = nil) throws -> OptimizerSettings {
    do {
        let s = try OptimizerSettings(values: o.values, defaults: defaults)
        if let steps { try s.validate(totalSteps: steps) }
        return s
    } catch let e as CoreError { throw o.args.error(o.index, e.message) }
}

/// `semidpo.seed` (set by `semidpo run --seed`, 0 when absent): the default of every `seed` option.
func runSeed(_ L: OpaquePointer) -> Int {
    lua_getglobal(L, "semidpo")
    defer { lua_settop(L, -2) }
    // stack: …, semidpo
    guard lua_type(L, -1) == LUA_TTABLE else { return 0 }
    lua_getfield(L, -1, "seed")
    defer { lua_settop(L, -2) }
    // stack: …, semidpo, seed
    var ok: Int32 = 0
    let v = lua_tointegerx(L, -1, &ok)
    return ok != 0 ? Int(v) : 0
}

/// Where the Lua function `f` is defined, as `file:line` (for messages about a recipe's function).
func definitionPlace(_ f: LuaRef, _ L: OpaquePointer) -> String {
    f.push(L)
    // stack: …, f
    var ar = lua_Debug()
    guard lua_getinfo(L, ">S", &ar) != 0 else { return "?" }
    // stack: …
    let src = withUnsafeBytes(of: ar.short_src) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
    return "\(src):\(ar.linedefined)"
}
