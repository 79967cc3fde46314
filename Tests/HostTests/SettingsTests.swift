// Declared recipe settings (`semidpo.settings`): typed --set, unknown keys with a suggestion, wrong
// types naming the key, nested groups, YAML declarations, --help-settings, and undeclared --set.
import Foundation
import Testing
import Core
@testable import Host

/// Runs a recipe with `--set` values and returns (status, stderr, stdout-free manifest).
private func run(_ code: String, _ settings: [String] = [], help: Bool = false, files: [String: String] = [:]) throws -> (Int32, String, YAMLValue?) {
    let dir = tempDir()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    for (name, text) in files { try text.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8) }
    let recipe = dir + "/recipe.lua"
    try code.replacingOccurrences(of: "DIR", with: dir).write(toFile: recipe, atomically: true, encoding: .utf8)
    var errs: [String] = []
    let status = RecipeRunner.run(.init(recipe: recipe, settings: settings, out: dir + "/out", seed: 0, helpSettings: help),
                                  errors: { errs.append($0) })
    return (status, errs.joined(separator: "\n"), try? YAML.load(path: dir + "/out/manifest.yaml"))
}

private let declaration = """
local S = semidpo.settings{ steps = 200, lr = 2e-5, name = "x", flag = false, committee = {"clip", "hps"},
                            sizes = {1, 2}, guard = { floor = 0.7, raise_to = 90 }, resume = semidpo.optional("string") }

"""

@Suite struct SettingsTests {
    @Test func setValuesAreTypedByTheDeclaration() throws {
        let (status, errs, manifest) = try run(declaration + """
            assert(S.steps == 5 and math.type(S.steps) == "integer", "steps")
            assert(S.lr == 3 and math.type(S.lr) == "float", "lr: an integer text for a number setting is a float")
            assert(S.name == "007", "a string setting keeps the text")
            assert(S.flag == true)
            assert(#S.committee == 3 and S.committee[3] == "pickscore")
            assert(S.sizes[2] == 4 and math.type(S.sizes[2]) == "integer")
            assert(S.guard.floor == 0.65 and S.guard.raise_to == 90)
            assert(S.resume == nil)
            """, ["steps=5", "lr=3", "name=007", "flag=true", "committee=clip,hps,pickscore", "sizes=3,4", "guard.floor=0.65"])
        #expect(status == 0, "\(errs)")
        #expect(manifest?["settings"]?["guard.floor"] == .float(0.65))
        #expect(manifest?["settings"]?["steps"] == .int(5))
    }

    @Test func defaultsWithoutSet() throws {
        let (status, errs, _) = try run(declaration + """
            assert(S.steps == 200 and S.lr == 2e-5 and S.guard.raise_to == 90 and S.committee[1] == "clip")
            """)
        #expect(status == 0, "\(errs)")
    }

    @Test func unknownKeyFailsBeforeAnyWorkWithASuggestion() throws {
        let (status, errs, _) = try run(declaration + "semidpo.write_text('work.txt', 'done')\n", ["stpes=1000"])
        #expect(status == 1)
        #expect(errs.contains("recipe.lua:1: unknown setting 'stpes' (did you mean 'steps'?)"), "\(errs)")
        let (_, far, _) = try run(declaration, ["zzzzzzzz=1"])
        #expect(far.contains("unknown setting 'zzzzzzzz' (known: committee, flag, guard.floor, guard.raise_to, lr, name, resume, sizes, steps)"), "\(far)")
        let (_, group, _) = try run(declaration, ["guard=1"])
        #expect(group.contains("setting 'guard' is a group: set guard.floor, guard.raise_to"), "\(group)")
        let (_, nested, _) = try run(declaration, ["guard.flor=0.6"])
        #expect(nested.contains("unknown setting 'guard.flor' (did you mean 'guard.floor'?)"), "\(nested)")
    }

