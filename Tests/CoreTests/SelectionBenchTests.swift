// Benchmark of select_file at Pick-a-Pic scale; runs only when SEMIDPO_BENCH_CONFIDENCE names a shard dir
// (see docs/formats.md): SEMIDPO_BENCH_CONFIDENCE=/tmp/conf SEMIDPO_BENCH_TEST=/tmp/conf_test \
//   SEMIDPO_BENCH_CLEAN=/tmp/part/clean.json SEMIDPO_BENCH_LABELS=/tmp/swift_labels.json [SEMIDPO_BENCH_PAST=…] \
//   swift test -c release -Xswiftc -enable-testing --filter benchSelectFile
import Foundation
import Testing
@testable import Core

@Test(.enabled(if: ProcessInfo.processInfo.environment["SEMIDPO_BENCH_CONFIDENCE"] != nil))
func benchSelectFile() throws {
    let env = ProcessInfo.processInfo.environment
    let figures = try benchSelect(confidence: env["SEMIDPO_BENCH_CONFIDENCE"]!, mode: try SelectionMode(name: env["SEMIDPO_BENCH_MODE"] ?? "percentile"),
                                  values: (env["SEMIDPO_BENCH_VALUES"] ?? "80").split(separator: ",").compactMap { Double($0) },
                                  past: env["SEMIDPO_BENCH_PAST"].map { [$0] } ?? [], clean: env["SEMIDPO_BENCH_CLEAN"],
                                  out: env["SEMIDPO_BENCH_LABELS"] ?? NSTemporaryDirectory() + "semidpo-bench-labels.json",
                                  testConfidence: env["SEMIDPO_BENCH_TEST"], repeats: Int(env["SEMIDPO_BENCH_REPEATS"] ?? "3") ?? 3)
    print(figures)
    #expect(figures.seconds.count >= 1)
}

/// Phase breakdown of select_file (read, accuracy, select, write) for the same inputs.
@Test(.enabled(if: ProcessInfo.processInfo.environment["SEMIDPO_BENCH_CONFIDENCE"] != nil))
func benchSelectPhases() throws {
    let env = ProcessInfo.processInfo.environment
    func now() -> Double { Date().timeIntervalSince1970 }
    var t = now()
    let table = try ConfidenceTable.read(env["SEMIDPO_BENCH_CONFIDENCE"]!)
    let tRead = now() - t; t = now()
    let rules = try anchorRules(mode: .percentile, values: [80], anchors: table.anchors)
    let clean = try env["SEMIDPO_BENCH_CLEAN"].map(readIdList) ?? []
    let result = try selectPseudoLabels(table, rules: rules, clean: clean)
    let tSelect = now() - t; t = now()
    let chunks = result.labels.render(parts: 2)
    let tRender = now() - t; t = now()
    try AtomicFile.write(chunks: chunks, to: env["SEMIDPO_BENCH_LABELS"] ?? NSTemporaryDirectory() + "semidpo-bench-labels.json")
    let tWrite = now() - t
    print(String(format: "select_file phases: read %.3f s, select %.3f s, render %.3f s, write %.3f s", tRead, tSelect, tRender, tWrite))
    #expect(result.labels.count > 0)
}
