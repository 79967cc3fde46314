// semidpo.dpo.train's options from Lua (issue #20): a loss written in Lua, reference refresh, label
// swap, dropped pairs, EMA, validation rows in the log; the shared optimizer names and the errors for
// old names (issue #15).
import Foundation
import Testing
import Core
@testable import Host

/// `toy(n, offset)`: n pairs of 3×4×4 images (smooth winners, high-contrast losers), ids offset+1….
private let toyPairsLua = """
local dpo = semidpo.dpo
local function toy(n, offset)
  local w, l, tok, ids = {}, {}, {}, {}
  for i = 1, n do
    for k = 1, 48 do
      w[#w + 1] = 0.6 + 0.05 * math.sin(i * 7 + k)
      l[#l + 1] = 1.2 * math.sin(i * 13 + k * 3.7)
    end
    tok[#tok + 1] = 1 + (i % 5)
    ids[#ids + 1] = offset + i
  end
  return dpo.pairs{winners = w, losers = l, shape = {3, 4, 4}, tokens = tok, token_length = 1, ids = ids}
end
local base = semidpo.tiny.model(1)
local function run(extra)
  local model = semidpo.tiny.copy(base)
  local losses = {}
  local opts = {policy = model, reference = semidpo.tiny.copy(base), pairs = toy(10, 0), beta = 200, steps = 6,
                batch_size = 4, lr = 3e-3, seed = 3,
                on_progress = function(step, total, m) losses[step] = m.loss end}
  for k, v in pairs(extra or {}) do opts[k] = v end
  local summary = dpo.train(opts)
  return summary, losses, model
end

"""

private func luaState(_ dir: String) throws -> LuaState {
    let lua = LuaState(run: RunContext(outputDirectory: dir), bindings: Bindings.all + [TinyModelBindings.self])
    try lua.guardGlobals()
    return lua
}

private func errorMessage(_ code: String, name: String = "@bad.lua") -> String? {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("semidpo-trainopt-err-\(getpid())").path
    defer { try? FileManager.default.removeItem(atPath: dir) }
    do { _ = try luaState(dir).runString(toyPairsLua + code, name: name); return nil }
    catch let e as LuaError { return e.message } catch { return "\(error)" }
}

/// Lines of `toyPairsLua` (so a test can name the line of its own code).
private let preludeLines = toyPairsLua.split(separator: "\n", omittingEmptySubsequences: false).count - 1

