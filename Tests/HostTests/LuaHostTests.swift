// Host tests: recipes (good and broken) run in a LuaState; errors carry message, file and line;
// failing binding calls leak nothing; every userdata is collected at close.
import Foundation
import Testing
import CLua
import Core
@testable import Host

/// A Swift class whose live instances are counted, to detect leaks across the Lua boundary.
final class Tracked: LuaObject {
    nonisolated(unsafe) static var live = 0
    static let lock = NSLock()
    static let luaTypeName = "Tracked"
    static let luaMethods: [LuaFunction] = [LuaFunction("value", tracked_value)]
    let value: Int
    init(_ value: Int) {
        self.value = value
        Tracked.lock.lock(); Tracked.live += 1; Tracked.lock.unlock()
    }
    deinit { Tracked.lock.lock(); Tracked.live -= 1; Tracked.lock.unlock() }
}

private func tracked_new(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "new") { args in
        try args.push(Tracked(try args.integer(1)))
        return 1
    }
}

/// Allocates a Tracked, then fails on argument 2 while the object is live in a Swift frame.
private func tracked_fail(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "fail") { args in
        let t = Tracked(1)
        let other = try args.object(2, Tracked.self)
        try args.push(t.value + other.value)
        return 1
    }
}

private func tracked_value(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "value") { args in
        try args.push(try args.this(Tracked.self).value)
        return 1
    }
}

/// `train(model, steps)`: exercises the typed argument checks.
private func tracked_train(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "train") { args in
        let m = try args.object(1, Tracked.self)
        let steps = try args.integer(2)
        let opts = try args.options(3, allowed: ["beta", "name"])
        let beta = try opts.number("beta", default: 1)
        try args.push(["value": m.value, "steps": steps, "beta": beta, "list": [1, 2, [3, 4]]] as [String: Any])
        return 1
    }
}

/// `callback(f, x)`: calls a Lua function from Swift through a LuaRef.
private func tracked_callback(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "callback") { args in
        let f = try args.function(1)
        let r = try f.call([try args.value(2)], on: args.L)
        try args.push(r.first ?? nil)
        return 1
    }
}

enum TestBindings: LuaBindings {
    static let module: String? = "test"
    static let functions: [LuaFunction] = [
        LuaFunction("new", tracked_new), LuaFunction("fail", tracked_fail),
        LuaFunction("train", tracked_train), LuaFunction("callback", tracked_callback),
    ]
}

func makeState() -> LuaState { LuaState(bindings: Bindings.all + [TestBindings.self]) }

/// Runs `code` as chunk `name` and returns the LuaError it raises.
func luaError(_ code: String, name: String = "recipe.lua", guarded: Bool = true) -> LuaError? {
    let lua = makeState()
    if guarded { try? lua.guardGlobals() }
    do { try lua.runString(code, name: "@" + name) } catch let e as LuaError { return e } catch { return nil }
    return nil
}

@Suite(.serialized) struct LuaHostTests {
    @Test func runtimeErrorHasFileLineAndTraceback() throws {
        let e = try #require(luaError("local x = 1\nlocal function f() error('boom') end\nf()\n"))
        #expect(e.kind == .runtime)
        #expect(e.file == "recipe.lua")
        #expect(e.line == 2)
        #expect(e.reason == "boom")
        #expect(e.traceback.contains("stack traceback:"))
        #expect(e.traceback.contains("recipe.lua:3"))
    }

    @Test func syntaxErrorHasLine() throws {
        let e = try #require(luaError("local a = 1\nlocal b = = 2\n"))
        #expect(e.kind == .syntax)
        #expect(e.file == "recipe.lua")
        #expect(e.line == 2)
    }

    @Test func badArgumentMessages() throws {
        let e1 = try #require(luaError("local t = semidpo.test.new(1)\nsemidpo.test.train(nil, 3)"))
        #expect(e1.message == "recipe.lua:2: bad argument #1 to 'train' (expected Tracked, got nil)")
        let e2 = try #require(luaError("local t = semidpo.test.new(1)\n\nsemidpo.test.train(t, 'x')"))
        #expect(e2.message == "recipe.lua:3: bad argument #2 to 'train' (expected integer, got string)")
        let e3 = try #require(luaError("local t = semidpo.test.new(1)\nsemidpo.test.train(t, 2.5)"))
        #expect(e3.reason == "bad argument #2 to 'train' (expected an integer, got 2.5)")
        let e4 = try #require(luaError("local t = semidpo.test.new(1)\nsemidpo.test.train(t, 2, {bta = 1})"))
        #expect(e4.reason == "bad argument #3 to 'train' (unknown option 'bta'; expected one of: beta, name)")
        let e5 = try #require(luaError("local t = semidpo.test.new(1)\nsemidpo.test.train(t, 2, {beta = 'x'})"))
        #expect(e5.reason == "bad argument #3 to 'train' (option 'beta': expected number, got string)")
        let e6 = try #require(luaError("local t = semidpo.test.new(1)\nt.value(42)"))
        #expect(e6.reason == "calling 'value' on bad self (expected Tracked, got number)")
        let e7 = try #require(luaError("semidpo.test.train(semidpo.progress(3, 'p'), 1)"))
        #expect(e7.reason == "bad argument #1 to 'train' (expected Tracked, got Progress)")
    }

