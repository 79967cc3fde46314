// YAML decoding (typed scalars, anchors, merge keys), error positions, and dump/decode round trips.
import Testing
@testable import Core

@Suite struct YAMLTests {
    @Test func typedScalars() throws {
        let v = try YAML.decode("""
            int: 42
            neg: -7
            hex: 0x1F
            octal: 017
            float: 0.5
            exp: 1e-3
            inf: .inf
            yes: yes
            off: off
            t: True
            null1: ~
            null2:
            quoted_int: "42"
            quoted_bool: 'true'
            text: hello world
            """)
        #expect(v["int"] == .int(42))
        #expect(v["neg"] == .int(-7))
        #expect(v["hex"] == .int(31))
        #expect(v["octal"] == .int(15))
        #expect(v["float"] == .float(0.5))
        #expect(v["exp"] == .float(0.001))
        #expect(v["inf"] == .float(.infinity))
        #expect(v["yes"] == .bool(true))
        #expect(v["off"] == .bool(false))
        #expect(v["t"] == .bool(true))
        #expect(v["null1"] == .null)
        #expect(v["null2"] == .null)
        #expect(v["quoted_int"] == .string("42"))
        #expect(v["quoted_bool"] == .string("true"))
        #expect(v["text"] == .string("hello world"))
    }

    @Test func orderAnchorsAndMerge() throws {
        let v = try YAML.decode("""
            defaults: &d {beta: 2500, steps: 10}
            run:
              <<: *d
              steps: 20
            list: [1, two, 3.0]
            """)
        guard case .map(let top) = v else { Issue.record("not a map"); return }
        #expect(top.map(\.key) == ["defaults", "run", "list"])
        #expect(v["run"]?["steps"] == .int(20))
        #expect(v["run"]?["beta"] == .int(2500))
        #expect(v["list"] == .seq([.int(1), .string("two"), .float(3)]))
    }

    @Test func errorsHaveFileLineColumn() {
        do {
            _ = try YAML.decode("a: 1\nb: [1, 2\nc: 3\n", file: "cfg.yaml")
            Issue.record("no error")
        } catch let e as CoreError {
            #expect(e.message.hasPrefix("cfg.yaml:3:"), "\(e.message)")
        } catch { Issue.record("\(error)") }
        do {
            _ = try YAML.decode("a: 1\n  b: 2\n", file: "cfg.yaml")
            Issue.record("no error")
        } catch let e as CoreError {
            #expect(e.message.hasPrefix("cfg.yaml:2:4: mapping values are not allowed"), "\(e.message)")
        } catch { Issue.record("\(error)") }
        do {
            _ = try YAML.decode("a: 1\na: 2\n", file: "dup.yaml")
            Issue.record("no error")
        } catch let e as CoreError {
            #expect(e.message == "dup.yaml:2:1: duplicate key 'a'")
        } catch { Issue.record("\(error)") }
        #expect(throws: CoreError.self) { try YAML.load(path: "/nonexistent/x.yaml") }
    }

    @Test func roundTrip() throws {
        let v: YAMLValue = .map([
            ("name", .string("semi-dpo")),
            ("tricky", .seq([.string("yes"), .string("42"), .string(""), .string("a: b"), .string("- x"),
                             .string("line\nbreak"), .string(" padded "), .string("#hash"), .string("1e-3")])),
            ("numbers", .seq([.int(-3), .float(0.25), .float(1e-12), .float(-.infinity), .float(.nan)])),
            ("nested", .seq([.map([("a", .int(1)), ("b", .seq([.bool(true), .null]))]), .seq([.int(1), .int(2)])])),
            ("empty_map", .map([])),
            ("empty_seq", .seq([])),
            ("unicode", .string("ε-prediction ≥ 0")),
        ])
        let text = YAML.dump(v)
        #expect(try YAML.decode(text) == v, "\(text)")
        #expect(YAML.dump(.int(3)) == "3\n")
    }

    @Test func fromSwiftValues() throws {
        let v = try YAMLValue(any: ["b": 1, "a": [1.5, "x", true]] as [String: Any])
        #expect(YAML.dump(v) == "a:\n  - 1.5\n  - x\n  - true\nb: 1\n")
    }
}

@Suite struct SupportTests {
    @Test func sha256KnownVectors() {
        // Digests from FIPS 180-4's examples (also `printf abc | sha256sum`).
        #expect(SHA256.hex(Array("".utf8)) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    @Test func progressPlainLines() {
        var lines: [String] = []
        let p = ProgressBar(total: 10, label: "train", terminal: false, output: { lines.append($0) })
        for _ in 0..<10 { p.advance() }
        p.finish()
        p.finish()
        #expect(lines.count == 1)  // no periodic line within 2 s, one final line
        #expect(lines[0].hasPrefix("train: 10/10 (100%)"))
        #expect(lines[0].hasSuffix("(done)\n"))
        #expect(p.statusText(elapsed: 4).contains("2.50/s"))
    }

    @Test func progressTerminalBar() {
        var out = ""
        let p = ProgressBar(total: 4, label: "x", terminal: true, output: { out += $0 })
        p.advance(by: 2)
        p.finish()
        #expect(out.contains("[############------------] x: 2/4 (50%)"))
        #expect(out.hasSuffix("\n"))
    }

    @Test func runContextResolvesAndRecords() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rc-\(UInt32.random(in: 0...UInt32.max))").path
        let run = RunContext(outputDirectory: dir)
        try run.writeText("hi", to: "sub/a.txt")
        run.recordOutput("/elsewhere/b.txt")
        #expect(run.recordedOutputs == ["sub/a.txt", "/elsewhere/b.txt"])
        #expect(try String(contentsOfFile: dir + "/sub/a.txt", encoding: .utf8) == "hi")
        #expect(run.resolve("../x") == RunContext(outputDirectory: dir + "/..").outputDirectory + "/x")
    }

    @Test func blasSelfCheckPasses() {
        let r = BLASRuntime.selfCheck()
        #expect(r.passed, "max error \(r.maxError)")
        #expect(BLASRuntime.isAcceptable(detected: "Zen", for: "Haswell"))
        #expect(!BLASRuntime.isAcceptable(detected: "Prescott", for: "Haswell"))
        #expect(!BLASRuntime.isAcceptable(detected: "Haswell", for: "SkylakeX"))
    }
}

import Foundation
