// semidpo.mpi: the bindings in one process (size 1), and the built binary under `mpirun -np 2/4`:
// DPO weights bit-identical to one process at the same grad_shards, confidence shards that concatenate
// to the single-process file, collectives on Lua values, and a failing rank ending the job.
import Foundation
import Testing
import Core
@testable import Host

/// `mpirun` on PATH. `make deps` installs openmpi-bin, so its absence fails the tests (never a skip).
let mpirunPath: String? = {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
        let p = "\(dir)/mpirun"
        if FileManager.default.isExecutableFile(atPath: p) { return p }
    }
    return nil
}()

/// Runs `semidpo <args>` under `mpirun -np <ranks>` (root-safe, oversubscribed, shared memory only, as
/// in CI containers) and returns (exit status, stdout, stderr, seconds).
func runMPI(_ ranks: Int, _ args: [String], cwd: String) throws -> (Int32, String, String, Double) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: mpirunPath!)
    p.arguments = ["--allow-run-as-root", "--oversubscribe", "--mca", "btl", "self,vader", "-np", "\(ranks)", semidpoBinary!] + args
    p.currentDirectoryURL = URL(fileURLWithPath: cwd)
    var env = ProcessInfo.processInfo.environment
    env["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none"
    env["OMPI_MCA_rmaps_base_oversubscribe"] = "1"
    p.environment = env
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    let t0 = Date()
    try p.run()
    // Read both pipes concurrently so a chatty stderr cannot block the child.
    final class Box: @unchecked Sendable { var data = Data() }
    let errData = Box()
    let handle = err.fileHandleForReading
    let reader = Thread { errData.data = handle.readDataToEndOfFile() }
    reader.start()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    while !reader.isFinished { usleep(1000) }
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: errData.data, as: UTF8.self), Date().timeIntervalSince(t0))
}

/// A tiny DPO run, confidence pass, pretraining, reward-model training and evaluation; `--set shards=G` sets
/// grad_shards (absent: the default).
private let trainRecipe = tinyUNetLua + """
local ds = semidpo.world.dataset{dir = semidpo.args.data, pairs = 10, prompts = 4, seed = 3, image_size = 16}
local pairs = ds:pairs()
local model = semidpo.diffusion.new{config = tiny, seed = 1}
local ref = semidpo.diffusion.new{config = tiny, seed = 1}
local s = semidpo.dpo.train{policy = model, reference = ref, pairs = pairs, steps = 3, batch_size = 4, accumulation = 2,
                            lr = 3e-3, beta = 200, seed = 7, grad_shards = semidpo.args.shards, log = "train",
                            checkpoint = "ck.safetensors", checkpoint_every = 2, resume = semidpo.args.resume}
model:save("model.safetensors")
if semidpo.args.resume then return end
local conf = semidpo.dpo.confidence{model = model, reference = ref, pairs = pairs, beta = 200, batch_size = 3, seed = 5}
conf:write("conf")
conf:write("all.jsonl")
semidpo.write_text("size.txt", tostring(semidpo.mpi.size()))
-- A Semi-DPO round: per-anchor pseudo-labels from the confidence pass, the clean and pseudo-labelled sets together.
local labels = {}
for i, row in ipairs(conf:values()) do
  labels[i] = {}
  for j, z in ipairs(row) do labels[i][j] = z > 0 and 1 or -1 end
end
local pseudo = semidpo.dpo.labels{anchors = conf:anchors(), labels = labels}
local round = semidpo.diffusion.new{config = tiny, seed = 1}
semidpo.dpo.train{policy = round, reference = model, pairs = pairs, unlabeled = pairs, pseudo = pseudo, unlabeled_weight = 0.5,
                  steps = 2, batch_size = 4, lr = 1e-3, beta = 200, seed = 9, grad_shards = semidpo.args.shards, log = "semi"}
round:save("semi.safetensors")
local pm = semidpo.diffusion.new{config = tiny, seed = 2}
semidpo.diffusion.pretrain{model = pm, steps = 2, batch_size = 4, prompts = 8, warmup = 1, grad_shards = semidpo.args.shards,
                           checkpoint_dir = "pre", log = "pre"}
local rm = semidpo.reward.new{name = "clip", channels = {4, 4, 4}, groups = 2, embed_dimension = 4, heads = 2, seed = 1}
semidpo.reward.train(rm, ds, {rater = "human", steps = 2, batch_size = 4, warmup = 1, seed = 3, grad_shards = semidpo.args.shards})
local reward_path = rm:save("reward.safetensors", {name = "clip"})
semidpo.mpi.barrier()   -- rank 0 wrote the file the committee reads on every rank
-- Evaluation: 7 prompts split over the ranks, scored by a committee of the reward model and the oracle.
local committee = semidpo.committee.new{members = {reward_path}}
local ev = semidpo.eval.run{model = model, suite = "hpsv2", committee = committee, seed = 3, steps = 2, guidance = 3, limit = 7,
                            batch_size = 3}
local lines = {}
for _, m in ipairs(ev:metrics()) do lines[#lines + 1] = m .. " " .. table.concat(ev:per_prompt(m), " ") end
lines[#lines + 1] = "geneval " .. ev:geneval().overall
semidpo.write_text("eval.txt", table.concat(lines, "\\n"))

"""

