// Host tests of semidpo.pseudolabel: select_file on a hand-worked confidence table (percentile, top-k,
// past labels, clean ids, the accuracy guard as a table and as a Lua function), percentile, accuracy, errors.
import Foundation
import Testing
import Core
@testable import Host

/// Five pairs, anchors 50 and 150. Ranking magnitudes over the non-zero z:
///   t=50:  10:2.0  11:1.0  12:0.5  14:4.0 (13 is 0, skipped) → sorted 0.5 1 2 4
///   t=150: 10:0.5  11:0.1  12:3.0  13:1.0  14:0.2            → sorted 0.1 0.2 0.5 1 3
let selectConfidence = """
{"idx": 10, "timestep_50": 2.0, "timestep_150": -0.5}
{"idx": 11, "timestep_50": -1.0, "timestep_150": 0.1}
{"idx": 12, "timestep_50": 0.5, "timestep_150": -3.0}
{"idx": 13, "timestep_50": 0.0, "timestep_150": 1.0}
{"idx": 14, "timestep_50": -4.0, "timestep_150": 0.2}

"""

/// Clean test split: accuracy 4/4 = 1.0 at t=50, 1/4 = 0.25 at t=150 (below the 0.70 floor).
let selectTestConfidence = """
{"idx": 20, "timestep_50": 1.0, "timestep_150": -1.0}
{"idx": 21, "timestep_50": 0.5, "timestep_150": -0.2}
{"idx": 22, "timestep_50": 0.1, "timestep_150": 0.3}
{"idx": 23, "timestep_50": 2.0, "timestep_150": -0.4}

"""

@Suite struct PseudoLabelBindingsTests {
    func setUp() throws -> (LuaState, String) {
        let (lua, dir) = try tabularState()
        try selectConfidence.write(toFile: dir + "/conf.jsonl", atomically: true, encoding: .utf8)
        try selectTestConfidence.write(toFile: dir + "/test.jsonl", atomically: true, encoding: .utf8)
        try "[20]".write(toFile: dir + "/clean.json", atomically: true, encoding: .utf8)
        try #"{"10": {"timestep_50": 1, "timestep_150": 1}}"#.write(toFile: dir + "/past.json", atomically: true, encoding: .utf8)
        return (lua, dir)
    }

    func text(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }

    @Test func percentileWithCleanIds() throws {
        let (lua, dir) = try setUp()
        // q = 50. t=50: v = 3·0.5 = 1.5 → 1 + (2 − 1)·0.5 = 1.5, keep 10 (+1), 14 (−1).
        // t=150: v = 4·0.5 = 2 → 0.5, keep 10 (−1), 12 (−1), 13 (+1). 11 has no label → dropped; clean 20 → +1, +1.
        let r = try lua.runString("""
            local r = semidpo.pseudolabel.select_file{ confidence = "\(dir)/conf.jsonl", values = 50,
                                                       clean = "\(dir)/clean.json", out = "labels/iter1.json" }
            local a, b = r.per_anchor[1], r.per_anchor[2]
            return r.pairs_in, r.pairs_out, r.clean, a.target, a.cutoff, a.plus, a.minus, a.zero, b.target, b.cutoff,
                   a.accuracy == nil, r.out
            """, name: "@recipe.lua")
        #expect(r[0] as? Int == 5 && r[1] as? Int == 5 && r[2] as? Int == 1)
        #expect(r[3] as? Double == 1.5 && r[4] as? Double == 2.0)
        #expect(r[5] as? Int == 2 && r[6] as? Int == 1 && r[7] as? Int == 2)    // +1: 10, 20; −1: 14; 0: 12, 13
        #expect(r[8] as? Double == 0.5 && r[9] as? Double == 0.5)
        #expect(r[10] as? Bool == true)
        #expect(r[11] as? String == dir + "/labels/iter1.json")
        #expect(try text(dir + "/labels/iter1.json") == #"{"10": {"timestep_50": 1, "timestep_150": -1}, "12": {"timestep_50": 0, "timestep_150": -1}, "13": {"timestep_50": 0, "timestep_150": 1}, "14": {"timestep_50": -1, "timestep_150": 0}, "20": {"timestep_50": 1, "timestep_150": 1}}"#)
        #expect(lua.run.recordedOutputs == ["labels/iter1.json"])
    }

