// Host tests of semidpo.committee.partition_scores: built-in rules, a Lua function rule, the report,
// written files recorded as run outputs, and the error messages (malformed line, options, types).
import Foundation
import Testing
import Core
@testable import Host

/// Five pairs, three members. Hand-worked votes (winner first; a near-tie is |Δ| ≤ 1e-6):
///   1: winner 0 (human_scores), a 0, b 0, c 0        → unanimous clean; 3 agree
///   2: winner 1 (human_scores), a 1, b 1, c tie (Δ 5e-7) → noisy (clean with tolerance 1e-7); 2 agree
///   3: winner 0 (label_0 = 1), a 1, b 0, c 0         → noisy; 2 agree
///   4: winner 1 (winner_idx),  a 1, b 1, c 1         → clean; 3 agree
///   5: winner 0 (human_scores), a 1, b 1, c 0        → noisy; 1 agrees
let committeeScores = """
{"idx": 1, "human_scores": [1, 0], "a_score": [0.9, 0.1], "b_score": [2.0, 1.0], "c_score": [5, 4]}
{"idx": 2, "human_scores": [0, 1], "a_score": [0.1, 0.9], "b_score": [1.0, 2.0], "c_score": [3, 3.0000005]}
{"idx": 3, "label_0": 1, "a_score": [0.2, 0.8], "b_score": [1.5, 1.0], "c_score": [7, 6]}
{"idx": 4, "winner_idx": 1, "a_score": [0.3, 0.4], "b_score": [0.5, 0.6], "c_score": [1, 2]}
{"idx": 5, "human_scores": [1, 0], "a_score": [0.1, 0.2], "b_score": [0.3, 0.4], "c_score": [0.5, 0.4]}

"""

/// `recipes/NAME` in this checkout.
func recipePath(_ name: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("recipes/" + name).path
}

/// Runs a shipped recipe through `semidpo run` into `out`; returns the exit status and stderr text.
func runRecipe(_ name: String, _ settings: [String], out: String) -> (Int32, String) {
    var errs: [String] = []
    let status = RecipeRunner.run(.init(recipe: recipePath(name), settings: settings, out: out), errors: { errs.append($0) })
    return (status, errs.joined(separator: "\n"))
}

/// A fresh run directory and a Lua state writing into it, with guarded globals.
func tabularState() throws -> (LuaState, String) {
    let dir = NSTemporaryDirectory() + "semidpo-tabbind-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let lua = LuaState(run: RunContext(outputDirectory: dir), bindings: Bindings.all)
    try lua.guardGlobals()
    return (lua, dir)
}

/// Runs `code` as `recipe.lua` and returns the LuaError it raises.
func tabularError(_ lua: LuaState, _ code: String) -> LuaError? {
    do { try lua.runString(code, name: "@recipe.lua") } catch let e as LuaError { return e } catch { return nil }
    return nil
}

@Suite struct CommitteeBindingsTests {
    func setUp(_ text: String = committeeScores) throws -> (LuaState, String, String) {
        let (lua, dir) = try tabularState()
        let path = dir + "/scores.jsonl"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return (lua, dir, path)
    }

    func ids(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }

    @Test func unanimousWritesIdListsAndReport() throws {
        let (lua, dir, path) = try setUp()
        let r = try lua.runString("""
            local r = semidpo.committee.partition_scores{ path = "\(path)", out = "part", test_fraction = 0 }
            return r.total, r.clean, r.noisy, r.clean_fraction, r.agreement_with_human.a_score, r.ties.c_score,
                   r.paths.clean, r.missing_human_label, r.rule
            """, name: "@recipe.lua")
        #expect(r[0] as? Int == 5 && r[1] as? Int == 2 && r[2] as? Int == 3)
        #expect(r[3] as? Double == 0.4)
        #expect(r[4] as? Double == 0.6)                // a agrees on pairs 1, 2, 4
        #expect(r[5] as? Int == 1)                     // c ties on pair 2
        #expect(r[6] as? String == dir + "/part/clean.json")
        #expect(r[7] as? Int == 0)
        #expect(r[8] as? String == "unanimous (tie tolerance 1e-06)")
        #expect(try ids(dir + "/part/clean.json") == "[1, 4]")
        #expect(try ids(dir + "/part/noisy.json") == "[2, 3, 5]")
        #expect(try ids(dir + "/part/clean_test.json") == "[]")
        #expect(lua.run.recordedOutputs == ["part/clean.json", "part/clean_test.json", "part/noisy.json", "part/stats.yaml"])
    }

