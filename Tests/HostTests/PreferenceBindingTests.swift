// semidpo.dpo from Lua: a tiny end-to-end self-training run (clean DPO, confidence, pseudo-labels,
// composite retraining, accuracy per anchor, audit) on a tiny test model, and argument errors.
import Foundation
import Testing
import Core
@testable import Host

/// A tiny conditional ε-predictor (conv 3→4→3 plus a timestep feature) visible to Lua as `Model`.
final class TinyLuaModel: Denoiser, LuaObject {
    static let luaTypeName = "Model"
    let schedule = NoiseSchedule.stableDiffusion
    let conv1: Conv2D, conv2: Conv2D, time: Linear
    init(seed: UInt64) {
        let k = RandomKey(seed: seed)
        conv1 = Conv2D(inputChannels: 3, outputChannels: 4, kernelSize: 3, key: k.child("c1"))
        conv2 = Conv2D(inputChannels: 4, outputChannels: 3, kernelSize: 3, key: k.child("c2"))
        time = Linear(inputFeatures: 1, outputFeatures: 4, key: k.child("t"))
    }
    func predictNoise(_ x: Tensor, timesteps: [Int], tokens: TokenBatch) -> Tensor {
        let b = x.shape[0]
        let temb = time(Tensor(shape: [b, 1], data: timesteps.map { Float($0) / 1000 }))
        return conv2(silu(conv1(x) + temb.reshaped([b, 4, 1, 1])))
    }
    func parameters() -> [(String, Tensor)] {
        prefixed("conv1", conv1.parameters()) + prefixed("conv2", conv2.parameters()) + prefixed("time", time.parameters())
    }
}

/// `semidpo.tiny.model(seed)`, `semidpo.tiny.copy(model)`.
private func tiny_model(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "model") { args in try args.push(TinyLuaModel(seed: UInt64(try args.integer(1)))); return 1 }
}
private func tiny_copy(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "copy") { args in
        let m = try args.object(1, TinyLuaModel.self)
        let c = TinyLuaModel(seed: 0)
        for ((_, p), (_, q)) in zip(c.parameters(), m.parameters()) { p.data = q.data }
        try args.push(c)
        return 1
    }
}
enum TinyModelBindings: LuaBindings {
    static let module: String? = "tiny"
    static let functions: [LuaFunction] = [LuaFunction("model", tiny_model), LuaFunction("copy", tiny_copy)]
}

/// Builds n toy pairs in Lua: winners smooth (0.6 ± small), losers high-contrast; truth scores say
/// the winner is better except for every third pair, where the human label is wrong.
private let toyLua = """
local dpo = semidpo.dpo
local function toy(n, offset)
  local w, l, tok, ids, tw, tl = {}, {}, {}, {}, {}, {}
  for i = 1, n do
    for k = 1, 48 do
      w[#w + 1] = 0.6 + 0.05 * math.sin(i * 7 + k)
      l[#l + 1] = 1.2 * math.sin(i * 13 + k * 3.7)
    end
    tok[#tok + 1] = 1 + (i % 5)
    ids[#ids + 1] = offset + i
    local wrong = (i % 3 == 0)
    tw[#tw + 1] = {0.8, 0.7, wrong and 0.2 or 0.9}
    tl[#tl + 1] = {0.3, 0.4, wrong and 0.9 or 0.1}
  end
  return dpo.pairs{winners = w, losers = l, shape = {3, 4, 4}, tokens = tok, token_length = 1, ids = ids},
         {dimensions = {"alignment", "aesthetics", "overall"}, winner = tw, loser = tl}
end
"""

