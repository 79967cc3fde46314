// The parsers on hostile input: YAML depth, alias and duplicate-key limits, invalid UTF-8, unknown
// tags; non-regular input files; and the fuzz seed corpus (fuzz/corpus) replayed through every parser.
import Foundation
import Testing
@testable import Core

/// The message of the CoreError `body` throws ("no error" if it returns, the error if another kind).
private func message(_ body: () throws -> Any) -> String {
    do { _ = try body(); return "no error" } catch let e as CoreError { return e.message } catch { return "\(error)" }
}

@Suite struct YAMLLimitsTests {
    @Test func deepNestingIsAnErrorWithAPosition() throws {
        // 10,000 '[' (a 20 KB file): the 257th opens level 257.
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(message { try YAML.decode(deep, file: "deep.yaml") } == "deep.yaml:1:257: nesting deeper than 256 levels")
        let block = (0..<300).map { String(repeating: " ", count: $0) + "k:" }.joined(separator: "\n") + " 1\n"
        #expect(message { try YAML.decode(block, file: "b.yaml") } == "b.yaml:257:257: nesting deeper than 256 levels")
        // Exactly 256 levels is fine.
        var v = try YAML.decode(String(repeating: "[", count: 256) + "1" + String(repeating: "]", count: 256))
        var levels = 0
        while case .seq(let items) = v { levels += 1; v = items[0] }
        #expect(levels == 256 && v == .int(1))
    }

    @Test func aliasesCannotNestPastTheLimit() {
        // An anchor 200 levels tall referenced 100 levels down would reach 300.
        let tall = String(repeating: "[", count: 200) + "1" + String(repeating: "]", count: 200)
        let text = "a: &t \(tall)\nb: " + String(repeating: "[", count: 99) + "*t" + String(repeating: "]", count: 99) + "\n"
        #expect(message { try YAML.decode(text, file: "n.yaml") } == "n.yaml:2:103: alias '*t' nests the document deeper than 256 levels")
    }

