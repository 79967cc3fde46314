// TensorIO and checkpoints: bit-exact round trips, the Python fixture as tensors, AdamW state in a
// checkpoint resuming identically, and mismatches rejected without touching the model.
import Foundation
import Testing
@testable import Core

private func tempPath(_ name: String) -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("semidpo-tio-\(getpid())")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent("\(UInt32.random(in: 0...UInt32.max))-\(name)").path
}

private func bits(_ t: Tensor) -> [UInt32] { t.data.map(\.bitPattern) }

@Test func tensorIORoundTripIsBitExact() throws {
    // Values that a lossy path would change: denormal, −0, NaN payload, infinities, extremes.
    let special: [Float] = [0, -0.0, .leastNonzeroMagnitude, .greatestFiniteMagnitude, -.infinity, .infinity,
                            Float(bitPattern: 0x7FC0_1234), 1e-38, 3.14159274]
    let a = Tensor(shape: [3, 3], data: special)
    let b = Tensor.normal([2, 3, 4, 5], key: RandomKey(seed: 9))
    let s = Tensor.scalar(-7.25)
    let path = tempPath("rt.safetensors")
    try TensorIO.save([("a", a), ("b.weight", b), ("s", s)], metadata: ["step": "12", "note": "ünïcode \"q\""], to: path)
    let (loaded, meta) = try TensorIO.load(path)
    #expect(loaded.map(\.0) == ["a", "b.weight", "s"])
    #expect(meta == ["step": "12", "note": "ünïcode \"q\""])
    #expect(loaded[0].1.shape == [3, 3] && bits(loaded[0].1) == bits(a))
    #expect(loaded[1].1.shape == [2, 3, 4, 5] && bits(loaded[1].1) == bits(b))
    #expect(loaded[2].1.shape == [] && loaded[2].1.item() == -7.25)
    #expect(!loaded[1].1.requiresGrad)
}

@Test func tensorIOLoadsThePythonFixture() throws {
    let url = try #require(Bundle.module.url(forResource: "python_fixture", withExtension: "safetensors", subdirectory: "Fixtures"))
    let (tensors, meta) = try TensorIO.load(url.path)
    let byName = Dictionary(tensors, uniquingKeysWith: { a, _ in a })
    #expect(meta == ["made_by": "python", "note": "fixture"])
    // Values from make_safetensors_fixture.py: arange(6).reshape(2,3)·0.5 − 1.
    let w = try #require(byName["weight"])
    #expect(w.shape == [2, 3] && w.data == [-1, -0.5, 0, 0.5, 1, 1.5])
    #expect(w[1, 2] == 1.5)
    #expect(byName["bias"]?.data == [1e-3, -2.5, 3.25, 7.0])
    #expect(byName["scalar"]?.shape == [] && byName["scalar"]?.item() == 42)
}

@Test func tensorIODuplicateNamesAreErrors() throws {
    let path = tempPath("dup.safetensors")
    #expect(throws: CoreError("safetensors: duplicate tensor name 'x'")) {
        try TensorIO.save([("x", .ones([2])), ("x", .zeros([2]))], to: path)
    }
    #expect(!FileManager.default.fileExists(atPath: path))
}

/// A tiny model: Linear(3→4) then Linear(4→2), one AdamW step on a fixed batch.
private final class TinyNet: Module {
    let l1: Linear, l2: Linear
    init(seed: UInt64) {
        l1 = Linear(inputFeatures: 3, outputFeatures: 4, key: RandomKey(seed: seed))
        l2 = Linear(inputFeatures: 4, outputFeatures: 2, key: RandomKey(seed: seed + 1))
    }
    func parameters() -> [(String, Tensor)] { prefixed("l1", l1.parameters()) + prefixed("l2", l2.parameters()) }
    func step(_ opt: AdamW) {
        let x = Tensor.normal([5, 3], key: RandomKey(seed: 99))
        zeroGrad()
        sum(square(l2(silu(l1(x))))).backward()
        opt.update(parameters())
    }
}

@Test func checkpointResumesTrainingBitExactly() throws {
    let config = AdamWConfig(learningRate: 0.01, weightDecay: 0.1)
    let a = TinyNet(seed: 1), optA = AdamW(config: config)
    a.step(optA); a.step(optA)
    let path = tempPath("ckpt.safetensors")
    try saveCheckpoint(a, optimizer: optA, metadata: ["step": "2"], to: path)

    // Resume into a differently initialised model and a fresh optimizer, then take the same step.
    let b = TinyNet(seed: 50), optB = AdamW(config: config)
    let meta = try loadCheckpoint(path, into: b, optimizer: optB)
    #expect(meta == ["step": "2"])
    #expect(optB.step == 2)
    a.step(optA); b.step(optB)
    for ((na, pa), (nb, pb)) in zip(a.parameters(), b.parameters()) {
        #expect(na == nb)
        #expect(bits(pa) == bits(pb), "\(na) differs after resuming")
    }
    let ckpt = try readCheckpoint(path)
    #expect(ckpt.parameters.map(\.0).sorted() == ["l1.bias", "l1.weight", "l2.bias", "l2.weight"])
    #expect(ckpt.optimizerState.contains { $0.0 == "m.l1.weight" })
    #expect(ckpt.metadata == ["step": "2"])
}

@Test func checkpointMismatchesAreErrorsAndLeaveTheModelAlone() throws {
    let a = TinyNet(seed: 1)
    let path = tempPath("ckpt-mismatch.safetensors")
    try saveCheckpoint(a, to: path)
    let before = a.parameters().map { bits($0.1) }

    let wrong = [("l1.weight", Tensor.zeros([4, 4])), ("l1.bias", Tensor.zeros([4])),
                 ("l2.weight", Tensor.zeros([2, 4])), ("l2.bias", Tensor.zeros([2]))]
    #expect(throws: CoreError("loadCheckpoint \(path): parameter 'l1.weight' has shape [4, 3] in the file, the model expects [4, 4]")) {
        try loadCheckpoint(path, into: wrong)
    }
    #expect(throws: CoreError("loadCheckpoint \(path): missing parameter 'extra'")) {
        try loadCheckpoint(path, into: a.parameters() + [("extra", Tensor.zeros([1]))])
    }
    do {
        try loadCheckpoint(path, into: Array(a.parameters().prefix(2)))
        Issue.record("expected unexpected-parameter error")
    } catch let e as CoreError {
        #expect(e.message.contains("unexpected parameters l2.weight, l2.bias") || e.message.contains("unexpected parameters l2.bias"), "\(e.message)")
    }
    #expect(throws: CoreError("loadCheckpoint \(path): an optimizer was given but the file holds no optimizer state")) {
        try loadCheckpoint(path, into: a, optimizer: AdamW(config: AdamWConfig(learningRate: 0.1)))
    }
    #expect(a.parameters().map { bits($0.1) } == before)
    // Non-strict: loads what matches, ignores the rest.
    let partial = [("l1.bias", Tensor.zeros([4]))]
    try loadCheckpoint(path, into: partial, strict: false)
    #expect(bits(partial[0].1) == bits(a.l1.bias!))
    #expect(throws: CoreError("saveCheckpoint: parameter name 'optimizer.x' uses the reserved prefix 'optimizer.'")) {
        try saveCheckpoint(parameters: [("optimizer.x", .zeros([1]))], to: path)
    }
}
