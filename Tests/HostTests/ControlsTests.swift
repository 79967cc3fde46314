// recipes/ablations/semi_dpo_controls.lua and its library (recipes/lib/semidpo/controls.lua): the label
// construction of the relabelled arms on hand-worked cases, and the recipe at tiny settings (two seeds).
import Foundation
import Testing
import Core
@testable import Host

/// Lua that makes `require "semidpo.controls"` find the shipped recipe library.
private let requireControls = """
package.path = "\(recipePath("lib"))/?.lua;" .. package.path
local C = require "semidpo.controls"

"""

/// splitmix64's output function, written out in Swift: the independent check of `C.mix`.
private func mix(_ x: UInt64) -> UInt64 {
    var z = x &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// A5's sign of (seed, round, id, anchor), as documented in controls.lua (top bit 0 → +1).
private func randomSign(_ seed: Int, _ round: Int, _ id: Int, _ anchor: Int) -> Int {
    let h = mix(mix(mix(mix(UInt64(bitPattern: Int64(seed))) ^ UInt64(round)) ^ UInt64(id)) ^ UInt64(anchor))
    return h >> 63 == 0 ? 1 : -1
}

@Suite(.serialized) struct ControlsTests {
    /// Three pairs × three anchors, Semi-DPO's labels with a mask (non-zero entries), their ids and the true
    /// overall signs; each kind's rows worked out by hand: zeros stay, selected entries become +1 (human),
    /// the row's true sign (truth; a tie → 0), Semi-DPO's own label (pseudo) or the hash's sign (random).
    @Test func relabelRowsOnAHandCase() throws {
        let lua = try bindingsState(tempDir())
        let code = requireControls + """
            local rows = { { 1, 0, -1 }, { 0, 0, 0 }, { -1, 1, 0 } }
            local o = { rows = rows, anchors = { 50, 150, 250 }, ids = { 7, 3, 12 }, truth = { -1, 1, 0 }, seed = 5, round = 1 }
            local function flat(kind)
              o.kind = kind
              local out = {}
              for _, r in ipairs(C.relabel_rows(o)) do for _, l in ipairs(r) do out[#out + 1] = l end end
              return out
            end
            local plus = 0
            for id = 1, 2000 do if C.random_sign(0, 1, id, 50) == 1 then plus = plus + 1 end end
            return flat("human"), flat("truth"), flat("pseudo"), flat("random"), string.format("%016x", C.mix(0)), plus
            """
        let r = try lua.runString(code, name: "@controls.lua")
        #expect(r[0] as? [Int] == [1, 0, 1, 0, 0, 0, 1, 1, 0])
        #expect(r[1] as? [Int] == [-1, 0, -1, 0, 0, 0, 0, 0, 0])
        #expect(r[2] as? [Int] == [1, 0, -1, 0, 0, 0, -1, 1, 0])
        let expected = [randomSign(5, 1, 7, 50), 0, randomSign(5, 1, 7, 250), 0, 0, 0,
                        randomSign(5, 1, 12, 50), randomSign(5, 1, 12, 150), 0]
        #expect(r[3] as? [Int] == expected)
        // splitmix64 seeded with 0: first output 0xE220A8397B1DCDAF (Vigna's reference implementation).
        #expect(r[4] as? String == "e220a8397b1dcdaf")
        #expect(String(mix(0), radix: 16) == "e220a8397b1dcdaf")
        // ±1 with odds ½: 2,000 draws, 1,000 ± 3.3 sd.
        let plus = try #require(r[5] as? Int)
        #expect(plus > 925 && plus < 1075, "\(plus) of 2000 signs are +1")
    }

    @Test func relabelRejectsBadInput() {
        let e = bindingsError(requireControls + "C.relabel_rows{ kind = \"truth\", rows = { { 1 } } }", name: "@controls.lua")
        #expect(e?.message.contains("kind \"truth\" needs truth") == true, "\(String(describing: e?.message))")
        let k = bindingsError(requireControls + "C.relabel_rows{ kind = \"flip\", rows = {} }", name: "@controls.lua")
        #expect(k?.message.contains("got flip") == true, "\(String(describing: k?.message))")
    }

    /// A mistyped setting or an unknown arm stops the recipe before any work, naming it.
    @Test func badSettingsAreNamed() {
        for (settings, message) in [(["stpes=1"], "unknown setting 'stpes' (did you mean 'steps'?)"),
                                    (["arms=A1,A9"], "setting 'arms': unknown arm 'A9'"),
                                    (["seeds=0,0"], "setting 'seeds': seed 0 is listed twice"),
                                    (["suites=geneval"], "setting 'suites': Table 1's suites are pickapic, hpsv2 and parti, got 'geneval'")] {
            var errs: [String] = []
            let status = RecipeRunner.run(.init(recipe: recipePath("ablations/semi_dpo_controls.lua"), settings: settings, out: tempDir()),
                                          errors: { errs.append($0) })
            #expect(status == 1 && errs.joined().contains(message), "\(settings): \(errs)")
        }
    }

    /// On a tiny world dataset: A4's labels are the sign of the true overall score of the human winner minus
    /// the loser, read here through `ds:truth(id)` and `ds:label(id)` (image 0 or 1 preferred) — the other
    /// route to the truth — and the Labels keep Semi-DPO's mask.
    @Test func truthLabelsFollowTheWorld() throws {
        let dir = tempDir()
        let lua = try bindingsState(dir)
        let code = requireControls + """
            local ds = semidpo.world.dataset{ dir = "\(dir)/data", pairs = 12, seed = 3 }
            local set = ds:pairs()
            local ids = set:ids()
            local rows, expected = {}, {}
            for i, id in ipairs(ids) do
              rows[i] = { (i % 3 == 0) and 0 or 1, (i % 2 == 0) and -1 or 0 }
              local t, w = ds:truth(id), ds:label(id) == 1 and "image0" or "image1"
              local l = w == "image0" and "image1" or "image0"
              local d = t[w].overall - t[l].overall
              local s = d > 0 and 1 or (d < 0 and -1 or 0)
              expected[i] = { rows[i][1] ~= 0 and s or 0, rows[i][2] ~= 0 and s or 0 }
            end
            local pseudo = semidpo.dpo.labels{ anchors = { 50, 950 }, labels = rows, ids = ids, pairs = set }
            local got = C.relabel("truth", pseudo, set, 0, 1):rows()
            local bad = 0
            for i = 1, #ids do for j = 1, 2 do if got[i][j] ~= expected[i][j] then bad = bad + 1 end end end
            local nonzero = 0
            for i = 1, #ids do for j = 1, 2 do if got[i][j] ~= 0 then nonzero = nonzero + 1 end end end
            return #got, bad, nonzero
            """
        let r = try lua.runString(code, name: "@controls.lua")
        #expect(r[0] as? Int == 12)
        #expect(r[1] as? Int == 0, "rows differing from the world's truth")
        #expect((r[2] as? Int ?? 0) > 0, "the case must select something")
    }

    /// The recipe at tiny settings with two seeds: every output exists and parses, the audit shows A3's
    /// selected labels are all the human label and A4's all agree with the true overall; then Semi-DPO's
    /// labels pushed through the control machinery ("pseudo") retrain round 1 exactly as semi_iter1 did.
    @Test func recipeAtTinySettings() throws {
        let w = TinyWorld.shared
        let cache = "\(w.root)/cache-controls"
        let shared = ["base=\(w.base)", "data_root=\(w.root)/data-controls", "cache=\(cache)", "pairs=40", "test_fraction=0.1",
                      "committee=clip,aesthetic", "steps=2", "steps0=1", "warmup=0", "batch_size=2", "iterations=1",
                      "suites=pickapic,hpsv2", "suite_size=8", "eval_prompts=3", "eval_steps=1"]
        let out = try runShipped("ablations/semi_dpo_controls.lua", shared + ["seeds=0,1", "resamples=50", "permutation_resamples=200"])
        for f in ["controls.md", "controls.csv", "controls_scores.md", "controls_scores.csv", "controls_audit.md",
                  "controls_audit.csv", "controls_gain.md", "controls_report.md", "tables.json"] { parses(out + "/" + f) }
        let tables = try JSON.parse(file: out + "/tables.json")
        let audit = try #require(tables["controls_audit"])
        #expect(audit["A3 Semi-DPO mask, human labels / labels on selected noisy pairs"]?["= human label"] == .number(100))
        #expect(audit["A4 Semi-DPO mask, true overall labels / labels on selected noisy pairs"]?["overall"] == .number(100))
        #expect(audit["A1 iterative DPO, all pairs, human labels / all training labels"]?["= human label"] == .number(100))
        let controls = try #require(tables["controls"])
        for arm in ["A1 iterative DPO, all pairs, human labels", "A5 Semi-DPO mask, random labels", "A8 Diffusion-KTO, fixed reference, same total steps"] {
            #expect(controls["all suites / \(arm)"]?["Δ overall vs A6"] != nil, "\(arm)")
        }
        let gain = try String(contentsOfFile: out + "/controls_gain.md", encoding: .utf8)
        #expect(gain.contains("A3 Semi-DPO mask, human labels vs A6: Δ = ") && gain.contains("A1 − A7"), "\(gain)")

        // Nothing computed twice: paper.lua's Table 1 (seed 0, its baselines at steps0 + iterations × steps) finds
        // every stage it needs — Semi-DPO, Diffusion-DPO/KTO and the four models' evaluations — in the controls' cache.
        let stages = { try FileManager.default.subpathsOfDirectory(atPath: cache).filter { $0.hasSuffix("stage.yaml") }.sorted() }
        let before = try stages()
        _ = try runShipped("tables/table1.lua", shared + ["baseline_steps=3"])
        #expect(try stages() == before, "tables/table1.lua computed stages the controls had already run")

        // "pseudo" (Semi-DPO's own signs) through relabelled_round reproduces semi_iter1's training log.
        let recipe = tempDir() + "/pseudo.lua"
        try (requireControls + """
            local c = { pairs = 40, data_root = "\(w.root)/data-controls", test_fraction = 0.1, committee = { "clip", "aesthetic" },
                        base = "\(w.base)", beta = 2500, lr = 2e-5, batch_size = 2, warmup = 0, steps0 = 1, steps = 2,
                        iterations = 1, percentile = 80.0, guard = { floor = 0.70, raise_to = 90.0 }, unlabeled_weight = 1.0, seed = 1 }
            local semi = C.semi(c)
            assert(semi[2].cached, "the recipe's semi_iter1 (seed 1) was not found under the same key")
            local rounds = C.arm(c, "pseudo", semi)
            local function read(p) local f = assert(io.open(p)); local s = f:read("a"); f:close(); return s end
            local a, b = read(rounds[2].dir .. "/train.csv"), read(semi[2].dir .. "/train.csv")
            assert(a == b, "round 1 with Semi-DPO's own labels differs from semi_iter1:\\n" .. a .. "\\n" .. b)
            local human = C.arm(c, "A3", semi)
            assert(human[2].cached, "A3's round 1 was not found under the recipe's key")
            semidpo.write_text("ok.txt", "ok")
            """).write(toFile: recipe, atomically: true, encoding: .utf8)
        let check = tempDir()
        var errs: [String] = []
        let status = RecipeRunner.run(.init(recipe: recipe, settings: ["cache=\(cache)"], out: check, threads: 2), errors: { errs.append($0) })
        #expect(status == 0, "\(errs.joined(separator: "\n"))")
        #expect(FileManager.default.fileExists(atPath: check + "/ok.txt"))
    }
}