    @Test func billionLaughsFailsFast() throws {
        // 9 references per level: a = 10 nodes, b adds 9·10, c 9·91, d 9·820, e 9·7381, f 9·66430
        // (672,588 alias nodes so far); the first '*f' in g adds 597,871 more and passes 1,000,000.
        let levels = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"] + zip("bcdefghi", "abcdefgh").map { name, prev in
            "\(name): &\(name) [" + Array(repeating: "*\(prev)", count: 9).joined(separator: ", ") + "]"
        }
        let text = levels.joined(separator: "\n") + "\n"
        #expect(text.utf8.count < 400)
        let start = Date()
        #expect(message { try YAML.decode(text, file: "laughs.yaml") }
                == "laughs.yaml:7:8: aliases expand the document past 1000000 nodes (at '*f')")
        #expect(Date().timeIntervalSince(start) < 5)   // 10^9 nodes without the budget
        // Reusing anchors well below the budget is fine.
        #expect(try YAML.decode("a: &a [1, 2]\nb: [*a, *a]\n")["b"] == .seq([.seq([.int(1), .int(2)]), .seq([.int(1), .int(2)])]))
    }

    @Test func duplicateKeysAreFoundInLinearTime() {
        // 50,000 distinct keys, then a repeat of the first: 1.25·10^9 key comparisons with the old
        // O(n²) check (200,000 keys took > 25 s), well under a second now (docs/recipes.md).
        var bytes: [UInt8] = []
        bytes.reserveCapacity(600_000)
        for i in 0..<50_000 {
            bytes.append(UInt8(ascii: "k"))
            var digits = i
            let at = bytes.count
            repeat { bytes.insert(UInt8(48 + digits % 10), at: at); digits /= 10 } while digits > 0
            bytes.append(contentsOf: [0x3A, 0x20, 0x31, 0x0A])  // ": 1\n"
        }
        bytes.append(contentsOf: Array("k0: again\n".utf8))
        let start = Date()
        #expect(message { try YAML.decode(bytes: bytes, file: "many.yaml") } == "many.yaml:50001:1: duplicate key 'k0'")
        #expect(Date().timeIntervalSince(start) < 10)
        // A merged key does not clash with an explicit one; two merges of the same key keep the first.
        let merged = try? YAML.decode("a: &a {x: 1}\nb: &b {x: 2, y: 3}\nc:\n  <<: [*a, *b]\n  y: 4\n")
        #expect(merged?["c"] == .map([("y", .int(4)), ("x", .int(1))]))
    }

    @Test func invalidUTF8IsRejectedWithAPosition() throws {
        let bytes = Array("a: 1\nbé: ".utf8) + [0xFF, 0x0A]
        #expect(message { try YAML.decode(bytes: bytes, file: "bad.yaml") }
                == "bad.yaml:2:5: invalid UTF-8 (byte 0xFF); YAML text must be UTF-8")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("yaml-utf8-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(bytes).write(to: URL(fileURLWithPath: dir + "/bad.yaml"))
        #expect(message { try YAML.load(path: dir + "/bad.yaml") }
                == "\(dir)/bad.yaml:2:5: invalid UTF-8 (byte 0xFF); YAML text must be UTF-8")
    }

    @Test func unknownTagsAreErrorsOnEveryKindOfNode() throws {
        #expect(message { try YAML.decode("a: !!python/object:__main__.X {b: 1}\n", file: "t.yaml") }
                == "t.yaml:1:4: unsupported tag '!!python/object:__main__.X' on a mapping")
        #expect(message { try YAML.decode("- !!python/tuple [1, 2]\n", file: "t.yaml") }
                == "t.yaml:1:3: unsupported tag '!!python/tuple' on a sequence")
        #expect(message { try YAML.decode("x: !!python/object/apply:os.system ls\n", file: "t.yaml") }
                == "t.yaml:1:4: unsupported tag '!!python/object/apply:os.system' on a scalar")
        #expect(message { try YAML.decode("x: !local [1]\n", file: "t.yaml") } == "t.yaml:1:4: unsupported tag '!local' on a sequence")
        #expect(message { try YAML.decode("x: !!map [1]\n", file: "t.yaml") } == "t.yaml:1:4: unsupported tag '!!map' on a sequence")
        #expect(message { try YAML.decode("x: !!int abc\n", file: "t.yaml") } == "t.yaml:1:4: 'abc' is not a valid !!int")
        // The core collection tags and the non-specific '!' are accepted.
        #expect(try YAML.decode("a: !!seq [1]\nb: !!map {c: 2}\nd: ! [3]\n")
                == .map([("a", .seq([.int(1)])), ("b", .map([("c", .int(2))])), ("d", .seq([.int(3)]))]))
    }

    @Test func aSecondSignIsNotAnInteger() throws {
        // `-0x-8000000000000000` parsed the inner '-' too and negated Int.min (a trap).
        #expect(try YAML.decode("a: -0x-8000000000000000\nb: 0x-5\n")
                == .map([("a", .string("-0x-8000000000000000")), ("b", .string("0x-5"))]))
        #expect(message { try YAML.decode("c: !!int 0x-5\n", file: "s.yaml") } == "s.yaml:1:4: '0x-5' is not a valid !!int")
    }

    @Test func dumpKeepsACombiningMarkThatStartsAKey() throws {
        // Found by the yaml fuzz target (fuzz/corpus/yaml/regression-combining-mark-key.yaml): the
        // first key of a map inside a sequence lost a leading U+059D, which had joined the indent
        // space into one Character when the indent was dropped.
        let v: YAMLValue = .seq([.map([("\u{059D}beta", .int(3500)), ("steps", .int(10))])])
        #expect(YAML.dump(v) == "- \u{059D}beta: 3500\n  steps: 10\n")
        #expect(try YAML.decode(YAML.dump(v)) == v)
    }

    @Test func dumpWritesLongKeysExplicitly() throws {
        // Found by the yaml fuzz target (fuzz/corpus/yaml/regression-long-key.yaml): a key over 1,024
        // characters was written as `key: value`, which libyaml refuses to read back.
        let long = String(repeating: "k", count: 1500)
        let v: YAMLValue = .seq([.map([(long, .int(1)), ("b", .map([(long, .seq([.int(2)]))]))])])
        let text = YAML.dump(v)
        #expect(text == "- ? \(long)\n  : 1\n  b:\n    ? \(long)\n    :\n      - 2\n")
        #expect(try YAML.decode(text) == v)
    }

    @Test func dumpQuotesWhatWouldNotReadBack() throws {
        // Found by reading dump while writing the yaml fuzz target's round-trip check: a "<<" key
        // dumped plain read back as a merge key, "..." alone as a document end, and C1 controls,
        // U+2028 or a BOM were written raw (libyaml refuses or splits on them).
        let v: YAMLValue = .map([("<<", .int(1)), ("s", .string("a\u{85}b\u{2028}c\u{FEFF}d\u{80}e\u{FFFE}"))])
        let text = YAML.dump(v)
        #expect(text == "\"<<\": 1\ns: \"a\\x85b\\u2028c\\uFEFFd\\x80e\\uFFFE\"\n")
        #expect(try YAML.decode(text) == v)
        #expect(YAML.dump(.string("...")) == "\"...\"\n")   // "..." alone ends a document
        #expect(try YAML.decode(YAML.dump(.string("..."))) == .string("..."))
    }
}

