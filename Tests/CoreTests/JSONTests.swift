// Tests of the JSON parser, serializer and JSONL reader: values, escapes, exact numbers, error positions.
import Foundation
import Testing
@testable import Core

@Test func jsonParsesAllValueKinds() throws {
    let v = try JSON.parse(#"{"a": [1, -2.5e-3, true, false, null], "b": {"c": "x\ny\"z\\ \u00e9 \ud83d\ude00"}, "a": 7}"#)
    guard case let .object(m) = v else { Issue.record("not an object"); return }
    #expect(m.map(\.key) == ["a", "b", "a"])               // order and duplicates kept
    #expect(v["a"] == .number(7))                           // last duplicate wins on lookup
    #expect(m[0].value == .array([.number(1), .number(-0.0025), .bool(true), .bool(false), .null]))
    #expect(v["b"]?["c"] == .string("x\ny\"z\\ é 😀"))
}

@Test func jsonNumbersAreCorrectlyRounded() throws {
    // Fast path (≤ 19 digits, |exp| ≤ 22) and strtod path must both equal Swift's own correctly rounded parse.
    for text in ["0.1", "1.7", "-0.0", "123456789012345678901", "1.7976931348623157e308", "2.2250738585072014e-308",
                 "0.30000000000000004", "4.35e-27", "9007199254740993", "1e22", "1e23", "0.271235", "-12.3456"] {
        let v = try JSON.parse(text)
        #expect(v == .number(Double(text)!), "\(text)")
    }
    #expect(throws: CoreError.self) { try JSON.parse("NaN") }
    #expect(throws: CoreError.self) { try JSON.parse("01") }
    #expect(throws: CoreError.self) { try JSON.parse("1.") }
}

@Test func jsonErrorsGiveLineAndColumn() {
    // Line 2 is `  "a": [1, 2,, 3]`; the second ',' of ",," is column 14.
    do { _ = try JSON.parse("{\n  \"a\": [1, 2,, 3]\n}", name: "x.json"); Issue.record("no error") } catch {
        #expect("\(error)" == "x.json:2:14: expected a value, found ','")
    }
    do { _ = try JSON.parse("[1, 2] 3", name: "y"); Issue.record("no error") } catch {
        #expect("\(error)" == "y:1:8: unexpected '3' after the JSON value")
    }
    do { _ = try JSON.parse("\"abc", name: "z"); Issue.record("no error") } catch {
        #expect("\(error)" == "z:1:1: unterminated string")
    }
}

@Test func jsonSerializerRoundTrips() throws {
    let v = JSONValue.object([("k", .array([.number(1), .number(0.1), .number(-3e-9), .string("q\"\n\u{1}")])), ("e", .object([]))])
    let text = JSON.serialize(v)
    #expect(text == #"{"k": [1, 0.1, -3e-09, "q\"\n\u0001"], "e": {}}"#)
    #expect(try JSON.parse(text) == v)
    #expect(try JSON.parse(JSON.serialize(v, indent: 2)) == v)
}

@Test func jsonlReportsTheLineNumber() throws {
    let path = NSTemporaryDirectory() + "semidpo-jsonl-\(getpid()).jsonl"
    try "{\"a\": 1}\n\n[1, 2]\n{\"b\": tru}\n".write(toFile: path, atomically: true, encoding: .utf8)
    defer { unlink(path) }
    do { _ = try JSONL.read(file: path); Issue.record("no error") } catch {
        #expect("\(error)" == "\(path):4:7: invalid literal (expected 'true')")
    }
    try "{\"a\": 1}\n\n[1, 2]\n".write(toFile: path, atomically: true, encoding: .utf8)
    #expect(try JSONL.read(file: path) == [.object([("a", .number(1))]), .array([.number(1), .number(2)])])
}

@Test func integersAreExact() throws {
    // Ids above 2^53 must not pass through Double: 2^53 + 1 = 9007199254740993.
    for (text, want) in [("9007199254740993", Int64(9_007_199_254_740_993)), ("-42", -42), ("12.0", 12), ("1e3", 1000),
                         ("9223372036854775807", Int64.max), ("-9223372036854775808", Int64.min)] {
        var bytes = Array(text.utf8)
        let got = try bytes.withUnsafeMutableBytes { b -> Int64 in
            var s = JSONScanner(UnsafeRawBufferPointer(b), start: 0, end: b.count)
            return try s.parseInteger("idx")
        }
        #expect(got == want, "\(text)")
    }
    var bytes = Array("1.5".utf8)
    #expect(throws: JSONSyntaxError.self) {
        try bytes.withUnsafeMutableBytes { b in var s = JSONScanner(UnsafeRawBufferPointer(b), start: 0, end: b.count); _ = try s.parseInteger("idx") }
    }
}
