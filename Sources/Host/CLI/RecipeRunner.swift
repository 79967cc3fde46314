// What `semidpo run` does: check the command line, make the run directory, run the recipe in a
// guarded Lua state, and write manifest.yaml whatever happens.
import Core
import Foundation

enum RecipeRunner {
    struct Options {
        var recipe: String
        var settings: [String] = []
        var out: String?
        var seed: Int = 0
        var threads: Int?
        /// `--help-settings`: run the recipe up to `semidpo.settings`, print the declaration, stop
        /// (nothing is kept: the run directory is a temporary one, removed afterwards).
        var helpSettings = false
    }

    /// Runs a recipe and returns the exit status: 0 ok, 1 recipe error, 2 bad command line.
    /// `errors` receives what goes to stderr (tests capture it).
    static func run(_ o: Options, errors: (String) -> Void = printError) -> Int32 {
        // The whole run holds the engine's thread count (tests run recipes beside tests that change it).
        Engine.threadsLock.lock()
        defer { Engine.threadsLock.unlock() }
        guard Cluster.size > 1 else { return runOnRank(o, errors: errors) }
        // Under MPI every message names its rank, and a failing rank ends the whole job (MPI_Abort)
        // instead of leaving the others waiting in a collective.
        let rankErrors: (String) -> Void = { errors("[rank \(Cluster.rank)/\(Cluster.size)] " + $0) }
        let status = runOnRank(o, errors: rankErrors)
        if status != 0 { Cluster.abort("semidpo: rank \(Cluster.rank) failed; ending all \(Cluster.size) ranks", code: status) }
        return status
    }

    private static func runOnRank(_ o: Options, errors: (String) -> Void) -> Int32 {
        // 1. The command line, before anything is created.
        let settings: [(key: String, value: Any)]
        var raw: [(key: String, text: String)] = []
        do {
            settings = try Settings.parseAll(o.settings)
            for s in o.settings {
                let p = try Settings.parseRaw(s)
                raw.removeAll { $0.key == p.key }
                raw.append(p)
            }
        } catch {
            errors("semidpo: \(error)")
            return 2
        }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: o.recipe, isDirectory: &isDir) else {
            errors("semidpo: recipe not found: \(o.recipe)")
            return 2
        }
        guard !isDir.boolValue, FileManager.default.isReadableFile(atPath: o.recipe) else {
            errors("semidpo: cannot read recipe \(o.recipe): \(isDir.boolValue ? "it is a directory" : "permission denied")")
            return 2
        }
        do { try InputFile.requireRegular(o.recipe, what: "recipe") } catch { errors("semidpo: \(error)"); return 2 }
        if let t = o.threads {
            guard t >= 1 else { errors("semidpo: --threads must be at least 1, got \(t)"); return 2 }
            BLASRuntime.setThreads(t)
        }
        var dirOptions = o
        if o.helpSettings { dirOptions.out = NSTemporaryDirectory() + "semidpo-help-settings-\(getpid())" }
        // Rank 0 owns the run directory: it makes it and tells the other ranks its path ("" = failed).
        var outDir = ""
        var dirError: Error?
        if Cluster.rank == 0 {
            do { outDir = try makeRunDirectory(dirOptions) } catch { dirError = error }
        }
        if Cluster.size > 1 {
            outDir = String(decoding: Cluster.broadcast(Array(outDir.utf8), root: 0), as: UTF8.self)
        }
        if let dirError {
            errors("semidpo: \(dirError)")
            return 2
        }
        guard !outDir.isEmpty else { errors("semidpo: rank 0 could not create the run directory"); return 2 }

