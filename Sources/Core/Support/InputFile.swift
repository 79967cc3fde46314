// The check every reader makes before opening an input path: a FIFO, socket, device or directory
// is refused with a clear error, instead of blocking forever in open() or read() (a FIFO with no
// writer) or reading an endless or meaningless stream (a device).
import Foundation

public enum InputFile {
    /// Throws `cannot read <what> <path>: it is a FIFO (named pipe), not a regular file` (or a
    /// directory, a character device, …) when `path` exists and is not a regular file. Symbolic
    /// links are followed (a link to a regular file is fine). It only calls `stat`, which never
    /// blocks on a FIFO. A path that cannot be stat'ed (missing, no permission) passes: the
    /// caller's own open reports that in its usual words.
    public static func requireRegular(_ path: String, what: String = "input file") throws {
        var st = stat()
        guard stat(path, &st) == 0 else { return }
        let kind = st.st_mode & S_IFMT
        guard kind != S_IFREG else { return }
        throw CoreError("cannot read \(what) \(path): it is \(describe(kind)), not a regular file")
    }

    /// "a directory", "a FIFO (named pipe)", … for a `st_mode & S_IFMT` value.
    static func describe(_ kind: mode_t) -> String {
        switch kind {
        case S_IFDIR: return "a directory"
        case S_IFIFO: return "a FIFO (named pipe)"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        default: return "a special file (mode 0o\(String(kind, radix: 8)))"
        }
    }
}
