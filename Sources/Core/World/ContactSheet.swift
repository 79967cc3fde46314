// Contact sheets of preference pairs (the paper's Figure 7): both images, the holistic label as a
// green (winner) / red (loser) frame, and the true per-dimension scores under each image.

/// One pair to show on a contact sheet.
public struct SheetPair: Sendable {
    public var prompt: String
    public var image0: [Float]
    public var image1: [Float]
    /// +1: image0 preferred, -1: image1 preferred, 0: tie.
    public var label: Int
    public var truth0: QualityScores
    public var truth1: QualityScores
    public init(prompt: String, image0: [Float], image1: [Float], label: Int, truth0: QualityScores, truth1: QualityScores) {
        self.prompt = prompt; self.image0 = image0; self.image1 = image1; self.label = label; self.truth0 = truth0; self.truth1 = truth1
    }
}

public enum ContactSheet {
    /// Composes pairs into one image: `columns` pairs per row, each image upscaled by `scale`.
    /// Under each image: AL/AE/DE/OV scores (alignment, aesthetics, detail, overall); a dimension
    /// that disagrees with the label is marked with `<`.
    public static func render(_ pairs: [SheetPair], size: Int, columns: Int = 4, scale: Int = 4) throws -> RGBImage {
        guard !pairs.isEmpty else { throw CoreError("contact sheet: no pairs") }
        guard columns >= 1, scale >= 1 else { throw CoreError("contact sheet: columns and scale must be ≥ 1") }
        let im = size * scale, frame = 2
        let cellW = 2 * (im + 2 * frame) + 10, cellH = 9 + im + 2 * frame + 4 * 6 + 6
        let rows = (pairs.count + columns - 1) / columns
        var sheet = RGBImage(width: columns * cellW + 4, height: rows * cellH + 4)
        for (n, p) in pairs.enumerated() {
            let ox = 4 + (n % columns) * cellW, oy = 4 + (n / columns) * cellH
            let maxChars = (cellW - 6) / 4
            let text = p.prompt.count > maxChars ? String(p.prompt.prefix(maxChars - 1)) + "." : p.prompt
            sheet.drawText(text, x: ox, y: oy)
            for side in 0..<2 {
                let img = try RGBImage(chw: side == 0 ? p.image0 : p.image1, size: size).upscaled(by: scale)
                let x = ox + side * (im + 2 * frame + 4), y = oy + 8
                let won = (p.label == 1 && side == 0) || (p.label == -1 && side == 1)
                let colour: (UInt8, UInt8, UInt8) = p.label == 0 ? (160, 160, 160) : (won ? (20, 170, 40) : (210, 30, 30))
                sheet.fillRect(x: x, y: y, width: im + 2 * frame, height: im + 2 * frame, colour)
                sheet.paste(img, x: x + frame, y: y + frame)
                let mine = side == 0 ? p.truth0 : p.truth1, other = side == 0 ? p.truth1 : p.truth0
                let names = ["AL", "AE", "DE", "OV"]
                let a = mine.array + [mine.overall], b = other.array + [other.overall]
                for k in 0..<4 {
                    let v = Int((a[k] * 100).rounded())
                    // The winner's dimension is worse (or the loser's better) → conflict with the label.
                    let conflict = p.label != 0 && k < 3 && (won ? a[k] < b[k] : a[k] > b[k])
                    sheet.drawText("\(names[k]) \(String(format: "%3d", min(v, 100)))\(conflict ? " <" : "")",
                                   x: x, y: y + im + 2 * frame + 2 + 6 * k, colour: conflict ? (200, 30, 30) : (0, 0, 0))
                }
            }
        }
        return sheet
    }
}
