// semidpo.stats through Lua: bootstrap intervals (the same numbers as Core's hand-worked tests), tests,
// win rates, mean ± sd over seeds, the claim checker writing claims.md and tables.json, interval cells in
// semidpo.eval.table, and errors that name the argument.
import Foundation
import Testing
import Core
@testable import Host

private let prelude = "local S = semidpo.stats\n"

private func statsMessage(_ code: String) -> String { bindingsError(prelude + code, name: "@stats.lua")?.message ?? "no error" }

@Suite(.serialized) struct StatsBindingsTests {
    @Test func intervalsAndTestsThroughLua() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lua = try bindingsState(dir)
        try lua.setField("seed", 7)
        let r = try lua.runString(prelude + """
            -- UncertaintyTests: [1, 2, 3, 4, 10], seed 7, 1000 resamples, 95% ⇒ [1.8, 7.2]
            local b = S.bootstrap{values = {1, 2, 3, 4, 10}, seed = 7}
            local b_run_seed = S.bootstrap{values = {1, 2, 3, 4, 10}}              -- seed = semidpo.seed = 7
            local pooled = S.bootstrap{values = {{1, 2, 3}, {10, 20}}, seed = 3, level = 0.9}
            local within = S.bootstrap{values = {{1, 2, 3}, {10, 20}}, seed = 3, level = 0.9, pooling = "prompts"}
            local diff = S.bootstrap{values = {3, 4, 5}, paired_with = {1, 1, 1}, resamples = 200, seed = 1}
            local perm = S.permutation_test{values = {1, 2, 3, -0.5}}
            local perm2 = S.permutation_test{values = {2, 2, 3, 4}, paired_with = {1, 0, 0, 0}}
            local sign = S.sign_test{values = {1, 2, 3, 4, 5, 6, 7, 8, -1, -2, 0}}
            local wr = S.win_rate{values = {3, 2, 5, 1}, paired_with = {1, 2, 4, 2}, seed = 1}
            local strict = S.win_rate{values = {3, 2, 5, 1}, paired_with = {1, 2, 4, 2}, ties = 0}
            local os = S.over_seeds{values = {1, 2, 3, 4}}
            local osl = S.over_seeds{values = {{1, 2, 3}, {10, 20}}, seed = 3, level = 0.9}
            return b.mean, b.lo, b.hi, b.n[1], b.seeds, b_run_seed.lo == b.lo and b_run_seed.hi == b.hi,
                   pooled.lo, pooled.hi, pooled.sd, within.lo, within.pooling,
                   diff.mean, perm.p, perm.exact, perm2.p, sign.p, sign.positive, sign.ties,
                   wr.mean, wr.lo, wr.hi, strict.mean, os.mean, os.sd, os.seeds, osl.lo, osl.hi, #osl.per_seed
            """, name: "@stats.lua")
        func d(_ i: Int) -> Double { (r[i] as? Double) ?? (r[i] as? Int).map(Double.init) ?? .nan }
        #expect(d(0) == 4 && abs(d(1) - 1.8) < 1e-12 && abs(d(2) - 7.2) < 1e-12 && r[3] as? Int == 5 && r[4] as? Int == 1)
        #expect(r[5] as? Bool == true, "seed defaults to the run's seed")
        #expect(abs(d(6) - 1.6666666666666667) < 1e-12 && abs(d(7) - 17.5) < 1e-12 && abs(d(8) - 13 / 2.0.squareRoot()) < 1e-12)
        #expect(abs(d(9) - 5.833333333333333) < 1e-12 && r[10] as? String == "prompts")
        #expect(d(11) == 3)
        #expect(d(12) == 0.25 && r[13] as? Bool == true && d(14) == 0.125)
        #expect(abs(d(15) - 0.109375) < 1e-12 && r[16] as? Int == 8 && r[17] as? Int == 1)
        #expect(d(18) == 0.625 && d(19) == 0.25 && d(20) == 1 && d(21) == 0.5)
        #expect(d(22) == 2.5 && abs(d(23) - 1.2909944487358056) < 1e-15 && r[24] as? Int == 4)
        #expect(abs(d(25) - 1.6666666666666667) < 1e-12 && abs(d(26) - 17.5) < 1e-12 && r[27] as? Int == 2)
    }

    @Test func claimsAndTablesWriteFiles() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lua = try bindingsState(dir)
        let r = try lua.runString(prelude + """
            local a, b = {}, {}
            for i = 1, 40 do a[i] = 0.5 + 0.01 * (i % 7); b[i] = a[i] - 0.1 - 0.002 * (i % 3) end
            local out = S.claims{path = "claims", title = "Claims (tiny)", resamples = 500, claims = {
              {name = "(x)", statement = "A beats B", all = {
                {name = "x1", quantity = "A − B", values = {a, a}, paired_with = {b, b}, above = 0},
                {name = "x2", values = a, below = 0.5},
              }},
              {name = "(y)", values = {0.1, -0.1, 0.1, -0.1}, above = 0},
            }}
            local semi, dpo, kto = {}, {}, {}
            for i = 1, 20 do dpo[i] = 0.4 + 0.01 * (i % 5); semi[i] = dpo[i] + 0.1; kto[i] = dpo[i] - 0.05 end
            local seed = {scores = {hpsv2 = {["Semi-DPO"] = semi, ["Diffusion-DPO"] = dpo, ["Diffusion-KTO"] = kto}},
                          anchors = {{t = 50, values = 0.8}, {t = 950, values = 0.6}}}
            local paper = S.paper_claims{seeds = {seed, seed}, path = "paper_claims", resamples = 200}
            local cell = S.bootstrap{values = a, resamples = 200}
            local files = semidpo.eval.table{title = "T", columns = {"method", "score"}, path = "t", interval = "pm", unit = "prompts",
                                             rows = {{"A", cell}, {"B", 0.5}}}
            return out.claims[1].verdict, out.claims[1].parts[1].verdict, out.claims[1].parts[2].verdict, out.claims[2].verdict,
                   out.markdown, paper.claims[1].name, paper.claims[1].verdict, paper.claims[2].name, paper.claims[2].verdict,
                   paper.claims[2].parts[1].mean, files.csv, cell.mean, cell.half_width
            """, name: "@stats.lua")
        #expect(r[0] as? String == "fails" && r[1] as? String == "holds" && r[2] as? String == "fails", "a = 0.5…0.56 is not below 0.5")
        #expect(r[3] as? String == "inconclusive")
        #expect(r[4] as? String == dir + "/claims.md")
        #expect(r[5] as? String == "(b)" && r[6] as? String == "holds" && r[7] as? String == "(e)" && r[8] as? String == "holds")
        #expect(abs(((r[9] as? Double) ?? .nan) - -0.2) < 1e-12, "two identical seeds of late − early = 0.6 − 0.8")
        let md = try String(contentsOfFile: dir + "/claims.md", encoding: .utf8)
        #expect(md.hasPrefix("# Claims (tiny)") && md.contains("| (x): A beats B | **fails** |") && md.contains("| A − B > 0 |"))
        let json = try JSON.parse(file: dir + "/tables.json")
        #expect(json["claims"]?["(x)"]?["verdict"] == .string("fails"))
        #expect(json["paper_claims"]?["(b)"]?["tests"]?["hpsv2: Semi-DPO − Diffusion-DPO > 0"]?["lo"]?.doubleValue != nil)
        #expect(json["t"]?["A"]?["score"]?["mean"]?.doubleValue == r[11] as? Double)
        #expect(json["t"]?["B"]?["score"] == .number(0.5))
        let csv = try String(contentsOfFile: dir + "/t.csv", encoding: .utf8)
        #expect(csv.hasPrefix("method,score,score lo,score hi\n") && csv.hasSuffix("B,0.5,,\n"))
        let tmd = try String(contentsOfFile: dir + "/t.md", encoding: .utf8)
        #expect(tmd.contains(String(format: "| A | %.3f ± %.3f |", (r[11] as? Double) ?? .nan, (r[12] as? Double) ?? .nan)))
        #expect(tmd.contains("each cell: 40 prompts."))
        for f in ["claims.md", "paper_claims.md", "tables.json", "t.md", "t.csv"] { #expect(lua.run.recordedOutputs.contains(f), "\(f) not recorded") }
    }

    @Test func errorsNameTheArgument() {
        #expect(statsMessage("S.bootstrap{values = {1, 'x'}}").contains("bad argument #1 to 'bootstrap' (option 'values': element 2 is a string, expected a number)"))
        #expect(statsMessage("S.bootstrap{values = {}}").contains("option 'values': expected a non-empty list"))
        #expect(statsMessage("S.bootstrap{values = {1, 2}, pooling = 'seeds'}").contains("option 'pooling': expected 'prompts' or 'seeds_and_prompts', got 'seeds'"))
        #expect(statsMessage("S.bootstrap{values = {1, 2}, level = 95}").contains("option 'level': expected a number in (0, 1), got 95"))
        #expect(statsMessage("S.bootstrap{values = {1, 2}, resamples = 5}").contains("option 'resamples': expected 10…10000000, got 5"))
        #expect(statsMessage("S.bootstrap{values = {1}}").contains("nothing to resample"))
        #expect(statsMessage("S.bootstrap{values = {1, 2}, sed = 1}").contains("unknown option 'sed'"))
        #expect(statsMessage("S.bootstrap{values = {{1, 2}, {3}}, paired_with = {{1, 2}, {3, 4}}}").contains("option 'paired_with': seed 2 has 2 values, 'values' has 1"))
        #expect(statsMessage("S.win_rate{values = {1, 2}, paired_with = {1, 2}, ties = 2}").contains("option 'ties': expected a number in [0, 1], got 2"))
        #expect(statsMessage("S.permutation_test{values = {1, 2}, exact_limit = 30}").contains("option 'exact_limit': expected 0…24, got 30"))
        #expect(statsMessage("S.claims{claims = {{name = 'c', values = {1, 2}}}}").contains("claim 1 ('c'): give exactly one of 'above' or 'below'"))
        #expect(statsMessage("S.claims{claims = {{name = 'c', values = {1, 2}, abov = 0}}}").contains("unknown field 'abov'"))
        #expect(statsMessage("S.paper_claims{seeds = {{scores = {hpsv2 = {['Semi-DPO'] = {1, 2}}}}}}").contains("seed 1: scores of suite 'hpsv2' have no method 'Diffusion-DPO'"))
        #expect(statsMessage("S.paper_claims{seeds = {{anchors = {{t = 50, values = 0.8}}}}}").contains("(e) needs anchors on both sides of t = 650"))
        #expect(statsMessage("semidpo.eval.table{title = 't', columns = {'a'}, path = 't', rows = {{{mean = 1}}}}").contains("an interval cell needs numbers 'mean', 'lo' and 'hi'"))
        #expect(statsMessage("semidpo.eval.means_table{title = 't', path = 't', columns = {'m'}, metrics = {'overall'}, headers = {mps = 'x'}, rows = {{'a', seeds = {{overall = {1, 2}}}}}}")
                .contains("option 'headers': no column 'mps' (columns: m, overall)"))
        #expect(statsMessage("semidpo.eval.table{title = 't', columns = {'a'}, path = 't', rows = {}, interval = 'x'}").contains("option 'interval': expected 'range' or 'pm', got 'x'"))
        let e = bindingsError(prelude + "\nS.sign_test{values = {}}", name: "@stats.lua")
        #expect(e?.line == 3 && e?.file == "stats.lua")
    }
}

