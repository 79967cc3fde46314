// semidpo.online through Lua: the combiners (built-in and a Lua function) on a hand-worked table,
// generated pairs (ids, truth, determinism) into the ensemble pass, selection, training and the audit,
// argument errors, and recipes/online_semi_dpo.lua end to end at tiny settings.
import Foundation
import Testing
import Core
@testable import Host

private let prelude = tinyUNetLua + "local O = semidpo.online\n"

private func onlineError(_ code: String) -> LuaError? { bindingsError(prelude + code, name: "@online.lua") }

@Suite(.serialized) struct OnlineBindingsTests {
    /// Two couples' z for 3 pairs × 2 anchors, as confidence files read back; the same hand-worked
    /// values as Core's `ensembleCombinersOnAHandWorkedTable`.
    @Test func combinersThroughLuaOnAHandWorkedTable() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try """
            {"idx": 7, "timestep_50": 2.0, "timestep_450": -1.0}
            {"idx": 8, "timestep_50": -3.0, "timestep_450": -4.0}
            {"idx": 9, "timestep_50": 0.5, "timestep_450": 0.0}

            """.write(toFile: dir + "/a.jsonl", atomically: true, encoding: .utf8)
        try """
            {"idx": 7, "timestep_50": 4.0, "timestep_450": 3.0}
            {"idx": 8, "timestep_50": -1.0, "timestep_450": -2.0}
            {"idx": 9, "timestep_50": -0.5, "timestep_450": 6.0}

            """.write(toFile: dir + "/b.jsonl", atomically: true, encoding: .utf8)
        let lua = try bindingsState(dir)
        let r = try lua.runString(prelude + """
            local a = semidpo.dpo.read_confidence("\(dir)/a.jsonl", {50, 450})
            local b = semidpo.dpo.read_confidence("\(dir)/b.jsonl", {50, 450})
            local function flat(c) local out = {}; for _, row in ipairs(c:values()) do for _, z in ipairs(row) do out[#out + 1] = z end end; return out end
            local seen = {}
            local f = O.combine{confidences = {a, b}, combine = function(zs, anchor, id)
              seen[#seen + 1] = id .. "@" .. anchor
              return math.min(zs[1], zs[2])          -- the more pessimistic member
            end}
            return flat(O.combine{confidences = {a, b}, combine = "mean"}), flat(O.combine{confidences = {a, b}, combine = "agree"}),
                   flat(f), table.concat(seen, ","), O.combine{confidences = {a, b}}:ids()
            """, name: "@online.lua")
        // mean: (2+4)/2, (−1+3)/2, (−3−1)/2, (−4−2)/2, 0, 3;  agree: 3, 0 (signs differ), −2, −3, 0, 0 (a zero)
        #expect(r[0] as? [Any] as? [Double] == [3, 1, -2, -3, 0, 3])
        #expect(r[1] as? [Any] as? [Double] == [3, 0, -2, -3, 0, 0])
        // min of the two: 2, −1, −3, −4, −0.5, 0
        #expect(r[2] as? [Any] as? [Double] == [2, -1, -3, -4, -0.5, 0])
        #expect(r[3] as? String == "7@50,7@450,8@50,8@450,9@50,9@450")
        #expect(r[4] as? [Any] as? [Int] == [7, 8, 9])
    }

    @Test func combinerErrorsNameTheProblem() throws {
        let conf = """
            local m = semidpo.diffusion.new{config = tiny, seed = 1}
            local g = O.generate{model = m, prompts = {"a red circle"}, steps = 1}
            local c = semidpo.dpo.confidence{model = m, reference = m:clone(), pairs = g, anchors = {50}}

            """
        let bad = onlineError(conf + "O.combine{confidences = {c}, combine = 'median'}")
        #expect(bad?.message.contains("'median' is not \"mean\", \"agree\" or a function") == true)
        let text = onlineError(conf + "O.combine{confidences = {c}, combine = function(zs) return 'x' end}")
        #expect(text?.message.contains("must return a number") == true && text?.message.contains("defined at online.lua:8") == true, "\(String(describing: text?.message))")
        let raise = onlineError(conf + "O.combine{confidences = {c}, combine = function(zs)\n error('boom') end}")
        #expect(raise?.message.contains("boom") == true && raise?.message.contains("in the combine function, pair 0, anchor 50") == true)
        #expect(onlineError(conf + "O.combine{confidences = {c, 3}}")?.message.contains("entry 2 is a number, not a Confidence") == true)
        #expect(onlineError(conf + "O.confidence{couples = {{m, m}}, pairs = g}")?.message.contains("same object as model and reference") == true)
        #expect(onlineError(conf + "O.confidence{couples = {{m}}, pairs = g}")?.message.contains("entry 1 must be") == true)
        #expect(onlineError(conf + "O.generate{model = m, prompts = {'a red circle'}, second = {stpes = 3}}")?.message
                    .contains("unknown key 'stpes'") == true)
        #expect(onlineError(conf + "O.generate{model = m, prompts = {'a red circle'}, seed = -1}")?.message.contains("seed") == true)
        #expect(onlineError(conf + "O.audit{pairs = g, labels = {}}")?.message.contains("non-empty list of Labels") == true)
    }

    /// Generated pairs → ensemble confidence (one couple = dpo.confidence) → select → train → audit.
    @Test func generatedPairsThroughTheRoundThroughLua() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lua = try bindingsState(dir)
        let r = try lua.runString(prelude + """
            local m0 = semidpo.diffusion.new{config = tiny, seed = 1}:freeze()
            local m1 = m0:clone()
            local prompts = {"a red circle", "two blue squares", "a green triangle", "a yellow square", "three red circles"}
            local g = O.generate{model = m0, prompts = prompts, seed = 4, steps = 2, guidance = 3, first_id = 10}
            local again = O.generate{model = m0, prompts = prompts, seed = 4, steps = 2, guidance = 3, first_id = 10}
            local other = O.generate{model = m0, prompts = prompts, seed = 5, steps = 2, guidance = 3, first_id = 10}
            local mixed = O.generate{model = m0, prompts = prompts, seed = 4, steps = 2, guidance = 3, first_id = 10, second = {guidance = false}}
            local t, ta, to, tm = g:truth(), again:truth(), other:truth(), mixed:truth()
            local same, differs, image0_same, image1_differs = true, false, true, false
            for i = 1, #prompts do
              for d = 1, 4 do
                if t.winner[i][d] ~= ta.winner[i][d] or t.loser[i][d] ~= ta.loser[i][d] then same = false end
                if t.winner[i][d] ~= to.winner[i][d] then differs = true end
                if math.abs(t.winner[i][d] - tm.winner[i][d]) > 1e-3 then image0_same = false end
                if t.loser[i][d] ~= tm.loser[i][d] then image1_differs = true end
              end
            end
            -- Move m1 off m0 a little with a few DPO steps on the generated pairs, then score with one couple and two.
            semidpo.dpo.train{policy = m1, reference = m0, pairs = g, steps = 2, batch_size = 2, lr = 1e-3}
            m1:freeze()
            local m2 = m1:clone()
            semidpo.dpo.train{policy = m2, reference = m1, pairs = g, steps = 2, batch_size = 2, lr = 1e-3}
            local one = O.confidence{couples = {{model = m1, reference = m0}}, pairs = g, anchors = {50, 550}, beta = 500, seed = 2}
            local single = semidpo.dpo.confidence{model = m1, reference = m0, pairs = g, anchors = {50, 550}, beta = 500, seed = 2}
            local conf, members = O.confidence{couples = {{m2, m1}, {m1, m0}}, pairs = g, anchors = {50, 550}, beta = 500, seed = 2,
                                               combine = "mean"}
            local equal = true
            local v1, vs, vc, va, vb = one:values(), single:values(), conf:values(), members[1]:values(), members[2]:values()
            for i = 1, #v1 do for j = 1, 2 do
              if v1[i][j] ~= vs[i][j] or vb[i][j] ~= vs[i][j] or vc[i][j] ~= (va[i][j] + vb[i][j]) / 2 then equal = false end
            end end
            -- Selection takes the ensemble's Confidence; training takes the generated pairs with the self-labels.
            local labels = semidpo.pseudolabel.select{confidence = conf, mode = "percentile", values = 50, guard = false}
            local m3 = m2:clone()
            local summary = semidpo.dpo.train{policy = m3, reference = m2:freeze(), pairs = g, unlabeled = g, pseudo = labels,
                                              steps = 2, batch_size = 2}
            local audit = O.audit{pairs = g, labels = {labels}, names = {"round 1"}, raters = {seed = 3}}
            local audit2 = O.audit{pairs = g, labels = {labels}, names = {"round 1"}, raters = {seed = 3}}
            local pooled
            for _, row in ipairs(audit.rows) do if row.anchor == nil then pooled = row end end
            return g:count(), g:ids(), same, differs, image0_same, image1_differs, equal, labels:count(), summary.steps,
                   #audit.rows, pooled.labelled, audit.raters.pairs, #audit.raters.labels, audit.markdown,
                   table.concat(audit.raters.labels, ",") == table.concat(audit2.raters.labels, ","), tostring(g), #t.dimensions
            """, name: "@online.lua")
        #expect(r[0] as? Int == 5)
        #expect(r[1] as? [Any] as? [Int] == [10, 11, 12, 13, 14])
        #expect(r[2] as? Bool == true, "same seed, same pairs")
        #expect(r[3] as? Bool == true, "another seed, other pairs")
        #expect(r[4] as? Bool == true && r[5] as? Bool == true, "second = {…} changes image 1 only")
        #expect(r[6] as? Bool == true, "one couple = dpo.confidence; mean of the members")
        #expect(r[7] as? Int == 5 && r[8] as? Int == 2)
        #expect(r[9] as? Int == 3)                                 // 2 anchors + the pooled row
        #expect((r[10] as? Int ?? 0) > 0 && r[11] as? Int == 5 && r[12] as? Int == 5)
        #expect((r[13] as? String)?.contains("Self overall (%)") == true && r[14] as? Bool == true)
        #expect((r[15] as? String)?.contains("5 generated pairs") == true && r[16] as? Int == 4)
    }

    /// recipes/online_semi_dpo.lua at tiny settings (RecipeTests' tiny base model, the shipped committee, a few
    /// pairs, two rounds, every ablation): it finishes and writes tables that parse; Table 8's online and offline
    /// Semi-DPO arms took the same steps and pair gradients; a second run loads every stage (a killed run resumes).
    @Test func onlineRecipeRunsAtTinySettings() throws {
        let w = TinyWorld.shared
        let cache = tempDir()
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let settings = ["base=\(w.base)", "committee=clip,aesthetic,hps", "data_root=\(w.root)/data", "cache=\(cache)", "pairs=40",
                        "test_fraction=0.1", "batch_size=2", "warmup=0", "steps0=2", "rounds=2", "round_pairs=4", "round_steps=2",
                        "generate.steps=2", "eval.prompts=2", "eval.steps=1", "eval.suites=pickapic", "eval.suite_size=8", "resamples=200",
                        "ablations=ensemble,rounds,pairs", "ablation_pairs=3"]
        let out = try runShipped("online_semi_dpo.lua", settings)
        for f in ["table8.md", "table8.csv", "table8_win_rates.md", "table8_compute.md", "table8_rounds_timing.md", "table8_rounds_self_labels.csv",
                  "online_ablations.md", "online_timing.md", "online_self_labels.csv", "online/round1/audit.md", "online/round2/audit.csv",
                  "online/round2/selection.txt", "online_alone_timing.md", "online_p3_self_labels.md", "online/model.safetensors"] {
            parses(out + "/" + f)
        }
        let json = try JSON.parse(file: out + "/tables.json")
        let t8 = json["table8"]
        for row in ["Base", "Diffusion-DPO", "Semi-DPO (iter 0) = online cold start", "Semi-DPO offline (iter 2)",
                    "Online Semi-DPO (round 1)", "Online Semi-DPO (round 2)"] {
            let cell = t8?["pickapic / " + row]?["overall (MPS role)"]
            let (m, lo, hi) = (cell?["mean"]?.doubleValue ?? .nan, cell?["lo"]?.doubleValue ?? .nan, cell?["hi"]?.doubleValue ?? .nan)
            #expect(lo <= m && m <= hi, "table8 / \(row): \(String(describing: cell))")
        }
        // Equal compute: 2 + 2·2 steps each; pair gradients 2·2 + 2·2·2·2 = 20; Diffusion-DPO 2 + 2·2·2 = 10 steps of 2 pairs.
        func members(_ v: JSONValue?) -> [(key: String, value: JSONValue)] { if case let .object(m)? = v { return m }; return [] }
        func work(_ prefix: String) -> (Double, Double) {
            let row = members(json["table8_compute"]).first { $0.key.hasPrefix(prefix) }?.value
            return (row?["optimizer steps"]?.doubleValue ?? .nan, row?["pair gradients"]?.doubleValue ?? .nan)
        }
        #expect(work("Semi-DPO offline (iter 2)") == (6, 20) && work("Online Semi-DPO (round 2)") == (6, 20))
        #expect(work("Diffusion-DPO") == (10, 20) && work("Online Semi-DPO (round 1)") == (4, 12))
        #expect(members(json["online_timing"]).count == 2, "one timing row per round")
        #expect(json["online_timing"]?["0 / 2"]?["confidence"]?.doubleValue ?? -1 > 0)
        #expect(members(json["online_ablations"]).count == 7, "rounds 0–2, two labellers, two pair counts")
        let audit = try String(contentsOfFile: out + "/online/round2/audit.md", encoding: .utf8)
        #expect(audit.contains("selected by model r-1 alone") && audit.contains("every sign (no threshold)"))
        // Round 1 has one couple whatever the labeller: the "alone" ablation shares its stage.
        let stages = { try FileManager.default.subpathsOfDirectory(atPath: cache).filter { $0.hasSuffix("stage.yaml") }.sorted() }
        let before = try stages()
        #expect(before.filter { $0.hasPrefix("online_round1/") }.count == 2, "round 1: 4 and 3 pairs per round")
        #expect(before.filter { $0.hasPrefix("online_round2/") }.count == 3, "round 2: pair, alone, 3 pairs per round")
        let again = try runShipped("online_semi_dpo.lua", settings)
        #expect(try stages() == before, "a second run computes no stage")
        #expect(try String(contentsOfFile: again + "/online_self_labels.csv", encoding: .utf8)
                == String(contentsOfFile: out + "/online_self_labels.csv", encoding: .utf8))
        #expect(try String(contentsOfFile: again + "/table8.csv", encoding: .utf8) == String(contentsOfFile: out + "/table8.csv", encoding: .utf8))
    }
}
