// The one atomic writer (a failure leaves the old file), safetensors headers checked entry by entry
// (each bad case with its exact error), and the shipped checkpoints re-saved byte for byte.
import Foundation
import Testing
@testable import Core

private func scratch(_ name: String) -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("semidpo-io-\(getpid())")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent(name).path
}

private let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Files in `path`'s directory whose names start with `.NAME.tmp-` (left-over temporary files).
private func temporaries(of path: String) -> [String] {
    let url = URL(fileURLWithPath: path)
    let names = (try? FileManager.default.contentsOfDirectory(atPath: url.deletingLastPathComponent().path)) ?? []
    return names.filter { $0.hasPrefix(".\(url.lastPathComponent).tmp-") }
}

private struct Interrupted: Error {}

@Test func atomicWriterLeavesTheOldFileOnFailure() throws {
    let path = scratch("atomic.txt")
    try AtomicFile.write("old contents\n", to: path)
    // A body that fails after writing part of the new contents: the old file is intact, no temp left.
    #expect(throws: Interrupted.self) {
        try AtomicFile.write(to: path) { w in
            try w.write("new contents, first half")
            #expect(temporaries(of: path).count == 1)   // the new bytes go to a temporary file beside it
            throw Interrupted()
        }
    }
    #expect(try String(contentsOfFile: path, encoding: .utf8) == "old contents\n")
    #expect(temporaries(of: path).isEmpty)
    // A writer dropped without commit (an error unwinding a streaming writer) removes its temp file too.
    do {
        let w = try AtomicWriter(path: path)
        try w.write([1, 2, 3])
    }
    #expect(try String(contentsOfFile: path, encoding: .utf8) == "old contents\n")
    #expect(temporaries(of: path).isEmpty)
    // A streaming safetensors writer that fails (fewer values than declared) keeps the old file.
    let st = scratch("atomic.safetensors")
    try Safetensors.write([NamedTensor(name: "x", shape: [2], data: [1, 2])], to: st)
    let before = try Data(contentsOf: URL(fileURLWithPath: st))
    let w = try SafetensorsStreamWriter(path: st, tensors: [("x", [3])])
    try w.append([9])
    #expect(throws: CoreError.self) { try w.finish() }
    #expect(try Data(contentsOf: URL(fileURLWithPath: st)) == before)
    #expect(temporaries(of: st).isEmpty)
    // Success replaces the contents, creating missing directories; commit twice is an error.
    let deep = scratch("a/b/c.txt")
    try AtomicFile.write(chunks: [Array("ab".utf8), [], Array("c".utf8)], to: deep)
    #expect(try String(contentsOfFile: deep, encoding: .utf8) == "abc")
    let once = try AtomicWriter(path: deep)
    try once.commit()
    #expect(try String(contentsOfFile: deep, encoding: .utf8) == "")
    #expect(throws: CoreError.self) { try once.commit() }
    // A directory that cannot be created is an error naming the file, not a crash.
    #expect(throws: CoreError.self) { try AtomicFile.write("x", to: path + "/inside-a-file.txt") }
}

/// A safetensors file with the given header text and `dataBytes` zero bytes of data.
private func rawSafetensors(_ header: String, dataBytes: Int) -> Data {
    var d = Data()
    var n = UInt64(header.utf8.count).littleEndian
    withUnsafeBytes(of: &n) { d.append(contentsOf: $0) }
    d.append(Data(header.utf8))
    d.append(Data(count: dataBytes))
    return d
}

