// Benchmark and report for the preference world (off by default): builds WORLD_BENCH_PAIRS pairs
// (default 100,000) into WORLD_BENCH_DIR, prints time and label statistics, writes a contact sheet.
// Run: WORLD_BENCH=1 swift test -c release --filter worldBenchmark
import Foundation
import Testing
@testable import Core

@Test(.enabled(if: ProcessInfo.processInfo.environment["WORLD_BENCH"] != nil))
func worldBenchmark() throws {
    let env = ProcessInfo.processInfo.environment
    let pairs = Int(env["WORLD_BENCH_PAIRS"] ?? "") ?? 100_000
    let dir = env["WORLD_BENCH_DIR"] ?? "/tmp/semidpo-world-bench"
    let suites = PromptSuites(seed: 0)
    let t0 = Date()
    let prompts = try suites.training(count: min(PromptSuites.maxTrainingPrompts, max(1, pairs * 58_960 / 851_293)))
    let tp = Date().timeIntervalSince(t0)
    let m = try DatasetBuilder.build(directory: dir, pairs: pairs, prompts: prompts, config: WorldConfig(seed: 0))
    let ds = try Dataset(directory: dir)
    let st = try ds.statistics()
    print("BENCH prompts \(prompts.count) in \(String(format: "%.2f", tp)) s; pairs \(pairs) built in \(String(format: "%.2f", m.seconds)) s")
    print("BENCH \(st.summary)")
    // |Δ| quantiles, to calibrate the tie tolerance.
    let lines = try String(contentsOfFile: dir + "/pairs.jsonl", encoding: .utf8).split(separator: "\n").prefix(20_000)
    var diffs: [Double] = []
    for l in lines {
        if let o = try JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any], let d = o["difference"] as? Double { diffs.append(abs(d)) }
    }
    diffs.sort()
    print("BENCH |diff| quantiles of kept pairs: ", [0.01, 0.05, 0.1, 0.25, 0.5].map { String(format: "%.4f", diffs[Int(Double(diffs.count) * $0)]) })
    var sheet: [SheetPair] = []
    for i in 0..<16 {
        let (a, b) = try ds.pair(i)
        sheet.append(SheetPair(prompt: ds.prompts[ds.promptIndex[i]].text, image0: a, image1: b, label: ds.labels[i], truth0: ds.truth0[i], truth1: ds.truth1[i]))
    }
    try PNG.write(try ContactSheet.render(sheet, size: ds.imageSize, columns: 4), to: dir + "/contact_sheet.png")
    #expect(st.pairs == pairs)
}