        // 2. The run.
        let run = RunContext(outputDirectory: outDir)
        var manifest = Manifest(recipe: o.recipe, settings: settings, seed: o.seed, threads: BLASRuntime.threads, run: run)
        var status: Int32 = 0
        let lua = LuaState(run: run)
        let command = CommandSettings(raw: raw, helpOnly: o.helpSettings)
        lua.commandSettings = command
        do {
            try lua.setField("args", Dictionary(settings.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 }))
            try lua.runString(argsReadTracker, name: "=semidpo.args")
            try lua.setField("seed", o.seed)
            try lua.setField("threads", BLASRuntime.threads)
            try lua.setField("out", run.outputDirectory)
            try lua.setField("recipe", o.recipe)
            let recipeDir = URL(fileURLWithPath: o.recipe).deletingLastPathComponent().path
            try lua.setField("recipe_dir", RunContext(outputDirectory: recipeDir).outputDirectory)
            let blas = BLASRuntime.status ?? BLASRuntime.currentStatus()
            try lua.setField("blas", ["core": blas.core, "threads": BLASRuntime.threads,
                                      "check": blas.checkPassed ? "passed" : "failed"] as [String: Any])
            if let lib = libraryDirectory(near: o.recipe) {
                try lua.runString("package.path = ... .. '/?.lua;' .. ... .. '/?/init.lua;' .. package.path", name: "=package.path", arguments: [lib])
            }
            try lua.guardGlobals()
            try lua.runFile(o.recipe)
            if o.helpSettings {
                print("\(o.recipe) declares no settings (it never calls semidpo.settings)")
            } else if command.declared == nil, !command.userKeys.isEmpty,
                      try lua.runString("return getmetatable(semidpo.args).read", name: "=semidpo.args").first as? Bool != true {
                throw CoreError("--set \(command.userKeys.joined(separator: ", ")): the recipe declares no settings and never reads semidpo.args, "
                                + "so these values were ignored; declare them with semidpo.settings{…} (docs/recipes.md, \"Settings\")")
            }
            manifest.finish(error: nil)
        } catch where o.helpSettings && command.helpText != nil {
            lua.close()
            fflush(stdout)
            try? FileManager.default.removeItem(atPath: outDir)
            return 0
        } catch let e as LuaError {
            fflush(stdout)
            errors(e.kind == .syntax ? e.message : e.description)
            manifest.finish(error: e)
            status = 1
        } catch {
            fflush(stdout)
            errors("semidpo: \(error)")
            manifest.finish(error: LuaError(kind: .runtime, message: "\(error)"))
            status = 1
        }
        lua.close()
        fflush(stdout)
        if o.helpSettings {
            try? FileManager.default.removeItem(atPath: outDir)
            return status
        }
        manifest.declaredSettings = command.resolved
        do {
            // Rank 0 writes it; under MPI a failing rank writes its own error over it (rank 0 is ended).
            let text = manifest.yaml(outputs: run.recordedOutputs)
            try AtomicFile.write(to: outDir + "/manifest.yaml", perRank: status != 0) { try $0.write(text) }
        } catch {
            errors("semidpo: could not write the manifest: \(error)")
            if status == 0 { status = 1 }
        }
        if status != 0 && manifest.error?.kind != .syntax { errors("semidpo: run failed; manifest: \(outDir)/manifest.yaml") }
        return status
    }

    /// The recipe library for `require`: `lib/` beside the recipe, else `lib/` in the recipe's parent
    /// directory (recipes/tables/table1.lua → recipes/lib), absolute; nil if neither exists.
    static func libraryDirectory(near recipe: String) -> String? {
        let dir = URL(fileURLWithPath: recipe).standardizedFileURL.deletingLastPathComponent()
        for d in [dir, dir.deletingLastPathComponent()] {
            var isDir: ObjCBool = false
            let lib = d.appendingPathComponent("lib").path
            if FileManager.default.fileExists(atPath: lib, isDirectory: &isDir), isDir.boolValue { return lib }
        }
        return nil
    }

    /// `--out`, or `runs/<stem>-<YYYYmmdd-HHMMSS>` (with `-2`, `-3`, … if taken); created.
    static func makeRunDirectory(_ o: Options) throws -> String {
        let fm = FileManager.default
        var dir: String
        if let out = o.out {
            dir = out
        } else {
            let stem = URL(fileURLWithPath: o.recipe).deletingPathExtension().lastPathComponent
            let f = DateFormatter()
            f.locale = Locale(identifier: "en_US_POSIX")
            f.dateFormat = "yyyyMMdd-HHmmss"
            let base = "runs/\(stem)-\(f.string(from: Date()))"
            dir = base
            var n = 2
            while fm.fileExists(atPath: dir) { dir = "\(base)-\(n)"; n += 1 }
        }
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: dir, isDirectory: &isDir), !isDir.boolValue {
            throw CoreError("--out \(dir) exists and is not a directory")
        }
        do { try fm.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            throw CoreError("cannot create run directory \(dir): \((error as NSError).localizedDescription)")
        }
        return RunContext(outputDirectory: dir).outputDirectory
    }
}

/// Makes `semidpo.args` a read-through view of the `--set` values that notes whether the recipe read
/// it (a recipe that declares no settings and never reads them would silently ignore `--set`).
private let argsReadTracker = """
local raw = semidpo.args
local mt = { read = false }
mt.__index = function(_, k) mt.read = true; return raw[k] end
mt.__newindex = function(_, k, v) raw[k] = v end
mt.__pairs = function() mt.read = true; return next, raw, nil end
semidpo.args = setmetatable({}, mt)
"""

