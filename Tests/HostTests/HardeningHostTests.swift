// Issue #14 regression tests on the Lua side: no binding accepts a fractional value (or a float
// beyond Int) where an integer is meant; sizes and token ids are checked before anything is
// allocated or read; every error — whatever its value, level or origin — reads `file:line: message`
// with a traceback; the Lua heap is capped (a clean error, also while Swift frames are live);
// os.exit is refused; `--set a=1e400` is an error naming the key.
import Foundation
import Testing
import Core
@testable import Host

/// The reason (message without `recipe.lua:LINE: `) of the error `code` raises with every binding.
private func reason(_ code: String) -> String? { bindingsError(code, name: "@recipe.lua")?.reason }

@Suite(.serialized) struct HardeningHostTests {
    /// One call per binding family with 2.5 where an integer is meant: each must fail, naming the
    /// argument or option and the value.
    @Test func noBindingAcceptsAFractionInAnIntegerSlot() throws {
        let images = "winners = {0}, losers = {0}"
        let cases: [(String, String)] = [
            ("semidpo.tensor.zeros({2.5, 2, 2})", "bad argument #1 to 'zeros' (element 1 is 2.5, expected an integer)"),
            ("semidpo.tensor.ones({2, 2.5})", "bad argument #1 to 'ones' (element 2 is 2.5, expected an integer)"),
            ("semidpo.tensor.normal({2}, 2.5)", "bad argument #2 to 'normal' (expected an integer, got 2.5)"),
            ("semidpo.tensor.zeros({2, 2}):get(1.5, 1)", "bad argument #1 to 'get' (expected an integer, got 1.5)"),
            ("semidpo.tensor.zeros({4}):reshape({2.5})", "bad argument #1 to 'reshape' (element 1 is 2.5, expected an integer)"),
            ("semidpo.tensor.zeros({4}):slice(1, 1, 2.5)", "bad argument #3 to 'slice' (expected an integer, got 2.5)"),
            ("semidpo.progress(2.5)", "bad argument #1 to 'progress' (expected an integer, got 2.5)"),
            ("semidpo.world.training_prompts(2.5)", "bad argument #1 to 'training_prompts' (expected an integer, got 2.5)"),
            ("semidpo.world.training_prompts(3, 2.5)", "bad argument #2 to 'training_prompts' (expected an integer, got 2.5)"),
            ("semidpo.world.suites{size = 2.5}", "bad argument #1 to 'suites' (option 'size': expected an integer, got 2.5)"),
            ("semidpo.world.suites{world_seed = 2.5}", "bad argument #1 to 'suites' (option 'world_seed': expected an integer, got 2.5)"),
            ("semidpo.world.dataset{dir = 'd', pairs = 2.5}", "bad argument #1 to 'dataset' (option 'pairs': expected an integer, got 2.5)"),
            ("semidpo.reward.new{image_size = 2.5}", "bad argument #1 to 'new' (option 'image_size': expected an integer, got 2.5)"),
            ("semidpo.reward.new{channels = {8, 2.5, 32}}",
             "bad argument #1 to 'new' (option 'channels': element 2 is 2.5, expected an integer in 1…65536)"),
            ("semidpo.diffusion.new{seed = 2.5}", "bad argument #1 to 'new' (option 'seed': expected an integer, got 2.5)"),
            ("semidpo.diffusion.new{config = {image_size = 2.5}}", "model config: 'image_size' must be an integer, got 2.5"),
            ("semidpo.dpo.pairs{\(images), shape = {2.5, 1, 1}}",
             "bad argument #1 to 'pairs' (option 'shape': element 1 is 2.5, expected an integer in 1…1024)"),
            ("semidpo.dpo.pairs{\(images), shape = {1, 1, 1}, tokens = {2.5}}",
             "bad argument #1 to 'pairs' (option 'tokens': element 1 is 2.5, expected an integer in 0…2147483647)"),
            ("semidpo.dpo.pairs{\(images), shape = {1, 1, 1}, token_length = 2.5}",
             "bad argument #1 to 'pairs' (option 'token_length': expected an integer, got 2.5)"),
            ("semidpo.dpo.pairs{\(images), shape = {1, 1, 1}, ids = {2.5}}",
             "bad argument #1 to 'pairs' (option 'ids': element 1 is 2.5, expected an integer)"),
            ("semidpo.dpo.labels{anchors = {2.5}, labels = {1}}",
             "bad argument #1 to 'labels' (option 'anchors': element 1 is 2.5, expected an integer)"),
            ("semidpo.committee.write_ids({1, 2.5}, 'x.json')",
             "bad argument #1 to 'write_ids' (element 2 is 2.5, expected an integer)"),
            ("semidpo.committee.partition_scores{path = 'p', out = 'o', seed = 2.5}",
             "bad argument #1 to 'partition_scores' (option 'seed': expected an integer, got 2.5)"),
        ]
        for (call, expected) in cases {
            let got = reason(call)
            #expect(got == expected, "\(call)")
        }
    }

