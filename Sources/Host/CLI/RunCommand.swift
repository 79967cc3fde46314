// `semidpo run RECIPE.lua [--set key=value ...] [--out DIR] [--seed N] [--threads N]`.
import ArgumentParser
import Core

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a Lua recipe.",
        discussion: """
            The recipe sees its settings as semidpo.args (typed: 5 is an integer, 0.5 and 1e-3 numbers, \
            true/false booleans, anything else a string; quote a value to keep it a string), and \
            semidpo.seed, semidpo.threads and semidpo.out (the run directory). Files the recipe writes \
            with relative paths land in the run directory, which also gets a manifest.yaml (recipe and \
            its sha256, settings, seed, threads, git commit, times, exit status, BLAS core, files written), \
            also when the recipe fails.

            Exit status: 0 success, 1 recipe error (message with recipe.lua:LINE and a traceback), \
            2 bad command line (missing recipe, malformed --set, unusable --out).
            """)

    @Argument(help: "The recipe file (Lua 5.4).")
    var recipe: String

    @Option(name: .customLong("set"), help: ArgumentHelp("Set semidpo.args.KEY to VALUE (repeatable).", valueName: "key=value"))
    var settings: [String] = []

    @Option(name: .long, help: ArgumentHelp("Run directory (default: runs/<recipe>-<YYYYmmdd-HHMMSS>/).", valueName: "dir"))
    var out: String?

    @Option(name: .long, help: "Random seed, visible as semidpo.seed.")
    var seed: Int = 0

    @Option(name: .long, help: "Engine threads (default: all cores; OpenBLAS itself runs single-threaded), visible as semidpo.threads. Results are identical for a given thread count.")
    var threads: Int?

    func run() throws {
        let options = RecipeRunner.Options(recipe: recipe, settings: settings, out: out, seed: seed, threads: threads)
        let status = RecipeRunner.run(options)
        if status != 0 { throw ExitCode(status) }
    }
}
