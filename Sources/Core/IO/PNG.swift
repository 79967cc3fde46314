// PNG writing (RGB 8-bit, deflated by zlib), plus small raster helpers for sample grids and contact
// sheets: CHW conversion, nearest-neighbour upscaling, grids, a 3×5 bitmap font.
import CZlib
import Foundation

/// An 8-bit RGB raster, row-major, 3 bytes per pixel.
public struct RGBImage: Equatable, Sendable {
    public let width: Int
    public let height: Int
    public var pixels: [UInt8]

    /// A blank image filled with one colour.
    public init(width: Int, height: Int, fill: (UInt8, UInt8, UInt8) = (255, 255, 255)) {
        precondition(width > 0 && height > 0, "image size must be positive")
        self.width = width; self.height = height
        pixels = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) { pixels[3 * i] = fill.0; pixels[3 * i + 1] = fill.1; pixels[3 * i + 2] = fill.2 }
    }

    /// Converts a CHW float image (3×size×size, values in [-1, 1]) to 8-bit RGB; values are clamped.
    public init(chw: [Float], size: Int) throws {
        guard size > 0, chw.count == 3 * size * size else {
            throw CoreError("RGBImage: expected 3×\(size)×\(size) = \(3 * size * size) values, got \(chw.count)")
        }
        self.init(width: size, height: size)
        let plane = size * size
        for c in 0..<3 {
            for i in 0..<plane {
                let v = (chw[c * plane + i] + 1) * 127.5
                pixels[3 * i + c] = UInt8(max(0, min(255, v.rounded())))
            }
        }
    }

    public subscript(x: Int, y: Int) -> (UInt8, UInt8, UInt8) {
        get { let o = 3 * (y * width + x); return (pixels[o], pixels[o + 1], pixels[o + 2]) }
        set { let o = 3 * (y * width + x); pixels[o] = newValue.0; pixels[o + 1] = newValue.1; pixels[o + 2] = newValue.2 }
    }

    /// Nearest-neighbour upscaling by an integer factor.
    public func upscaled(by factor: Int) -> RGBImage {
        precondition(factor >= 1, "upscale factor must be ≥ 1")
        var out = RGBImage(width: width * factor, height: height * factor)
        for y in 0..<out.height { for x in 0..<out.width { out[x, y] = self[x / factor, y / factor] } }
        return out
    }

    /// Copies `image` into this one with its top-left corner at (x, y), clipping at the borders.
    public mutating func paste(_ image: RGBImage, x: Int, y: Int) {
        for sy in 0..<image.height where y + sy >= 0 && y + sy < height {
            for sx in 0..<image.width where x + sx >= 0 && x + sx < width { self[x + sx, y + sy] = image[sx, sy] }
        }
    }

    /// Fills a rectangle, clipped to the image.
    public mutating func fillRect(x: Int, y: Int, width w: Int, height h: Int, _ colour: (UInt8, UInt8, UInt8)) {
        let x0 = max(0, x), x1 = min(width, x + w), y0 = max(0, y), y1 = min(height, y + h)
        guard x0 < x1, y0 < y1 else { return }
        for yy in y0..<y1 { for xx in x0..<x1 { self[xx, yy] = colour } }
    }

    /// Lays images (all the same size) out in rows of `columns`, separated and framed by `gap` pixels.
    public static func grid(_ images: [RGBImage], columns: Int, gap: Int = 2, background: (UInt8, UInt8, UInt8) = (255, 255, 255)) throws -> RGBImage {
        guard let first = images.first else { throw CoreError("RGBImage.grid: no images") }
        guard columns >= 1, gap >= 0 else { throw CoreError("RGBImage.grid: columns must be ≥ 1 and gap ≥ 0") }
        guard images.allSatisfy({ $0.width == first.width && $0.height == first.height }) else {
            throw CoreError("RGBImage.grid: images differ in size")
        }
        let rows = (images.count + columns - 1) / columns
        let cols = min(columns, images.count)
        var out = RGBImage(width: gap + cols * (first.width + gap), height: gap + rows * (first.height + gap), fill: background)
        for (i, im) in images.enumerated() {
            out.paste(im, x: gap + (i % columns) * (first.width + gap), y: gap + (i / columns) * (first.height + gap))
        }
        return out
    }

    /// Draws text in the 3×5 bitmap font (digits, A–Z, and `. - + : / % = ( ) <`; lower case is drawn
    /// as upper case, unknown characters as blanks) with its top-left corner at (x, y); each glyph
    /// pixel is `scale`×`scale` and glyphs advance 4·scale pixels.
    public mutating func drawText(_ text: String, x: Int, y: Int, scale: Int = 1, colour: (UInt8, UInt8, UInt8) = (0, 0, 0)) {
        var cx = x
        for ch in text.uppercased() {
            if let rows = BitmapFont.glyphs[ch] {
                for (ry, bits) in rows.enumerated() {
                    for rx in 0..<3 where bits & (4 >> rx) != 0 {
                        fillRect(x: cx + rx * scale, y: y + ry * scale, width: scale, height: scale, colour)
                    }
                }
            }
            cx += 4 * scale
        }
    }

    /// Width in pixels of `text` drawn with `drawText` at `scale`.
    public static func textWidth(_ text: String, scale: Int = 1) -> Int { max(0, text.count * 4 * scale - scale) }
}