    @Test func tieToleranceKOfNAndTestSplit() throws {
        let (lua, dir, path) = try setUp()
        let r = try lua.runString("""
            local c = semidpo.committee
            local tight = c.partition_scores{ path = "\(path)", out = "tight", test_fraction = 0, tie_tolerance = 1e-7 }
            local two = c.partition_scores{ path = "\(path)", out = "two", rule = "k_of_n", k = 2, test_fraction = 0 }
            local held = c.partition_scores{ path = "\(path)", out = "held", test_fraction = 0.5, seed = 7 }
            return tight.clean, two.clean, held.clean_train, held.clean_test
            """, name: "@recipe.lua")
        #expect(r[0] as? Int == 3 && r[1] as? Int == 4)
        #expect(try ids(dir + "/tight/clean.json") == "[1, 2, 4]")   // pair 2's c (Δ 5e-7) now votes
        #expect(try ids(dir + "/two/noisy.json") == "[5]")           // only pair 5 has fewer than 2 votes
        #expect(r[2] as? Int == 1 && r[3] as? Int == 1)             // ceil(0.5 · 2) = 1 held out
        let train = try readIdList(dir + "/held/clean.json"), test = try readIdList(dir + "/held/clean_test.json")
        #expect(Set(train + test) == [1, 4])
    }

    @Test func luaFunctionRuleSeesEachPair() throws {
        let (lua, dir, path) = try setUp()
        // Clean iff a's score margin for the human winner exceeds 0.5: Δa = 0.8, 0.8, -0.6, 0.1, -0.1 → {1, 2}.
        let r = try lua.runString("""
            local seen = {}
            local r = semidpo.committee.partition_scores{ path = "\(path)", out = "fn", test_fraction = 0,
              rule = function(p)
                seen[#seen + 1] = p.idx .. ":" .. p.winner .. ":" .. p.scores.c_score[2]
                return p.deltas.a_score > 0.5
              end }
            return r.clean, table.concat(seen, " ")
            """, name: "@recipe.lua")
        #expect(r[0] as? Int == 2)
        #expect(r[1] as? String == "1:0:4.0 2:1:3.0000005 3:0:6.0 4:1:2.0 5:0:0.4")
        #expect(try ids(dir + "/fn/clean.json") == "[1, 2]")
    }

