// Stage keys (semidpo.stage): the canonical text of settings and inputs on a hand-worked example, and
// that changing any setting or input file changes the key.
import Foundation
import Testing
@testable import Core

@Suite struct StageKeyTests {
    @Test func canonicalTextSortsKeysAndSeparatesNumbersFromStrings() throws {
        // Keys sorted at every level, no spaces; 2500.0 prints as an integer, 2e-5 in shortest form;
        // the string "1" stays quoted.
        let settings: [String: Any] = ["nested": ["b": "1", "a": true] as [String: Any], "lr": 2e-5, "beta": 2500.0,
                                       "members": ["clip", "hps"]]
        #expect(try StageKey.canonical(settings) == #"{"beta":2500,"lr":2e-05,"members":["clip","hps"],"nested":{"a":true,"b":"1"}}"#)
        #expect(try StageKey.canonical(["x": 1]) == (try StageKey.canonical(["x": 1.0])))
        #expect(try StageKey.canonical(["x": 1]) != (try StageKey.canonical(["x": "1"])))
        #expect(try StageKey.canonical(["b": 1, "a": 2]) == #"{"a":2,"b":1}"#)
        #expect(try StageKey.canonical([3, 1, 2]) == "[3,1,2]")   // lists keep their order
        #expect(throws: CoreError.self) { try StageKey.canonical(["x": Double.nan]) }
    }

    @Test func keyOfAHandWorkedExample() throws {
        let settings: [String: Any] = ["beta": 2500, "lr": 2e-5, "members": ["clip", "hps"], "nested": ["a": true, "b": "1"] as [String: Any]]
        let inputs: [String: Any] = ["iter0": "stage:def", "base": "sha256:abc"]
        let material = try StageKey.material(name: "iter1", settings: settings, inputs: inputs)
        #expect(material == #"{"format":1,"inputs":{"base":"sha256:abc","iter0":"stage:def"},"name":"iter1","settings":{"beta":2500,"lr":2e-05,"members":["clip","hps"],"nested":{"a":true,"b":"1"}}}"#)
        // python3 -c "import hashlib; print(hashlib.sha256(MATERIAL.encode()).hexdigest())"
        let key = try StageKey.key(name: "iter1", settings: settings, inputs: inputs)
        #expect(key == "19f0007a1a249b112034dc7ea1fa175d8027a5009640a71569afb63ff841b231")

        // Any change of a setting, a nested setting, an input, the name or a number's type-as-string changes it.
        var s2 = settings; s2["lr"] = 3e-5
        var s3 = settings; s3["nested"] = ["a": false, "b": "1"] as [String: Any]
        var s4 = settings; s4["beta"] = "2500"
        var i2 = inputs; i2["base"] = "sha256:abd"
        let others = [try StageKey.key(name: "iter1", settings: s2, inputs: inputs),
                      try StageKey.key(name: "iter1", settings: s3, inputs: inputs),
                      try StageKey.key(name: "iter1", settings: s4, inputs: inputs),
                      try StageKey.key(name: "iter1", settings: settings, inputs: i2),
                      try StageKey.key(name: "iter2", settings: settings, inputs: inputs)]
        #expect(Set(others + [key]).count == others.count + 1)
    }

    @Test func fileAndDirectoryFingerprintsFollowTheirContents() throws {
        let dir = NSTemporaryDirectory() + "stagekey-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/d", withIntermediateDirectories: true)
        try "hello\n".write(toFile: dir + "/d/a.txt", atomically: true, encoding: .utf8)
        // printf 'hello\n' | sha256sum
        #expect(try StageKey.fingerprint(path: dir + "/d/a.txt") == "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03")
        let before = try StageKey.fingerprint(path: dir + "/d")
        try "hello!\n".write(toFile: dir + "/d/a.txt", atomically: true, encoding: .utf8)
        let changed = try StageKey.fingerprint(path: dir + "/d")
        #expect(changed != before)
        try FileManager.default.moveItem(atPath: dir + "/d/a.txt", toPath: dir + "/d/b.txt")
        #expect(try StageKey.fingerprint(path: dir + "/d") != changed)
        #expect(throws: CoreError.self) { try StageKey.fingerprint(path: dir + "/missing") }
    }
}