@Test func safetensorsHeadersAreCheckedEntryByEntry() throws {
    let path = scratch("header.safetensors")
    let bad = "bad safetensors file \(path): "
    let cases: [(String, Int, String)] = [
        (#"{"w":{"dtype":"F32","shape":[true,6],"data_offsets":[0,24]}}"#, 24,
         "tensor 'w' has shape entry 0 = true; shape entries must be non-negative integers (at most 137438953408)"),
        (#"{"w":{"dtype":"F32","shape":[2.0,3],"data_offsets":[0,24]}}"#, 24,
         "tensor 'w' has shape entry 0 = 2.0; shape entries must be non-negative integers (at most 137438953408)"),
        (#"{"w":{"dtype":"F32","shape":[6,-1],"data_offsets":[0,24]}}"#, 24,
         "tensor 'w' has shape entry 1 = -1; shape entries must be non-negative integers (at most 137438953408)"),
        (#"{"w":{"dtype":"F32","shape":["6"],"data_offsets":[0,24]}}"#, 24,
         "tensor 'w' has shape entry 0 = \"6\"; shape entries must be non-negative integers (at most 137438953408)"),
        (#"{"w":{"dtype":"F32","shape":6,"data_offsets":[0,24]}}"#, 24, "tensor 'w' needs a shape list"),
        (#"{"w":{"dtype":"F32","shape":[9223372036854775808],"data_offsets":[0,24]}}"#, 24,
         "the header is not valid JSON (header:1:30: integer 9223372036854775808 does not fit in a 64-bit integer (-9223372036854775808 … 9223372036854775807))"),
        (#"{"w":{"dtype":"F16","shape":[6],"data_offsets":[0,12]}}"#, 12, "tensor 'w' has dtype F16; only F32 is supported"),
        (#"{"w":{"dtype":4,"shape":[6],"data_offsets":[0,24]}}"#, 24, "tensor 'w' has dtype 4, not a string"),
        (#"{"w":{"shape":[6],"data_offsets":[0,24]}}"#, 24, "tensor 'w' has no dtype"),
        (#"{"w":{"dtype":"F32","shape":[6],"data_offsets":[0]}}"#, 24,
         "tensor 'w' needs data_offsets, a list of two integers [begin, end]"),
        (#"{"w":{"dtype":"F32","shape":[6],"data_offsets":[0.0,24]}}"#, 24,
         "tensor 'w' has invalid data_offsets [0.0, 24]; they must be integers with 0 ≤ begin ≤ end"),
        (#"{"w":{"dtype":"F32","shape":[6],"data_offsets":[24,0]}}"#, 24,
         "tensor 'w' has invalid data_offsets [24, 0]; they must be integers with 0 ≤ begin ≤ end"),
        (#"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}"#, 24,
         "tensor 'w' has shape [2, 3] (24 bytes of F32) but data_offsets span 20 bytes"),
        (#"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}"#, 16,
         "tensor 'w' ends at byte 24 past the 16-byte data section (truncated file?)"),
        (#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#, 16,
         "'w' appears twice in the header"),
        (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, 16,
         "tensors 'a' and 'b' overlap"),
        (#"{"__metadata__":{"k":1}}"#, 0, "__metadata__ value for 'k' is not a string (1)"),
        (#"{"w":[1]}"#, 0, "entry 'w' is not an object"),
        (#"[1, 2]"#, 0, "the header is not a JSON object"),
        (#"{"w":{"dtype":"F32",}}"#, 0, "the header is not valid JSON (header:1:21: expected a string key, found '}')"),
    ]
    for (header, dataBytes, message) in cases {
        try AtomicFile.write(rawSafetensors(header, dataBytes: dataBytes), to: path)
        do { _ = try SafetensorsFile(path: path); Issue.record("no error for \(header)") } catch {
            #expect("\(error)" == bad + message, "\(header)")
        }
    }
    // The good twin of the first case loads, with the shape it says.
    try AtomicFile.write(rawSafetensors(#"{"w":{"dtype":"F32","shape":[1,6],"data_offsets":[0,24]}}  "#, dataBytes: 24), to: path)
    #expect(try SafetensorsFile(path: path).entry("w").shape == [1, 6])
}

/// Loading the shipped base model and saving it again writes the same bytes: the header (tensor order,
/// `config` JSON written by the project's writer, padding) and the weights are unchanged.
@Test func shippedCheckpointsLoadAndResaveByteForByte() throws {
    let base = repoRoot.appendingPathComponent("models/base.safetensors").path
    let original = try Data(contentsOf: URL(fileURLWithPath: base))
    let file = try SafetensorsFile(path: base)
    let model = try DiffusionModel.load(path: base)
    let copy = scratch("base-resaved.safetensors")
    try model.save(path: copy, metadata: file.metadata)
    #expect(try Data(contentsOf: URL(fileURLWithPath: copy)) == original)
    #expect(try model.config.json() == file.metadata["config"])
    // Every reward checkpoint still loads.
    let rewards = repoRoot.appendingPathComponent("models/rewards").path
    let names = try FileManager.default.contentsOfDirectory(atPath: rewards).filter { $0.hasSuffix(".safetensors") }.sorted()
    #expect(names.count == 5)
    for n in names {
        let (m, info) = try RewardModel.load(from: rewards + "/" + n)
        #expect(info.name + ".safetensors" == n)
        #expect(m.parameterCount > 0)
    }
}

@Test func sha256VectorsAndStreamingFiles() throws {
    // FIPS 180-4 / NIST test vectors.
    #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    #expect(SHA256.hex([UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    let million = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
    #expect(SHA256.hex(million) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    #expect(SHA256.hex(million.lazy.map { $0 }) == SHA256.hex(million))   // a non-contiguous collection
    // A file read in 1 MiB pieces (3 whole pieces and a partial one) hashes as the bytes do in one go.
    var bytes = [UInt8](repeating: 0, count: 3 * SHA256.fileChunkSize + 17)
    var state: UInt64 = 1
    for i in bytes.indices { state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407; bytes[i] = UInt8(state >> 56) }
    let path = scratch("hashed.bin")
    try AtomicFile.write(Data(bytes), to: path)
    #expect(try SHA256.hex(fileAt: path) == SHA256.hex(bytes))
    try AtomicFile.write(Data(million), to: path)
    #expect(try SHA256.hex(fileAt: path) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    try AtomicFile.write(Data(), to: path)
    #expect(try SHA256.hex(fileAt: path) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    // Not a regular file: refused before opening (a FIFO would otherwise block forever).
    let fifo = scratch("fifo")
    unlink(fifo)
    #expect(mkfifo(fifo, 0o600) == 0)
    do { _ = try SHA256.hex(fileAt: fifo); Issue.record("no error") } catch {
        #expect("\(error)" == "cannot read input file \(fifo): it is a FIFO (named pipe), not a regular file")
    }
    for read in [{ _ = try SafetensorsFile(path: fifo) }, { _ = try MappedFile(path: fifo) }, { _ = try readIdList(fifo) }] as [() throws -> Void] {
        do { try read(); Issue.record("no error") } catch { #expect("\(error)".hasSuffix("\(fifo): it is a FIFO (named pipe), not a regular file")) }
    }
    do { _ = try SHA256.hex(fileAt: scratch("")); Issue.record("no error") } catch {
        #expect("\(error)".hasSuffix("it is a directory, not a regular file"))
    }
    do { _ = try SHA256.hex(fileAt: scratch("missing")); Issue.record("no error") } catch {
        #expect("\(error)" == "cannot read \(scratch("missing")): No such file or directory")
    }
}