/// A 3×5 font: five rows of three bits each (bit 2 = left column).
enum BitmapFont {
    static let glyphs: [Character: [UInt8]] = [
        "0": [7, 5, 5, 5, 7], "1": [2, 6, 2, 2, 7], "2": [7, 1, 7, 4, 7], "3": [7, 1, 7, 1, 7], "4": [5, 5, 7, 1, 1],
        "5": [7, 4, 7, 1, 7], "6": [7, 4, 7, 5, 7], "7": [7, 1, 1, 2, 2], "8": [7, 5, 7, 5, 7], "9": [7, 5, 7, 1, 7],
        "A": [2, 5, 7, 5, 5], "B": [6, 5, 6, 5, 6], "C": [3, 4, 4, 4, 3], "D": [6, 5, 5, 5, 6], "E": [7, 4, 6, 4, 7],
        "F": [7, 4, 6, 4, 4], "G": [3, 4, 5, 5, 3], "H": [5, 5, 7, 5, 5], "I": [7, 2, 2, 2, 7], "J": [1, 1, 1, 5, 2],
        "K": [5, 5, 6, 5, 5], "L": [4, 4, 4, 4, 7], "M": [5, 7, 7, 5, 5], "N": [6, 5, 5, 5, 5], "O": [2, 5, 5, 5, 2],
        "P": [6, 5, 6, 4, 4], "Q": [2, 5, 5, 6, 3], "R": [6, 5, 6, 5, 5], "S": [3, 4, 2, 1, 6], "T": [7, 2, 2, 2, 2],
        "U": [5, 5, 5, 5, 7], "V": [5, 5, 5, 5, 2], "W": [5, 5, 7, 7, 5], "X": [5, 5, 2, 5, 5], "Y": [5, 5, 2, 2, 2],
        "Z": [7, 1, 2, 4, 7], ".": [0, 0, 0, 0, 2], "-": [0, 0, 7, 0, 0], "+": [0, 2, 7, 2, 0], ":": [0, 2, 0, 2, 0],
        "/": [1, 1, 2, 4, 4], "%": [5, 1, 2, 4, 5], "=": [0, 7, 0, 7, 0], "(": [1, 2, 2, 2, 1], ")": [4, 2, 2, 2, 4],
        "<": [1, 2, 4, 2, 1], ">": [4, 2, 1, 2, 4],
    ]
}

public enum PNG {
    /// The zlib level PNGs are written at (zlib's default: 1 fastest … 9 smallest).
    public static let compressionLevel: Int32 = 6

    /// Encodes an RGB image as a PNG: signature, IHDR (8-bit RGB), one IDAT holding the rows (each
    /// with filter type 0, none) deflated by zlib at `compressionLevel`, IEND.
    public static func encode(_ image: RGBImage) throws -> Data {
        var raw = [UInt8](); raw.reserveCapacity(image.height * (1 + 3 * image.width))
        for y in 0..<image.height {
            raw.append(0)  // filter type: none
            raw.append(contentsOf: image.pixels[(y * image.width * 3)..<((y + 1) * image.width * 3)])
        }
        var out = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        var ihdr = [UInt8]()
        ihdr += be32(UInt32(image.width)); ihdr += be32(UInt32(image.height))
        ihdr += [8, 2, 0, 0, 0]  // bit depth 8, colour type 2 (RGB), deflate, filter 0, no interlace
        chunk(&out, "IHDR", ihdr)
        chunk(&out, "IDAT", try deflate(raw, level: compressionLevel))
        chunk(&out, "IEND", [])
        return out
    }

    /// Writes an image as PNG atomically.
    public static func write(_ image: RGBImage, to path: String) throws { try AtomicFile.write(try encode(image), to: path) }

    /// A zlib stream (RFC 1950) of `bytes`, from zlib's `compress2`.
    public static func deflate(_ bytes: [UInt8], level: Int32) throws -> [UInt8] {
        var size = compressBound(uLong(bytes.count))
        var out = [UInt8](repeating: 0, count: Int(size))
        let status = out.withUnsafeMutableBufferPointer { o in
            bytes.withUnsafeBufferPointer { i in compress2(o.baseAddress, &size, i.baseAddress, uLong(bytes.count), level) }
        }
        // With a compressBound-sized buffer compress2 fails only for a bad level or without memory.
        guard status == Z_OK else { throw CoreError("zlib: cannot deflate \(bytes.count) bytes at level \(level) (status \(status))") }
        out.removeLast(out.count - Int(size))
        return out
    }

    /// The bytes of a zlib stream, from zlib's `uncompress` (`expected` is the exact decoded size).
    public static func inflate(_ bytes: [UInt8], expected: Int) throws -> [UInt8] {
        var size = uLong(expected)
        var out = [UInt8](repeating: 0, count: max(expected, 1))
        let status = out.withUnsafeMutableBufferPointer { o in
            bytes.withUnsafeBufferPointer { i in uncompress(o.baseAddress, &size, i.baseAddress, uLong(bytes.count)) }
        }
        guard status == Z_OK, Int(size) == expected else {
            throw CoreError("zlib: cannot inflate \(bytes.count) bytes to \(expected) (status \(status), got \(size) bytes)")
        }
        return Array(out.prefix(expected))
    }

    /// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as PNG chunks use; zlib's `crc32`.
    public static func crc32(_ bytes: [UInt8]) -> UInt32 {
        UInt32(bytes.withUnsafeBufferPointer { CZlib.crc32(0, $0.baseAddress, uInt($0.count)) })
    }

    static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }

    static func chunk(_ out: inout Data, _ type: String, _ body: [UInt8]) {
        out.append(contentsOf: be32(UInt32(body.count)))
        let typeBytes = Array(type.utf8)
        out.append(contentsOf: typeBytes)
        out.append(contentsOf: body)
        out.append(contentsOf: be32(crc32(typeBytes + body)))
    }
}
