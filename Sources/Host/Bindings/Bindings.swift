// The list of bound areas and the protocol each binding file implements (LÖVE's wrap_*.cpp).
// To add an area: write `Sources/Host/Bindings/XBindings.swift` and append it to `Bindings.all`.

/// One bound area: a table of functions placed in `semidpo` (module nil) or `semidpo.<module>`.
public protocol LuaBindings {
    /// The submodule name (`"yaml"` → `semidpo.yaml`), or nil for `semidpo` itself.
    static var module: String? { get }
    /// The functions, by Lua-facing name.
    static var functions: [LuaFunction] { get }
    /// Registers the functions (and any fields) in `lua`. The default registers `functions`.
    static func register(_ lua: LuaState)
}

extension LuaBindings {
    public static func register(_ lua: LuaState) { lua.register(module: module, functions) }
}

public enum Bindings {
    /// Every area registered in a recipe's state, in order.
    public static let all: [LuaBindings.Type] = [
        RunBindings.self,
        YAMLBindings.self,
        ProgressBindings.self,
        PreferenceBindings.self,
        WorldBindings.self,
        DiffusionBindings.self,
        CommitteeBindings.self,
        RewardBindings.self, RewardCommitteeBindings.self,
        PseudoLabelBindings.self,
        MeasureBindings.self,
        TensorBindings.self,
        EvalBindings.self,
        StatsBindings.self, EvalIntervalBindings.self,
        StageBindings.self,
        SettingsBindings.self,
        OnlineBindings.self,
        MPIBindings.self,
    ]
}