@Suite(.serialized) struct TrainerOptionsBindingTests {
    /// The sigmoid loss written in Lua (the same branches as Core's σ and softplus; Lua has no log1p,
    /// so values agree to rounding and slopes exactly) reproduces the built-in run: every step's loss
    /// within 1e-12, the same weights.
    @Test func luaSigmoidLossReproducesTheBuiltIn() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("semidpo-trainopt-lua-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try luaState(dir).runString(toyPairsLua + """
            local function sigmoid(z) if z >= 0 then return 1 / (1 + math.exp(-z)) else return math.exp(z) / (1 + math.exp(z)) end end
            local calls = 0
            local lua_loss = function(z, label, weight)
              calls = calls + 1
              assert(label == 1 and weight == 1)
              return -math.log(sigmoid(z)), sigmoid(z) - 1
            end
            local s1, l1, m1 = run()
            local s2, l2, m2 = run{loss = lua_loss}
            local worst = 0
            for i = 1, 6 do worst = math.max(worst, math.abs(l1[i] - l2[i])) end
            return worst, calls, s1.last.grad_norm == s2.last.grad_norm, #l2
            """, name: "@lualoss.lua")
        #expect((r[0] as? Double).map { $0 < 1e-12 } == true, "\(r[0] ?? "")")
        #expect(r[1] as? Int == 6 * 4)                 // one call per labelled pair of every step
        #expect(r[2] as? Bool == true && r[3] as? Int == 6)
    }

    /// A label-smoothed DPO in Lua (docs/recipes.md's example) trains, and differs from sigmoid after step 1.
    @Test func labelSmoothedLossTrains() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("semidpo-trainopt-ls-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try luaState(dir).runString(toyPairsLua + """
            local eps = 0.1
            local function log_sigmoid(z)           -- log σ(z) without overflow at large |z|
              if z >= 0 then return -math.log(1 + math.exp(-z)) else return z - math.log(1 + math.exp(z)) end
            end
            local function smoothed(z, label, weight)
              local s = math.exp(log_sigmoid(z))
              return -(1 - eps) * log_sigmoid(z) - eps * log_sigmoid(-z), (1 - eps) * (s - 1) + eps * s
            end
            local s1, l1 = run()
            local s2, l2 = run{loss = smoothed, log = "smoothed"}
            local s3, l3 = run{loss = smoothed, beta = 1e6, lr = 3e-2}   -- |z| in the thousands: still finite
            return l1[6] ~= l2[6], l2[6] < l2[1], l3[6] == l3[6] and l3[6] < math.huge   -- step 1 is log 2 for both (z = 0)
            """, name: "@smooth.lua")
        #expect(r[0] as? Bool == true && r[1] as? Bool == true && r[2] as? Bool == true)
        #expect(FileManager.default.fileExists(atPath: "\(dir)/smoothed.csv"))
    }

    /// An error inside the loss function stops the run at the function's own line; a function that
    /// returns the wrong things is named by where it is defined.
    @Test func lossFunctionErrorsNameTheirLine() throws {
        let line = preludeLines + 2
        let m1 = errorMessage("""
            local f = function(z, label, weight)
              error("my loss failed")
            end
            run{loss = f}
            """, name: "@myloss.lua")
        #expect(m1?.contains("myloss.lua:\(line): my loss failed") == true, "\(m1 ?? "")")
        let m2 = errorMessage("""
            local f = function(z, label, weight)
              return z.x
            end
            run{loss = f}
            """, name: "@myloss.lua")
        #expect(m2?.contains("myloss.lua:\(line):") == true && m2?.contains("index") == true, "\(m2 ?? "")")
        let m3 = errorMessage("""
            local f = function(z, label, weight)
              return "one"
            end
            run{loss = f}
            """, name: "@myloss.lua")
        #expect(m3?.contains("defined at myloss.lua:\(line - 1) must return two numbers") == true, "\(m3 ?? "")")
    }

    /// ref_update_every, label_swap, drop, ema_decay, validation and the AdamW settings through Lua.
    @Test func trainerOptionsFromLua() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("semidpo-trainopt-opts-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try luaState(dir).runString(toyPairsLua + """
            local epoch = run{ref_update_every = "epoch"}
            local swapped = run{label_swap = 1}
            local dropped = run{drop = {2, 5, 9}}
            local ema = run{ema_decay = 0.9, checkpoint = "ema.safetensors"}
            local adam = run{adam_beta1 = 0.8, adam_beta2 = 0.99, adam_epsilon = 1e-6, weight_decay = 0.01, grad_clip = 0}
            local seen = {}
            local v = run{log = "val", validation = {every = 3, run = function(step) seen[#seen + 1] = step; return {score = step / 10} end}}
            return epoch.ref_update_every, swapped.swapped_labels, dropped.steps, adam.last.loss ~= nil,
                   #seen, v.validation[2].step, v.validation[2].score
            """, name: "@opts.lua")
        #expect(r[0] as? Int == 2)                     // 10 pairs / batch 4 → every 2 steps
        #expect(r[1] as? Int == 10 && r[2] as? Int == 6 && r[3] as? Bool == true)
        #expect(r[4] as? Int == 2 && r[5] as? Int == 6 && r[6] as? Double == 0.6)
        let csv = try String(contentsOfFile: "\(dir)/val.csv", encoding: .utf8)
        #expect(csv.hasPrefix(TrainingStepMetrics.csvColumns.joined(separator: ",") + ",val_score\n"))
        #expect(csv.contains(",0.3\n"))
        #expect(try String(contentsOfFile: "\(dir)/val.svg", encoding: .utf8).contains("validation score"))
        let (tensors, _) = try Safetensors.read("\(dir)/ema.safetensors")
        #expect(tensors.contains { $0.name.hasPrefix("ema.") })
    }

    /// Old names fail naming the new one, in all three trainers; bad values name the option.
    @Test func oldNamesAndBadValues() throws {
        let m1 = errorMessage("run{max_grad_norm = 1}")
        #expect(m1?.contains("option 'max_grad_norm' was renamed to 'grad_clip'") == true, "\(m1 ?? "")")
        let m2 = errorMessage("run{on_step = function() end}")
        #expect(m2?.contains("option 'on_step' was renamed to 'on_progress'") == true, "\(m2 ?? "")")
        let m3 = errorMessage("semidpo.diffusion.pretrain{lr_decay = 'cosine'}")
        #expect(m3?.contains("option 'lr_decay' was renamed to 'schedule'") == true, "\(m3 ?? "")")
        let m4 = errorMessage("semidpo.diffusion.pretrain{ema = 0.9}")
        #expect(m4?.contains("option 'ema' was renamed to 'ema_decay'") == true, "\(m4 ?? "")")
        let m5 = errorMessage("run{adam_beta2 = 1}")
        #expect(m5?.contains("bad argument #1 to 'train'") == true && m5?.contains("'adam_beta2' must be in [0, 1)") == true, "\(m5 ?? "")")
        let m6 = errorMessage("run{schedule = 'cosine', warmup = 6}")
        #expect(m6?.contains("cosine schedule needs steps > warmup") == true, "\(m6 ?? "")")
        let m7 = errorMessage("run{ref_update_every = 'sometimes'}")
        #expect(m7?.contains("option 'ref_update_every'") == true, "\(m7 ?? "")")
        let m8 = errorMessage("run{drop = {99}}")
        #expect(m8?.contains("no pair with id 99") == true, "\(m8 ?? "")")
        let m9 = errorMessage("run{label_swap = 2}")
        #expect(m9?.contains("label_swap must be a probability") == true, "\(m9 ?? "")")
        let m10 = errorMessage("run{validation = {every = 0, run = print}}")
        #expect(m10?.contains("option 'validation'") == true, "\(m10 ?? "")")
        let m11 = errorMessage("run{loss = 'gce', gce_q = 2}")
        #expect(m11?.contains("gce_q must be in [0, 1]") == true, "\(m11 ?? "")")
    }
}

/// `robust_scores` (and `reward.train`'s shared optimizer names): a committee's Scores of a world dataset give each pair the share of members that
/// disagree with the human label; a Lua loss sees exactly those weights (each pair's own, recomputed
/// in Lua from `scores:pair(id)`), and a pair id without scores is an error.
@Suite(.serialized) struct RobustScoresBindingTests {
    @Test func committeeDisagreementReachesTheLoss() throws {
        let (lua, dir) = try tabularState()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try lua.runString(tinyUNetLua + """
        local semidpo = require "semidpo"
        local ds = semidpo.world.dataset{ dir = "\(dir)/data", pairs = 12, prompts = 4, seed = 3, image_size = 16 }
        for i, name in ipairs{ "a", "b" } do
          local m = semidpo.reward.new{ name = name, uses_prompt = (i == 1), channels = {4, 4, 4}, groups = 2, embed_dimension = 4, seed = i }
          semidpo.reward.train(m, ds, { rater = "human", steps = 2, batch_size = 4, warmup = 1, seed = i })
          m:save("\(dir)/models/" .. name .. ".safetensors")
        end
        local rm = semidpo.reward.new{ name = "c", channels = {4, 4, 4}, groups = 2, embed_dimension = 4, seed = 3 }
        local _, renamed = pcall(semidpo.reward.train, rm, ds, { rater = "human", learning_rate = 1e-3 })
        local _, clip = pcall(semidpo.reward.train, rm, ds, { rater = "human", steps = 2, warmup = 1, grad_clip = -1 })
        local _, ema = pcall(semidpo.reward.train, rm, ds, { rater = "human", steps = 2, warmup = 1, ema_decay = 0.5 })
        local c = semidpo.committee.new{ members = { "a", "b" }, models = "\(dir)/models" }
        local scores = c:score(ds)
        local pairs_ = ds:pairs()
        local expected = {}
        for _, id in ipairs(pairs_:ids()) do
          local p = scores:pair(id)
          local agree, n = 0, 0
          for _, s in pairs(p.scores) do
            local w, l = s[p.winner + 1], s[2 - p.winner]
            n = n + 1
            if w > l then agree = agree + 1 end
          end
          expected[1 - agree / n] = true
        end
        local seen, bad = 0, 0
        local function sigmoid(z) return 1 / (1 + math.exp(-z)) end
        local model = semidpo.diffusion.new{config = tiny, seed = 1}
        local ref = semidpo.diffusion.new{config = tiny, seed = 1}
        -- With in-training validation as docs/recipes.md shows it: the oracle's score of fixed prompts.
        local ref_before = ref:loss{pairs = pairs_, t = 500}
        local summary = semidpo.dpo.train{policy = model, reference = ref, pairs = pairs_, robust_scores = scores, steps = 2, batch_size = 4,
                          log = "robust", ref_update_every = 1, lr = 1e-3,
                          validation = {every = 1, run = function(step)
                            local e = semidpo.eval.run{model = model, suite = {"a red circle"}, steps = 2}:means()
                            return {overall = e.overall}
                          end},
                          beta = 100, loss = function(z, label, w)
                            seen = seen + 1
                            if not expected[w] then bad = bad + 1 end
                            return -math.log(sigmoid(z)), sigmoid(z) - 1
                          end}
        -- The refresh worked on a copy: the recipe's reference Model is unchanged.
        local ref_after = ref:loss{pairs = pairs_, t = 500}
        for i = 1, #ref_before do assert(ref_before[i] == ref_after[i], "the reference Model was changed") end
        assert(summary.ref_update_every == 1)
        local zeros = {}
        for k = 1, 3 * 16 * 16 do zeros[k] = 0 end
        local stranger = semidpo.dpo.pairs{winners = zeros, losers = zeros, shape = {3, 16, 16}, ids = {1000}}
        local ok, err = pcall(semidpo.dpo.train, {policy = model, reference = ref, pairs = stranger, robust_scores = scores,
                                                  loss = "gce", steps = 1, batch_size = 2})
        local ok2, err2 = pcall(semidpo.dpo.train, {policy = model, reference = ref, pairs = stranger, steps = 1, batch_size = 1})
        return seen, bad, err, err2, #summary.validation, summary.validation[2].overall, renamed, clip, ema
        """, name: "@robust.lua")
        #expect(r[0] as? Int == 8 && r[1] as? Int == 0, "\(r)")
        let err = r[2] as? String
        #expect(err?.contains("option 'robust_scores': no scores for pair id") == true, "\(err ?? "")")
        // Pairs whose prompts were not tokenized for this model fail as an error, not a crash.
        let err2 = r[3] as? String
        #expect(err2?.contains("tokens per row, the model reads") == true, "\(err2 ?? "")")
        #expect(r[4] as? Int == 2 && (r[5] as? Double).map { $0 >= 0 && $0 <= 1 } == true, "\(r)")
        // reward.train shares the optimizer names and their errors.
        #expect((r[6] as? String)?.contains("option 'learning_rate' was renamed to 'lr'") == true, "\(r[6] ?? "")")
        #expect((r[7] as? String)?.contains("'grad_clip' must be a finite number ≥ 0") == true, "\(r[7] ?? "")")
        #expect((r[8] as? String)?.contains("'ema_decay' is not supported") == true, "\(r[8] ?? "")")
        #expect(try String(contentsOfFile: "\(dir)/robust.csv", encoding: .utf8).contains("val_overall"))
    }
}
