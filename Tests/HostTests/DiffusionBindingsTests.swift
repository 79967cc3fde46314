// semidpo.diffusion from Lua on a tiny config: create (table and YAML), save/load/clone/freeze,
// sample, grid, per-sample loss, a few pretraining steps, oracle evaluation, and argument errors.
import Foundation
import Testing
import Core
@testable import Host

private let tinyConfig = tinyUNetLua + "local D = semidpo.diffusion\n"

private func diffusionError(_ code: String) -> LuaError? { bindingsError(tinyConfig + code, name: "@model.lua") }

@Suite(.serialized) struct DiffusionBindingsTests {
    @Test func modelLifecycleSamplingAndLoss() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lua = try bindingsState(dir)
        let r = try lua.runString(tinyConfig + """
            local m = D.new{config = tiny, seed = 3}
            local n = m:parameter_count()
            local path = m:save("models/tiny.safetensors", {note = "test", steps = 0})
            local back = D.load(path)
            local prompts = {"a red circle", "two blue squares", ""}
            local imgs, shape = m:sample{prompts = prompts, seed = 9, steps = 3, guidance = 2}
            local again = back:sample{prompts = prompts, seed = 9, steps = 3, guidance = 2}
            local other = m:sample{prompts = prompts, seed = 10, steps = 3, guidance = 2}
            local same, differ, inside = true, false, true
            for i = 1, #imgs do
              if imgs[i] ~= again[i] then same = false end
              if imgs[i] ~= other[i] then differ = true end
              if imgs[i] < -1 or imgs[i] > 1 then inside = false end
            end
            local l1 = m:loss{images = imgs, prompts = prompts, t = 500, noise_seed = 4}
            local l2 = back:loss{images = imgs, prompts = prompts, t = {500, 500, 500}, noise_seed = 4}
            local l3 = m:loss{images = imgs, prompts = prompts, t = 500, noise_seed = 5}
            local c = m:clone():freeze()
            assert(not c:clone():frozen(), "clone() of a frozen model is unfrozen")
            local grid = m:grid{prompts = {"a red circle", "a green ring"}, seeds = {1, 2, 3}, path = "grid.png", steps = 2, scale = 2}
            return n, #imgs, shape[1], shape[2], shape[3], shape[4], same, differ, inside, #l1, l1[1] == l2[1] and l1[3] == l2[3],
                   l1[1] ~= l3[1], c:frozen(), m:frozen(), m:summary(), tostring(c), grid
            """, name: "@model.lua")
        let params = try #require(r[0] as? Int)
        #expect(params > 10_000 && params < 200_000, "\(params)")
        #expect(r[1] as? Int == 3 * 768)
        #expect(r[2] as? Int == 3 && r[3] as? Int == 3 && r[4] as? Int == 16 && r[5] as? Int == 16)
        #expect(r[6] as? Bool == true, "a loaded model samples exactly like the saved one")
        #expect(r[7] as? Bool == true, "another seed gives other images")
        #expect(r[8] as? Bool == true, "samples are clamped to [-1, 1]")
        #expect(r[9] as? Int == 3)
        #expect(r[10] as? Bool == true, "same noise seed and t give the same loss")
        #expect(r[11] as? Bool == true, "another noise seed gives another loss")
        #expect(r[12] as? Bool == true && r[13] as? Bool == false)
        #expect((r[14] as? String)?.contains("M parameters") == true)
        #expect((r[15] as? String)?.contains("frozen") == true)
        #expect(r[16] as? String == dir + "/grid.png")
        let png = try Data(contentsOf: URL(fileURLWithPath: dir + "/grid.png"))
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]))
        #expect(lua.run.recordedOutputs.contains("models/tiny.safetensors") && lua.run.recordedOutputs.contains("grid.png"))
        let file = try SafetensorsFile(path: dir + "/models/tiny.safetensors")
        #expect(file.metadata["note"] == "test" && file.metadata["steps"] == "0")
    }

    @Test func yamlConfigPretrainAndEvaluate() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let yaml = dir + "/tiny.yaml"
        try """
            # a tiny model
            image_size: 16
            channels: [8, 16]
            res_blocks: 1
            attention_resolutions: [8]
            attention_heads: 2
            norm_groups: 4
            time_dimension: 8
            embedding_dimension: 16
            text_dimension: 16
            text_heads: 2
            text_mlp_ratio: 2
            """.write(toFile: yaml, atomically: true, encoding: .utf8)
        let lua = try bindingsState(dir + "/run")
        let r = try lua.runString(tinyConfig + """
            local m = D.new{config = "\(yaml)", seed = 1}
            local steps_logged = 0
            local progressed = 0
            local run = D.pretrain{model = m, steps = 4, batch_size = 4, lr = 1e-3, warmup = 1, ema_decay = 0.9, prompts = 30,
                                   on_progress = function(step, total, m) assert(total == 4 and m.loss > 0); progressed = step end,
                                   seed = 2, checkpoint_every = 2, log = "pt"}
            assert(progressed == 4, "on_progress was not called every step")
            local again = D.new{config = "\(yaml)", seed = 1}
            local resumed = D.pretrain{model = again, steps = 6, batch_size = 4, lr = 1e-3, warmup = 1, ema_decay = 0.9, prompts = 30,
                                       seed = 2, resume = run.checkpoint, checkpoint_dir = "resumed", log = "pt2"}
            local scores = semidpo.eval.run{model = m, suite = {"a red circle", {text = "a blue square"}, "two green rings"},
                                            steps = 2, guidance = 3, seed = 4}
            local ev = scores:oracle_report()
            assert(math.abs(ev.overall - scores:means().overall) < 1e-12, "oracle_report and means agree")
            local rd = D.evaluate_renders{suite = "hpsv2", limit = 12, seed = 1}
            local perfect = D.evaluate_renders{suite = "hpsv2", limit = 12, seed = 1, latents = {alignment = 1, aesthetics = 1, detail = 1}}
            assert(perfect.overall > rd.overall and perfect.colour_correct == 1, "perfect renders score higher")
            return run.steps, run.start_step, run.final_loss, tostring(run.ema), resumed.start_step, resumed.steps,
                   ev.count, ev.overall, ev.colour_correct, ev.chance_colour, rd.count, rd.colour_correct, rd.overall,
                   m:config().channels[2], m:parameter_count() == again:parameter_count()
            """, name: "@pretrain.lua")
        #expect(r[0] as? Int == 4 && r[1] as? Int == 0)
        let loss = try #require(r[2] as? Double)
        #expect(loss.isFinite && loss > 0)
        #expect((r[3] as? String)?.hasPrefix("Model(") == true)
        #expect(r[4] as? Int == 4 && r[5] as? Int == 6, "resumed from the step-4 checkpoint")
        #expect(r[6] as? Int == 3)
        let overall = try #require(r[7] as? Double), colour = try #require(r[8] as? Double)
        #expect(overall >= 0 && overall <= 1 && colour >= 0 && colour <= 1)
        #expect(r[9] as? Double != nil)
        #expect(r[10] as? Int == 12)
        #expect((r[11] as? Double).map { $0 > 0.5 } == true, "world renders mostly show the asked colour")
        #expect((r[12] as? Double).map { $0 > 0.4 && $0 < 0.95 } == true, "renders are of mixed quality")
        #expect(r[13] as? Int == 16 && r[14] as? Bool == true)
        for f in ["pt.csv", "pt.svg", "pretrain/checkpoint.safetensors", "pretrain/model.safetensors",
                  "pretrain/model_ema.safetensors", "resumed/model.safetensors", "pt2.csv"] {
            #expect(FileManager.default.fileExists(atPath: dir + "/run/" + f), "\(f) missing")
            #expect(lua.run.recordedOutputs.contains(f), "\(f) not recorded")
        }
        let csv = try String(contentsOfFile: dir + "/run/pt2.csv", encoding: .utf8)
        #expect(csv.split(separator: "\n").count == 7, "header + 6 steps (4 restored from the checkpoint)")
    }

    /// `winograd = false` samples through im2col convolutions; the default Winograd path gives the
    /// same images up to rounding.
    @Test func winogradOptionChangesOnlyTheRounding() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lua = try bindingsState(dir)
        let r = try lua.runString(tinyConfig + """
            local m = D.new{config = tiny, seed = 3}
            local prompts = {"a red circle", "two blue squares", "", "a green ring"}
            local fast = m:sample{prompts = prompts, seed = 9, steps = 4, guidance = 3}
            local exact = m:sample{prompts = prompts, seed = 9, steps = 4, guidance = 3, winograd = false}
            local again = m:sample{prompts = prompts, seed = 9, steps = 4, guidance = 3, winograd = false}
            local maxdiff, same = 0, true
            for i = 1, #fast do
              maxdiff = math.max(maxdiff, math.abs(fast[i] - exact[i]))
              if exact[i] ~= again[i] then same = false end
            end
            return maxdiff, same
            """, name: "@winograd.lua")
        let maxdiff = try #require(r[0] as? Double)
        #expect(maxdiff > 0 && maxdiff < 1e-3, "max |winograd − im2col| = \(maxdiff)")
        #expect(r[1] as? Bool == true)
        let e = diffusionError("local m = D.new{config = tiny}\nm:sample{prompts = {'a red circle'}, winograd = 'no'}")
        #expect(e?.message.contains("option 'winograd'") == true, "\(e?.message ?? "no error")")
    }

    @Test func errorsNameTheArgument() throws {
        let e1 = diffusionError("D.new{config = {chanels = {8, 16}}}")
        #expect(e1?.message.contains("unknown key 'chanels'") == true, "\(e1?.message ?? "no error")")
        #expect(e1?.line == 5)
        let e2 = diffusionError("local m = D.new{config = tiny}\nm:sample{prompts = {'a red circle', 'a purple elephant'}, steps = 1}")
        #expect(e2?.message.contains("unknown word 'elephant'") == true, "\(e2?.message ?? "no error")")
        #expect(e2?.line == 6)
        let e3 = diffusionError("D.pretrain{model = D.new{config = tiny}}")
        #expect(e3?.message.contains("bad argument #1 to 'pretrain' (option 'steps' is required)") == true, "\(e3?.message ?? "no error")")
        let e4 = diffusionError("D.pretrain{model = 3, steps = 2}")
        #expect(e4?.message.contains("option 'model': expected Model, got number") == true, "\(e4?.message ?? "no error")")
        let e5 = diffusionError("D.load('no/such/model.safetensors')")
        #expect(e5?.message.contains("bad argument #1 to 'load' (no such file:") == true, "\(e5?.message ?? "no error")")
        let e6 = diffusionError("local m = D.new{config = tiny}\nm:sample{prompts = {'a red circle'}, method = 'euler'}")
        #expect(e6?.message.contains("bad argument #1 to 'sample' (option 'method': 'euler' is not ddim or ddpm)") == true, "\(e6?.message ?? "no error")")
        let e7 = diffusionError("local m = D.new{config = tiny}\nm:loss{images = {0, 0}, prompts = {'a red circle'}, t = 5}")
        #expect(e7?.message.contains("1 prompts need 768 values") == true, "\(e7?.message ?? "no error")")
        let e8 = diffusionError("local m = D.new{config = tiny}\nlocal img = {}\nfor i = 1, 768 do img[i] = 0 end\nm:loss{images = img, prompts = {'a red circle'}, t = 1000}")
        #expect(e8?.message.contains("option 't': 1000 is outside 0…999") == true, "\(e8?.message ?? "no error")")
        let e9 = diffusionError("D.evaluate_renders{suite = 'partii'}")
        #expect(e9?.message.contains("unknown suite 'partii'") == true, "\(e9?.message ?? "no error")")
        let eOld = diffusionError("D.evaluate{model = D.new{config = tiny}, prompts = 'parti'}")
        #expect(eOld?.message.contains("semidpo.diffusion.evaluate was merged into semidpo.eval.run{model =, suite =, limit =}") == true, "\(eOld?.message ?? "no error")")
        let eCount = diffusionError("D.evaluate_renders{suite = 'parti', count = 2}")
        #expect(eCount?.message.contains("option 'count' was renamed to 'limit'") == true, "\(eCount?.message ?? "no error")")
        let e10 = diffusionError("D.new{config = tiny, sed = 1}")
        #expect(e10?.message.contains("unknown option 'sed'") == true, "\(e10?.message ?? "no error")")
        let eLatent1 = diffusionError("D.evaluate_renders{suite = 'hpsv2', limit = 2, latents = {alignmnt = 1}}")
        #expect(eLatent1?.message.contains("option 'latents': unknown dimension 'alignmnt'") == true, "\(eLatent1?.message ?? "no error")")
        let eLatent2 = diffusionError("D.evaluate_renders{suite = 'hpsv2', limit = 2, latents = {detail = {0.5, 1.5}}}")
        #expect(eLatent2?.message.contains("option 'latents': latent ranges: 'detail' must lie in [0, 1]") == true, "\(eLatent2?.message ?? "no error")")
        let e11 = diffusionError("local m = D.new{config = tiny}\nm:release()\nm:summary()")
        #expect(e11?.message.contains("cannot use Model after it has been released") == true, "\(e11?.message ?? "no error")")
        let e12 = diffusionError("D.pretrain{model = D.new{config = tiny}, steps = 1, prompts = {'a red circle', 'a red'}}")
        #expect(e12?.message.contains("option 'prompts'") == true && e12?.message.contains("'a red'") == true, "\(e12?.message ?? "no error")")
    }
}
