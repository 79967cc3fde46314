// semidpo.stage through Lua: a second run loads finished stages without calling `run`, a changed
// input reruns only what depends on it, and an interrupted stage is redone from scratch.
import Foundation
import Testing
import Core
@testable import Host

/// Runs `code` in a fresh state (as a new `semidpo run` would) and returns the chunk's results.
private func runFresh(_ code: String, out: String, args: [String: Any] = [:]) throws -> [Any?] {
    let lua = LuaState(run: RunContext(outputDirectory: out), bindings: Bindings.all)
    try lua.setField("args", args)
    lua.commandSettings = CommandSettings(raw: args.map { ($0.key, "\($0.value)") })
    try lua.guardGlobals()
    return try lua.runString(code, name: "@stages.lua")
}

private func recipe(cache: String, file: String, failB: Bool = false) -> String {
    """
    local calls = 0
    local a = semidpo.stage{name = "a", settings = {n = 1, lr = 2e-5, nested = {x = "1"}}, cache = "\(cache)", run = function(dir)
      calls = calls + 1
      local f = assert(io.open(dir .. "/x.txt", "w")); f:write("42"); f:close()
      return {value = 42, list = {1, 2.5, "s"}}
    end}
    local b = semidpo.stage{name = "b", inputs = {up = a, file = "\(file)"}, run = function(dir)
      calls = calls + 1
      local f = assert(io.open(dir .. "/partial.txt", "w")); f:write("half"); f:close()
      if io.open("\(file).fail") then error("killed") end  -- the same code whether it fails or not
      return 7
    end}
    local f = assert(io.open(a.dir .. "/x.txt")); local text = f:read("a"); f:close()
    return calls, a.cached, b.cached, a.outputs.value, a.outputs.list[2], b.outputs, text, a.key, b.key, b.dir
    """
}

@Suite(.serialized) struct StageBindingsTests {
    @Test func secondRunLoadsEveryStageWithoutCallingRun() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cache = dir + "/cache", file = dir + "/input.txt"
        try "v1".write(toFile: file, atomically: true, encoding: .utf8)
        let first = try runFresh(recipe(cache: cache, file: file), out: dir + "/run1", args: ["cache": cache])
        #expect(first[0] as? Int == 2)
        #expect(first[1] as? Bool == false && first[2] as? Bool == false)
        #expect(first[3] as? Int == 42 && first[4] as? Double == 2.5 && first[5] as? Int == 7 && first[6] as? String == "42")
        let keyA = first[7] as! String, keyB = first[8] as! String
        #expect(keyA.count == 64 && (first[9] as! String).hasPrefix(cache + "/b/" + keyB.prefix(16)))
        #expect(FileManager.default.fileExists(atPath: cache + "/a/" + keyA.prefix(16) + "/stage.yaml"))
        // The key also covers the code that ran (this executable's digest) and the thread count.
        let record = try YAML.load(path: cache + "/a/" + keyA.prefix(16) + "/stage.yaml")
        #expect(record["inputs"]?["semidpo.executable"]?.stringValue?.hasPrefix("sha256:") == true)
        #expect(record["inputs"]?["semidpo.threads"]?.stringValue == "threads:\(Engine.threads)")
        #expect(keyA != (try StageKey.key(name: "a", settings: ["n": 1, "lr": 2e-5, "nested": ["x": "1"]] as [String: Any], inputs: [:])))

        // Second run: nothing recomputed, the same outputs come back from stage.yaml.
        let second = try runFresh(recipe(cache: cache, file: file), out: dir + "/run2", args: ["cache": cache])
        #expect(second[0] as? Int == 0)
        #expect(second[1] as? Bool == true && second[2] as? Bool == true)
        #expect(second[3] as? Int == 42 && second[4] as? Double == 2.5 && second[5] as? Int == 7)
        #expect(second[7] as? String == keyA && second[8] as? String == keyB)

        // A changed input file reruns the stage that reads it, not its upstream.
        try "v2".write(toFile: file, atomically: true, encoding: .utf8)
        let third = try runFresh(recipe(cache: cache, file: file), out: dir + "/run3", args: ["cache": cache])
        #expect(third[0] as? Int == 1)
        #expect(third[1] as? Bool == true && third[2] as? Bool == false)
        #expect(third[8] as? String != keyB)
    }

    @Test func interruptedStageIsRedoneAndErrorsKeepTheRecipeLine() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cache = dir + "/cache", file = dir + "/input.txt"
        try "v1".write(toFile: file, atomically: true, encoding: .utf8)
        var caught: LuaError?
        try "".write(toFile: file + ".fail", atomically: true, encoding: .utf8)
        do { _ = try runFresh(recipe(cache: cache, file: file, failB: true), out: dir + "/run1", args: ["cache": cache]) } catch let e as LuaError { caught = e }
        try FileManager.default.removeItem(atPath: file + ".fail")
        #expect(caught?.message.contains("stages.lua:10: killed") == true)
        // b's directory exists with its partial file but no marker: not finished.
        let bDirs = try FileManager.default.contentsOfDirectory(atPath: cache + "/b")
        #expect(bDirs.count == 1)
        #expect(!FileManager.default.fileExists(atPath: cache + "/b/" + bDirs[0] + "/stage.yaml"))
        #expect(FileManager.default.fileExists(atPath: cache + "/b/" + bDirs[0] + "/partial.txt"))

        // The resumed run loads a and redoes b only.
        let resumed = try runFresh(recipe(cache: cache, file: file), out: dir + "/run2", args: ["cache": cache])
        #expect(resumed[0] as? Int == 1)
        #expect(resumed[1] as? Bool == true && resumed[2] as? Bool == false && resumed[5] as? Int == 7)
        #expect(FileManager.default.fileExists(atPath: cache + "/b/" + bDirs[0] + "/stage.yaml"))
    }

    @Test func badStagesFailWithAMessage() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func failure(_ code: String) -> String {
            do { _ = try runFresh(code, out: dir, args: ["cache": dir + "/cache"]) } catch let e as LuaError { return e.message } catch { return "\(error)" }
            return "no error"
        }
        #expect(failure("semidpo.stage{name = 'a/b', run = function() end}").contains("must be letters, digits"))
        #expect(failure("semidpo.stage{name = 'a', inputs = {m = 'missing.bin'}, run = function() end}").contains("does not exist"))
        #expect(failure("semidpo.stage{name = 'a', settings = {f = print}, run = function() end}").contains("cannot be part of a stage key"))
        #expect(failure("semidpo.stage{name = 'a', run = function() return print end}").contains("must return plain values"))
        #expect(failure("semidpo.stage{name = 'a'}").contains("option 'run'"))
    }
}

