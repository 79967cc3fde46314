// The libFuzzer entry point for semidpo's parsers: one binary, the target chosen by FUZZ_TARGET
// (json, jsonl, yaml, safetensors). Built only by fuzz/run.sh (SEMIDPO_FUZZ=1, -sanitize=fuzzer).
import CFuzzer
import Core
import Foundation

/// The program's entry: SwiftPM links an executable target's `main` to `<Target>_main`, so libFuzzer's
/// own `main` is not used; this hands the command line to libFuzzer's driver instead.
@_cdecl("Fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    var argc = argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzTestOneInput(data, size) }
}

nonisolated(unsafe) private var target: ParserFuzz.Target = .json
nonisolated(unsafe) private var scratch = ""

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>?, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> CInt {
    let name = ProcessInfo.processInfo.environment["FUZZ_TARGET"] ?? ""
    guard let t = ParserFuzz.Target(rawValue: name) else {
        let all = ParserFuzz.Target.allCases.map(\.rawValue).joined(separator: ", ")
        fputs("semidpo-fuzz: set FUZZ_TARGET to one of \(all) (got '\(name)')\n", stderr)
        exit(2)
    }
    target = t
    let dir = ProcessInfo.processInfo.environment["FUZZ_SCRATCH"] ?? NSTemporaryDirectory()
    scratch = (dir as NSString).appendingPathComponent("semidpo-fuzz-\(getpid()).\(t.rawValue)")
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    if let v = ParserFuzz.run(target, bytes, scratch: scratch).violations.first { fatalError(v.message) }
    return 0
}
