// Every shipped recipe runs at tiny settings (a tiny UNet as the base model, a few pairs, one or two
// steps, two prompts) and its outputs exist and parse. Datasets, stage caches and reward checkpoints go
// to a temporary directory; the shipped reward committee (models/rewards) scores the pairs.
import Foundation
import Testing
import Core
@testable import Host

/// A temporary root with a tiny base model (`base.safetensors`, 16×16, channels 8/16), made once.
final class TinyWorld: @unchecked Sendable {
    static let shared = TinyWorld()
    let root: String
    let base: String
    let config: String
    private init() {
        root = tempDir()
        base = root + "/base.safetensors"
        config = root + "/tiny.yaml"
        let lua = LuaState(run: RunContext(outputDirectory: root))
        _ = try? lua.runString(tinyUNetLua + """
            semidpo.diffusion.new{config = tiny, seed = 1}:save("\(base)")
            """, name: "=tiny")
        try? """
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
            """.write(toFile: config, atomically: true, encoding: .utf8)
    }
}

/// Runs a shipped recipe with `settings`; returns the run directory after checking the exit status.
func runShipped(_ name: String, _ settings: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
    let out = tempDir()
    var errs: [String] = []
    let status = RecipeRunner.run(.init(recipe: recipePath(name), settings: settings, out: out, threads: 2), errors: { errs.append($0) })
    #expect(status == 0, "\(name): \(errs.joined(separator: "\n"))", sourceLocation: sourceLocation)
    let manifest = try YAML.load(path: out + "/manifest.yaml")
    #expect(manifest["status"]?["result"] == .string("ok"), sourceLocation: sourceLocation)
    return out
}

/// Checks that `path` exists and parses by its extension (YAML, JSON, CSV with a header and a row,
/// Markdown with text, PNG signature, safetensors header).
func parses(_ path: String, sourceLocation: SourceLocation = #_sourceLocation) {
    guard let data = FileManager.default.contents(atPath: path), !data.isEmpty else {
        Issue.record("missing or empty: \(path)", sourceLocation: sourceLocation)
        return
    }
    let text = String(decoding: data, as: UTF8.self)
    switch (path as NSString).pathExtension {
    case "yaml": #expect((try? YAML.load(path: path)) != nil, "\(path) is not YAML", sourceLocation: sourceLocation)
    case "json": #expect((try? JSON.parse(file: path)) != nil, "\(path) is not JSON", sourceLocation: sourceLocation)
    case "csv":
        let lines = text.split(separator: "\n")
        #expect(lines.count >= 2 && lines.allSatisfy { $0.split(separator: ",", omittingEmptySubsequences: false).count == lines[0].split(separator: ",", omittingEmptySubsequences: false).count || $0.contains("\"") },
                "\(path) is not a CSV table", sourceLocation: sourceLocation)
    case "md": #expect(text.contains("|") || text.contains("#"), "\(path) has no table or heading", sourceLocation: sourceLocation)
    case "png": #expect(Array(data.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], "\(path) is not a PNG", sourceLocation: sourceLocation)
    case "safetensors": #expect((try? TensorIO.load(path)) != nil, "\(path) is not safetensors", sourceLocation: sourceLocation)
    default: break
    }
}

@Suite(.serialized) struct RecipeTests {
    fileprivate let w = TinyWorld.shared

    @Test func quickstart() throws {
        let out = try runShipped("quickstart.lua", ["base=\(w.base)", "data_root=\(w.root)/data", "cache=\(w.root)/cache-qs", "pairs=30",
                                                   "steps=1", "warmup=0", "batch_size=2", "iterations=1", "eval_prompts=2", "eval_steps=1",
                                                   "committee=clip,aesthetic"])
        parses(out + "/tables.md")
        let text = try String(contentsOfFile: out + "/tables.md", encoding: .utf8)
        #expect(text.contains("| Semi-DPO (iter 1) |") && text.contains("| Diffusion-KTO |"), "\(text)")
    }

    @Test func semiDPO() throws {
        let out = try runShipped("semi_dpo.lua", ["base=\(w.base)", "data_root=\(w.root)/data", "cache=\(w.root)/cache-semi", "pairs=40",
                                                 "steps0=1", "steps=1", "warmup=0", "batch_size=2", "iterations=1", "test_fraction=0.1",
                                                 "committee=clip,aesthetic"])
        for f in ["partition/clean.json", "partition/noisy.json", "iter0/model.safetensors", "iter1/model.safetensors",
                  "iter1/pseudo_labels.json", "audit.md", "audit.csv", "table7.md"] { parses(out + "/" + f) }
    }

