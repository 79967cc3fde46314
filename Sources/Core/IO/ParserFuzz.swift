// The parser entry points that the fuzz targets (fuzz/, docs/formats.md "Fuzzing") and the corpus
// replay test drive: each takes arbitrary bytes and must return or throw — never crash or hang.
import Foundation

public enum ParserFuzz {
    /// One fuzz target per input format.
    public enum Target: String, CaseIterable, Sendable {
        /// `JSON.parse` on the bytes as one document.
        case json
        /// Every JSON Lines reader: `JSONL.forEachLine` and the tabular scanners (`ScoreTable.read`,
        /// `ConfidenceTable.read`, `PseudoLabels.read`, `readIdList`) on the bytes as a file.
        case jsonl
        /// `YAML.decode(bytes:)`; what it returns must `YAML.dump` and decode back to the same value.
        case yaml
        /// `SafetensorsFile` on the bytes as a file, then every tensor read in full and by rows.
        case safetensors
    }

    /// What one input did: how many parser calls were made and the errors they threw.
    public struct Outcome {
        public var attempts = 0
        public var errors: [Error] = []
        /// Broken properties among the errors (a bug, unlike parse errors).
        public var violations: [Violation] { errors.compactMap { $0 as? Violation } }
    }

    /// Feeds `bytes` to the parsers of `target`. Errors are the expected outcome for most inputs
    /// and are collected; a crash, a trap, a hang or a `Violation` is a bug. `scratch` is a file path
    /// the file-based readers may overwrite.
    @discardableResult
    public static func run(_ target: Target, _ bytes: UnsafeRawBufferPointer, scratch: String) -> Outcome {
        var outcome = Outcome()
        func attempt(_ body: () throws -> Void) {
            outcome.attempts += 1
            do { try body() } catch { outcome.errors.append(error) }
        }
        switch target {
        case .json:
            attempt { _ = try JSON.parse(bytes: bytes, name: "fuzz.json") }
        case .jsonl:
            attempt { try JSONL.forEachLine(bytes, name: "fuzz.jsonl") { _, _, _ in } }
            guard write(bytes, to: scratch, &outcome) else { break }
            attempt { _ = try ScoreTable.read(path: scratch) }
            attempt { _ = try ScoreTable.read(path: scratch, skipMalformed: true) }
            attempt { _ = try ConfidenceTable.read(scratch) }
            attempt { _ = try PseudoLabels.read(scratch) }
            attempt { _ = try readIdList(scratch) }
        case .yaml:
            attempt {
                let v = try YAML.decode(bytes: Array(bytes), file: "fuzz.yaml")
                // What was read must dump and read back to the same value (keys are unique here).
                let text = YAML.dump(v)
                let back: YAMLValue
                do { back = try YAML.decode(text, file: "fuzz-dump.yaml") } catch {
                    throw Violation(message: "YAML.dump wrote text that does not read back: \(error)\n\(text)")
                }
                guard back == v else { throw Violation(message: "YAML.dump does not round-trip:\n\(text)") }
            }
        case .safetensors:
            guard write(bytes, to: scratch, &outcome) else { break }
            attempt {
                let file = try SafetensorsFile(path: scratch)
                for e in file.entries {
                    _ = try file.tensor(e.name)
                    if let n = e.shape.first, n > 0 { _ = try file.rows(e.name, (n - 1)..<n) }
                }
            }
        }
        return outcome
    }

    /// A broken property (not a parse error): the fuzz target stops on it like on a crash, and the
    /// corpus replay test fails.
    public struct Violation: Error, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    private static func write(_ bytes: UnsafeRawBufferPointer, to path: String, _ outcome: inout Outcome) -> Bool {
        do { try Data(bytes).write(to: URL(fileURLWithPath: path)); return true } catch { outcome.errors.append(error); return false }
    }
}
