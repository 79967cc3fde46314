// semidpo.reward and semidpo.committee.new from Lua: train, save, load, a committee over checkpoint
// paths, cached scoring, partitions with built-in and Lua rules used as DPO pair sets, and errors.
import Foundation
import Testing
import Core
@testable import Host

/// A run directory with a 12-pair world dataset and two trained tiny reward checkpoints, made by Lua.
private func rewardState() throws -> (LuaState, String) {
    let (lua, dir) = try tabularState()
    try lua.runString("""
    local semidpo = require "semidpo"
    local ds = semidpo.world.dataset{ dir = "\(dir)/data", pairs = 12, prompts = 4, seed = 3 }
    for i, name in ipairs{ "a", "b" } do
      local m = semidpo.reward.new{ name = name, uses_prompt = (i == 1), channels = {4, 4, 4}, groups = 2, embed_dimension = 4, seed = i }
      local r = semidpo.reward.train(m, ds, { rater = (i == 1) and "human" or { weights = {0, 1, 0}, temperature = 0.05, seed = 2 },
                                              steps = 3, batch_size = 4, warmup = 1 })
      assert(#r.losses == 3)
      m:save("\(dir)/models/" .. name .. ".safetensors", { training = { note = "test" } })
    end
    """, name: "@setup.lua")
    return (lua, dir)
}

@Suite struct RewardBindingsTests {
    @Test func trainSaveLoadInfo() throws {
        let (lua, dir) = try rewardState()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try lua.runString("""
        local semidpo = require "semidpo"
        local b = semidpo.reward.load("b", "\(dir)/models")
        local info = b:info()
        local ds = semidpo.world.open_dataset("\(dir)/data")
        local s = b:score(ds, {0, 1})
        local acc = b:accuracy(ds)
        return info.name, info.uses_prompt, info.rater.kind, info.rater.weights[2], info.training.steps, info.training.note, #s, acc.human >= 0 and acc.human <= 1
        """, name: "@recipe.lua")
        #expect(r.count == 8)
        #expect(r[0] as? String == "b" && r[1] as? Bool == false && r[2] as? String == "weighted")
        #expect(r[3] as? Double == 1 && r[4] as? String == "3" && r[5] as? String == "test")
        #expect(r[6] as? Int == 4 && r[7] as? Bool == true)
    }

    @Test func committeeCachesPartitionsAndFeedsDPO() throws {
        let (lua, dir) = try rewardState()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try lua.runString("""
        local semidpo = require "semidpo"
        local ds = semidpo.world.open_dataset("\(dir)/data")
        local c = semidpo.committee.new{ members = { "b", "\(dir)/models/a.safetensors" }, models = "\(dir)/models" }
        local calls = 0
        local part = c:partition(ds, { test_fraction = 0, on_progress = function(member, done, total) calls = calls + 1 end })
        local first = c:stats()
        -- same committee again: everything from the cache
        local again = c:partition(ds, { test_fraction = 0 })
        local second = c:stats()
        -- a Lua rule that is the unanimous rule written by hand
        local seen = 0
        local lua_part = c:partition(ds, { test_fraction = 0, rule = function(pair)
          seen = seen + 1
          return pair.deltas.a_score > 1e-6 and pair.deltas.b_score > 1e-6
        end })
        local any = c:partition(ds, { rule = "k_of_n", k = 1, test_fraction = 0 })
        local same = #part:ids("clean") == #lua_part:ids("clean")
        for i, id in ipairs(part:ids("clean")) do same = same and lua_part:ids("clean")[i] == id end
        local clean = part:clean()
        local rep = part:report()
        part:write("split")
        local scores = c:score(ds)
        scores:write("scores.jsonl")
        local tab = c:accuracy_table(ds, { out = "table6" })
        return first.computed_batches, second.computed_batches, second.cache_hits, calls, seen, same,
               #part:ids("clean") + #part:ids("noisy"), clean:count() == #part:ids("clean"),
               #any:ids("clean") >= #part:ids("clean"), rep.total, #rep.sets, c:members()[1], #tab, scores:pair(0).winner ~= nil
        """, name: "@recipe.lua")
        #expect(r[0] as? Int == 2)          // 12 pairs in one batch of 512, two members
        #expect(r[1] as? Int == 2 && r[2] as? Int == 2)
        #expect(r[3] as? Int == 2)          // one progress call per member batch
        #expect(r[4] as? Int == 12 && r[5] as? Bool == true)
        #expect(r[6] as? Int == 12 && r[7] as? Bool == true && r[8] as? Bool == true)
        #expect(r[9] as? Int == 12 && r[10] as? Int == 5 && r[11] as? String == "b" && r[12] as? Int == 2)
        #expect(r[13] as? Bool == true)
        for f in ["split/clean.json", "split/clean_test.json", "split/noisy.json", "split/partition.md", "table6.md", "table6.csv", "scores.jsonl"] {
            #expect(FileManager.default.fileExists(atPath: dir + "/" + f), "\(f) not written")
        }
        // The written score file partitions the same way through the tabular path.
        let table = try ScoreTable.read(path: dir + "/scores.jsonl")
        let ids = try readIdList(dir + "/split/clean.json")
        #expect(try table.partition(rule: .unanimous(), testFraction: 0).clean == ids)
    }

