// semidpo.eval end to end through Lua on a tiny model and committee: run on suites and lists, means,
// per-prompt scores, GenEval rates, win rates, table files with tables.json, and argument errors.
import Foundation
import Testing
import Core
@testable import Host

private let prelude = tinyUNetLua + "local E = semidpo.eval\n"

private func evalError(_ code: String) -> LuaError? { bindingsError(prelude + code, name: "@eval.lua") }

@Suite(.serialized) struct EvalBindingsTests {
    @Test func runScoresWinRatesAndTablesThroughLua() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lua = try bindingsState(dir)
        let r = try lua.runString(prelude + """
            local clip = semidpo.reward.new{name = "clip", channels = {4, 4, 4}, groups = 2, embed_dimension = 4, heads = 2, seed = 1}
            local aes = semidpo.reward.new{name = "aesthetic", uses_prompt = false, channels = {4, 4, 4}, groups = 2,
                                           embed_dimension = 4, heads = 2, seed = 2}
            local committee = semidpo.committee.new{members = {clip:save("rewards/clip.safetensors", {name = "clip"}),
                                                               aes:save("rewards/aesthetic.safetensors", {name = "aesthetic"})}}
            local m1 = semidpo.diffusion.new{config = tiny, seed = 1}
            local m2 = semidpo.diffusion.new{config = tiny, seed = 2}
            local a = E.run{model = m1, suite = "hpsv2", committee = committee, seed = 3, steps = 2, guidance = 3, limit = 4}
            local a2 = E.run{model = m1, suite = "hpsv2", committee = committee, seed = 3, steps = 2, guidance = 3, limit = 4}
            local b = E.run{model = m2, suite = "hpsv2", committee = committee, seed = 3, steps = 2, guidance = 3, limit = 4}
            local wr = E.win_rate(a, b)
            local one = E.win_rate(a, b, "clip")
            -- the win rate by hand from the per-prompt scores
            local pa, pb, wins = a:per_prompt("overall"), b:per_prompt("overall"), 0
            for i = 1, #pa do if pa[i] > pb[i] then wins = wins + 1 end end
            local sum = 0
            for _, v in ipairs(pa) do sum = sum + v end
            local same = true
            for _, k in ipairs(a:metrics()) do
              local x, y = a:per_prompt(k), a2:per_prompt(k)
              for i = 1, #x do if x[i] ~= y[i] then same = false end end
            end
            local g = E.run{model = m1, suite = "geneval", seed = 3, steps = 1, guidance = false, limit = 1}
            local list = E.run{model = m2, suite = {"a red circle", {text = "two blue squares"}}, steps = 1}
            local gr, lr = g:geneval(), list:geneval()
            local ncat = 0
            for _ in pairs(gr) do ncat = ncat + 1 end
            local files = E.table{title = "Table 1 (tiny)", columns = {"suite", "method", "clip", "overall"}, path = "table1",
                                  rows = {{"hpsv2", "m1", a:means().clip, a:means().overall},
                                          {"hpsv2", "m2", b:means().clip, false}}}
            E.table{title = "Table 2 (tiny)", columns = {"method 1", "method 2", "overall"}, path = "table2", decimals = 1,
                    rows = {{"m1", "m2", 100 * wr.overall}}}
            local csv = a:write("scores/a.csv")
            return table.concat(a:metrics(), ","), a:count(), wr.overall, wins / #pa, one.clip, one.overall, wr.clip,
                   math.abs(a:means().overall - sum / #pa) < 1e-12, same, E.win_rate(a, a2).overall,
                   g:count(), ncat, gr.overall, lr.overall, list:count(), table.concat(list:prompts(), "|"),
                   files.markdown, files.json, csv, tostring(a)
            """, name: "@eval.lua")
        #expect(r[0] as? String == "clip,aesthetic,alignment,aesthetics,detail,overall")
        #expect(r[1] as? Int == 4)
        let overall = try #require(r[2] as? Double)
        #expect(overall == r[3] as? Double, "win_rate = share of prompts with a strictly higher score")
        #expect(r[4] as? Double == r[6] as? Double && r[5] == nil, "a metric argument selects that metric only")
        #expect(r[7] as? Bool == true, "means() is the mean of per_prompt()")
        #expect(r[8] as? Bool == true, "same model, same seed ⇒ same scores")
        #expect(r[9] as? Double == 0, "identical scores never win")
        #expect(r[10] as? Int == 6 && r[11] as? Int == 7, "geneval limit 1: one prompt per category; six rates + overall")
        let g = try #require(r[12] as? Double), l = try #require(r[13] as? Double)
        #expect(g >= 0 && g <= 1 && [0, 0.5, 1].contains(l))
        #expect(r[14] as? Int == 2 && r[15] as? String == "a red circle|two blue squares")
        #expect(r[16] as? String == dir + "/table1.md" && r[17] as? String == dir + "/tables.json" && r[18] as? String == dir + "/scores/a.csv")
        #expect((r[19] as? String)?.hasPrefix("EvalScores(4 prompts × 6 metrics") == true)
        let json = try JSON.parse(file: dir + "/tables.json")
        #expect(json["table1"]?["hpsv2 / m1"]?["overall"]?.doubleValue != nil)
        #expect(json["table1"]?["hpsv2 / m2"]?["overall"] == nil && json["table1"]?["hpsv2 / m2"]?["clip"] != nil)
        #expect(json["table2"]?["m1 / m2"]?["overall"] == .number(100 * overall))
        let md = try String(contentsOfFile: dir + "/table2.md", encoding: .utf8)
        #expect(md.contains("**Table 2 (tiny)**") && md.contains(String(format: "| m1 | m2 | %.1f |", 100 * overall)))
        let scoresCSV = try String(contentsOfFile: dir + "/scores/a.csv", encoding: .utf8)
        #expect(scoresCSV.hasPrefix("prompt,seed_index,category,clip,aesthetic,alignment,aesthetics,detail,overall,geneval_pass\n"))
        #expect(scoresCSV.split(separator: "\n").count == 5)
        for f in ["table1.md", "table1.csv", "table2.csv", "tables.json", "scores/a.csv"] {
            #expect(lua.run.recordedOutputs.contains(f), "\(f) not recorded")
        }
    }

    @Test func errorsNameTheArgument() throws {
        let model = "local m = semidpo.diffusion.new{config = tiny}\n"
        func message(_ code: String) -> String { evalError(code)?.message ?? "no error" }
        #expect(message("E.run{suite = 'hpsv2'}").contains("option 'model' (a Model) is required"))
        #expect(message(model + "E.run{model = m}").contains("option 'suite' (a suite name or a list of prompts) is required"))
        #expect(message(model + "E.run{model = m, suite = 'coco'}").contains("option 'suite': unknown suite 'coco'"))
        #expect(message(model + "E.run{model = m, suite = {'a red banana'}}").contains("option 'suite': prompt 1 ('a red banana')"))
        #expect(message(model + "E.run{model = m, suite = 'hpsv2', limit = 0}").contains("option 'limit': expected ≥ 1, got 0"))
        #expect(message(model + "E.run{model = m, suite = 'hpsv2', steps = 0}").contains("option 'steps': expected 1…1000, got 0"))
        #expect(message(model + "E.run{model = m, suite = 'hpsv2', guidance = true}").contains("option 'guidance': expected a number or false"))
        #expect(message(model + "E.run{model = m, suite = 'hpsv2', stpes = 2}").contains("stpes"))
        let twoRuns = model + """
            local a = E.run{model = m, suite = 'hpsv2', limit = 2, steps = 1}
            local b = E.run{model = m, suite = 'hpsv2', limit = 3, steps = 1}
            local c = E.run{model = m, suite = 'hpsv2', limit = 2, steps = 1, seed = 1}

            """
        #expect(message(twoRuns + "E.win_rate(a, b)").contains("A scored 2 prompts, B 3"))
        #expect(message(twoRuns + "E.win_rate(a, c)").contains("A was sampled with seed 0, B with seed 1"))
        #expect(message(twoRuns + "E.win_rate(a, a, 'mps')").contains("bad argument #3 to 'win_rate'"))
        #expect(message(twoRuns + "a:per_prompt('mps')").contains("unknown metric 'mps' (known: alignment, aesthetics, detail, overall)"))
        #expect(message("E.win_rate(1, 2)").contains("bad argument #1 to 'win_rate'"))
        #expect(message("E.table{title = 't', columns = {'a', 'b'}, path = 't', rows = {{'x'}}}")
                .contains("option 'rows': row 1 has 1 cells for 2 columns"))
        #expect(message("E.table{title = 't', columns = {'a', 'b'}, path = 't', rows = {{'x', {}}}}")
                .contains("option 'rows': row 1, column 2 ('b'): expected a string, number or false, got table"))
        #expect(message("E.table{title = 't', columns = {'a'}, rows = {}}").contains("option 'path' is required"))
        #expect(message("E.table{title = 't', columns = {'a', 'b'}, path = 't', rows = {{'x', 1}, {'x', 2}}}")
                .contains("row key 'x' repeats (row 2)"))
        #expect(message("E.table{title = 't', columns = {'a'}, path = '../t', rows = {}}").contains("must be a non-empty relative path"))
    }

    @Test func comparisonGridIsOnePNGWithARowPerModelAndPrompt() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lua = try bindingsState(dir)
        let r = try lua.runString(prelude + """
            local m1 = semidpo.diffusion.new{config = tiny, seed = 1}
            local m2 = semidpo.diffusion.new{config = tiny, seed = 2}
            return E.grid{models = {{"A", m1}, {"B", m2}}, prompts = {"a red circle", "two blue squares", "a green square"},
                          seeds = {1, 2}, path = "fig/figure3.png", steps = 1, guidance = false, scale = 1}
            """, name: "@eval.lua")
        let path = try #require(r.first as? String)
        #expect(path == dir + "/fig/figure3.png")
        let png = try #require(FileManager.default.contents(atPath: path))
        #expect(png.prefix(8) == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]))
        // IHDR height: 3 prompts × 2 models = 6 rows of 16-pixel tiles with 2-pixel gaps, plus the frame.
        let height = png[20..<24].reduce(0) { $0 << 8 | Int($1) }
        #expect(height == 2 + 6 * (16 + 2))
        #expect(evalError("E.grid{models = {{'A', 1}}, prompts = {'a red circle'}, path = 'g.png'}")?.message
                .contains("element 1 is not {name, Model}") == true)
    }
}
