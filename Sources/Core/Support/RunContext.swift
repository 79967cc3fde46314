// One run of a recipe: its output directory, how relative paths resolve into it, and the list of
// files it wrote (for the manifest). Bindings call `recordOutput` after writing a file.
import Foundation

/// The output directory of a run and the files written into it. Thread-safe.
public final class RunContext: @unchecked Sendable {
    /// The run directory (absolute, no trailing slash).
    public let outputDirectory: String
    private let lock = NSLock()
    private var outputs: [String] = []

    /// A context writing into `outputDirectory` (default: the current directory, for tests and
    /// Swift use outside `semidpo run`). The directory is not created here.
    public init(outputDirectory: String = FileManager.default.currentDirectoryPath) {
        self.outputDirectory = RunContext.absolute(outputDirectory)
    }

    static func absolute(_ path: String) -> String {
        var p = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        p = URL(fileURLWithPath: p).standardizedFileURL.path
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        return p
    }

    /// An absolute path: relative paths resolve inside the run directory.
    public func resolve(_ path: String) -> String {
        path.hasPrefix("/") ? RunContext.absolute(path) : RunContext.absolute(outputDirectory + "/" + path)
    }

    /// Records that the run wrote `path` (resolved like `resolve`). Recording twice is harmless.
    public func recordOutput(_ path: String) {
        let p = resolve(path)
        lock.lock(); defer { lock.unlock() }
        if !outputs.contains(p) { outputs.append(p) }
    }

    /// Recorded files, relative to the run directory when they are inside it.
    public var recordedOutputs: [String] {
        lock.lock(); defer { lock.unlock() }
        return outputs.map { p in
            p.hasPrefix(outputDirectory + "/") ? String(p.dropFirst(outputDirectory.count + 1)) : p
        }
    }

    /// Writes `text` atomically to `path` (resolved in the run directory) and records it.
    /// Returns the absolute path.
    @discardableResult
    public func writeText(_ text: String, to path: String) throws -> String {
        let p = resolve(path)
        try AtomicFile.write(text, to: p)
        recordOutput(p)
        return p
    }

    /// Writes `data` atomically to `path` (resolved in the run directory) and records it.
    @discardableResult
    public func writeData(_ data: Data, to path: String) throws -> String {
        let p = resolve(path)
        try AtomicFile.write(data, to: p)
        recordOutput(p)
        return p
    }
}
