// PNG encoder: checksums against known values, structure of the stream, raster helpers.
import Foundation
import Testing
@testable import Core

@Test func pngChecksumsMatchKnownValues() {
    // Standard check values: CRC-32("123456789") = 0xCBF43926.
    #expect(PNG.crc32(Array("123456789".utf8)) == 0xCBF4_3926)
    #expect(PNG.crc32(Array("IEND".utf8)) == 0xAE42_6082)  // the constant every PNG ends with
}

/// A small PNG reader for 8-bit RGB, non-interlaced files with filter type 0 rows (what `PNG.encode`
/// writes): checks the signature, every chunk's CRC and the zlib stream, and returns the image.
func decodePNG(_ data: Data) throws -> RGBImage {
    let d = [UInt8](data)
    func be32(_ i: Int) -> Int { Int(d[i]) << 24 | Int(d[i + 1]) << 16 | Int(d[i + 2]) << 8 | Int(d[i + 3]) }
    guard d.count >= 8, Array(d[0..<8]) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] else { throw CoreError("png: bad signature") }
    var i = 8, width = 0, height = 0, idat: [UInt8] = [], ended = false
    while i + 12 <= d.count {
        let n = be32(i), type = String(decoding: d[(i + 4)..<(i + 8)], as: UTF8.self)
        guard i + 12 + n <= d.count else { throw CoreError("png: chunk \(type) runs past the end") }
        let body = Array(d[(i + 8)..<(i + 8 + n)])
        guard UInt32(be32(i + 8 + n)) == PNG.crc32(Array(d[(i + 4)..<(i + 8)]) + body) else { throw CoreError("png: bad CRC in \(type)") }
        switch type {
        case "IHDR":
            width = be32(i + 8); height = be32(i + 12)
            guard Array(body[8..<13]) == [8, 2, 0, 0, 0] else { throw CoreError("png: not 8-bit RGB") }
        case "IDAT": idat += body
        case "IEND": ended = true
        default: break
        }
        i += 12 + n
    }
    guard ended, i == d.count, width > 0, height > 0 else { throw CoreError("png: truncated or trailing bytes") }
    let raw = try PNG.inflate(idat, expected: height * (1 + 3 * width))
    var image = RGBImage(width: width, height: height)
    for y in 0..<height {
        let row = y * (1 + 3 * width)
        guard raw[row] == 0 else { throw CoreError("png: row \(y) has filter \(raw[row])") }
        image.pixels.replaceSubrange((y * 3 * width)..<((y + 1) * 3 * width), with: raw[(row + 1)..<(row + 1 + 3 * width)])
    }
    return image
}

@Test func pngEncodesHeaderAndPixels() throws {
    var im = RGBImage(width: 2, height: 1)
    im[0, 0] = (255, 0, 0); im[1, 0] = (0, 0, 255)
    let d = [UInt8](try PNG.encode(im))
    #expect(Array(d[0..<8]) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
    #expect(Array(d[12..<16]) == Array("IHDR".utf8))
    #expect(Array(d[16..<24]) == [0, 0, 0, 2, 0, 0, 0, 1])
    let idat = 8 + 25
    #expect(Array(d[(idat + 4)..<(idat + 8)]) == Array("IDAT".utf8))
    #expect(Array(d[(idat + 8)..<(idat + 10)]) == [0x78, 0x9C])   // zlib header: deflate, 32 KiB window, default level
    #expect(Array(d.suffix(8)) == [0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82])
    #expect(try decodePNG(Data(d)) == im)
}

@Test func pngRoundTripsAndCompresses() throws {
    // A grid of noisy tiles over a flat background, like a sample grid: decoded back pixel for pixel.
    var state: UInt64 = 3   // a 64-bit LCG: the noise only has to be the same every run
    let tiles = (0..<12).map { t -> RGBImage in
        var tile = RGBImage(width: 16, height: 16, fill: (UInt8(t * 20), 90, 200))
        for p in stride(from: 0, to: tile.pixels.count, by: 7) {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            tile.pixels[p] = UInt8(state >> 56)
        }
        return tile.upscaled(by: 4)
    }
    let grid = try RGBImage.grid(tiles, columns: 4, gap: 2)
    let data = try PNG.encode(grid)
    #expect(try decodePNG(data) == grid)
    #expect(data.count * 4 < grid.pixels.count)       // stored blocks were larger than the raw pixels
    // A wide image whose rows together pass 65,535 bytes, and a 1×1 image.
    var wide = RGBImage(width: 3000, height: 9)
    for i in wide.pixels.indices { wide.pixels[i] = UInt8(truncatingIfNeeded: i * 31 / 7) }
    #expect(try decodePNG(PNG.encode(wide)) == wide)
    let dot = RGBImage(width: 1, height: 1, fill: (1, 2, 3))
    #expect(try decodePNG(PNG.encode(dot)) == dot)
    // A corrupted byte in the compressed stream is caught (CRC), not decoded silently.
    var bad = [UInt8](data); bad[45] ^= 0xFF
    #expect(throws: CoreError.self) { try decodePNG(Data(bad)) }
}

/// The shipped 1.08 MB sample grid (written with stored blocks) decodes, and re-encoded through zlib
/// gives the same pixels in far fewer bytes (docs/performance.md records the two sizes).
@Test func shippedSampleGridReencodes() throws {
    let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/img/base_samples.png")
    let original = try Data(contentsOf: path)
    let image = try decodePNG(original)
    let again = try PNG.encode(image)
    #expect(try decodePNG(again) == image)
    #expect(again.count * 5 < original.count)
    print("base_samples.png: \(image.width)×\(image.height), stored \(original.count) bytes, zlib level \(PNG.compressionLevel) \(again.count) bytes")
}

@Test func rasterHelpers() throws {
    let chw: [Float] = [-1, 1, 0, 0,   -1, -1, 0, 0,   1, -1, 0, 0]  // 3×2×2
    let im = try RGBImage(chw: chw, size: 2)
    #expect(im[0, 0] == (0, 0, 255) && im[1, 0] == (255, 0, 0) && im[0, 1] == (128, 128, 128))
    #expect(throws: CoreError.self) { try RGBImage(chw: [0, 0], size: 2) }
    let up = im.upscaled(by: 3)
    #expect(up.width == 6 && up[5, 2] == (255, 0, 0) && up[2, 3] == (128, 128, 128))
    let g = try RGBImage.grid([im, im, im], columns: 2, gap: 1)
    #expect(g.width == 1 + 2 * 3 && g.height == 1 + 2 * 3)
    #expect(g[1, 1] == (0, 0, 255) && g[0, 0] == (255, 255, 255) && g[1, 4] == (0, 0, 255) && g[4, 4] == (255, 255, 255))
    var t = RGBImage(width: 8, height: 5)
    t.drawText("1", x: 0, y: 0)
    // glyph "1" rows 010 110 010 010 111
    #expect(t[1, 0] == (0, 0, 0) && t[0, 0] == (255, 255, 255) && t[0, 4] == (0, 0, 0) && t[2, 4] == (0, 0, 0))
}
