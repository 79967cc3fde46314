// `semidpo bench --json` through the project's JSON writer (the bytes Foundation wrote before), and
// the PyTorch reference script's output read with the project's JSON parser.
import Foundation
import Testing
@testable import Core
@testable import Host

@Suite struct BenchJSONTests {
    @Test func reportJSONIsTheBytesFoundationWrote() throws {
        let row = { (name: String, shape: String, ms: Double, best: Double, cpu: Double, gflops: Double?) in
            BenchResult(name: name, shape: shape, milliseconds: ms, bestMilliseconds: best, cpuMilliseconds: cpu,
                        gflops: gflops, threads: 2, blasCore: "Zen")
        }
        let report = BenchReport(version: "0.1.0 (abc)", threads: 2, blasCore: "Zen", batch: 32, iterations: 5,
                                 loadAverage: 1.5, loadAverageAfter: nil,
                                 engine: [row("conv3x3_s1_32to32_16px_fwd_bwd", "x(32,32,16,16)→32", 12.5, 11.25, 24, 30.125),
                                          row("groupnorm_fwd_bwd", "x(32,64,8,8)", 0.5, 0.25, 1, nil)],
                                 sgemm1024: nil, model: nil, peakRSSMB: 92.5,
                                 torch: .skipped("python3 cannot import torch"), torchModel: .skipped("python3 cannot import torch"))
        // Golden: `JSONSerialization.data(withJSONObject:options: [.sortedKeys])` of the same dictionary
        // (Swift 6.3.1, Linux), printed by a scratch script before the switch.
        #expect(try report.json() == #"{"batch":32,"blas_core":"Zen","engine":[{"best_milliseconds":11.25,"cpu_milliseconds":24,"gflops":30.125,"milliseconds":12.5,"name":"conv3x3_s1_32to32_16px_fwd_bwd","shape":"x(32,32,16,16)→32"},{"best_milliseconds":0.25,"cpu_milliseconds":1,"milliseconds":0.5,"name":"groupnorm_fwd_bwd","shape":"x(32,64,8,8)"}],"iterations":5,"load_average":1.5,"peak_rss_mb":92.5,"semidpo_version":"0.1.0 (abc)","threads":2,"torch":{"skipped":"python3 cannot import torch"},"torch_model":{"skipped":"python3 cannot import torch"}}"#)
    }

    @Test func torchScriptOutputIsReadWithTheProjectParser() throws {
        // The layout of bench/torch_reference.py's `json.dumps` (Python's separators, null for a missing figure).
        let f = try BenchCommand.TorchFigures(json: #"{"torch_version": "2.13.0", "threads": 2, "peak_rss_mb": 290.5, "results": [{"name": "linear_fwd_bwd", "milliseconds": 1.25, "best_milliseconds": 1.0, "gflops": null}]}"#)
        #expect(f.torchVersion == "2.13.0" && f.threads == 2 && f.peakRSSMB == 290.5 && f.parameters == nil)
        #expect(f.results.count == 1 && f.results[0].name == "linear_fwd_bwd" && f.results[0].milliseconds == 1.25)
        #expect(f.results[0].bestMilliseconds == 1.0 && f.results[0].gflops == nil && f.results[0].perSecond == nil)
        do { _ = try BenchCommand.TorchFigures(json: #"{"torch_version": "2.13.0", "threads": 2.5, "results": []}"#); Issue.record("no error") } catch {
            #expect("\(error)" == "key 'threads' missing or not an integer")
        }
        do { _ = try BenchCommand.TorchFigures(json: "Traceback (most recent call last):"); Issue.record("no error") } catch {
            #expect("\(error)" == "the script's output:1:1: expected a value, found 'T'")
        }
    }
}