@Suite(.serialized) struct PreferenceBindingTests {
    @Test func tinySelfTrainingRunThroughTheHost() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("semidpo-host-dpo-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lua = LuaState(run: RunContext(outputDirectory: dir), bindings: Bindings.all + [TinyModelBindings.self])
        try lua.guardGlobals()
        let r = try lua.runString(toyLua + "\n" + """
            local clean = toy(12, 0)
            local test = toy(6, 100)
            local noisy, truth = toy(9, 200)
            local base = semidpo.tiny.model(1)
            local ref = semidpo.tiny.copy(base)
            local model = semidpo.tiny.copy(base)
            local steps_seen = 0
            local s0 = dpo.train{policy = model, reference = ref, pairs = clean, beta = 200, steps = 12, batch_size = 4,
                                 lr = 3e-3, warmup = 2, seed = 3, log = "iter0",
                                 on_progress = function(step, total, m) steps_seen = step; assert(total == 12 and m.loss) end}
            local anchors = {50, 150, 250, 350, 450, 550, 650, 750, 850, 950}
            local batches = 0
            local conf = dpo.confidence{model = model, reference = ref, pairs = noisy, beta = 200, batch_size = 4,
                                        seed = 5, on_progress = function(done, total) batches = batches + 1 end}
            local acc = dpo.confidence{model = model, reference = ref, pairs = test, beta = 200}:accuracy()
            local labels = {}
            for i, row in ipairs(conf:values()) do
              labels[i] = {}
              for j, z in ipairs(row) do labels[i][j] = (z > 0) and 1 or -1 end
            end
            local pseudo = dpo.labels{anchors = conf:anchors(), labels = labels}
            local model1 = semidpo.tiny.copy(model)
            local s1 = dpo.train{policy = model1, reference = model, pairs = clean, unlabeled = noisy, pseudo = pseudo,
                                 unlabeled_weight = 0.5, beta = 200, steps = 6, batch_size = 4, accumulation = 2,
                                 lr = 1e-3, schedule = "cosine", seed = 4, checkpoint = "iter1.safetensors", log = "iter1"}
            local audit = dpo.audit{truth = truth, labels = {pseudo}}
            conf:write("conf", 2)
            local back = dpo.read_confidence(semidpo.path("conf"))
            assert(back:count() == 9 and #back:anchors() == 10, "confidence shards did not round-trip")
            local file = semidpo.write_text("pl.json", '{"201": {"timestep_50": 1, "timestep_150": -1}, "999": {"timestep_50": 1}}')
            local from_file = dpo.labels{file = file, pairs = noisy}
            local row1, row2 = from_file:row(1), from_file:row(2)
            assert(from_file:count() == 9 and row1[1] == 1 and row1[2] == -1 and row2[1] == 0,
                   "pseudo-label file not aligned by id")
            return steps_seen, s0.steps, s1.steps, s1.last.unlabeled_loss ~= nil, batches, #acc, acc[1],
                   audit.markdown, #audit.rows, conf:count(), tostring(conf), pseudo:count()
            """, name: "@selftrain.lua")
        #expect(r[0] as? Int == 12)
        #expect(r[1] as? Int == 12 && r[2] as? Int == 6)
        #expect(r[3] as? Bool == true)
        #expect(r[4] as? Int == 3)                       // 9 pairs in batches of 4
        #expect(r[5] as? Int == 10)
        #expect((r[6] as? Double).map { $0 > 0.5 } == true)   // the trained model prefers the smooth winners
        #expect((r[7] as? String)?.contains("Flipped right") == true)
        #expect(r[8] as? Int == 11)                      // 10 anchors + the pooled row
        #expect(r[9] as? Int == 9 && (r[10] as? String)?.hasPrefix("Confidence(9 pairs") == true && r[11] as? Int == 9)
        for f in ["iter0.csv", "iter0.svg", "iter1.csv", "iter1.svg", "iter1.safetensors", "conf/confidence_rank001.jsonl"] {
            #expect(FileManager.default.fileExists(atPath: "\(dir)/\(f)"), "\(f) missing")
        }
        #expect(lua.run.recordedOutputs.contains("iter1.safetensors"))
    }

    @Test func subsetTakesIdsLikeDatasetPairs() throws {
        let lua = LuaState(bindings: Bindings.all + [TinyModelBindings.self])
        try lua.guardGlobals()
        // toy(5, 10) has ids 11…15; subset{14, 11} keeps those two pairs in that order.
        let r = try lua.runString(toyLua + "\n" + """
            local p = toy(5, 10)
            local s = p:subset({14, 11})
            local ok, err = pcall(p.subset, p, {99})
            local ok2, err2 = pcall(p.truth, p)
            assert(tostring(p):match("^Pairs%(5 pairs"), tostring(p))
            return s:count(), s:ids()[1], s:ids()[2], err, err2
            """, name: "@subset.lua")
        #expect(r[0] as? Int == 2 && r[1] as? Int == 14 && r[2] as? Int == 11)
        #expect((r[3] as? String)?.contains("no pair with id 99 in this set of 5") == true, "\(r[3] ?? "")")
        #expect((r[4] as? String)?.contains("truth needs pairs of a world dataset") == true, "\(r[4] ?? "")")
    }

    @Test func badArgumentsReadLikeLua() throws {
        let lua = LuaState(bindings: Bindings.all + [TinyModelBindings.self])
        try lua.guardGlobals()
        func message(_ code: String) -> String? {
            do { _ = try lua.runString(toyLua + "\n" + code, name: "@bad.lua"); return nil } catch let e as LuaError { return e.message } catch { return "\(error)" }
        }
        let m1 = message("dpo.train{pairs = toy(2, 0)}")
        #expect(m1?.contains("bad argument #1 to 'train'") == true && m1?.contains("policy") == true, "\(m1 ?? "")")
        let m2 = message("dpo.train{policy = 5}")
        #expect(m2?.contains("option 'policy'") == true, "\(m2 ?? "")")
        let m3 = message("local m = semidpo.tiny.model(1); dpo.train{policy = m, reference = semidpo.tiny.copy(m), pairs = toy(2, 0), loss = 'nope'}")
        #expect(m3?.contains("'nope' is not one of sigmoid") == true, "\(m3 ?? "")")
        let m4 = message("local m = semidpo.tiny.model(1); dpo.train{policy = m, reference = m, pairs = toy(2, 0)}")
        #expect(m4?.contains("frozen copy") == true, "\(m4 ?? "")")
        let m5 = message("dpo.labels{anchors = {50}, labels = {{2}}}")
        #expect(m5?.contains("not -1, 0 or 1") == true, "\(m5 ?? "")")
        let m6 = message("dpo.train{policy = semidpo.tiny.model(1), objective = 'sft', stepz = 3}")
        #expect(m6?.contains("stepz") == true, "\(m6 ?? "")")
    }
}