@Suite struct InputFileTests {
    @Test func nonRegularFilesAreRefusedBeforeOpening() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("inputfile-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fifo = dir + "/pipe"
        #expect(mkfifo(fifo, 0o600) == 0)
        // Each of these blocked forever in open() on a FIFO with no writer.
        #expect(message { try YAML.load(path: fifo) } == "cannot read YAML file \(fifo): it is a FIFO (named pipe), not a regular file")
        #expect(message { try JSON.parse(file: fifo) } == "cannot read input file \(fifo): it is a FIFO (named pipe), not a regular file")
        #expect(message { try JSONL.read(file: fifo) } == "cannot read input file \(fifo): it is a FIFO (named pipe), not a regular file")
        #expect(message { try SafetensorsFile(path: fifo) } == "cannot read safetensors file \(fifo): it is a FIFO (named pipe), not a regular file")
        #expect(message { try ScoreTable.read(path: fifo) } == "cannot read input file \(fifo): it is a FIFO (named pipe), not a regular file")
        #expect(message { try SHA256.hex(fileAt: fifo) } == "cannot read input file \(fifo): it is a FIFO (named pipe), not a regular file")
        #expect(message { try YAML.load(path: "/dev/null") } == "cannot read YAML file /dev/null: it is a character device, not a regular file")
        #expect(message { try SafetensorsFile(path: dir) } == "cannot read safetensors file \(dir): it is a directory, not a regular file")
        // A symbolic link to a regular file is fine; a missing file keeps the reader's own message.
        try "a: 1\n".write(toFile: dir + "/c.yaml", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: dir + "/link.yaml", withDestinationPath: dir + "/c.yaml")
        #expect(try YAML.load(path: dir + "/link.yaml") == .map([("a", .int(1))]))
        #expect(message { try YAML.load(path: dir + "/missing.yaml") } == "cannot read \(dir)/missing.yaml: no such file")
    }
}

@Suite struct FuzzCorpusTests {
    /// fuzz/corpus/<target>/ in this checkout.
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("fuzz/corpus").path

    @Test(arguments: ParserFuzz.Target.allCases)
    func corpusReplaysWithoutCrashing(_ target: ParserFuzz.Target) throws {
        let dir = FuzzCorpusTests.corpus + "/" + target.rawValue
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(files.count >= 8, "seed corpus \(dir)")
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-replay-\(UInt32.random(in: 0...UInt32.max)).\(target.rawValue)").path
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        var parsed = 0
        for f in files {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + f))
            let outcome = bytes.withUnsafeBytes { ParserFuzz.run(target, $0, scratch: scratch) }
            for v in outcome.violations { Issue.record("\(target)/\(f): \(v)") }
            if outcome.errors.count < outcome.attempts { parsed += 1 }
        }
        // Some seeds are read by a parser of the target, others refused by all: both kinds exist.
        #expect(parsed >= 1 && parsed < files.count, "\(target): \(parsed) of \(files.count) parsed cleanly")
    }
}