    @Test func pastLabelsRankLastAndTopK() throws {
        let (lua, dir) = try setUp()
        // Past has both keys for 10 → m = 0 at both anchors. t=50: sorted 0 0.5 1 4, v = 1.5 → 0.75: keep 11, 14 (−1).
        // t=150: sorted 0 0.1 0.2 1 3, v = 2 → 0.2: keep 12 (−1), 13 (+1), 14 (+1).
        // top_k 1 (no past): t=50 → 14 (−1); t=150 → 12 (−1).
        try lua.runString("""
            semidpo.pseudolabel.select_file{ confidence = "\(dir)/conf.jsonl", values = {50, 50}, past = "\(dir)/past.json", out = "p.json" }
            semidpo.pseudolabel.select_file{ confidence = "\(dir)/conf.jsonl", mode = "top_k", values = 1, out = "k.json" }
            """, name: "@recipe.lua")
        #expect(try text(dir + "/p.json") == #"{"11": {"timestep_50": -1, "timestep_150": 0}, "12": {"timestep_50": 0, "timestep_150": -1}, "13": {"timestep_50": 0, "timestep_150": 1}, "14": {"timestep_50": -1, "timestep_150": 1}}"#)
        #expect(try text(dir + "/k.json") == #"{"12": {"timestep_50": 0, "timestep_150": -1}, "14": {"timestep_50": -1, "timestep_150": 0}}"#)
    }

    @Test func builtInGuardRaisesLowAccuracyAnchor() throws {
        let (lua, dir) = try setUp()
        // Accuracy 1.0 at t=50 (kept at q = 50), 0.25 at t=150 → q = 90: v = 3.6 → 3 − (3 − 1)·0.4 = 2.2, keep 12 only.
        let r = try lua.runString("""
            local r = semidpo.pseudolabel.select_file{ confidence = "\(dir)/conf.jsonl", values = 50,
              test_confidence = "\(dir)/test.jsonl", guard = { floor = 0.70, raise_to = 90 }, out = "g.json" }
            return r.per_anchor[1].value, r.per_anchor[1].accuracy, r.per_anchor[2].value, r.per_anchor[2].accuracy, r.per_anchor[2].target
            """, name: "@recipe.lua")
        #expect(r[0] as? Double == 50 && r[1] as? Double == 1.0)
        #expect(r[2] as? Double == 90 && r[3] as? Double == 0.25)
        #expect(r[4] as? Double == 2.2)
        #expect(try text(dir + "/g.json") == #"{"10": {"timestep_50": 1, "timestep_150": 0}, "12": {"timestep_50": 0, "timestep_150": -1}, "14": {"timestep_50": -1, "timestep_150": 0}}"#)
        // guard = false: the same inputs select at q = 50 everywhere (13 keeps its +1 at t=150).
        try lua.runString("""
            semidpo.pseudolabel.select_file{ confidence = "\(dir)/conf.jsonl", values = 50, test_confidence = "\(dir)/test.jsonl", guard = false, out = "ng.json" }
            """, name: "@recipe.lua")
        #expect(try text(dir + "/ng.json").contains(#""13": {"timestep_50": 0, "timestep_150": 1}"#))
    }

    @Test func luaGuardFunctionSeesStatistics() throws {
        let (lua, dir) = try setUp()
        // t=50 statistics: 4 non-zero z, 2 positive (10, 12), max |z| 4, median 1.5. The function keeps the
        // proposed rule there and switches t=150 to threshold 0.9: keep 12 (−1), 13 (+1).
        let r = try lua.runString("""
            local seen = {}
            local r = semidpo.pseudolabel.select_file{ confidence = "\(dir)/conf.jsonl", values = 50, out = "f.json",
              guard = function(s)
                seen[#seen + 1] = string.format("%d %d %.2f %.1f %.2f %s %s", s.anchor, s.count, s.positive_share, s.max_abs,
                                                s.magnitudes:percentile(50), tostring(s.accuracy), s.proposed.mode)
                if s.anchor == 150 then return { mode = "threshold", value = 0.9 } end
                return s.proposed
              end }
            return table.concat(seen, "; "), r.per_anchor[2].mode
            """, name: "@recipe.lua")
        #expect(r[0] as? String == "50 4 0.50 4.0 1.50 nil percentile; 150 5 0.60 3.0 0.50 nil percentile")
        #expect(r[1] as? String == "threshold")
        #expect(try text(dir + "/f.json") == #"{"10": {"timestep_50": 1, "timestep_150": 0}, "12": {"timestep_50": 0, "timestep_150": -1}, "13": {"timestep_50": 0, "timestep_150": 1}, "14": {"timestep_50": -1, "timestep_150": 0}}"#)
    }