/// The bytes of every tensor of a safetensors file, by name.
private func tensors(_ path: String) throws -> [String: [Float]] {
    Dictionary(try Safetensors.read(path).0.map { ($0.name, $0.data) }, uniquingKeysWith: { a, _ in a })
}

@Suite(.serialized) struct MPIBindingTests {
    /// Without a launcher: size 1, rank 0, and every collective returns its input.
    @Test func singleProcessCollectives() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lua = try bindingsState(dir)
        let r = try lua.runString("""
            local mpi = semidpo.mpi
            local t = semidpo.tensor.from({1.5, -2, 3}, {3})
            local sum = mpi.allreduce(t, "max")
            local b = mpi.broadcast({a = 1, list = {"x", true, 2.5}})
            local g = mpi.gather("mine")
            mpi.barrier()
            return mpi.rank(), mpi.size(), mpi.allreduce(5), mpi.allreduce(2.5, "min"), sum:totable()[3],
                   b.a, b.list[1], b.list[2], b.list[3], #g, g[1]
            """, name: "@mpi.lua")
        #expect(r[0] as? Int == 0 && r[1] as? Int == 1)
        #expect(r[2] as? Int == 5 && r[3] as? Double == 2.5 && r[4] as? Double == 3)
        #expect(r[5] as? Int == 1 && r[6] as? String == "x" && r[7] as? Bool == true && r[8] as? Double == 2.5)
        #expect(r[9] as? Int == 1 && r[10] as? String == "mine")
    }

    @Test func badArgumentsNameTheArgument() {
        let e1 = bindingsError("semidpo.mpi.allreduce('x')", name: "@m.lua")
        #expect(e1?.message.contains("bad argument #1 to 'allreduce' (expected number or Tensor, got string)") == true, "\(e1?.message ?? "")")
        let e2 = bindingsError("semidpo.mpi.allreduce(1, 'mean')", name: "@m.lua")
        #expect(e2?.message.contains("bad argument #2 to 'allreduce' (expected \"sum\", \"max\" or \"min\", got \"mean\")") == true, "\(e2?.message ?? "")")
        let e3 = bindingsError("semidpo.mpi.broadcast(print)", name: "@m.lua")
        #expect(e3?.message.contains("cannot send a function to other ranks") == true, "\(e3?.message ?? "")")
        let e4 = bindingsError("semidpo.mpi.gather(1, 3)", name: "@m.lua")
        #expect(e4?.message.contains("root must be a rank in 0..0, got 3") == true, "\(e4?.message ?? "")")
    }

    /// The value encoding round-trips every kind it accepts, bit for bit.
    @Test func valueEncodingRoundTrips() throws {
        let t = Tensor(shape: [2, 2], data: [1, -0.0, .infinity, 1e-30])
        let v: [String: Any] = ["i": -7, "d": 0.1, "s": "ünï", "b": false, "t": t, "l": [1, "two", [3.5]] as [Any]]
        let back = try MPIValue.decode(MPIValue.encode(v)) as! [String: Any]
        #expect(back["i"] as? Int == -7 && (back["d"] as? Double)?.bitPattern == 0.1.bitPattern)
        #expect(back["s"] as? String == "ünï" && back["b"] as? Bool == false)
        let bt = back["t"] as! Tensor
        #expect(bt.shape == [2, 2] && bt.data.map(\.bitPattern) == t.data.map(\.bitPattern))
        let l = back["l"] as! [Any?]
        #expect(l[0] as? Int == 1 && l[1] as? String == "two" && ((l[2] as? [Any?])?[0] as? Double) == 3.5)
        #expect(throws: CoreError.self) { try MPIValue.decode([9]) }
        #expect(throws: CoreError.self) { try MPIValue.decode(Array(try MPIValue.encode("abc").dropLast())) }
    }
}

