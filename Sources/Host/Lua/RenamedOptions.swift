// Options renamed by issue 15's one vocabulary: an old name fails naming the new one (no silent
// aliases), and every `seed` option defaults to the run's seed.

/// Old option name → new name. `LuaArgs.options(_:allowed:)` consults it for a key that is not
/// allowed when the new name is: `option 'on_batch' was renamed to 'on_progress'`.
public let renamedOptions: [String: String] = [
    "on_batch": "on_progress",
    "on_step": "on_progress",
    "test": "test_fraction",
    "count": "limit",
    "prompts": "suite",
]

extension LuaArgs {
    /// The run's seed (`semidpo.seed`, from `--seed`; 0 outside a run): the default of every `seed` option.
    public var runSeed: Int {
        (try? lua.field("seed") as? Int) ?? 0
    }
}
