// Shared by the host tests that drive a tiny diffusion model through Lua.
import Foundation
import Core
@testable import Host

/// A tiny 16×16 UNet config as the Lua table `tiny` (the oracle scores 16×16 images), over the
/// world's vocabulary.
let tinyUNetLua = """
local tiny = {image_size = 16, channels = {8, 16}, res_blocks = 1, attention_resolutions = {8}, attention_heads = 2,
              norm_groups = 4, time_dimension = 8, embedding_dimension = 16, text_dimension = 16, text_heads = 2,
              text_mlp_ratio = 2}

"""

/// A Lua state with every binding, writing into `dir`, globals guarded as `semidpo run` does.
func bindingsState(_ dir: String) throws -> LuaState {
    let lua = LuaState(run: RunContext(outputDirectory: dir), bindings: Bindings.all)
    try lua.guardGlobals()
    return lua
}

/// The Lua error `code` raises in a fresh state (nil if it runs).
func bindingsError(_ code: String, name: String) -> LuaError? {
    let dir = tempDir()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    guard let lua = try? bindingsState(dir) else { return nil }
    do { _ = try lua.runString(code, name: name) } catch let e as LuaError { return e } catch { return nil }
    return nil
}
