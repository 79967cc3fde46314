// semidpo.yaml on hostile input: deep values reach Lua without overflowing its stack, decode and
// load agree on invalid UTF-8, and a FIFO path is refused instead of blocking.
import Foundation
import Testing
import CLua
import Core
@testable import Host

@Suite struct YAMLBindingsTests {
    @Test func deepValuesArePushedIntoLua() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lua = try bindingsState(dir)
        // 256 levels (the parser's limit) of sequences and of maps; ~40 levels overflowed the Lua
        // stack before pushYAML called lua_checkstack.
        let r = try lua.runString("""
            local function depth(v, key) local n = 0 while type(v) == 'table' do v = v[key] n = n + 1 end return n, v end
            local s = semidpo.yaml.decode(string.rep('[', 256) .. '7' .. string.rep(']', 256))
            local m = semidpo.yaml.decode(string.rep('{a: ', 256) .. '8' .. string.rep('}', 256))
            local ns, vs = depth(s, 1)
            local nm, vm = depth(m, 'a')
            return ns, vs, nm, vm
            """)
        #expect(r[0] as? Int == 256 && r[1] as? Int == 7)
        #expect(r[2] as? Int == 256 && r[3] as? Int == 8)
        let e = try #require(bindingsError("semidpo.yaml.decode(string.rep('[', 300) .. string.rep(']', 300), 'deep.yaml')", name: "r.lua"))
        #expect(e.message.contains("deep.yaml:1:257: nesting deeper than 256 levels"), "\(e.message)")
    }

    @Test func aYAMLValueDeeperThanTheLimitIsAnErrorNotACrash() throws {
        let lua = makeState()
        var v: YAMLValue = .int(1)
        for _ in 0..<300 { v = .seq([v]) }
        #expect(throws: CoreError("cannot convert a YAML value to Lua: nesting deeper than 256")) {
            try lua.setField("deep", v)
        }
    }

    @Test func decodeAndLoadAgreeOnInvalidUTF8() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(Array("a: 1\nb: ".utf8) + [0xC3, 0x28, 0x0A]).write(to: URL(fileURLWithPath: dir + "/bad.yaml"))
        let lua = try bindingsState(dir)
        let r = try lua.runString("""
            local path = '\(dir)/bad.yaml'
            local f = assert(io.open(path, 'rb')) local text = f:read('a') f:close()
            local ok1, e1 = pcall(semidpo.yaml.load, path)
            local ok2, e2 = pcall(semidpo.yaml.decode, text, path)
            return ok1, e1, ok2, e2
            """)
        let loadError = try #require(r[1] as? String), decodeError = try #require(r[3] as? String)
        #expect(r[0] as? Bool == false && r[2] as? Bool == false)
        #expect(loadError.hasSuffix("\(dir)/bad.yaml:2:4: invalid UTF-8 (byte 0xC3); YAML text must be UTF-8"), "\(loadError)")
        #expect(decodeError.hasSuffix("\(dir)/bad.yaml:2:4: invalid UTF-8 (byte 0xC3); YAML text must be UTF-8"), "\(decodeError)")
    }

    @Test func aFIFOIsRefusedByLoad() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(mkfifo(dir + "/pipe.yaml", 0o600) == 0)
        let e = try #require(bindingsError("semidpo.yaml.load('\(dir)/pipe.yaml')", name: "r.lua"))
        #expect(e.message.contains("cannot read YAML file \(dir)/pipe.yaml: it is a FIFO (named pipe), not a regular file"), "\(e.message)")
    }
}

@Suite struct NonRegularInputTests {
    @Test func aFIFORecipeIsRefusedBeforeTheRunStarts() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(mkfifo(dir + "/recipe.lua", 0o600) == 0)
        var stderr: [String] = []
        let status = RecipeRunner.run(.init(recipe: dir + "/recipe.lua", out: dir + "/run"), errors: { stderr.append($0) })
        #expect(status == 2)
        #expect(stderr == ["semidpo: cannot read recipe \(dir)/recipe.lua: it is a FIFO (named pipe), not a regular file"])
        #expect(!FileManager.default.fileExists(atPath: dir + "/run"))
    }

    @Test func copyFileRefusesADevice() throws {
        let e = try #require(bindingsError("semidpo.copy_file('/dev/zero', 'z.bin')", name: "r.lua"))
        #expect(e.message.contains("cannot read input file /dev/zero: it is a character device, not a regular file"), "\(e.message)")
    }
}