/// The run manifest: what ran, with what, when, how it ended and what it wrote.
struct Manifest {
    var recipe: String
    var recipeSHA256: String
    var settings: [(key: String, value: Any)]
    var seed: Int
    var threads: Int
    var gitCommit: String?
    var start = Date()
    var end: Date?
    var error: LuaError?
    var run: RunContext
    /// The settings `semidpo.settings` resolved (declared defaults with `--set` on top), by dotted key.
    var declaredSettings: [String: Any]?

    init(recipe: String, settings: [(key: String, value: Any)], seed: Int, threads: Int, run: RunContext) {
        self.recipe = recipe
        self.recipeSHA256 = (try? SHA256.hex(fileAt: recipe)) ?? "unreadable"
        self.settings = settings
        self.seed = seed
        self.threads = threads
        self.run = run
        self.gitCommit = Manifest.gitCommit(near: recipe)
    }

    mutating func finish(error: LuaError?) {
        end = Date()
        self.error = error
    }

    static func iso(_ d: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: d)
    }

    /// `git rev-parse HEAD` in the recipe's directory (with `-dirty` when there are local changes),
    /// or nil outside a repository or without git.
    static func gitCommit(near path: String) -> String? {
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        func git(_ args: [String]) -> String? {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["git", "-C", dir] + args
            let pipe = Pipe()
            p.standardOutput = pipe
            p.standardError = FileHandle.nullDevice
            do { try p.run() } catch { return nil }
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            guard p.terminationStatus == 0 else { return nil }
            return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard let head = git(["rev-parse", "HEAD"]), !head.isEmpty else { return nil }
        let dirty = git(["status", "--porcelain", "--untracked-files=no"]).map { !$0.isEmpty } ?? false
        return dirty ? head + "-dirty" : head
    }

    func yaml(outputs: [String]) -> String {
        let blas = BLASRuntime.status ?? BLASRuntime.currentStatus()
        var status: [(key: String, value: YAMLValue)] = [("result", .string(error == nil ? "ok" : "error"))]
        if let error {
            status.append(("kind", .string(error.kind.rawValue)))
            status.append(("message", .string(error.message)))
            if Cluster.size > 1 { status.append(("rank", .int(Cluster.rank))) }
            if let f = error.file { status.append(("file", .string(f))) }
            if let l = error.line { status.append(("line", .int(l))) }
            if !error.traceback.isEmpty { status.append(("traceback", .string(error.traceback))) }
        }
        let endDate = end ?? Date()
        let pairs: [(key: String, value: YAMLValue)] = [
            ("semidpo", .string(SemidpoVersion.string)),
            ("recipe", .map([("path", .string(recipe)),
                             ("absolute_path", .string(RunContext(outputDirectory: recipe).outputDirectory)),
                             ("sha256", .string(recipeSHA256))])),
            ("args", .map(settings.map { ($0.key, (try? YAMLValue(any: $0.value)) ?? .null) })),
            ("settings", declaredSettings.map { d in .map(d.keys.sorted().map { ($0, (try? YAMLValue(any: d[$0])) ?? .null) }) } ?? .null),
            ("seed", .int(seed)),
            ("threads", .int(threads)),
        ]
        let mpi: [(key: String, value: YAMLValue)] = Cluster.size > 1 ? [("mpi_ranks", .int(Cluster.size))] : []
        let rest: [(key: String, value: YAMLValue)] = [
            ("git_commit", gitCommit.map { .string($0) } ?? .null),
            ("run_directory", .string(run.outputDirectory)),
            ("start", .string(Manifest.iso(start))),
            ("end", .string(Manifest.iso(endDate))),
            ("seconds", .float((endDate.timeIntervalSince(start) * 1000).rounded() / 1000)),
            ("status", .map(status)),
            ("blas", .map([("core", .string(blas.core)), ("kernels", .string(BLASRuntime.kernelClass(of: blas.core))), ("selection", .string(blas.selection)),
                           ("threads", .int(BLASRuntime.threads)), ("self_check", .string(blas.checkText)),
                           ("ftz_daz", .bool(blas.flushToZero))])),
            ("outputs", .seq(outputs.map { .string($0) })),
        ]
        return YAML.dump(.map(pairs + mpi + rest))
    }
}
