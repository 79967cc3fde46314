// Atomic file writes (temp file + rename) and the error type Core throws for bad input.
import Foundation

/// An error about user input or files, with a message that names the file, line or argument.
public struct CoreError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

public enum AtomicFile {
    /// Writes `data` to `path` through a temporary file in the same directory and a rename, so a
    /// reader never sees a half-written file and an existing file is replaced only when complete.
    /// Creates missing parent directories.
    public static func write(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        guard FileManager.default.createFile(atPath: tmp.path, contents: data) else {
            throw CoreError("cannot write \(path): could not create a temporary file in \(dir.path)")
        }
        if rename(tmp.path, path) != 0 {
            let err = String(cString: strerror(errno))
            unlink(tmp.path)
            throw CoreError("cannot write \(path): \(err)")
        }
    }

    public static func write(_ text: String, to path: String) throws {
        try write(Data(text.utf8), to: path)
    }
}