@Suite(.serialized) struct EvalIntervalTablesTests {
    @Test func meansAndWinRateTablesFromEvaluations() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lua = try bindingsState(dir)
        let r = try lua.runString(tinyUNetLua + """
            local E = semidpo.eval
            local m1 = semidpo.diffusion.new{config = tiny, seed = 1}
            local m2 = semidpo.diffusion.new{config = tiny, seed = 2}
            local ev = {}
            for s = 1, 2 do   -- two "seeds" of each method (here: two sampling seeds of the same two models)
              ev[s] = {a = E.run{model = m1, suite = "hpsv2", seed = s, steps = 1, limit = 6},
                       b = E.run{model = m2, suite = "hpsv2", seed = s, steps = 1, limit = 6}}
            end
            local t1 = E.means_table{title = "Means", path = "means", columns = {"suite", "method"}, metrics = {"overall", "detail"},
                                     rows = {{"hpsv2", "m1", seeds = {ev[1].a, ev[2].a}},
                                             {"hpsv2", "m2", seeds = {{overall = ev[1].b:per_prompt("overall"), detail = ev[1].b:per_prompt("detail")},
                                                                      {overall = ev[2].b:per_prompt("overall"), detail = ev[2].b:per_prompt("detail")}}}}}
            E.means_table{title = "Renamed", path = "renamed", columns = {"method"}, metrics = {"overall"}, headers = {overall = "overall (MPS role)"},
                          rows = {{"m1", seeds = ev[1].a}}}
            local t2 = E.win_rate_table{title = "Wins", path = "wins", columns = {"suite", "method 1", "method 2"}, metrics = {"overall"},
                                        rows = {{"hpsv2", "m1", "m2", a = {ev[1].a, ev[2].a}, b = {ev[1].b, ev[2].b}}}}
            -- the same cell by hand with semidpo.stats
            local by_hand = semidpo.stats.bootstrap{values = {ev[1].a:per_prompt("overall"), ev[2].a:per_prompt("overall")}}
            local wr = semidpo.stats.win_rate{values = {ev[1].a:per_prompt("overall"), ev[2].a:per_prompt("overall")},
                                              paired_with = {ev[1].b:per_prompt("overall"), ev[2].b:per_prompt("overall")}}
            local ok, err = pcall(E.win_rate_table, {title = "W", path = "w", columns = {"m"}, metrics = {"overall"},
                                                     rows = {{"x", a = ev[1].a, b = ev[2].b}}})
            local g1 = E.run{model = m1, suite = "geneval", seed = 1, steps = 1, limit = 2}
            local g2 = E.run{model = m1, suite = "geneval", seed = 2, steps = 1, limit = 2}
            local passes = E.geneval_passes(g1)
            local t3 = E.geneval_table{title = "GenEval", path = "t3", columns = {"method"},
                                       rows = {{"m1", seeds = {g1, g2}}, {"m1 (records)", seeds = {passes, E.geneval_passes(g2)}}}}
            return by_hand.lo, by_hand.hi, wr.mean, tostring(err), #passes.counting, g1:geneval().overall, g2:geneval().overall
            """, name: "@tables.lua")
        let json = try JSON.parse(file: dir + "/tables.json")
        let cell = json["means"]?["hpsv2 / m1"]?["overall"]
        #expect(cell?["lo"]?.doubleValue == r[0] as? Double && cell?["hi"]?.doubleValue == r[1] as? Double)
        #expect(cell?["n"] == .array([.number(6), .number(6)]) && cell?["per_seed"] != nil)
        #expect(json["means"]?["hpsv2 / m2"]?["detail"]?["mean"]?.doubleValue != nil)
        #expect(json["renamed"]?["m1"]?["overall (MPS role)"]?["n"] == .array([.number(6)]), "a single EvalScores is one seed; headers rename")
        #expect(json["wins"]?["hpsv2 / m1 / m2"]?["overall"]?["mean"]?.doubleValue == ((r[2] as? Double) ?? .nan) * 100)
        #expect(json["wins"]?["hpsv2 / m1 / m2"]?["p overall"]?.doubleValue != nil)
        let md = try String(contentsOfFile: dir + "/wins.md", encoding: .utf8)
        #expect(md.contains("| suite | method 1 | method 2 | overall | Δ overall | p overall |") && md.contains("each cell: 6 prompts × 2 seeds."))
        #expect((r[3] as? String)?.contains("A and B did not score the same prompts with the same sampling seed") == true)
        #expect(r[4] as? Int == 2, "limit 2: two prompts per category")
        let overall = json["t3"]?["m1"]?["overall"]
        let g = ((r[5] as? Double) ?? .nan, (r[6] as? Double) ?? .nan)
        #expect(abs((overall?["mean"]?.doubleValue ?? .nan) - 100 * (g.0 + g.1) / 2) < 1e-9, "overall = mean over seeds of GenEval's overall")
        #expect(json["t3"]?["m1"]?["counting"]?["n"] == .array([.number(2), .number(2)]) && overall?["n"] == .array([.number(12), .number(12)]))
        #expect(json["t3"]?["m1 (records)"]?["overall"]?["lo"] == overall?["lo"], "EvalScores and their geneval_passes give the same cells")
    }

    /// GenEval with several images per prompt through the bindings: limit 1, min_images 2 ⇒ 2 images per prompt,
    /// image 0 = the one-image run's image (same scores and pass), `geneval_passes` grouped by prompt, Table 3's
    /// cells on prompts (n = 1 per category) with their images, and the rows that state them.
    @Test func genevalSeveralImagesPerPrompt() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lua = try bindingsState(dir)
        let r = try lua.runString(tinyUNetLua + """
            local E = semidpo.eval
            local m = semidpo.diffusion.new{config = tiny, seed = 1}
            local one = E.run{model = m, suite = "geneval", seed = 3, steps = 2, limit = 1}
            local two = E.run{model = m, suite = "geneval", seed = 3, steps = 2, limit = 1, min_images = 2}
            local a, b = one:per_prompt("overall"), two:per_prompt("overall")
            local same = #a == 6 and #b == 12
            for i = 1, #a do same = same and a[i] == b[2 * i - 1] end
            local differs = false
            for _, metric in ipairs{"alignment", "aesthetics", "detail", "overall"} do
              local v = two:per_prompt(metric)
              for i = 1, #a do differs = differs or v[2 * i] ~= v[2 * i - 1] end
            end
            local passes = E.geneval_passes(two)
            E.geneval_table{title = "G", path = "g", columns = {"method"}, rows = {{"m", seeds = {two, passes}}}}
            local ok1, e1 = pcall(E.run, {model = m, suite = "parti", limit = 1, min_images = 2})
            local ok2, e2 = pcall(E.run, {model = m, suite = "geneval", limit = 1, min_images = 0})
            local ok3, e3 = pcall(E.geneval_table, {title = "G", path = "h", columns = {"method"}, rows = {{"m", seeds = {{counting = {{}}}}}}})
            return same, differs, #passes.counting, #passes.counting[1], two:count(), tostring(e1), tostring(e2), tostring(e3)
            """, name: "@images.lua")
        #expect(r[0] as? Bool == true, "image 0 of each prompt = the one-image evaluation's")
        #expect(r[1] as? Bool == true, "image 1 has its own noise")
        #expect(r[2] as? Int == 1 && r[3] as? Int == 2 && r[4] as? Int == 12)
        #expect((r[5] as? String)?.contains("option 'min_images': only the 'geneval' suite samples several images per prompt (suite 'parti')") == true)
        #expect((r[6] as? String)?.contains("option 'min_images': expected ≥ 1, got 0") == true)
        #expect((r[7] as? String)?.contains("category 'counting', prompt 1 has no images") == true, "\(String(describing: r[7]))")
        let json = try JSON.parse(file: dir + "/tables.json")
        #expect(json["g"]?["m"]?["counting"]?["n"] == .array([.number(1), .number(1)]))
        #expect(json["g"]?["m"]?["counting"]?["images"] == .array([.number(2), .number(2)]))
        #expect(json["g"]?["m"]?["overall"]?["images"] == .array([.number(12), .number(12)]))
        #expect(json["g"]?["images per prompt"]?["counting"]?.doubleValue == 2 && json["g"]?["seeds"]?["overall"]?.doubleValue == 2)
        let md = try String(contentsOfFile: dir + "/g.md", encoding: .utf8)
        #expect(md.contains("each cell's prompts × seeds in parentheses") && md.contains("(1 prompts (2 images) × 2 seeds)"))
    }
}
