// PNG encoder: checksums against known values, structure of the stream, raster helpers.
import Foundation
import Testing
@testable import Core

@Test func pngChecksumsMatchKnownValues() {
    // Standard check values: CRC-32("123456789") = 0xCBF43926, Adler-32("Wikipedia") = 0x11E60398.
    #expect(PNG.crc32(Array("123456789".utf8)) == 0xCBF4_3926)
    #expect(PNG.adler32(Array("Wikipedia".utf8)) == 0x11E6_0398)
    #expect(PNG.crc32(Array("IEND".utf8)) == 0xAE42_6082)  // the constant every PNG ends with
}

@Test func pngStoredBlocksSplitAt65535() {
    let bytes = [UInt8](repeating: 7, count: 70_000)
    let z = PNG.zlibStored(bytes)
    #expect(z.count == 2 + (5 + 65_535) + (5 + 4_465) + 4)
    #expect(z[2] == 0 && z[2 + 5 + 65_535] == 1)  // only the last block is final
}

@Test func pngEncodesHeaderAndPixels() throws {
    var im = RGBImage(width: 2, height: 1)
    im[0, 0] = (255, 0, 0); im[1, 0] = (0, 0, 255)
    let d = [UInt8](PNG.encode(im))
    #expect(Array(d[0..<8]) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
    #expect(Array(d[12..<16]) == Array("IHDR".utf8))
    #expect(Array(d[16..<24]) == [0, 0, 0, 2, 0, 0, 0, 1])
    // IDAT payload: zlib header, one final stored block of 7 bytes (filter byte + 2 pixels).
    let idat = 8 + 25
    #expect(Array(d[(idat + 4)..<(idat + 8)]) == Array("IDAT".utf8))
    #expect(Array(d[(idat + 8 + 2 + 5)..<(idat + 8 + 2 + 5 + 7)]) == [0, 255, 0, 0, 0, 0, 255])
    #expect(Array(d.suffix(8)) == [0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82])
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
