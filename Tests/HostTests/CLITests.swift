// `semidpo run` end to end (in process): typed --set, run directory, manifest on success and on
// failure, one-line errors for a missing recipe, a syntax error and a malformed --set.
import Foundation
import Testing
import Core
@testable import Host

/// A fresh temporary directory.
func tempDir() -> String {
    let d = FileManager.default.temporaryDirectory.appendingPathComponent("semidpo-test-\(UInt32.random(in: 0...UInt32.max))").path
    try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

/// Runs `code` as a recipe file and returns (status, stderr lines, manifest).
func runRecipe(_ code: String, settings: [String] = [], name: String = "recipe.lua") throws -> (Int32, [String], YAMLValue?) {
    let dir = tempDir()
    let recipe = dir + "/" + name
    try code.write(toFile: recipe, atomically: true, encoding: .utf8)
    var errs: [String] = []
    let status = RecipeRunner.run(.init(recipe: recipe, settings: settings, out: dir + "/out", seed: 7),
                                  errors: { errs.append($0) })
    let manifest = try? YAML.load(path: dir + "/out/manifest.yaml")
    return (status, errs, manifest)
}

@Suite struct CLITests {
    @Test func settingsAreTyped() throws {
        #expect(try Settings.parse("steps=5").value as? Int == 5)
        #expect(try Settings.parse("lr=1e-3").value as? Double == 0.001)
        #expect(try Settings.parse("beta=2500.0").value as? Double == 2500)
        #expect(try Settings.parse("on=true").value as? Bool == true)
        #expect(try Settings.parse("name=abc").value as? String == "abc")
        #expect(try Settings.parse("n='5'").value as? String == "5")
        #expect(try Settings.parse("empty=").value as? String == "")
        #expect(try Settings.parse("train.steps=3").key == "train.steps")
        #expect(throws: CoreError.self) { try Settings.parse("noequals") }
        #expect(throws: CoreError.self) { try Settings.parse("=5") }
        #expect(throws: CoreError.self) { try Settings.parse("bad key=5") }
        #expect(try Settings.parseAll(["a=1", "a=2"]).map { $0.value as? Int } == [2])
    }

    @Test func successfulRunWritesManifest() throws {
        let (status, errs, manifest) = try runRecipe("""
            local a = semidpo.args
            assert(a.steps == 5 and math.type(a.steps) == 'integer')
            assert(a.lr == 0.001 and a.flag == true and a.name == 'x')
            assert(semidpo.seed == 7)
            semidpo.write_text('result.txt', 'ok')
            """, settings: ["steps=5", "lr=1e-3", "flag=true", "name=x"])
        #expect(status == 0, "\(errs)")
        let m = try #require(manifest)
        #expect(m["status"]?["result"] == .string("ok"))
        #expect(m["seed"] == .int(7))
        #expect(m["args"]?["steps"] == .int(5))
        #expect(m["outputs"] == .seq([.string("result.txt")]))
        #expect(m["recipe"]?["sha256"]?.stringValue?.count == 64)
        #expect(m["blas"]?["core"]?.stringValue?.isEmpty == false)
    }

    @Test func runtimeErrorReportsFileLineAndManifest() throws {
        let (status, errs, manifest) = try runRecipe("local x = 1\n\nlocal t = semidpo.yaml.decode(x)\n")
        #expect(status == 1)
        #expect(errs.first?.hasPrefix("recipe.lua:3: bad argument #1 to 'decode' (expected string, got number)") == true
                || errs.first?.contains("/recipe.lua:3: bad argument #1 to 'decode' (expected string, got number)") == true,
                "\(errs)")
        #expect(errs.first?.contains("stack traceback:") == true)
        let m = try #require(manifest)
        #expect(m["status"]?["result"] == .string("error"))
        #expect(m["status"]?["line"] == .int(3))
    }

    @Test func syntaxErrorIsOneLine() throws {
        let (status, errs, manifest) = try runRecipe("local a = 1\nlocal b = = 2\n")
        #expect(status == 1)
        #expect(errs.count == 1)
        #expect(errs[0].hasSuffix("recipe.lua:2: unexpected symbol near '='"), "\(errs)")
        #expect(manifest?["status"]?["kind"] == .string("syntax"))
    }

    @Test func undefinedGlobalFailsTheRun() throws {
        let (status, errs, _) = try runRecipe("local model = 1\nprint(modle)\n")
        #expect(status == 1)
        #expect(errs.first?.hasSuffix("recipe.lua:2: undefined global 'modle'") == true
                || errs.first?.contains("recipe.lua:2: undefined global 'modle'\n") == true, "\(errs)")
    }

    @Test func commandLineErrorsAreOneLine() throws {
        var errs: [String] = []
        #expect(RecipeRunner.run(.init(recipe: "/nonexistent/r.lua"), errors: { errs.append($0) }) == 2)
        #expect(errs == ["semidpo: recipe not found: /nonexistent/r.lua"])
        errs = []
        #expect(RecipeRunner.run(.init(recipe: "/nonexistent/r.lua", settings: ["oops"]), errors: { errs.append($0) }) == 2)
        #expect(errs == ["semidpo: malformed --set 'oops': expected key=value"])
    }

    @Test func yamlAndProgressFromLua() throws {
        let dir = tempDir()
        try "model:\n  beta: 2500\n  steps: [1, 2]\n".write(toFile: dir + "/c.yaml", atomically: true, encoding: .utf8)
        let (status, errs, manifest) = try runRecipe("""
            local c = semidpo.yaml.load('\(dir)/c.yaml')
            assert(c.model.beta == 2500 and c.model.steps[2] == 2)
            local text = semidpo.yaml.dump({b = {1, 2}, a = 'yes'})
            assert(text == 'a: "yes"\\nb:\\n  - 1\\n  - 2\\n', text)
            local p = semidpo.progress(3, 'x')
            for i = 1, 3 do p:advance() end
            p:finish()
            local ok, err = pcall(semidpo.yaml.decode, 'a: [1', 'inline.yaml')
            assert(not ok and err:find('inline.yaml:%d+:%d+: '), err)
            """)
        #expect(status == 0, "\(errs)")
        #expect(manifest?["status"]?["result"] == .string("ok"))
    }

    @Test func versionReportNamesCoreAndCheck() {
        let lines = VersionCommand.report()
        #expect(lines[0] == "semidpo \(SemidpoVersion.string)")
        #expect(lines.contains { $0.hasPrefix("BLAS core:") })
        #expect(lines.contains { $0.hasPrefix("self-check:    passed") })
    }
}
