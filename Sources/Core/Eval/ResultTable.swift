// A results table (rows × columns of numbers, intervals or text) rendered as Markdown and CSV.
import Foundation

/// A table as the paper prints them: a title, column names, and rows of cells.
public struct ResultTable: Sendable {
    public enum Cell: Sendable, Equatable {
        case text(String)
        case number(Double, decimals: Int)
        /// A statistic with its interval (`Statistics.bootstrap`): `mean [lo, hi]` or `mean ± half-width`.
        case estimate(Estimate, decimals: Int)
        case empty
        var rendered: String { rendered(.range) }
        func rendered(_ style: IntervalStyle) -> String {
            func f(_ v: Double, _ d: Int) -> String { v.isFinite ? String(format: "%.\(d)f", v) : "—" }
            switch self {
            case .text(let s): return s
            case .number(let v, let d): return f(v, d)
            case .estimate(let e, let d):
                switch style {
                case .range: return "\(f(e.mean, d)) [\(f(e.lo, d)), \(f(e.hi, d))]"
                case .plusMinus: return "\(f(e.mean, d)) ± \(f(e.halfWidth, d))"
                }
            case .empty: return ""
            }
        }
    }

    /// How interval cells print in Markdown: `0.512 [0.499, 0.525]` or `0.512 ± 0.013` (± the half-width
    /// (hi − lo)/2 of the percentile interval, which need not be symmetric about the mean).
    public enum IntervalStyle: String, Sendable, CaseIterable {
        case range
        case plusMinus = "pm"
    }

    public var title: String
    public var columns: [String]
    public var rows: [[Cell]]
    public var intervalStyle: IntervalStyle
    /// What the units behind an interval cell are called in the table's note ("prompts", "pairs").
    public var unit: String

    public init(title: String, columns: [String], rows: [[Cell]] = [], intervalStyle: IntervalStyle = .range, unit: String = "prompts") {
        self.title = title
        self.columns = columns
        self.rows = rows
        self.intervalStyle = intervalStyle
        self.unit = unit
    }

    /// The interval cells, in row order.
    var estimates: [Estimate] {
        rows.flatMap { $0.compactMap { if case .estimate(let e, _) = $0 { return e } else { return nil } } }
    }

    /// "100 prompts × 3 seeds" for one cell (per-seed counts joined by "+" when they differ); with several
    /// images per prompt (`Estimate.images`) "23 prompts (115 images) × 3 seeds".
    func backing(_ e: Estimate) -> String {
        guard let c0 = e.counts.first else { return "an unstated number of \(unit)" }
        let n = Set(e.counts).count == 1 ? "\(c0)" : e.counts.map(String.init).joined(separator: "+")
        var units = "\(n) \(unit)"
        if e.images.count == e.counts.count, e.images != e.counts {
            units += " (" + (Set(e.images).count == 1 ? "\(e.images[0])" : e.images.map(String.init).joined(separator: "+")) + " images)"
        }
        return e.seeds == 1 ? units : "\(units) × \(e.seeds) seeds"
    }

    /// The line under a table with interval cells: the interval's definition and what backs each cell
    /// (once when every cell has the same backing; otherwise each cell also says its own).
    var intervalNote: String? {
        let es = estimates
        guard let first = es.first else { return nil }
        let levels = Set(es.map(\.level)).sorted().map { "\(ClaimChecker.format($0 * 100, 1))%" }.joined(separator: "/")
        var s = "Cells: mean " + (intervalStyle == .range ? "[\(levels) interval]" : "± half-width of the \(levels) interval")
        s += "; percentile bootstrap, \(first.resamples) resamples, "
        s += first.pooling == .prompts ? "\(unit) resampled within each seed" : "seeds and \(unit) within each seed resampled"
        let backings = Set(es.map(backing))
        s += backings.count == 1 ? "; each cell: \(backings.first!)." : "; each cell's \(unit) × seeds in parentheses."
        return s
    }

    public mutating func addRow(_ cells: [Cell]) {
        precondition(cells.count == columns.count, "row has \(cells.count) cells for \(columns.count) columns")
        rows.append(cells)
    }

    /// GitHub-flavoured Markdown with the title as a bold caption line.
    public var markdown: String {
        var s = "**\(title)**\n\n| " + columns.joined(separator: " | ") + " |\n|"
        s += columns.map { _ in "---" }.joined(separator: "|") + "|\n"
        let perCell = Set(estimates.map(backing)).count > 1
        for r in rows {
            s += "| " + r.map { c -> String in
                if perCell, case .estimate(let e, _) = c { return c.rendered(intervalStyle) + " (\(backing(e)))" }
                return c.rendered(intervalStyle)
            }.joined(separator: " | ") + " |\n"
        }
        if let note = intervalNote { s += "\n" + note + "\n" }
        return s
    }

    /// RFC 4180 CSV; numbers at full precision. A column holding interval cells becomes three columns,
    /// `X`, `X lo`, `X hi` (a plain number in such a column leaves lo and hi empty).
    public var csv: String {
        func q(_ s: String) -> String {
            s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        }
        func num(_ v: Double) -> String { v.isFinite ? "\(v)" : "" }
        let split = columns.indices.map { c in rows.contains { if case .estimate = $0[c] { return true } else { return false } } }
        var header: [String] = []
        for (c, name) in columns.enumerated() { header += split[c] ? [name, name + " lo", name + " hi"] : [name] }
        var s = header.map(q).joined(separator: ",") + "\n"
        for r in rows {
            var cells: [String] = []
            for (c, cell) in r.enumerated() {
                switch cell {
                case .estimate(let e, _): cells += [num(e.mean), num(e.lo), num(e.hi)]
                case .number(let v, _): cells += split[c] ? [num(v), "", ""] : [num(v)]
                default: cells += split[c] ? [q(cell.rendered), "", ""] : [q(cell.rendered)]
                }
            }
            s += cells.joined(separator: ",") + "\n"
        }
        return s
    }
}
