// `semidpo run RECIPE.lua [--set key=value ...] [--out DIR] [--seed N] [--threads N]`.
import ArgumentParser
import Core

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a Lua recipe.",
        discussion: """
            A recipe declares its settings with semidpo.settings{…} (defaults give the types); --set \
            values are converted to those types, and an undeclared key or a value of the wrong type fails \
            the run before any work. --help-settings lists the declared settings and stops. A recipe that \
            declares none reads raw values from semidpo.args (typed: 5 an integer, 0.5 a number, \
            true/false booleans, else a string); --set keys that such a recipe never reads fail the run. \
            The recipe also sees semidpo.seed, semidpo.threads and semidpo.out (the run directory). Files the recipe writes \
            with relative paths land in the run directory, which also gets a manifest.yaml (recipe and \
            its sha256, settings, seed, threads, git commit, times, exit status, BLAS core, files written), \
            also when the recipe fails.

            Exit status: 0 success, 1 recipe error (message with recipe.lua:LINE and a traceback), \
            2 bad command line (missing recipe, malformed --set, unusable --out).
            """)

    @Argument(help: "The recipe file (Lua 5.4).")
    var recipe: String

    @Option(name: .customLong("set"), help: ArgumentHelp("Set the declared setting KEY to VALUE (repeatable; group.key for nested settings).", valueName: "key=value"))
    var settings: [String] = []

    @Flag(name: .customLong("help-settings"), help: "List the settings the recipe declares (with types and defaults) and stop.")
    var helpSettings = false

    @Option(name: .long, help: ArgumentHelp("Run directory (default: runs/<recipe>-<YYYYmmdd-HHMMSS>/).", valueName: "dir"))
    var out: String?

    @Option(name: .long, help: "Random seed, visible as semidpo.seed.")
    var seed: Int = 0

    @Option(name: .long, help: "Engine threads (default: all cores; OpenBLAS itself runs single-threaded), visible as semidpo.threads. Results are identical for a given thread count.")
    var threads: Int?

    func run() throws {
        let options = RecipeRunner.Options(recipe: recipe, settings: settings, out: out, seed: seed, threads: threads,
                                             helpSettings: helpSettings)
        let status = RecipeRunner.run(options)
        if status != 0 { throw ExitCode(status) }
    }
}
