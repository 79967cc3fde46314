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

    /// paper.lua at tiny settings with two training seeds (every table with intervals, the claims, Figure 3 and
    /// the audit), then table recipes that load the same stages from the cache: both seeds, and seed 1 alone.
    @Test func paperAndTables() throws {
        let settings = ["base=\(w.base)", "data_root=\(w.root)/data", "cache=\(w.root)/cache-paper", "pairs=40", "test_fraction=0.1",
                        "committee=clip,aesthetic,hps", "steps=1", "steps0=1", "warmup=0", "batch_size=2", "iterations=2",
                        "suites=pickapic", "suite_size=8", "eval_prompts=2", "geneval_per_category=1", "geneval_min_images=2", "eval_steps=1",
                        "table6_pairs=12", "grid_prompts=a red circle", "grid_seeds=1", "resamples=200"]
        let out = try runShipped("paper.lua", settings + ["seeds=0,1"])
        for t in ["1", "2", "3", "4", "5", "5_clean", "6", "7"] { parses(out + "/table\(t).md"); parses(out + "/table\(t).csv") }
        for f in ["tables.json", "claims.md", "figure3.png", "audit_partition.md", "audit_pseudo_labels.md", "audit_pseudo_labels_per_anchor.csv"] {
            parses(out + "/" + f)
        }
        // tables.json: per-seed values and intervals as numbers, in every table built from the seeds.
        let json = try JSON.parse(file: out + "/tables.json")
        for (table, row, column) in [("table1", "pickapic / Semi-DPO", "overall (MPS role)"), ("table2", "pickapic / Semi-DPO / Diffusion-DPO", "overall (MPS role)"),
                                     ("table2", "pickapic / Semi-DPO / Diffusion-DPO", "Δ overall (MPS role)"), ("table3", "Semi-DPO", "overall"),
                                     ("table4", "pickapic / Semi-DPO (iter 2)", "overall (MPS role)"), ("table5", "pickapic / clip+aesthetic+hps", "overall (MPS role)"),
                                     ("table5_clean", "clip+aesthetic", "clean labels = overall truth (%)"), ("table7", "Semi-DPO iter 1", "t=950")] {
            let cell = json[table]?[row]?[column]
            let (m, lo, hi) = (cell?["mean"]?.doubleValue ?? .nan, cell?["lo"]?.doubleValue ?? .nan, cell?["hi"]?.doubleValue ?? .nan)
            #expect(lo <= m && m <= hi, "\(table) / \(row) / \(column): \(String(describing: cell))")
            #expect(cell?["per_seed"]?.arrayValue?.count == 2, "\(table) / \(row) / \(column): two seeds")
        }
        #expect(json["table2"]?["pickapic / Semi-DPO / Base"]?["p overall (MPS role)"]?.doubleValue != nil, "Table 2 has a permutation p per row")
        // Table 3 at one prompt per category and geneval_min_images 2: two images per prompt, stated per cell and in its rows.
        #expect(json["table3"]?["Semi-DPO"]?["counting"]?["n"] == .array([.number(1), .number(1)]))
        #expect(json["table3"]?["Semi-DPO"]?["counting"]?["images"] == .array([.number(2), .number(2)]))
        #expect(json["table3"]?["images per prompt"]?["overall"]?.doubleValue == 2 && json["table3"]?["images"]?["overall"]?.doubleValue == 12)
        // seeds_overall: each seed's mean, mean ± sd over seeds and the pooled interval.
        parses(out + "/seeds_overall.md")
        let over = json["seeds_overall"]?["pickapic / Semi-DPO (iter 2)"]
        let perSeed = [over?["seed 0"]?.doubleValue ?? .nan, over?["seed 1"]?.doubleValue ?? .nan]
        #expect(abs((over?["mean over seeds"]?.doubleValue ?? .nan) - (perSeed[0] + perSeed[1]) / 2) < 1e-12)
        #expect(abs((over?["sd over seeds"]?.doubleValue ?? .nan) - abs(perSeed[0] - perSeed[1]) / 2.0.squareRoot()) < 1e-12, "sd (n − 1) of two seeds")
        #expect(over?["pooled interval"]?["lo"]?.doubleValue != nil && over?["pooled interval"]?["per_seed"]?.arrayValue?.count == 2)
        // Table 7's per-seed values are the stages' accuracies per anchor (conf:accuracy(), ties ½), in %.
        let cache = "\(w.root)/cache-paper"
        var accuracy: [Double] = []
        for dir in try FileManager.default.contentsOfDirectory(atPath: cache + "/semi_iter1") {
            let stage = try YAML.load(path: "\(cache)/semi_iter1/\(dir)/stage.yaml")
            accuracy.append(100 * (stage["outputs"]?["test_accuracy"]?[0]?.doubleValue ?? .nan))
        }
        let t50 = json["table7"]?["Semi-DPO iter 0"]?["t=50"]?["per_seed"]?.arrayValue?.compactMap(\.doubleValue) ?? []
        #expect(accuracy.count == 2 && t50.count == 2 && zip(t50.sorted(), accuracy.sorted()).allSatisfy { abs($0 - $1) < 1e-9 },
                "Table 7 per seed \(t50) vs the stages' test_accuracy \(accuracy)")
        // claims.md and tables.json: a verdict per claim (a)–(e).
        let claims = try String(contentsOfFile: out + "/claims.md", encoding: .utf8)
        for claim in ["(a)", "(b)", "(c)", "(d)", "(e)"] {
            let verdict = json["claims"]?[claim]?["verdict"]?.stringValue ?? "none"
            #expect(["holds", "fails", "inconclusive"].contains(verdict), "claim \(claim): verdict \(verdict)")
            #expect(claims.contains("| \(claim)"), "claims.md lists \(claim)")
        }
        // Stages are cached per seed: both seeds, or seed 1 alone, load paper.lua's stages (same keys).
        let stages = { try FileManager.default.subpathsOfDirectory(atPath: cache).filter { $0.hasSuffix("stage.yaml") }.sorted() }
        let before = try stages()
        let table4 = try runShipped("tables/table4.lua", settings + ["seeds=0,1"])
        #expect(try String(contentsOfFile: table4 + "/table4.csv", encoding: .utf8) == String(contentsOfFile: out + "/table4.csv", encoding: .utf8))
        let claimsRun = try runShipped("tables/claims.lua", settings + ["seeds=0,1"])
        #expect(try String(contentsOfFile: claimsRun + "/claims.md", encoding: .utf8) == claims, "tables/claims.lua gives paper.lua's claims.md (fixed stats_seed)")
        let seed1 = try runShipped("tables/table4.lua", settings + ["seeds=1"])
        #expect(try stages() == before, "tables/table4.lua loads paper.lua's stages (same keys) instead of computing new ones")
        let one = try JSON.parse(file: seed1 + "/tables.json")["table4"]?["pickapic / Semi-DPO (iter 2)"]?["overall (MPS role)"]?["per_seed"]
        let two = json["table4"]?["pickapic / Semi-DPO (iter 2)"]?["overall (MPS role)"]?["per_seed"]?.arrayValue
        #expect(one?.arrayValue?.count == 1 && one?.arrayValue?.first == two?.last, "seed 1 alone reproduces seed 1 of the two-seed run")

        // Table 8 after paper.lua: the cold start, offline Semi-DPO, Diffusion-DPO and their evaluations are paper.lua's
        // stages; only the online rounds (2 seeds × 2 rounds) and their evaluations (2 seeds × 2 models) are computed.
        let t8 = try runShipped("tables/table8.lua", settings + ["seeds=0,1", "online.rounds=2", "online.pairs=3", "online.sample_steps=1"])
        let added = Set(try stages()).subtracting(before).map { String($0.prefix { $0 != "/" }) }.sorted()
        #expect(added == ["eval_pickapic", "eval_pickapic", "eval_pickapic", "eval_pickapic", "online_round1", "online_round1", "online_round2", "online_round2"],
                "\(added)")
        let j8 = try JSON.parse(file: t8 + "/tables.json")
        let seedsOf = { (v: JSONValue?) in v?["overall (MPS role)"]?["per_seed"]?.arrayValue ?? [] }
        #expect(seedsOf(j8["table8"]?["pickapic / Semi-DPO (iter 0) = online cold start"]) == seedsOf(json["table4"]?["pickapic / Semi-DPO (iter 0)"]))
        #expect(seedsOf(j8["table8"]?["pickapic / Semi-DPO offline (iter 2)"]) == seedsOf(json["table1"]?["pickapic / Semi-DPO"]))
        #expect(seedsOf(j8["table8"]?["pickapic / Diffusion-DPO"]) == seedsOf(json["table1"]?["pickapic / Diffusion-DPO"]))
        #expect(seedsOf(j8["table8"]?["pickapic / Online Semi-DPO (round 2)"]).count == 2)
        #expect(j8["table8_win_rates"]?["pickapic / Online Semi-DPO (round 2) / Semi-DPO offline (iter 2)"]?["p overall (MPS role)"]?.doubleValue != nil)
        for f in ["table8_compute.md", "table8_rounds_timing.csv", "table8_rounds_self_labels.md"] { parses(t8 + "/" + f) }
        #expect(j8["table8_rounds_timing"]?["1 / 2"]?["train"]?.doubleValue ?? -1 > 0, "seed 1, round 2: its training time")
    }

    /// `seeds` is checked before any work: a repeated or negative seed names the setting.
    @Test func paperSeedsAreChecked() {
        for (value, message) in [("0,0", "setting 'seeds': seed 0 is listed twice"), ("0,-1", "setting 'seeds': element 2 is -1, expected a non-negative integer")] {
            var errs: [String] = []
            let status = RecipeRunner.run(.init(recipe: recipePath("tables/table6.lua"), settings: ["seeds=\(value)"], out: tempDir(), threads: 1),
                                          errors: { errs.append($0) })
            #expect(status != 0 && errs.joined().contains(message), "\(errs)")
        }
    }

    /// Table 8's online settings are checked before any work, naming the setting and the bad value.
    @Test func table8SettingsAreChecked() {
        for (setting, message) in [("online.ensemble=both", "setting 'online.ensemble' must be \"pair\" or \"alone\", got 'both'"),
                                   ("online.combine=max", "setting 'online.combine' must be \"agree\" or \"mean\", got 'max'"),
                                   ("online.pairs=0", "setting 'online.pairs' must be an integer ≥ 1, got 0"),
                                   ("online.rounds=0", "Table 8 needs online rounds: --set online.rounds=N with N ≥ 1 (got 0)")] {
            var errs: [String] = []
            let status = RecipeRunner.run(.init(recipe: recipePath("tables/table8.lua"), settings: [setting], out: tempDir(), threads: 1),
                                          errors: { errs.append($0) })
            #expect(status != 0 && errs.joined().contains(message), "\(setting): \(errs)")
        }
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
                       "table6.lua", "bench_select.lua", "bench_partition.lua", "pretrain_base.lua", "train_rewards.lua",
                       "online_semi_dpo.lua", "tables/table8.lua"] {
            var errs: [String] = []
            let status = RecipeRunner.run(.init(recipe: recipePath(recipe), settings: ["stpes=1"], out: tempDir()), errors: { errs.append($0) })
            #expect(status == 1 && errs.joined().contains("unknown setting 'stpes'"), "\(recipe): \(errs)")
        }
    }
}
