// Safetensors round trips, interop with a file written by Python, and malformed files → CoreError.
import Foundation
import Testing
@testable import Core

private func tempPath(_ name: String) -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("semidpo-st-\(getpid())")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent(name).path
}

private func expectError(_ bytes: Data, contains fragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let path = tempPath("bad-\(UInt32.random(in: 0...UInt32.max)).safetensors")
    _ = FileManager.default.createFile(atPath: path, contents: bytes)
    do {
        _ = try SafetensorsFile(path: path)
        Issue.record("expected an error containing '\(fragment)'", sourceLocation: sourceLocation)
    } catch let e as CoreError {
        #expect(e.message.contains(fragment), "\(e.message)", sourceLocation: sourceLocation)
        #expect(e.message.contains(path), "error should name the file: \(e.message)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("unexpected error type \(error)", sourceLocation: sourceLocation)
    }
}

private func rawFile(_ header: String, dataBytes: Int) -> Data {
    var d = Data()
    var n = UInt64(header.utf8.count).littleEndian
    withUnsafeBytes(of: &n) { d.append(contentsOf: $0) }
    d.append(Data(header.utf8))
    d.append(Data(count: dataBytes))
    return d
}

@Test func safetensorsRoundTripWithMetadata() throws {
    let a = NamedTensor(name: "image0", shape: [2, 3], data: [1, -2, 3.5, 0, .pi, -1e-7])
    let b = NamedTensor(name: "idx", shape: [3], data: [0, 1, 2])
    let s = NamedTensor(name: "s", shape: [], data: [9])
    let path = tempPath("rt.safetensors")
    try Safetensors.write([a, b, s], metadata: ["k": "v \"quoted\"\n"], to: path)
    let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
    let headerLength = bytes.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
    #expect((8 + headerLength) % 8 == 0)
    let (tensors, meta) = try Safetensors.read(path)
    #expect(tensors == [a, b, s])
    #expect(meta == ["k": "v \"quoted\"\n"])
    let f = try SafetensorsFile(path: path)
    #expect(try f.rows("image0", 1..<2) == [0, .pi, -1e-7])
    #expect(throws: CoreError.self) { try f.rows("image0", 1..<3) }
    #expect(throws: CoreError.self) { try f.tensor("missing") }
}

@Test func safetensorsStreamWriterMatchesWholeFileWriter() throws {
    let x = NamedTensor(name: "x", shape: [4, 2], data: (0..<8).map(Float.init))
    let y = NamedTensor(name: "y", shape: [2], data: [7, 8])
    let p1 = tempPath("whole.safetensors"), p2 = tempPath("stream.safetensors")
    try Safetensors.write([x, y], metadata: ["m": "1"], to: p1)
    let w = try SafetensorsStreamWriter(path: p2, tensors: [("x", [4, 2]), ("y", [2])], metadata: ["m": "1"])
    try w.append([0, 1, 2])
    try w.append([3, 4, 5, 6, 7, 7])   // spans the boundary between x and y
    #expect(!FileManager.default.fileExists(atPath: p2))
    try w.append([8])
    #expect(throws: CoreError.self) { try w.append([9]) }
    try w.finish()
    #expect(try Data(contentsOf: URL(fileURLWithPath: p1)) == Data(contentsOf: URL(fileURLWithPath: p2)))

    let short = try SafetensorsStreamWriter(path: tempPath("short.safetensors"), tensors: [("x", [3])])
    try short.append([1])
    #expect(throws: CoreError.self) { try short.finish() }
}

/// Fixture written by Tests/CoreTests/Fixtures/make_safetensors_fixture.py (Python safetensors 0.8.0).
@Test func safetensorsReadsPythonFixture() throws {
    let url = try #require(Bundle.module.url(forResource: "python_fixture", withExtension: "safetensors", subdirectory: "Fixtures"))
    let f = try SafetensorsFile(path: url.path)
    #expect(f.metadata == ["made_by": "python", "note": "fixture"])
    #expect(try f.tensor("weight") == NamedTensor(name: "weight", shape: [2, 3], data: [-1, -0.5, 0, 0.5, 1, 1.5]))
    #expect(try f.tensor("bias").data == [1e-3, -2.5, 3.25, 7.0])
    #expect(try f.tensor("scalar") == NamedTensor(name: "scalar", shape: [], data: [42]))
}

@Test func safetensorsMalformedInputsAreErrors() throws {
    expectError(Data([1, 2, 3]), contains: "shorter than")
    var tooLong = Data([0xFF, 0, 0, 0, 0, 0, 0, 0]); tooLong.append(Data("{}".utf8))
    expectError(tooLong, contains: "past the end")
    expectError(rawFile("{not json", dataBytes: 0), contains: "not valid JSON")
    expectError(rawFile("[1,2]", dataBytes: 0), contains: "not a JSON object")
    expectError(rawFile(#"{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}"#, dataBytes: 4), contains: "only F32")
    expectError(rawFile(#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, dataBytes: 8), contains: "span 8 bytes")
    expectError(rawFile(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, dataBytes: 4), contains: "truncated")
    expectError(rawFile(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, dataBytes: 8), contains: "overlap")
    expectError(rawFile(#"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, dataBytes: 4), contains: "non-negative")
    expectError(rawFile(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}"#, dataBytes: 8), contains: "invalid data_offsets")
    expectError(rawFile(#"{"__metadata__":{"a":1}}"#, dataBytes: 0), contains: "not a string")
    #expect(throws: CoreError.self) { try Safetensors.encode([NamedTensor(name: "a", shape: [2], data: [1])]) }
    #expect(throws: CoreError.self) { try SafetensorsFile(path: tempPath("does-not-exist.safetensors")) }
}
