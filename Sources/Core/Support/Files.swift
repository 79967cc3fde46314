// The one way Core writes a file (temp file in the same directory + write + fsync + rename + fsync
// of the directory), and the error type Core throws for bad input.
import Foundation

/// An error about user input or files, with a message that names the file, line or argument.
public struct CoreError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A file being written atomically. Bytes go to a temporary file `.NAME.tmp-PID-RANDOM` beside
/// `path`; `commit()` flushes it to disk (`fsync`), renames it over `path` and flushes the directory,
/// so `path` holds either its old contents or all of the new ones — never a part — even across a
/// crash or power loss. A writer that is never committed (an error, a thrown body) removes its
/// temporary file and leaves `path` untouched. Missing parent directories are created.
/// In a distributed run (`Cluster`) only rank 0 commits: on the other ranks `commit()` drops the file
/// unless the writer was made with `perRank: true` (a rank's own shard, e.g. `confidence_rank001.jsonl`).
public final class AtomicWriter {
    public let path: String
    /// Whether every rank commits this file (its own shard), not rank 0 alone.
    public let perRank: Bool
    private let directory: String
    private let tmpPath: String
    private var fd: Int32

    public init(path: String, perRank: Bool = false) throws {
        self.path = path
        self.perRank = perRank
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent()
        directory = dir.path
        do { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) } catch {
            throw CoreError("cannot write \(path): cannot create the directory \(dir.path)")
        }
        tmpPath = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        fd = open(tmpPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw CoreError("cannot write \(path): cannot create a temporary file in \(dir.path): \(String(cString: strerror(errno)))")
        }
    }

    /// Appends bytes (the whole buffer, retrying short writes).
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard fd >= 0 else { throw CoreError("cannot write \(path): writer already finished") }
        var done = 0
        while done < bytes.count {
            let n = Foundation.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { throw fail(n < 0 ? String(cString: strerror(errno)) : "no bytes written") }
            done += n
        }
    }

    public func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }
    public func write(_ data: Data) throws { try data.withUnsafeBytes { try write($0) } }
    public func write(_ text: String) throws { try write(Array(text.utf8)) }

    /// Makes the file durable and puts it in place: fsync(file), close, rename, fsync(directory).
    public func commit() throws {
        guard fd >= 0 else { throw CoreError("cannot write \(path): writer already finished") }
        if !perRank && !Cluster.ownsSharedFiles { abandon(); return }
        if fsync(fd) != 0 { throw fail("fsync: \(String(cString: strerror(errno)))") }
        let closed = close(fd)
        fd = -1
        if closed != 0 { let err = String(cString: strerror(errno)); unlink(tmpPath); throw CoreError("cannot write \(path): \(err)") }
        if rename(tmpPath, path) != 0 {
            let err = String(cString: strerror(errno)); unlink(tmpPath)
            throw CoreError("cannot write \(path): \(err)")
        }
        // The rename is durable only once the directory entry is on disk.
        let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }

    /// Gives up: removes the temporary file; `path` keeps its old contents (if any).
    public func abandon() {
        guard fd >= 0 else { return }
        close(fd); fd = -1
        unlink(tmpPath)
    }

    /// Abandons the file and returns the error to throw.
    private func fail(_ why: String) -> CoreError {
        abandon()
        return CoreError("cannot write \(path): \(why)")
    }

    deinit { abandon() }
}

public enum AtomicFile {
    /// Writes a file through an `AtomicWriter`: `body` appends the contents; if it throws, the
    /// temporary file is removed, `path` is untouched and the error is rethrown.
    public static func write(to path: String, perRank: Bool = false, _ body: (AtomicWriter) throws -> Void) throws {
        let w = try AtomicWriter(path: path, perRank: perRank)
        do { try body(w) } catch { w.abandon(); throw error }
        try w.commit()
    }

    /// Writes `data` to `path` atomically (see `AtomicWriter`).
    public static func write(_ data: Data, to path: String) throws {
        try write(to: path) { try $0.write(data) }
    }

    public static func write(_ text: String, to path: String) throws {
        try write(to: path) { try $0.write(text) }
    }

    /// Writes `chunks` in order (no single big buffer).
    public static func write(chunks: [[UInt8]], to path: String, perRank: Bool = false) throws {
        try write(to: path, perRank: perRank) { w in for c in chunks { try w.write(c) } }
    }
}
