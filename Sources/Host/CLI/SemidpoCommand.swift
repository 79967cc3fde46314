// The `semidpo` command: the root and its list of subcommands.
// To add a subcommand, write `XCommand.swift` here and append it to `SemidpoCommand.subcommandList`.
import ArgumentParser
import Core

struct SemidpoCommand: ParsableCommand {
    /// Every subcommand, in the order `--help` lists them.
    static let subcommandList: [ParsableCommand.Type] = [
        RunCommand.self,
        VersionCommand.self,
        BenchCommand.self,
    ]

    static let configuration = CommandConfiguration(
        commandName: "semidpo",
        abstract: "Run Semi-DPO experiments written as Lua recipes.",
        discussion: """
            A recipe is a Lua file that calls the `semidpo` API: build or load preference data, score it \
            with a reward committee, train with Diffusion-DPO, pseudo-label, evaluate and write tables. \
            Each run writes into its own directory with a manifest.yaml.

            Examples:
              semidpo run recipes/quickstart.lua
              semidpo run recipes/quickstart.lua --set steps=200 --set beta=2500 --seed 3
              semidpo version --gemm-bench

            Docs: docs/recipes.md (recipe API), docs/architecture.md (how it fits together).
            """,
        version: SemidpoVersion.string,
        subcommands: subcommandList)
}

/// Writes a line to stderr.
func printError(_ s: String) {
    FileHandle.standardErrorWrite(s + "\n")
}

import Foundation
extension FileHandle {
    static func standardErrorWrite(_ s: String) { FileHandle.standardError.write(Data(s.utf8)) }
}
