// A results table (rows × columns of numbers or text) rendered as Markdown and CSV.
import Foundation

/// A table as the paper prints them: a title, column names, and rows of cells.
public struct ResultTable: Sendable {
    public enum Cell: Sendable, Equatable {
        case text(String)
        case number(Double, decimals: Int)
        case empty
        var rendered: String {
            switch self {
            case .text(let s): return s
            case .number(let v, let d): return v.isFinite ? String(format: "%.\(d)f", v) : "—"
            case .empty: return ""
            }
        }
    }

    public var title: String
    public var columns: [String]
    public var rows: [[Cell]]

    public init(title: String, columns: [String], rows: [[Cell]] = []) {
        self.title = title
        self.columns = columns
        self.rows = rows
    }

    public mutating func addRow(_ cells: [Cell]) {
        precondition(cells.count == columns.count, "row has \(cells.count) cells for \(columns.count) columns")
        rows.append(cells)
    }

    /// GitHub-flavoured Markdown with the title as a bold caption line.
    public var markdown: String {
        var s = "**\(title)**\n\n| " + columns.joined(separator: " | ") + " |\n|"
        s += columns.map { _ in "---" }.joined(separator: "|") + "|\n"
        for r in rows { s += "| " + r.map(\.rendered).joined(separator: " | ") + " |\n" }
        return s
    }

    /// RFC 4180 CSV; numbers at full precision.
    public var csv: String {
        func q(_ s: String) -> String {
            s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        }
        var s = columns.map(q).joined(separator: ",") + "\n"
        for r in rows {
            s += r.map { c -> String in
                if case .number(let v, _) = c { return v.isFinite ? "\(v)" : "" }
                return q(c.rendered)
            }.joined(separator: ",") + "\n"
        }
        return s
    }
}