    @Test func diffusionDPOAndKTO() throws {
        for recipe in ["diffusion_dpo.lua", "diffusion_kto.lua"] {
            let out = try runShipped(recipe, ["base=\(w.base)", "data_root=\(w.root)/data", "pairs=12", "steps=1", "warmup=0", "batch_size=2"])
            for f in ["train.csv", "train.svg", "model.safetensors"] { parses(out + "/" + f) }
        }
    }

    /// paper.lua at tiny settings (every table, Figure 3 and the audit), then one table recipe that loads
    /// the same stages from the cache.
    @Test func paperAndTables() throws {
        let settings = ["base=\(w.base)", "data_root=\(w.root)/data", "cache=\(w.root)/cache-paper", "pairs=40", "test_fraction=0.1",
                        "committee=clip,aesthetic", "steps=1", "steps0=1", "warmup=0", "batch_size=2", "iterations=1",
                        "suites=pickapic", "suite_size=8", "eval_prompts=2", "geneval_per_category=1", "eval_steps=1",
                        "table6_pairs=12", "grid_prompts=a red circle", "grid_seeds=1"]
        let out = try runShipped("paper.lua", settings)
        for t in 1...7 { parses(out + "/table\(t).md"); parses(out + "/table\(t).csv") }
        for f in ["tables.json", "figure3.png", "audit_partition.md", "audit_pseudo_labels.md", "audit_pseudo_labels_per_anchor.csv"] {
            parses(out + "/" + f)
        }
        let stages = { try FileManager.default.subpathsOfDirectory(atPath: "\(self.w.root)/cache-paper").filter { $0.hasSuffix("stage.yaml") }.sorted() }
        let before = try stages()
        let table4 = try runShipped("tables/table4.lua", settings)
        #expect(try stages() == before, "tables/table4.lua loads paper.lua's stages (same keys) instead of computing new ones")
        #expect(try String(contentsOfFile: table4 + "/table4.csv", encoding: .utf8) == String(contentsOfFile: out + "/table4.csv", encoding: .utf8))
    }

    @Test func worldStatsPartitionAndTable6() throws {
        let stats = try runShipped("world_stats.lua", ["pairs=12", "dir=\(w.root)/data/stats"])
        for f in ["world_stats.md", "world_stats.yaml", "contact_sheet.png"] { parses(stats + "/" + f) }
        let part = try runShipped("partition.lua", ["pairs=12", "dir=\(w.root)/data/stats", "members=clip,aesthetic", "test_fraction=0.2"])
        for f in ["partition/clean.json", "partition/clean_test.json", "partition/noisy.json", "partition/partition.md"] { parses(part + "/" + f) }
        let t6 = try runShipped("table6.lua", ["pairs=12", "dir=\(w.root)/data/stats6", "members=clip,aesthetic"])
        for f in ["table6.md", "table6.csv"] { parses(t6 + "/" + f) }
    }

    @Test func pretrainBaseAndTrainRewards() throws {
        let pre = try runShipped("pretrain_base.lua", ["config=\(w.config)", "steps=2", "batch_size=2", "warmup=0", "prompts=20",
                                                      "checkpoint_every=1", "ship=raw", "eval_count=2", "eval_steps=1", "grid_steps=1"])
        for f in ["base_report.md", "base_report.yaml", "base_samples.png", "pretrain.csv"] { parses(pre + "/" + f) }
        // 101 steps: reward training's warm-up is 100 steps and must be shorter than the run.
        let rewards = try runShipped("train_rewards.lua", ["steps=101", "batch_size=2", "pairs=12", "dir=\(w.root)/data/rewards", "models=\(w.root)/rewards"])
        for m in ["clip", "aesthetic", "hps", "imagereward", "pickscore"] { parses(w.root + "/rewards/\(m).safetensors") }
        parses(w.root + "/rewards/manifest.yaml")
        _ = rewards
    }

    @Test func everyRecipeDeclaresItsSettings() throws {
        // A typo in --set fails before any work, naming the key, for the shipped recipes.
        for recipe in ["quickstart.lua", "semi_dpo.lua", "paper.lua", "diffusion_dpo.lua", "world_stats.lua", "partition.lua",
                       "table6.lua", "bench_select.lua", "bench_partition.lua", "pretrain_base.lua", "train_rewards.lua"] {
            var errs: [String] = []
            let status = RecipeRunner.run(.init(recipe: recipePath(recipe), settings: ["stpes=1"], out: tempDir()), errors: { errs.append($0) })
            #expect(status == 1 && errs.joined().contains("unknown setting 'stpes'"), "\(recipe): \(errs)")
        }
    }
}