    @Test func errorInRuleFunctionHasRecipeLine() throws {
        let (lua, _, path) = try setUp()
        let e = try #require(tabularError(lua, """
            local n = 0
            local function rule(p)
              if p.idx == 3 then error("cannot judge " .. p.idx) end
              return true
            end
            semidpo.committee.partition_scores{ path = "\(path)", out = "x", rule = rule }
            """))
        #expect(e.file == "recipe.lua" && e.line == 3)
        #expect(e.reason == "cannot judge 3 (in the rule function, pair idx 3)")
        let nilRule = try #require(tabularError(lua, """
            semidpo.committee.partition_scores{ path = "\(path)", out = "x", rule = function(p) end }
            """))
        #expect(nilRule.line == 1)
        #expect(nilRule.reason == "the rule function must return a boolean (true = clean), got nil for pair idx 1")
    }

    @Test func malformedLineNamesFileAndLine() throws {
        let bad = committeeScores.replacingOccurrences(of: "\"a_score\": [0.2, 0.8]", with: "\"a_score\": [0.2]")
        let (lua, dir, path) = try setUp(bad)
        let e = try #require(tabularError(lua, "local x = 1\nsemidpo.committee.partition_scores{ path = \"\(path)\", out = \"m\" }\n"))
        #expect(e.file == "recipe.lua" && e.line == 2)
        #expect(e.reason == "\(path):3:41: expected ',' (\"a_score\" must hold two numbers), found ']'")
        #expect(!FileManager.default.fileExists(atPath: dir + "/m/clean.json"))
        let r = try lua.runString("""
            local r = semidpo.committee.partition_scores{ path = "\(path)", out = "m", skip_malformed = true, test_fraction = 0 }
            return r.skipped_lines, r.total, r.skipped_messages[1]
            """, name: "@recipe.lua")
        #expect(r[0] as? Int == 1 && r[1] as? Int == 4)
        #expect(r[2] as? String == "\(path):3:41: expected ',' (\"a_score\" must hold two numbers), found ']'")
    }

    @Test func optionErrors() throws {
        let (lua, _, path) = try setUp()
        func reason(_ options: String) throws -> String {
            try #require(tabularError(lua, "semidpo.committee.partition_scores{ \(options) }")).reason
        }
        let p = "path = \"\(path)\", out = \"o\""
        #expect(try reason("\(p), rulez = 'x'") == "bad argument #1 to 'partition_scores' (unknown option 'rulez'; expected one of: path, out, members, rule, k, tie_tolerance, test_fraction, seed, skip_malformed)")
        #expect(try reason("\(p), test = 0.1") == "bad argument #1 to 'partition_scores' (option 'test' was renamed to 'test_fraction')")
        #expect(try reason("out = 'o'") == "bad argument #1 to 'partition_scores' (option 'path' is required (the score JSONL))")
        #expect(try reason("\(p), test_fraction = 'big'") == "bad argument #1 to 'partition_scores' (option 'test_fraction': expected number, got string)")
        #expect(try reason("\(p), rule = 5") == "bad argument #1 to 'partition_scores' (option 'rule': expected string or function, got number)")
        #expect(try reason("\(p), rule = 'majority'") == "bad argument #1 to 'partition_scores' (option 'rule': unknown rule \"majority\"; expected \"unanimous\", \"k_of_n\" or a function)")
        #expect(try reason("\(p), rule = 'k_of_n'") == "bad argument #1 to 'partition_scores' (rule \"k_of_n\" needs option 'k' (how many members must agree))")
        #expect(try reason("\(p), k = 2") == "bad argument #1 to 'partition_scores' (option 'k' applies only to rule = \"k_of_n\")")
        #expect(try reason("\(p), rule = 'k_of_n', k = 4") == "k-of-n rule: k must be in 1...3 (got 4)")
        #expect(try reason("\(p), members = {'a', 'zz'}") == "\(path):1:1: missing \"zz_score\"")
        #expect(try reason("path = '/nonexistent/s.jsonl', out = 'o'").hasPrefix("cannot open /nonexistent/s.jsonl: "))
        let noTable = try #require(tabularError(lua, "semidpo.committee.partition_scores('scores.jsonl')"))
        #expect(noTable.reason == "bad argument #1 to 'partition_scores' (expected table, got string)")
    }

    @Test func idListsRoundTrip() throws {
        let (lua, dir, _) = try setUp()
        let r = try lua.runString("""
            local p = semidpo.committee.write_ids({3, 1, 2}, "ids/three.json")
            local back = semidpo.committee.read_ids(p)
            return #back, back[1], back[3]
            """, name: "@recipe.lua")
        #expect(r[0] as? Int == 3 && r[1] as? Int == 3 && r[2] as? Int == 2)
        #expect(try ids(dir + "/ids/three.json") == "[3, 1, 2]")
        #expect(lua.run.recordedOutputs == ["ids/three.json"])
    }

    @Test func benchRecipeRunsOnATinyFile() throws {
        let (_, dir, path) = try setUp()
        let (status, errs) = runRecipe("bench_partition.lua", ["scores=" + path, "repeats=2"], out: dir + "/bench")
        #expect(status == 0, "\(errs)")
        let y = try YAML.load(path: dir + "/bench/bench_partition.yaml")
        #expect(y["pairs"]?.intValue == 5 && y["clean"]?.intValue == 2)
        #expect(y["wall_seconds"]?[1] != nil && y["wall_seconds"]?[2] == nil)   // two repetitions
        // ceil(0.02 · 2) = 1 of the two clean pairs is held out.
        let clean = try readIdList(dir + "/bench/partition/clean.json"), test = try readIdList(dir + "/bench/partition/clean_test.json")
        #expect(clean.count == 1 && Set(clean + test) == [1, 4])
        #expect(try ids(dir + "/bench/partition/noisy.json") == "[2, 3, 5]")
        let (missing, err) = runRecipe("bench_partition.lua", [], out: dir + "/bench2")
        #expect(missing == 1)
        #expect(err.contains("bench_partition.lua:8: --set scores=PATH is required"))
    }
}