    @Test func errorsNameArgumentsAndLines() throws {
        let (lua, dir) = try rewardState()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let prelude = """
        local semidpo = require "semidpo"
        local ds = semidpo.world.open_dataset("\(dir)/data")
        local c = semidpo.committee.new{ members = { "a", "b" }, models = "\(dir)/models" }

        """
        func err(_ code: String) -> LuaError? { tabularError(lua, prelude + code) }
        let cases: [(String, String)] = [
            ("c:partition(ds, { rule = function(p) return 1 end })",
             "the rule function must return a boolean (true = clean), got number for pair idx 0"),
            ("c:partition(ds, { rule = function(p) error('boom') end })", "boom"),
            ("c:partition(ds, { rule = \"majority\" })",
             "bad argument #2 to 'partition' (option 'rule': unknown rule \"majority\"; expected \"unanimous\", \"k_of_n\" or a function)"),
            ("c:partition(ds, { rule = \"k_of_n\", k = 3 })", "bad argument #2 to 'partition' (option 'k': must be in 1…2 (got 3))"),
            ("c:partition(ds, { rule = \"k_of_n\" })", "bad argument #2 to 'partition' (rule \"k_of_n\" needs option 'k' (how many members must agree))"),
            ("c:partition(ds, { tests = 0.1 })", "bad argument #2 to 'partition' (unknown option 'tests'"),
            ("c:partition(nil)", "bad argument #1 to 'partition' (expected Dataset, got nil)"),
            ("semidpo.committee.new{ members = { \"zzz\" }, models = \"\(dir)/models\" }",
             "reward checkpoint \(dir)/models/zzz.safetensors: no such file"),
            ("semidpo.committee.new{ members = { \"a\", \"a\" }, models = \"\(dir)/models\" }",
             "bad argument #1 to 'new' (committee: member 'a' listed twice"),
            ("semidpo.reward.train(semidpo.reward.new{}, ds, { steps = 1 })", "bad argument #3 to 'train' (option 'rater' is required)"),
            ("semidpo.reward.train(semidpo.reward.new{}, ds, { rater = { weights = {1, 2} , temperature = 1 } })",
             "bad argument #3 to 'train' (option 'rater': 'weights' must be three numbers {alignment, aesthetics, detail})"),
            ("semidpo.reward.train(semidpo.reward.new{}, ds, { rater = { weights = {1, 0, 0}, temperature = 0 } })",
             "bad argument #3 to 'train' (option 'rater': rater: temperature must be > 0, got 0.0)"),
            ("semidpo.reward.train(semidpo.reward.new{}, ds, { rater = \"human\", ids = { 99 } })",
             "bad argument #3 to 'train' (option 'ids': pair id 99 outside 0…11 (ids are 0-based))"),
            ("semidpo.reward.new{ channels = {6, 6, 6}, groups = 4 }",
             "bad argument #1 to 'new' (reward model: groups 4 must divide every channel count [6, 6, 6])"),
            ("c:partition(ds):ids(\"dirty\")", "bad argument #1 to 'ids' (expected \"clean\", \"test\" or \"noisy\", got \"dirty\")"),
        ]
        for (code, message) in cases {
            let e = err(code)
            #expect(e != nil, "no error for \(code)")
            #expect(e?.message.contains(message) == true, "\(code): \(e?.message ?? "nil")")
            #expect(e?.file == "recipe.lua" && e?.line == 4, "\(code): \(e.map { "\($0.file ?? "?"):\($0.line ?? -1)" } ?? "nil")")
        }
    }
}
