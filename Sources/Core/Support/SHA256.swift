// SHA-256 (FIPS 180-4) from swift-crypto (BoringSSL's implementation), for stage keys and the
// fingerprints of recipes and inputs in run manifests. Files are hashed in 1 MiB pieces.
import Crypto
import Foundation

public enum SHA256 {
    /// Bytes read from a file per update when hashing it.
    public static let fileChunkSize = 1 << 20

    /// The 32-byte digest of `bytes`.
    public static func digest<C: Collection>(_ bytes: C) -> [UInt8] where C.Element == UInt8 {
        var h = Crypto.SHA256()
        if bytes.withContiguousStorageIfAvailable({ h.update(bufferPointer: UnsafeRawBufferPointer($0)) }) == nil {
            Array(bytes).withUnsafeBytes { h.update(bufferPointer: $0) }
        }
        return Array(h.finalize())
    }

    /// The digest as 64 lowercase hex digits.
    public static func hex<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        hexString(digest(bytes))
    }

    /// The hex digest of a file's contents, read in `fileChunkSize` pieces (memory stays at one piece).
    /// A path that is not a regular file (a directory, a FIFO, a device) is refused before it is opened.
    public static func hex(fileAt path: String) throws -> String {
        try InputFile.requireRegular(path)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CoreError("cannot read \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var h = Crypto.SHA256()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: fileChunkSize, alignment: 64)
        defer { buffer.deallocate() }
        while true {
            let n = read(fd, buffer.baseAddress, fileChunkSize)
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw CoreError("cannot read \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            h.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        }
        return hexString(Array(h.finalize()))
    }

    private static func hexString(_ digest: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(2 * digest.count)
        for b in digest { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }
}