    /// `select` on Confidence objects gives the labels `select_file` writes (same rules, guard, past, clean),
    /// with rows aligned to the confidence's pairs; its Labels feed a later `past` like the file does.
    @Test func inMemorySelectionEqualsTheFileRoute() throws {
        let (lua, dir) = try setUp()
        let r = try lua.runString("""
            local PL, dpo = semidpo.pseudolabel, semidpo.dpo
            local conf, test = dpo.read_confidence("\(dir)/conf.jsonl"), dpo.read_confidence("\(dir)/test.jsonl")
            local function rows_equal(a, b)
              if a:count() ~= b:count() then return false end
              local ia, ib = a:ids(), b:ids()
              for i = 1, a:count() do
                if ia[i] ~= ib[i] then return false end
                local ra, rb = a:row(i), b:row(i)
                for j = 1, #ra do if ra[j] ~= rb[j] then return false end end
              end
              return true
            end
            local checks = {}
            -- 1. percentile + guard table + clean ids; 2. a second round with the first as `past`; 3. a Lua guard.
            local file1 = PL.select_file{ confidence = "\(dir)/conf.jsonl", test_confidence = "\(dir)/test.jsonl", values = 50,
                                          guard = { floor = 0.7, raise_to = 90 }, clean = "\(dir)/clean.json", out = "f1.json" }
            local mem1, rep1 = PL.select{ confidence = conf, test_confidence = test, values = 50,
                                          guard = { floor = 0.7, raise_to = 90 }, clean = { 20 } }
            mem1:write("m1.json")
            checks[#checks + 1] = rep1.pairs_out == file1.pairs_out and rep1.per_anchor[2].value == 90
            local file2 = PL.select_file{ confidence = "\(dir)/conf.jsonl", values = 50, past = file1.out, out = "f2.json" }
            local mem2 = PL.select{ confidence = conf, values = 50, past = { mem1 } }
            mem2:write("m2.json")
            local guard = function(s) if s.anchor == 150 then return { mode = "threshold", value = 0.9 } end return s.proposed end
            PL.select_file{ confidence = "\(dir)/conf.jsonl", values = 50, guard = guard, out = "f3.json" }
            local mem3 = PL.select{ confidence = conf, values = 50, guard = guard }
            -- Rows: the confidence's pairs in order (10 … 14), unlisted pairs unlabelled.
            local from_file = dpo.labels{ file = semidpo.path("f3.json") }
            local ids, row2 = mem3:ids(), mem3:row(2)
            checks[#checks + 1] = #ids == 5 and ids[1] == 10 and ids[5] == 14 and row2[1] == 0 and row2[2] == 0
            checks[#checks + 1] = from_file:count() == 4 and from_file:ids()[1] == 10
            -- The file read back and the in-memory labels agree row by row on the confidence's pairs.
            local pairs_like = dpo.labels{ file = semidpo.path("f2.json") }
            checks[#checks + 1] = rows_equal(pairs_like, dpo.labels{ file = semidpo.path("m2.json") })
            -- conf:values() rows go straight into dpo.labels (one layout).
            local signs = {}
            for i, row in ipairs(conf:values()) do
              signs[i] = {}
              for j, z in ipairs(row) do signs[i][j] = z > 0 and 1 or (z < 0 and -1 or 0) end
            end
            local l = dpo.labels{ anchors = conf:anchors(), labels = signs }
            checks[#checks + 1] = l:count() == 5 and l:row(4)[1] == 0 and l:rows()[5][1] == -1
            for i, c in ipairs(checks) do if not c then return "check " .. i .. " failed" end end
            return "ok"
            """, name: "@recipe.lua")
        #expect(r.first as? String == "ok")
        #expect(try text(dir + "/f1.json") == text(dir + "/m1.json"))
        #expect(try text(dir + "/f2.json") == text(dir + "/m2.json"))
        let flat = tabularError(lua, "semidpo.dpo.labels{anchors = {50, 150}, labels = {1, -1}}")
        #expect(flat?.message.contains("expected one row per pair, {{l_50, l_150, …}, …} (the layout of conf:values())") == true, "\(flat?.message ?? "")")
        let files = tabularError(lua, "semidpo.pseudolabel.select{confidence = 'conf.jsonl'}")
        #expect(files?.message.contains("option 'confidence'") == true, "\(files?.message ?? "")")
    }