    @Test func resultsAndNestedTables() throws {
        let lua = makeState()
        try lua.guardGlobals()
        let r = try lua.runString("""
            local t = semidpo.test.new(7)
            local out = semidpo.test.train(t, 3, {beta = 0.5})
            return out.value, out.steps, out.beta, out.list[3][2], t:value(), tostring(t):match('^Tracked')
            """, name: "=r")
        #expect(r[0] as? Int == 7)
        #expect(r[1] as? Int == 3)
        #expect(r[2] as? Double == 0.5)
        #expect(r[3] as? Int == 4)
        #expect(r[4] as? Int == 7)
        #expect(r[5] as? String == "Tracked")
    }

    @Test func releasedObjectIsRejected() throws {
        let e = try #require(luaError("local t = semidpo.test.new(1)\nt:release()\nprint(t:alive())\nt:value()"))
        #expect(e.message == "recipe.lua:4: cannot use Tracked after it has been released")
    }

    @Test func undefinedGlobalRead() throws {
        let e = try #require(luaError("local model = 1\nprint(modle)"))
        #expect(e.message == "recipe.lua:2: undefined global 'modle'")
    }

    @Test func undefinedGlobalAssignment() throws {
        let e = try #require(luaError("\n\nresult = 3"))
        #expect(e.line == 3)
        #expect(e.reason.hasPrefix("assignment to undefined global 'result'"))
    }

    @Test func requireReturnsModule() throws {
        let lua = makeState()
        try lua.guardGlobals()
        let r = try lua.runString("local s = require 'semidpo'; return s == semidpo, s.yaml ~= nil")
        #expect(r[0] as? Bool == true)
        #expect(r[1] as? Bool == true)
    }

    @Test func callbackErrorsCarryPosition() throws {
        let ok = try makeState().runString("return semidpo.test.callback(function(x) return x * 2 end, 21)")
        #expect(ok[0] as? Int == 42)
        let e = try #require(luaError("semidpo.test.callback(function(x)\n  error('inner ' .. x)\nend, 5)"))
        #expect(e.message == "recipe.lua:2: inner 5")
    }

    @Test func failingCallsLeakNothing() throws {
        let before = Tracked.live
        do {
            let lua = makeState()
            let r = try lua.runString("""
                local ok_count, fails = 0, 0
                local t = semidpo.test.new(1)
                for i = 1, 10000 do
                  local ok, err = pcall(semidpo.test.fail, t, i)  -- argument 2 is not a Tracked
                  if not ok then fails = fails + 1 end
                end
                return fails
                """)
            #expect(r[0] as? Int == 10000)
            lua.close()
        }
        #expect(Tracked.live == before)
    }

    @Test func gcRunsForEveryUserdataAtClose() throws {
        let before = Tracked.live
        let lua = makeState()
        try lua.runString("keep = {} for i = 1, 500 do keep[i] = semidpo.test.new(i) end")
        #expect(Tracked.live == before + 500)
        lua.close()
        #expect(Tracked.live == before)
    }

    @Test func callbackRefReleasedWithOwner() throws {
        let lua = makeState()
        try lua.runString("f = function() return 1 end")
        lua_getglobal(lua.L, "f")
        var ref: LuaRef? = LuaRef(lua, lua.L, -1)
        lua_settop(lua.L, 0)
        #expect(try ref!.call().first as? Int == 1)
        ref = nil
        #expect(ref == nil)
    }
}

@Suite struct LuaConversionTests {
    @Test func deepTablesConvertBothWays() throws {
        let lua = makeState()
        // 60 levels deep: more than LUA_MINSTACK slots are needed in both directions.
        let r = try lua.runString("local t = {} local cur = t for i = 1, 60 do cur.x = {} cur = cur.x end cur.v = 1 return t")
        var v: Any? = r.first ?? nil
        var depth = 0
        while let d = v as? [String: Any], let next = d["x"] { v = next; depth += 1 }
        #expect(depth == 60)
        var nested: Any = ["v": 1]
        for _ in 0..<60 { nested = ["x": nested] }
        try lua.setField("deep", nested)
        let back = try lua.runString("local n, cur = 0, semidpo.deep while cur.x do cur = cur.x n = n + 1 end return n, cur.v")
        #expect(back[0] as? Int == 60)
        #expect(back[1] as? Int == 1)
        let cyc = try lua.runString("local t = {} t.self = t return pcall(semidpo.yaml.dump, t)")
        #expect(cyc[0] as? Bool == false)
        #expect((cyc[1] as? String)?.contains("nesting deeper than 64") == true)
    }
}

@Suite struct RunBindingsTests {
    @Test func copyFileIsByteExactAndNamesAMissingSource() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bytes = Data([0x89, 0x50, 0x4e, 0x47, 0x00, 0xff, 0x0a, 0x0d])   // not valid UTF-8
        try bytes.write(to: URL(fileURLWithPath: dir + "/src.bin"))
        let lua = try bindingsState(dir)
        let r = try lua.runString("return semidpo.copy_file('src.bin', 'sub/../copy.bin')")
        #expect(r[0] as? String == dir + "/copy.bin")
        #expect(FileManager.default.contents(atPath: dir + "/copy.bin") == bytes)
        let e = try #require(bindingsError("semidpo.copy_file('missing.bin', 'x.bin')", name: "r.lua"))
        #expect(e.message.contains("copy_file") && e.message.contains("missing.bin"))
    }
}