    @Test func wrongTypeNamesTheKeyAndValue() throws {
        #expect(try run(declaration, ["steps=2.5"]).1.contains("setting 'steps' expects an integer, got '2.5'"))
        #expect(try run(declaration, ["steps=abc"]).1.contains("setting 'steps' expects an integer, got 'abc'"))
        #expect(try run(declaration, ["lr=fast"]).1.contains("setting 'lr' expects a number, got 'fast'"))
        #expect(try run(declaration, ["flag=yes"]).1.contains("setting 'flag' expects a boolean, got 'yes'"))
        #expect(try run(declaration, ["sizes=1,x"]).1.contains("setting 'sizes' expects a list of integers, got '1,x'"))
        // An integral number for an integer setting is accepted.
        #expect(try run(declaration + "assert(S.steps == 1000 and math.type(S.steps) == 'integer')", ["steps=1e3"]).0 == 0)
    }

    @Test func readingAnUndeclaredKeyFails() throws {
        let (status, errs, _) = try run(declaration + "local x = S.stepz\n")
        #expect(status == 1)
        #expect(errs.contains("unknown setting 'stepz' (did you mean 'steps'?)"), "\(errs)")
        let (_, nested, _) = try run(declaration + "local x = S.guard.flor\n")
        #expect(nested.contains("unknown setting 'guard.flor' (did you mean 'guard.floor'?)"), "\(nested)")
    }

    @Test func yamlDeclarationAndSecondCall() throws {
        let yaml = "steps: 10\nguard:\n  floor: 0.7\nbaseline_steps: ~\nmembers: [a, b]\n"
        let (status, errs, _) = try run("""
            local S = semidpo.settings("DIR/s.yaml")
            assert(S.steps == 3 and S.guard.floor == 0.7 and S.baseline_steps == 12 and S.members[2] == "b")
            """, ["steps=3", "baseline_steps=12"], files: ["s.yaml": yaml])
        #expect(status == 0, "\(errs)")
        let (_, twice, _) = try run("semidpo.settings{a = 1}\nsemidpo.settings{b = 1}\n")
        #expect(twice.contains("recipe.lua:2: semidpo.settings was already called ("), "\(twice)")
        #expect(try run("semidpo.settings{a = function() end}\n").1.contains("setting 'a': a default must be"))
    }

    @Test func helpSettingsListsAndStops() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let recipe = dir + "/recipe.lua"
        try (declaration + "error('the recipe went past its settings')\n").write(toFile: recipe, atomically: true, encoding: .utf8)
        var errs: [String] = []
        let status = RecipeRunner.run(.init(recipe: recipe, out: dir + "/out", helpSettings: true), errors: { errs.append($0) })
        #expect(status == 0, "\(errs)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/out"), "--help-settings leaves no run directory")
        // The listing itself: the binding's helper, checked directly.
        let lua = LuaState(run: RunContext(outputDirectory: dir))
        lua.commandSettings = CommandSettings(helpOnly: true)
        #expect(throws: LuaError.self) { try lua.runString(declaration, name: "@recipe.lua") }
        let text = try #require(lua.commandSettings?.helpText)
        #expect(text.contains("  guard.floor     number            0.7\n"), "\(text)")
        #expect(text.contains("  committee       list of strings   clip,hps\n"), "\(text)")
        #expect(text.contains("  resume          string            (unset)\n"), "\(text)")
        #expect(text.contains("  steps           integer           200\n"), "\(text)")
    }

    @Test func setWithoutDeclarationFailsUnlessArgsAreRead() throws {
        let (status, errs, _) = try run("semidpo.write_text('x.txt', 'x')\n", ["steps=5"])
        #expect(status == 1)
        #expect(errs.contains("--set steps: the recipe declares no settings and never reads semidpo.args"), "\(errs)")
        #expect(try run("assert(semidpo.args.steps == 5)\n", ["steps=5"]).0 == 0)
        #expect(try run("semidpo.write_text('x.txt', 'x')\n", ["cache=/tmp/c"]).0 == 0, "cache is always accepted")
    }

    @Test func editDistanceAndSuggestions() {
        #expect(editDistance("stpes", "steps") == 1)
        #expect(editDistance("", "abc") == 3)
        #expect(editDistance("kitten", "sitting") == 3)
        #expect(unknownSettingMessage("lrr", ["lr", "steps"]) == "unknown setting 'lrr' (did you mean 'lr'?)")
    }
}