    @Test func percentileAndAccuracy() throws {
        let (lua, dir) = try setUp()
        // numpy 1.26: np.percentile([1,2,3,4], 90) = 3.7; np.percentile([0.3,0.1,0.7], 33) = 0.23199999999999998.
        let r = try lua.runString("""
            local p = semidpo.pseudolabel.percentile
            local acc = semidpo.pseudolabel.accuracy("\(dir)/test.jsonl")
            return p({1, 2, 3, 4}, 90), p({0.3, 0.1, 0.7}, 33), acc[1].anchor, acc[1].accuracy, acc[2].anchor, acc[2].accuracy
            """, name: "@recipe.lua")
        #expect(r[0] as? Double == 3.7 && r[1] as? Double == 0.23199999999999998)
        #expect(r[2] as? Int == 50 && r[3] as? Double == 1.0 && r[4] as? Int == 150 && r[5] as? Double == 0.25)
        #expect(try #require(tabularError(lua, "return semidpo.pseudolabel.percentile({}, 50)")).reason
                == "bad argument #1 to 'percentile' (expected a non-empty array of numbers)")
        #expect(try #require(tabularError(lua, "return semidpo.pseudolabel.percentile({1, 2}, 101)")).reason
                == "bad argument #2 to 'percentile' (percentile must be in [0, 100], got 101.0)")
        #expect(try #require(tabularError(lua, "return semidpo.pseudolabel.percentile({1, 'x'}, 5)")).reason
                == "bad argument #1 to 'percentile' (expected array of numbers, element 2 is string)")
    }

    @Test func errors() throws {
        let (lua, dir) = try setUp()
        func reason(_ options: String) throws -> String {
            try #require(tabularError(lua, "semidpo.pseudolabel.select_file{ \(options) }")).reason
        }
        let c = "confidence = \"\(dir)/conf.jsonl\", out = \"o.json\""
        #expect(try reason("\(c), threshold = 2") == "bad argument #1 to 'select_file' (unknown option 'threshold'; expected one of: confidence, mode, values, past, clean, test_confidence, guard, past_rule, out)")
        #expect(try reason("\(c), mode = 'median'") == "bad argument #1 to 'select_file' (option 'mode': unknown selection mode \"median\"; expected percentile, threshold or top_k)")
        #expect(try reason("\(c), values = 'high'") == "bad argument #1 to 'select_file' (option 'values': expected number or array of numbers, got string)")
        #expect(try reason("\(c), mode = 'threshold'") == "bad argument #1 to 'select_file' (option 'values' is required for mode \"threshold\")")
        #expect(try reason("\(c), values = {50, 50, 50}") == "expected 1 or 2 selection values (one per anchor [50, 150]), got 3")
        #expect(try reason("\(c), guard = { floor = 0.7 }") == "bad argument #1 to 'select_file' (option 'guard': the accuracy guard needs 'test_confidence' (the clean test split's confidences))")
        #expect(try reason("\(c), guard = { flor = 0.7 }") == "bad argument #1 to 'select_file' (option 'guard': unknown field 'flor'; expected floor, raise_to)")
        #expect(try reason("\(c), guard = 'strict'") == "bad argument #1 to 'select_file' (option 'guard': expected table, boolean or function, got string)")
        #expect(try reason("out = 'o.json'") == "bad argument #1 to 'select_file' (option 'confidence' is required (a confidence shard file or directory))")
        #expect(try reason("\(c), guard = function(s) end") == "the guard function (anchor 50) must return a rule {mode =, value =} or a number, got nil")
        let e = try #require(tabularError(lua, """
            semidpo.pseudolabel.select_file{ confidence = "\(dir)/conf.jsonl", out = "o.json",
              guard = function(s) return s.accuracy + 1 end }
            """))
        #expect(e.line == 2)
        #expect(e.reason == "attempt to perform arithmetic on a nil value (field 'accuracy') (in the guard function, anchor 50)")
        try "{\"idx\": 1, \"timestep_50\": 1.0}\n{\"idx\": 2, \"timestep_50\": }\n".write(toFile: dir + "/bad.jsonl", atomically: true, encoding: .utf8)
        let bad = try #require(tabularError(lua, "local x = 1\nsemidpo.pseudolabel.select_file{ confidence = \"\(dir)/bad.jsonl\", out = \"o.json\" }"))
        #expect(bad.line == 2)
        #expect(bad.reason.hasPrefix("\(dir)/bad.jsonl:2:"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/o.json"))
    }

    @Test func benchRecipeRunsOnATinyTable() throws {
        let (_, dir) = try setUp()
        // Same selection as percentileWithCleanIds without the clean id: 10, 12, 13, 14 labelled, 11 dropped.
        let (status, errs) = runRecipe("bench_select.lua", ["confidence=\(dir)/conf.jsonl", "values=50", "repeats=1"], out: dir + "/bench")
        #expect(status == 0, "\(errs)")
        let y = try YAML.load(path: dir + "/bench/bench_select.yaml")
        #expect(y["pairs_in"]?.intValue == 5 && y["pairs_out"]?.intValue == 4)
        #expect(try text(dir + "/bench/labels.json") == #"{"10": {"timestep_50": 1, "timestep_150": -1}, "12": {"timestep_50": 0, "timestep_150": -1}, "13": {"timestep_50": 0, "timestep_150": 1}, "14": {"timestep_50": -1, "timestep_150": 0}}"#)
        let (bad, err) = runRecipe("bench_select.lua", ["confidence=\(dir)/conf.jsonl", "values=50,x"], out: dir + "/bench2")
        #expect(bad == 1)
        #expect(err.contains("bench_select.lua:19: --set values: not a number: x"))
    }
}
