// Benchmark of partition_scores at Pick-a-Pic scale; runs only when SEMIDPO_BENCH_SCORES names a score
// file (see docs/formats.md): SEMIDPO_BENCH_SCORES=/tmp/scores.jsonl SEMIDPO_BENCH_OUT=/tmp/part \
//   swift test -c release -Xswiftc -enable-testing --filter benchPartitionScores
import Foundation
import Testing
@testable import Core

@Test(.enabled(if: ProcessInfo.processInfo.environment["SEMIDPO_BENCH_SCORES"] != nil))
func benchPartitionScores() throws {
    let env = ProcessInfo.processInfo.environment
    let figures = try benchPartition(path: env["SEMIDPO_BENCH_SCORES"]!, out: env["SEMIDPO_BENCH_OUT"] ?? NSTemporaryDirectory() + "semidpo-bench-part",
                                     repeats: Int(env["SEMIDPO_BENCH_REPEATS"] ?? "3") ?? 3)
    print(figures)
    #expect(figures.seconds.count >= 1)
}
