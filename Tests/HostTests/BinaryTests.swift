// The built `semidpo` executable as a subprocess: exit statuses and stderr of `run` and `version`.
import Foundation
import Testing

/// The `semidpo` executable next to the test bundle (built by `swift build`/`swift test`), if any.
let semidpoBinary: String? = {
    var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<3 {
        let candidate = dir.appendingPathComponent("semidpo").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        dir = dir.deletingLastPathComponent()
    }
    return nil
}()

/// Runs the binary and returns (exit status, stdout, stderr).
func runBinary(_ args: [String], cwd: String) throws -> (Int32, String, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: semidpoBinary!)
    p.arguments = args
    p.currentDirectoryURL = URL(fileURLWithPath: cwd)
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

@Suite(.enabled(if: semidpoBinary != nil, "the semidpo executable is not built next to the tests"))
struct BinaryTests {
    @Test func runtimeErrorExitsOneWithPosition() throws {
        let dir = tempDir()
        try "local x = 1\nerror('broken on purpose')\n".write(toFile: dir + "/bad.lua", atomically: true, encoding: .utf8)
        let (status, _, err) = try runBinary(["run", "bad.lua", "--out", "o"], cwd: dir)
        #expect(status == 1)
        #expect(err.hasPrefix("bad.lua:2: broken on purpose\nstack traceback:"), "\(err)")
        let manifest = try String(contentsOfFile: dir + "/o/manifest.yaml", encoding: .utf8)
        #expect(manifest.contains("result: error"))
    }

    @Test func syntaxErrorAndMissingRecipe() throws {
        let dir = tempDir()
        try "local = 3\n".write(toFile: dir + "/syn.lua", atomically: true, encoding: .utf8)
        let (s1, _, e1) = try runBinary(["run", "syn.lua", "--out", "o"], cwd: dir)
        #expect(s1 == 1)
        #expect(e1 == "syn.lua:1: <name> expected near '='\n")
        let (s2, _, e2) = try runBinary(["run", "missing.lua"], cwd: dir)
        #expect(s2 == 2)
        #expect(e2 == "semidpo: recipe not found: missing.lua\n")
        let (s3, _, e3) = try runBinary(["run", "syn.lua", "--set", "x"], cwd: dir)
        #expect(s3 == 2)
        #expect(e3 == "semidpo: malformed --set 'x': expected key=value\n")
    }

    @Test func defaultRunDirectory() throws {
        let dir = tempDir()
        try "semidpo.write_text('x.txt', tostring(semidpo.args.k))\n".write(toFile: dir + "/r.lua", atomically: true, encoding: .utf8)
        let (status, _, err) = try runBinary(["run", "r.lua", "--set", "k=2.5"], cwd: dir)
        #expect(status == 0, "\(err)")
        let runs = try FileManager.default.contentsOfDirectory(atPath: dir + "/runs")
        #expect(runs.count == 1 && runs[0].hasPrefix("r-"))
        #expect(try String(contentsOfFile: dir + "/runs/\(runs[0])/x.txt", encoding: .utf8) == "2.5")
    }

    @Test func versionAndHelp() throws {
        let (status, out, _) = try runBinary(["version"], cwd: tempDir())
        #expect(status == 0)
        #expect(out.contains("self-check:    passed"))
        #expect(out.contains("BLAS core:"))
        let (hs, help, _) = try runBinary(["run", "--help"], cwd: tempDir())
        #expect(hs == 0)
        #expect(help.contains("--set <key=value>"))
    }
}