    /// Floats beyond 2^53 or Int, and out-of-range sizes: errors with the value, never Int.min.
    @Test func hugeAndOutOfRangeIntegersAreErrors() throws {
        let images = "winners = {0}, losers = {0}, shape = {1, 1, 1}"
        #expect(reason("semidpo.dpo.pairs{\(images), ids = {1e30}}")
                == "bad argument #1 to 'pairs' (option 'ids': element 1 is 1e+30, expected an integer)")
        #expect(reason("semidpo.dpo.pairs{\(images), tokens = {-1}}")
                == "bad argument #1 to 'pairs' (option 'tokens': element 1 is -1, expected an integer in 0…2147483647)")
        #expect(reason("semidpo.tensor.zeros({2^60})")
                == "bad argument #1 to 'zeros' (element 1 is 1.152921504606847e+18, expected an integer)")
        #expect(reason("semidpo.tensor.zeros({2^31})")
                == "bad argument #1 to 'zeros' (shape [2147483648] has more than 268435456 elements)")
        #expect(reason("semidpo.reward.new{image_size = 2^20}")
                == "bad argument #1 to 'new' (option 'image_size': expected an integer in 1…1024, got 1048576)")
        #expect(reason("semidpo.reward.new{image_size = 2^40}")
                == "bad argument #1 to 'new' (option 'image_size': expected an integer in 1…1024, got 1099511627776)")
        #expect(reason("semidpo.world.suites{size = 1e9}")
                == "bad argument #1 to 'suites' (option 'size': expected an integer in 1…10000, got 1000000000)")
        #expect(reason("semidpo.world.suites{world_seed = -1}")
                == "bad argument #1 to 'suites' (option 'world_seed': expected an integer ≥ 0, got -1)")
        #expect(reason("semidpo.world.training_prompts(3, -1)")
                == "bad argument #2 to 'training_prompts' (expected an integer ≥ 0, got -1)")
        #expect(reason("semidpo.diffusion.new{config = {time_dimension = 2^40}}")
                == "model config: 'time_dimension' is 1099511627776, above the cap of 65536")
    }

    /// Token ids at or beyond the vocabulary reach the model's check, not the embedding table.
    @Test func tokenIdsAreCheckedAgainstTheModelVocabulary() throws {
        let v = Vocabulary.words.count + 1
        for bad in ["1e8", "\(v)"] {
            let code = tinyUNetLua + """
            local m = semidpo.diffusion.new{config = tiny, seed = 1}
            local w = {} for i = 1, 3 * 16 * 16 do w[i] = 0 end
            local p = semidpo.dpo.pairs{winners = w, losers = w, shape = {3, 16, 16}, token_length = 8,
                                        tokens = {\(bad), 0, 0, 0, 0, 0, 0, 0}}
            return m:loss{pairs = p, t = 10}
            """
            let shown = bad == "1e8" ? "100000000" : bad
            #expect(reason(code) == "bad argument #1 to 'loss' (option 'pairs': token id \(shown) (row 1, position 1) " +
                    "is outside the vocabulary: ids are 0…\(v - 1))")
        }
    }

    // MARK: errors of every kind end as file:line: message with a traceback

    @Test func everyErrorValueGetsAPositionAndTraceback() throws {
        let cases: [(String, String)] = [
            ("local t = {}\nerror(t)", "recipe.lua:2: (error object is a table value)"),
            ("local x = 1\nerror()", "recipe.lua:2: (error object is a nil value)"),
            ("local x = 1\nerror(true)", "recipe.lua:2: (error object is a boolean value)"),
            ("local x = 1\nerror('level zero', 0)", "recipe.lua:2: level zero"),
            ("local x = 1\nerror(42)", "recipe.lua:2: 42"),
            ("local x = 1\nerror(setmetatable({}, {__tostring = function() return 'custom' end}))", "recipe.lua:2: custom"),
            ("local function f()\n  error('inner', 2)\nend\nf()", "recipe.lua:4: inner"),
        ]
        for (code, expected) in cases {
            let e = try #require(bindingsError(code, name: "@recipe.lua"), "\(code)")
            #expect(e.message == expected)
            #expect(e.file == "recipe.lua")
            #expect(e.traceback.hasPrefix("stack traceback:"), "\(code)")
        }
    }

    /// A rule callback that recurses through the binding until the C stack overflows: one message
    /// with a position and the context once (it used to repeat its suffix ~200 times).
    @Test func cStackOverflowInARuleCallbackIsOneClearError() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/scores.jsonl"
        try #"{"idx": 1, "human_scores": [1, 0], "a_score": [0.9, 0.1]}"#.write(toFile: path, atomically: true, encoding: .utf8)
        let lua = try bindingsState(dir)
        var error: LuaError?
        do {
            try lua.runString("""
            local function rule(p)
              return semidpo.committee.partition_scores{ path = "\(path)", out = "x", test_fraction = 0, rule = rule }
            end
            semidpo.committee.partition_scores{ path = "\(path)", out = "x", test_fraction = 0, rule = rule }
            """, name: "@recipe.lua")
        } catch let e as LuaError { error = e }
        let e = try #require(error)
        #expect(e.message == "recipe.lua:2: C stack overflow (in the rule function, pair idx 1)")
        #expect(e.traceback.contains("recipe.lua:4"))
    }

    // MARK: memory

    /// Lua code that grows the heap past the cap: a memory error with the recipe's position.
    @Test func luaHeapCapIsACleanError() throws {
        let lua = LuaState(bindings: Bindings.all, memoryLimit: 16 << 20)
        var error: LuaError?
        do { try lua.runString("local t = {}\nfor i = 1, 1e8 do t[i] = tostring(i) end", name: "@recipe.lua") }
        catch let e as LuaError { error = e }
        let e = try #require(error)
        #expect(e.kind == .memory)
        #expect(e.file == "recipe.lua" && e.line == 2)
        #expect(e.reason.hasPrefix("not enough memory: the Lua heap ("))
        #expect(e.reason.hasSuffix(" MiB in use) is capped at 16 MiB"))
        // The state stays usable after the failure.
        let r = try lua.runString("return 1 + 1", name: "=after")
        #expect(r.first as? Int == 2)
    }

    /// A bound function pushing more than the cap (Swift frames live): granted, then raised as a
    /// Lua error once the Swift frames have returned — no longjmp through them.
    @Test func luaHeapCapWhileSwiftPushesIsACleanError() throws {
        let lua = LuaState(bindings: Bindings.all, memoryLimit: 8 << 20)
        var error: LuaError?
        do { try lua.runString("local x = 1\nlocal t = semidpo.tensor.zeros({1000000}):totable()", name: "@recipe.lua") }
        catch let e as LuaError { error = e }
        let e = try #require(error)
        #expect(e.file == "recipe.lua" && e.line == 2)
        #expect(e.reason.hasPrefix("'totable': not enough memory: the Lua heap ("))
        #expect(e.reason.hasSuffix(" MiB in use) is capped at 8 MiB"))
    }

    // MARK: the command line

    @Test func osExitIsRefusedAndTheManifestWritten() throws {
        let (status, errs, manifest) = try runRecipe("print('x')\nos.exit(3)\n")
        #expect(status == 1)
        #expect(errs.first?.contains("recipe.lua:2: os.exit is not available in a recipe: return from the recipe to end it " +
                                     "(or call error(message) to fail it), so that semidpo can write manifest.yaml\nstack traceback:") == true)
        guard case .map(let top)? = manifest, case .map(let st)? = top.first(where: { $0.key == "status" })?.value else {
            Issue.record("no manifest status"); return
        }
        #expect(st.first(where: { $0.key == "result" })?.value == .string("error"))
    }

    @Test func setValueOutOfDoubleRangeIsAnError() throws {
        #expect(throws: CoreError.self) { try Settings.parse("a=1e400") }
        do { _ = try Settings.parse("a=1e400") } catch let e as CoreError {
            #expect(e.message == "--set a: the number 1e400 is out of range (beyond ±1.8e308)")
        }
        #expect(try Settings.parse("a=-1e308").value as? Double == -1e308)
        let (status, errs, _) = try runRecipe("return 1", settings: ["a=-1e400"])
        #expect(status == 2)
        #expect(errs == ["semidpo: --set a: the number -1e400 is out of range (beyond ±1.8e308)"])
    }
}
