// semidpo.tensor from recipes: creation, indexing, slicing, arithmetic, reductions, tables, files,
// and broken recipes whose error messages name the argument, the file and the line.
import Foundation
import Testing
import Core
@testable import Host

private func tensorState(run: RunContext = RunContext()) -> LuaState {
    let lua = LuaState(run: run, bindings: Bindings.all)
    try? lua.guardGlobals()
    return lua
}

/// Runs a recipe expected to fail; returns its message (`recipe.lua:LINE: …`).
private func tensorError(_ code: String, sourceLocation: SourceLocation = #_sourceLocation) -> String {
    do {
        _ = try tensorState().runString(code, name: "@recipe.lua")
        Issue.record("recipe did not fail", sourceLocation: sourceLocation)
        return ""
    } catch let e as LuaError {
        return e.message
    } catch {
        Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        return ""
    }
}

@Suite(.serialized) struct TensorBindingsTests {
    @Test func creationShapeAndIndexing() throws {
        let r = try tensorState().runString("""
            local T = semidpo.tensor
            local z = T.zeros({2, 3})
            local o = T.ones({4})
            local f = T.full({2, 2}, 2.5)
            local n1, n2 = T.normal({3, 5}, 7), T.normal({3, 5}, 7)
            local m = T.from({{1, 2, 3}, {4, 5, 6}})
            m:set(2, 3, -1)
            local flat = T.from({1, 2, 3, 4, 5, 6}, {3, 2})
            return z:shape(), z:size(2), o:sum(), f:get(2, 1), m:get(1, 2), m:get(2, 3),
                   flat:shape(), flat:get(3, 1), n1:get(3, 5) == n2:get(3, 5), m:count(), m:totable()
            """, name: "@recipe.lua")
        #expect(r[0] as? [Any] as? [Int] == [2, 3])
        #expect(r[1] as? Int == 3)
        #expect(r[2] as? Double == 4)
        #expect(r[3] as? Double == 2.5)
        #expect(r[4] as? Double == 2)
        #expect(r[5] as? Double == -1)
        #expect(r[6] as? [Any] as? [Int] == [3, 2])
        #expect(r[7] as? Double == 5)
        #expect(r[8] as? Bool == true)
        #expect(r[9] as? Int == 6)
        let rows = try #require(r[10] as? [Any])
        #expect(rows.count == 2 && (rows[1] as? [Any]).map { $0.compactMap { $0 as? Double } } == [4, 5, -1])
    }

    @Test func normalMatchesCoreForTheSameSeed() throws {
        let r = try tensorState().runString("return semidpo.tensor.normal({2, 3}, 11)")
        let t = try #require(r[0] as? Tensor)
        #expect(t.data == Tensor.normal([2, 3], key: RandomKey(seed: 11)).data)
    }

    @Test func sliceReductionsAndArithmetic() throws {
        let r = try tensorState().runString("""
            local T = semidpo.tensor
            local m = T.from({{1, 2, 3}, {4, 5, 6}})
            local cols = m:slice(2, 2, 3)            -- {{2,3},{5,6}}
            local row = m:slice(1, 2, 2)             -- {{4,5,6}}
            local b = T.from({10, 20, 30})
            local s = m + b                          -- broadcast over rows
            local d = (m * 2 - 1) / 2                -- numbers on the right
            local e = 1 - m                          -- number on the left
            local neg = -m
            return cols:totable(), row:shape(), s:totable(), d:get(2, 3), e:get(1, 1), neg:get(2, 2),
                   m:sum(), m:mean(), m:max(), m:min(), tostring(m), tostring(T.zeros({3, 4}))
            """, name: "@recipe.lua")
        let cols = try #require(r[0] as? [Any]).map { ($0 as? [Any])?.compactMap { $0 as? Double } }
        #expect(cols == [[2, 3], [5, 6]])
        #expect(r[1] as? [Any] as? [Int] == [1, 3])
        let s = try #require(r[2] as? [Any]).map { ($0 as? [Any])?.compactMap { $0 as? Double } }
        #expect(s == [[11, 22, 33], [14, 25, 36]])
        #expect(r[3] as? Double == 5.5)
        #expect(r[4] as? Double == 0)
        #expect(r[5] as? Double == -5)
        #expect(r[6] as? Double == 21)
        #expect(r[7] as? Double == 3.5)
        #expect(r[8] as? Double == 6)
        #expect(r[9] as? Double == 1)
        #expect(r[10] as? String == "Tensor(2, 3) [1, 2, 3, 4, 5, 6]")
        #expect(r[11] as? String == "Tensor(3, 4) [0, 0, 0, 0, 0, 0, 0, 0, …]")
    }