@Suite(.serialized, .enabled(if: semidpoBinary != nil, "the semidpo executable is not built next to the tests"))
struct MPIRunTests {
    @Test func mpirunIsInstalled() {
        #expect(mpirunPath != nil, "mpirun not found: `make deps` installs openmpi-bin (Makefile APT_PACKAGES)")
    }

    /// np = 2 and 4 with grad_shards = 4, and np = 2 with the default (= 2), give the weights, log and
    /// confidence of one process with the same grad_shards, bit for bit; the shards concatenate to the
    /// one-process shard file; rank 0 alone writes the run directory's shared files.
    @Test func dpoAndConfidenceBitIdenticalAcrossRankCounts() throws {
        try #require(mpirunPath != nil, "mpirun not found: `make deps` installs openmpi-bin")
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try trainRecipe.write(toFile: dir + "/r.lua", atomically: true, encoding: .utf8)
        func plain(_ out: String, shards: Int) throws {
            let (s, _, e) = try runBinary(["run", "r.lua", "--out", out, "--threads", "1", "--set", "data=\(dir)/data",
                                           "--set", "shards=\(shards)"], cwd: dir)
            try #require(s == 0, "\(e)")
        }
        func mpi(_ np: Int, _ out: String, shards: Int?) throws {
            let set = shards.map { ["--set", "shards=\($0)"] } ?? []
            let (s, _, e, _) = try runMPI(np, ["run", "r.lua", "--out", out, "--threads", "1", "--set", "data=\(dir)/data"] + set, cwd: dir)
            try #require(s == 0, "np = \(np): \(e)")
        }
        try plain("one1", shards: 1)
        try plain("one2", shards: 2)
        try plain("one4", shards: 4)
        try mpi(2, "two", shards: nil)
        try mpi(2, "two4", shards: 4)
        try mpi(4, "four4", shards: 4)
        let read = { (p: String) in try String(contentsOfFile: "\(dir)/\(p)", encoding: .utf8) }
        for (multi, single) in [("two", "one2"), ("two4", "one4"), ("four4", "one4")] {
            let a = try tensors("\(dir)/\(multi)/model.safetensors"), b = try tensors("\(dir)/\(single)/model.safetensors")
            #expect(a.keys.sorted() == b.keys.sorted() && !a.isEmpty)
            for (k, v) in b { #expect(a[k]?.map(\.bitPattern) == v.map(\.bitPattern), "\(multi) vs \(single): \(k)") }
            #expect(try read("\(multi)/train.csv") == read("\(single)/train.csv"), "\(multi) vs \(single): log")
            // A Semi-DPO round, pretraining and reward-model training: the same bits too.
            for file in ["semi.safetensors", "pre/model.safetensors", "reward.safetensors"] {
                let a = try tensors("\(dir)/\(multi)/\(file)"), b = try tensors("\(dir)/\(single)/\(file)")
                #expect(!a.isEmpty && a.keys.sorted() == b.keys.sorted())
                for (k, v) in b { #expect(a[k]?.map(\.bitPattern) == v.map(\.bitPattern), "\(multi) vs \(single): \(file) \(k)") }
            }
            #expect(try read("\(multi)/pre.csv") == read("\(single)/pre.csv"))
            #expect(try read("\(multi)/semi.csv") == read("\(single)/semi.csv"))
            #expect(try read("\(multi)/eval.txt") == read("\(single)/eval.txt"), "\(multi) vs \(single): evaluation")
            #expect(try read("\(multi)/all.jsonl") == read("\(single)/all.jsonl"), "\(multi) vs \(single): confidence")
            // The ranks' shards, concatenated in rank order, are the one-process shard file byte for byte.
            let shards = try FileManager.default.contentsOfDirectory(atPath: "\(dir)/\(multi)/conf").filter { !$0.hasPrefix(".") }.sorted()
            let np = multi == "four4" ? 4 : 2
            #expect(shards == (0..<np).map { String(format: "confidence_rank%03d.jsonl", $0) })
            #expect(try shards.map { try read("\(multi)/conf/\($0)") }.joined() == read("\(single)/conf/confidence_rank000.jsonl"))
            #expect(try ConfidenceTable.read("\(dir)/\(multi)/conf").values.map(\.bitPattern)
                    == ConfidenceTable.read("\(dir)/\(single)/conf").values.map(\.bitPattern))
            #expect(try read("\(multi)/size.txt") == "\(np)")
            let manifest = try read("\(multi)/manifest.yaml")
            #expect(manifest.contains("mpi_ranks: \(np)") && manifest.contains("result: ok"))
            #expect(manifest.contains("conf/confidence_rank001.jsonl"))
        }
        // Resume at another rank count: np = 2's checkpoint after step 2, finished by one process with the
        // same grad_shards, ends on the uninterrupted run's weights.
        let (rs, _, re) = try runBinary(["run", "r.lua", "--out", "resumed", "--threads", "1", "--set", "data=\(dir)/data",
                                         "--set", "shards=4", "--set", "resume=\(dir)/two4/ck.safetensors"], cwd: dir)
        try #require(rs == 0, "\(re)")
        let resumed = try tensors("\(dir)/resumed/model.safetensors"), whole = try tensors("\(dir)/one4/model.safetensors")
        for (k, v) in whole { #expect(resumed[k]?.map(\.bitPattern) == v.map(\.bitPattern), "resumed: \(k)") }
        // A plain run without --set shards keeps grad_shards = 1: the one1 numbers.
        #expect(try read("one1/size.txt") == "1")
    }

    /// A rank killed by a signal ends the job within seconds, non-zero, without rank 0 going on.
    @Test func killedRankEndsTheJob() throws {
        try #require(mpirunPath != nil, "mpirun not found: `make deps` installs openmpi-bin")
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try """
            local mpi = semidpo.mpi
            if mpi.rank() == 1 then os.execute("kill -9 $PPID") end   -- the shell's parent: this rank
            mpi.barrier()
            semidpo.write_text("done.txt", "should not happen")
            """.write(toFile: dir + "/k.lua", atomically: true, encoding: .utf8)
        let (s, _, e, seconds) = try runMPI(2, ["run", "k.lua", "--out", "o"], cwd: dir)
        #expect(s != 0, "\(e)")
        #expect(e.contains("rank 1") && e.contains("signal 9"), "\(e)")
        #expect(seconds < 60, "took \(seconds) s")
        #expect(!FileManager.default.fileExists(atPath: dir + "/o/done.txt"))
    }

    /// A stage under MPI: rank 0 decides, every rank takes the same branch; the second run finds it cached
    /// on every rank; one process (another default grad_shards) does not reuse it.
    @Test func stageDecisionsAreRankZeros() throws {
        try #require(mpirunPath != nil, "mpirun not found: `make deps` installs openmpi-bin")
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try """
            local mpi = semidpo.mpi
            local r = semidpo.stage{name = "s", settings = {x = 1}, cache = semidpo.args.cache, run = function(dir)
              semidpo.write_text(dir .. "/value.txt", "v")
              return {sum = mpi.allreduce(mpi.rank() + 1)}
            end}
            local decisions = mpi.gather(r.cached)
            if mpi.rank() == 0 then
              for i = 1, mpi.size() do assert(decisions[i] == r.cached, "ranks took different branches") end
            end
            semidpo.write_text("out.txt", (r.cached and "cached" or "ran") .. " " .. r.outputs.sum .. " " .. r.key)
            """.write(toFile: dir + "/s.lua", atomically: true, encoding: .utf8)
        var results: [[String]] = []
        for (k, np) in [2, 2, 1].enumerated() {
            let args = ["run", "s.lua", "--out", "o\(k)", "--set", "cache=\(dir)/cache"]
            let (s, _, e) = np == 1 ? try runBinary(args, cwd: dir) : try { let r = try runMPI(np, args, cwd: dir); return (r.0, r.1, r.2) }()
            try #require(s == 0, "run \(k): \(e)")
            results.append(try String(contentsOfFile: "\(dir)/o\(k)/out.txt", encoding: .utf8).split(separator: " ").map(String.init))
        }
        #expect(results[0][0] == "ran" && results[0][1] == "3")
        #expect(results[1][0] == "cached" && results[1][1] == "3" && results[1][2] == results[0][2])
        #expect(results[2][0] == "ran" && results[2][1] == "1" && results[2][2] != results[0][2])
        let stageDirs = try FileManager.default.contentsOfDirectory(atPath: dir + "/cache/s")
        #expect(stageDirs.count == 2)
        for d in stageDirs { #expect(FileManager.default.fileExists(atPath: "\(dir)/cache/s/\(d)/value.txt")) }
    }

    /// Collectives across two ranks: sums in rank order, broadcast from a non-zero root, gather.
    @Test func collectivesAcrossTwoRanks() throws {
        try #require(mpirunPath != nil, "mpirun not found: `make deps` installs openmpi-bin")
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try """
            local mpi = semidpo.mpi
            local r = mpi.rank()
            local t = semidpo.tensor.from({r + 1, 10 * r, -r}, {3})
            local sum, mx = mpi.allreduce(t), mpi.allreduce(t, "max")
            local b = mpi.broadcast({from = r, name = "rank" .. r}, 1)
            local g = mpi.gather({rank = r, x = 0.5 * r})
            if r == 0 then
              local lines = {mpi.size(), mpi.allreduce(r + 1), mpi.allreduce(r + 0.25, "max"),
                             table.concat(sum:totable(), " "), table.concat(mx:totable(), " "), b.from, b.name, #g, g[2].rank, g[2].x}
              semidpo.write_text("out.txt", table.concat(lines, "|"))
            else
              assert(g == nil, "gather returned a value on a non-root rank")
              mpi.allreduce(r + 1); mpi.allreduce(r + 0.25, "max")
            end
            """.write(toFile: dir + "/c.lua", atomically: true, encoding: .utf8)
        let (s, _, e, _) = try runMPI(2, ["run", "c.lua", "--out", "o"], cwd: dir)
        try #require(s == 0, "\(e)")
        let out = try String(contentsOfFile: dir + "/o/out.txt", encoding: .utf8)
        #expect(out == "2|3|1.25|3.0 10.0 -1.0|2.0 10.0 0.0|1|rank1|2|1|0.5", "\(out)")
    }

    /// A rank that raises an error ends every rank within seconds, exit status 1, with its file:line: message.
    @Test func failingRankEndsTheJob() throws {
        try #require(mpirunPath != nil, "mpirun not found: `make deps` installs openmpi-bin")
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try """
            local mpi = semidpo.mpi
            if mpi.rank() == 1 then
              error("rank one broke")
            end
            mpi.barrier()   -- rank 0 waits here for a rank that never comes
            semidpo.write_text("done.txt", "should not happen")
            """.write(toFile: dir + "/f.lua", atomically: true, encoding: .utf8)
        let (s, _, e, seconds) = try runMPI(2, ["run", "f.lua", "--out", "o"], cwd: dir)
        #expect(s == 1, "exit status \(s): \(e)")
        #expect(e.contains("[rank 1/2] f.lua:3: rank one broke"), "\(e)")
        #expect(seconds < 60, "took \(seconds) s")
        #expect(!FileManager.default.fileExists(atPath: dir + "/o/done.txt"))
        // The failing rank recorded its error in the manifest (rank 0 was ended before writing one).
        let manifest = try String(contentsOfFile: dir + "/o/manifest.yaml", encoding: .utf8)
        #expect(manifest.contains("result: error") && manifest.contains("rank one broke") && manifest.contains("rank: 1"), "\(manifest)")
    }
}
