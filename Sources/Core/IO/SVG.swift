// Line charts as standalone SVG files (loss and accuracy curves), written atomically.
import Foundation

/// One named series of (x, y) points.
public struct PlotSeries: Sendable {
    public var name: String
    public var points: [(x: Double, y: Double)]
    public init(name: String, points: [(x: Double, y: Double)]) { self.name = name; self.points = points }
    public init(name: String, values: [Double]) {
        self.name = name
        self.points = values.enumerated().map { (Double($0.offset), $0.element) }
    }
}

public enum SVGPlot {
    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]

    /// Renders series as polylines with axes, ticks, a title and a legend. Non-finite points are skipped.
    public static func render(title: String, xLabel: String, yLabel: String, series: [PlotSeries],
                              width: Int = 640, height: Int = 400) -> String {
        let left = 70.0, right = 20.0, top = 36.0, bottom = 50.0
        let pw = Double(width) - left - right, ph = Double(height) - top - bottom
        let all = series.flatMap { $0.points }.filter { $0.x.isFinite && $0.y.isFinite }
        var x0 = all.map(\.x).min() ?? 0, x1 = all.map(\.x).max() ?? 1
        var y0 = all.map(\.y).min() ?? 0, y1 = all.map(\.y).max() ?? 1
        if x1 <= x0 { x1 = x0 + 1 }
        if y1 <= y0 { y0 -= 0.5; y1 += 0.5 }
        let pad = (y1 - y0) * 0.05; y0 -= pad; y1 += pad
        func sx(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * pw }
        func sy(_ y: Double) -> Double { top + (1 - (y - y0) / (y1 - y0)) * ph }
        func fmt(_ v: Double) -> String {
            let a = abs(v)
            if a != 0 && (a < 1e-3 || a >= 1e5) { return String(format: "%.2e", v) }
            return String(format: a >= 100 ? "%.0f" : (a >= 1 ? "%.2f" : "%.3f"), v)
        }
        var s = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" font-family="sans-serif" font-size="11">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(Double(width) / 2)" y="20" text-anchor="middle" font-size="14">\(escape(title))</text>
        <rect x="\(left)" y="\(top)" width="\(pw)" height="\(ph)" fill="none" stroke="#333"/>

        """
        for i in 0...4 {
            let fx = x0 + (x1 - x0) * Double(i) / 4, fy = y0 + (y1 - y0) * Double(i) / 4
            s += "<line x1=\"\(sx(fx))\" y1=\"\(top + ph)\" x2=\"\(sx(fx))\" y2=\"\(top + ph + 4)\" stroke=\"#333\"/>"
            s += "<text x=\"\(sx(fx))\" y=\"\(top + ph + 16)\" text-anchor=\"middle\">\(fmt(fx))</text>\n"
            s += "<line x1=\"\(left - 4)\" y1=\"\(sy(fy))\" x2=\"\(left + pw)\" y2=\"\(sy(fy))\" stroke=\"#ddd\"/>"
            s += "<text x=\"\(left - 6)\" y=\"\(sy(fy) + 4)\" text-anchor=\"end\">\(fmt(fy))</text>\n"
        }
        s += "<text x=\"\(left + pw / 2)\" y=\"\(Double(height) - 12)\" text-anchor=\"middle\">\(escape(xLabel))</text>\n"
        s += "<text transform=\"translate(16,\(top + ph / 2)) rotate(-90)\" text-anchor=\"middle\">\(escape(yLabel))</text>\n"
        for (k, ser) in series.enumerated() {
            let color = palette[k % palette.count]
            let pts = ser.points.filter { $0.x.isFinite && $0.y.isFinite }
                .map { String(format: "%.2f,%.2f", sx($0.x), sy($0.y)) }.joined(separator: " ")
            s += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(pts)\"/>\n"
            let ly = top + 14 + Double(k) * 14
            s += "<line x1=\"\(left + pw - 120)\" y1=\"\(ly - 4)\" x2=\"\(left + pw - 104)\" y2=\"\(ly - 4)\" stroke=\"\(color)\" stroke-width=\"2\"/>"
            s += "<text x=\"\(left + pw - 100)\" y=\"\(ly)\">\(escape(ser.name))</text>\n"
        }
        s += "</svg>\n"
        return s
    }

    public static func write(_ path: String, title: String, xLabel: String, yLabel: String, series: [PlotSeries]) throws {
        try AtomicFile.write(render(title: title, xLabel: xLabel, yLabel: yLabel, series: series), to: path)
    }

    static func escape(_ t: String) -> String {
        t.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}