/// Stage keys include the Lua code a stage can run (issue 15, item 5).
@Suite(.serialized) struct StageCodeTests {
    /// Runs `recipe.lua` (written with `code`) through `semidpo run` with the library in `dir/lib`;
    /// returns the key and whether the stage was cached (printed by the recipe into key.txt).
    private func runRecipe(_ dir: String, _ code: String) throws -> (key: String, cached: Bool) {
        try code.write(toFile: dir + "/recipe.lua", atomically: true, encoding: .utf8)
        var errs: [String] = []
        let status = RecipeRunner.run(.init(recipe: dir + "/recipe.lua", settings: ["cache=\(dir)/cache"], out: dir + "/out"),
                                      errors: { errs.append($0) })
        #expect(status == 0, "\(errs)")
        let text = try String(contentsOfFile: dir + "/out/key.txt", encoding: .utf8).split(separator: " ")
        return (String(text[0]), text[1] == "true")
    }

    private func recipe(_ body: String, comment: String = "") -> String {
        """
        -- \(comment)
        local lib = require "mylib"
        \(body)
        semidpo.write_text("key.txt", r.key .. " " .. tostring(r.cached))
        """
    }

    @Test func editingTheRecipeOrItsLibraryRerunsTheStage() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/lib", withIntermediateDirectories: true)
        let lib = "local M = {}\nfunction M.work(x) return x * %d end\nreturn M\n"
        try String(format: lib, 2).write(toFile: dir + "/lib/mylib.lua", atomically: true, encoding: .utf8)
        // `run` defined in the recipe, calling the library through an upvalue.
        let body = "local r = semidpo.stage{name = \"s\", run = function(dir) return lib.work(21) end}"
        let first = try runRecipe(dir, recipe(body))
        #expect(!first.cached)
        #expect(try runRecipe(dir, recipe(body)) == (first.key, true))
        // Editing the recipe (even a comment) reruns it; editing the library too.
        let edited = try runRecipe(dir, recipe(body, comment: "edited"))
        #expect(edited.key != first.key && !edited.cached)
        try String(format: lib, 3).write(toFile: dir + "/lib/mylib.lua", atomically: true, encoding: .utf8)
        let libEdited = try runRecipe(dir, recipe(body, comment: "edited"))
        #expect(libEdited.key != edited.key && !libEdited.cached)
        // code = false: the code is not in the key, so edits reuse the result.
        let off = "local r = semidpo.stage{name = \"s\", code = false, run = function(dir) return lib.work(21) end}"
        let a = try runRecipe(dir, recipe(off))
        let b = try runRecipe(dir, recipe(off, comment: "changed"))
        #expect(a.key == b.key && b.cached)
    }

    @Test func aStageDefinedInTheLibraryIsSharedByRecipes() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/lib", withIntermediateDirectories: true)
        try """
            local M = {}
            function M.stage() return semidpo.stage{name = "shared", run = function(dir) return 1 end} end
            return M
            """.write(toFile: dir + "/lib/mylib.lua", atomically: true, encoding: .utf8)
        let a = try runRecipe(dir, recipe("local r = lib.stage()", comment: "recipe A"))
        let b = try runRecipe(dir, recipe("local r = lib.stage()", comment: "recipe B, other bytes"))
        #expect(a.key == b.key && b.cached, "the recipe file is not code the library's stage runs")
        // A function passed in from the recipe is part of the stage's code.
        try """
            local M = {}
            function M.stage(f) return semidpo.stage{name = "shared", run = function(dir) return f() end} end
            return M
            """.write(toFile: dir + "/lib/mylib.lua", atomically: true, encoding: .utf8)
        let c = try runRecipe(dir, recipe("local r = lib.stage(function() return 1 end)", comment: "C"))
        let d = try runRecipe(dir, recipe("local r = lib.stage(function() return 1 end)", comment: "D"))
        #expect(c.key != d.key && !d.cached)
    }

    @Test func codeNotFromAFileIsHashedAsBytecode() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func key(_ k: Int) throws -> String {
            let out = try runFresh("return semidpo.stage{name = 'x', cache = '\(dir)/c', run = function(d) return \(k) end}.key",
                                   out: dir + "/o")
            return try #require(out.first as? String)
        }
        #expect(try key(1) == key(1))
        #expect(try key(1) != key(2))
    }
}