    @Test func saveAndLoadInTheRunDirectory() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("semidpo-tb-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        let run = RunContext(outputDirectory: dir)
        let r = try tensorState(run: run).runString("""
            local T = semidpo.tensor
            local w = T.from({{1.5, -2}, {3, 4}})
            local path = T.save("ckpt/w.safetensors", {weight = w, bias = T.ones({2})}, {step = 3, note = "hi"})
            local back, meta = T.load("ckpt/w.safetensors")
            return path, back.weight:totable(), back.bias:sum(), meta.step, meta.note
            """, name: "@recipe.lua")
        #expect(r[0] as? String == dir + "/ckpt/w.safetensors")
        let w = try #require(r[1] as? [Any]).map { ($0 as? [Any])?.compactMap { $0 as? Double } }
        #expect(w == [[1.5, -2], [3, 4]])
        #expect(r[2] as? Double == 2)
        #expect(r[3] as? String == "3")
        #expect(r[4] as? String == "hi")
        #expect(run.recordedOutputs == ["ckpt/w.safetensors"])
        // The file is an ordinary safetensors file Core (and Python) can read.
        let (tensors, meta) = try TensorIO.load(dir + "/ckpt/w.safetensors")
        #expect(tensors.map(\.0) == ["bias", "weight"])
        #expect(meta == ["step": "3", "note": "hi"])
    }

    @Test func badShapesAndIndicesAreClearErrors() {
        #expect(tensorError("local t = semidpo.tensor.zeros({2, 3})\nreturn t:get(3, 1)")
                == "recipe.lua:2: bad argument #1 to 'get' (index 3 out of range for dimension 1 of size 2 (shape [2, 3]))")
        #expect(tensorError("local t = semidpo.tensor.zeros({2, 3})\nreturn t:get(1, 0)")
                == "recipe.lua:2: bad argument #2 to 'get' (index 0 out of range for dimension 2 of size 3 (shape [2, 3]))")
        #expect(tensorError("local t = semidpo.tensor.zeros({2, 3})\nreturn t:get(1)")
                == "recipe.lua:2: 'get' needs 2 indexes for shape [2, 3], got 1")
        #expect(tensorError("local t = semidpo.tensor.zeros({2, 3})\nt:set(1, 1)")
                == "recipe.lua:2: 'set' needs 2 indexes for shape [2, 3] and a value, got 1")
        #expect(tensorError("local a = semidpo.tensor.zeros({2, 3})\nlocal b = semidpo.tensor.zeros({2})\nreturn a + b")
                == "recipe.lua:3: '+': shapes [2, 3] and [2] cannot be broadcast (dimension 2 of the result: 3 vs 2)")
        #expect(tensorError("return semidpo.tensor.zeros({2, -1})")
                == "recipe.lua:1: bad argument #1 to 'zeros' (dimension 2 is -1; dimensions must be ≥ 0)")
        #expect(tensorError("return semidpo.tensor.zeros('2x3')")
                == "recipe.lua:1: bad argument #1 to 'zeros' (expected array of integers, got string)")
        #expect(tensorError("return semidpo.tensor.from({{1, 2}, {3}})")
                == "recipe.lua:1: bad argument #1 to 'from' (ragged table: element [2] has 1 entries, expected 2)")
        #expect(tensorError("return semidpo.tensor.from({{1, 'x'}})")
                == "recipe.lua:1: bad argument #1 to 'from' (element [1][2] is string, expected a number)")
        #expect(tensorError("return semidpo.tensor.from({1, 2, 3}, {2, 2})")
                == "recipe.lua:1: bad argument #2 to 'from' (shape [2, 2] needs 4 values, the table has 3)")
        #expect(tensorError("local t = semidpo.tensor.zeros({2, 3})\nreturn t:slice(3, 1, 1)")
                == "recipe.lua:2: bad argument #1 to 'slice' (dimension 3 out of range for a tensor with 2 dimensions (shape [2, 3]))")
        #expect(tensorError("local t = semidpo.tensor.zeros({2, 3})\nreturn t:slice(2, 2, 4)")
                == "recipe.lua:2: bad argument #3 to 'slice' (end 4 out of range: must be in 2…3 for dimension 2 of shape [2, 3])")
        #expect(tensorError("return semidpo.tensor.zeros({2}) * 'x'")
                == "recipe.lua:1: bad argument #2 to '*' (expected Tensor or number, got string)")
        #expect(tensorError("semidpo.tensor.save('x.safetensors', {w = 3})")
                == "recipe.lua:1: bad argument #2 to 'save' (entry 'w' is number, expected Tensor)")
        #expect(tensorError("local t = semidpo.tensor.zeros({2})\nt:release()\nreturn t:sum()")
                == "recipe.lua:3: cannot use Tensor after it has been released")
        #expect(tensorError("return semidpo.tensor.load('/nonexistent/x.safetensors')").hasPrefix(
                "recipe.lua:1: cannot read /nonexistent/x.safetensors"))
    }
}
