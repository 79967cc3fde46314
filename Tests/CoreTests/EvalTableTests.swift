// Win rates, summary statistics and table rendering on small hand-worked inputs.
import Testing
@testable import Core

/// A = [3, 2, 5, 1], B = [1, 2, 4, 2]: A wins on prompts 0 and 2, ties on 1 ⇒ 2/4 = 0.5.
@Test func winRateCountsStrictWinsOnly() throws {
    #expect(try Metrics.winRate([3, 2, 5, 1], over: [1, 2, 4, 2]) == 0.5)
    #expect(throws: CoreError.self) { try Metrics.winRate([1], over: [1, 2]) }
}

/// [1, 2, 3, 4]: mean 2.5, sample sd sqrt(5/3) = 1.2909944, se = 1.2909944/2 = 0.6454972.
@Test func meanAndStandardError() {
    #expect(Metrics.mean([1, 2, 3, 4]) == 2.5)
    #expect(abs(Metrics.standardError([1, 2, 3, 4]) - 0.6454972243679028) < 1e-12)
}

@Test func tableRendersMarkdownAndCSV() {
    var t = ResultTable(title: "Table 1", columns: ["Method", "MPS"])
    t.addRow([.text("Semi-DPO, iter 2"), .number(0.51234, decimals: 3)])
    #expect(t.markdown.contains("| Semi-DPO, iter 2 | 0.512 |"))
    #expect(t.csv == "Method,MPS\n\"Semi-DPO, iter 2\",0.51234\n")
}

@Test func svgPlotContainsOnePolylinePerSeries() {
    let svg = SVGPlot.render(title: "loss", xLabel: "step", yLabel: "loss",
                             series: [PlotSeries(name: "a", values: [3, 2, 1]), PlotSeries(name: "b<c", values: [1, .nan, 2])])
    #expect(svg.components(separatedBy: "<polyline").count == 3)
    #expect(svg.contains("b&lt;c"))
}
