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
    for text in ["0.1", "1.7", "-0.0", "123456789012345678901.0", "1.7976931348623157e308", "2.2250738585072014e-308",
                 "0.30000000000000004", "4.35e-27", "9007199254740993.0", "1e22", "1e23", "0.271235", "-12.3456"] {
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
    for (text, want) in [("9007199254740993", Int64(9_007_199_254_740_993)), ("-42", -42), ("0", 0),
                         ("9223372036854775807", Int64.max), ("-9223372036854775808", Int64.min)] {
        var bytes = Array(text.utf8)
        let got = try bytes.withUnsafeMutableBytes { b -> Int64 in
            var s = JSONScanner(UnsafeRawBufferPointer(b), start: 0, end: b.count)
            return try s.parseInteger("idx")
        }
        #expect(got == want, "\(text)")
    }
    // A float where an integer is required, or an integer outside Int64: the error names the value.
    for (text, message) in [("1.5", "idx must be an integer, found 1.5"), ("12.0", "idx must be an integer, found 12.0"),
                            ("1e3", "idx must be an integer, found 1e3"), ("true", "idx must be an integer, found 't'"),
                            ("9223372036854775808", "idx 9223372036854775808 does not fit in a 64-bit integer (-9223372036854775808 … 9223372036854775807)"),
                            ("-9223372036854775809", "idx -9223372036854775809 does not fit in a 64-bit integer (-9223372036854775808 … 9223372036854775807)")] {
        var bytes = Array(text.utf8)
        do {
            try bytes.withUnsafeMutableBytes { b in var s = JSONScanner(UnsafeRawBufferPointer(b), start: 0, end: b.count); _ = try s.parseInteger("idx") }
            Issue.record("no error for \(text)")
        } catch let e as JSONSyntaxError {
            #expect(e.message == message && e.offset == 0, "\(text): \(e.message)")
        }
    }
}

@Test func jsonIntegerLiteralsAreExactIntegers() throws {
    #expect(try JSON.parse("9007199254740993") == .integer(9_007_199_254_740_993))
    #expect(try JSON.parse("9007199254740993") != .number(9_007_199_254_740_992))   // no double equals 2^53 + 1
    #expect(try JSON.parse("[9223372036854775807, -9223372036854775808, 7, 7.0]")
            == .array([.integer(.max), .integer(.min), .integer(7), .number(7)]))
    #expect(try JSON.parse("7") == .number(7))                                       // numbers compare by value
    #expect(try JSON.parse("7").intValue == 7)
    #expect(try JSON.parse("7.0").intValue == nil)                                  // a float is not an integer
    // An integer literal outside Int64 is an error at its line and column, naming the digits.
    do { _ = try JSON.parse("{\"ids\": [1,\n  9223372036854775808]}", name: "ids.json"); Issue.record("no error") } catch {
        #expect("\(error)" == "ids.json:2:3: integer 9223372036854775808 does not fit in a 64-bit integer (-9223372036854775808 … 9223372036854775807)")
    }
    // Written back exactly; 2^53 + 1 written as a double would print 9007199254740992.
    let v = JSONValue.array([.integer(9_007_199_254_740_993), .integer(.min), .number(0.5)])
    #expect(JSON.serialize(v) == "[9007199254740993, -9223372036854775808, 0.5]")
    #expect(try JSON.parse(JSON.serialize(v)) == v)
}

@Test func idListsAreExactAndStrict() throws {
    let path = NSTemporaryDirectory() + "semidpo-ids-\(getpid()).json"
    defer { unlink(path) }
    try AtomicFile.write("[9007199254740993, \"9223372036854775807\", -9223372036854775808, 0]", to: path)
    #expect(try readIdList(path) == [9_007_199_254_740_993, .max, .min, 0])
    for (text, message) in [("[1, 2.0]", "1:5: id must be an integer, found 2.0"),
                            ("[1,\n 1.5]", "2:2: id must be an integer, found 1.5"),
                            ("[18446744073709551616]", "1:2: id 18446744073709551616 does not fit in a 64-bit integer (-9223372036854775808 … 9223372036854775807)"),
                            ("[\"1e3\"]", "1:2: id \"1e3\" is not an integer that fits in 64 bits"),
                            ("{\"a\": 1}", "1:1: expected '[' (an id list is a JSON array), found '{'")] {
        try AtomicFile.write(text, to: path)
        do { _ = try readIdList(path); Issue.record("no error for \(text)") } catch {
            #expect("\(error)" == "\(path):\(message)", "\(text)")
        }
    }
}

/// The goldens are the bytes Foundation's `JSONSerialization.data(withJSONObject:options: [.sortedKeys])`
/// wrote for the same dictionaries before the project's writer replaced it (Swift 6.3.1 on Linux;
/// /tmp script: `print(String(decoding: try JSONSerialization.data(withJSONObject: d, options: [.sortedKeys]), as: UTF8.self))`).
@Test func compactWriterMatchesTheBytesFoundationWrote() throws {
    var pretrain: [String: Any] = ["batch_size": 32, "learning_rate": 1e-3, "warmup_steps": 100, "lr_decay": "constant",
                                   "min_lr_factor": 0.1, "weight_decay": 0.0, "beta1": 0.9, "beta2": 0.999, "grad_clip": 1.0,
                                   "conditioning_dropout": 0.1, "ema_decay": 0.0, "checkpoint_every": 500, "seed": 0]
    #expect(try JSON.serialize(any: pretrain) == #"{"batch_size":32,"beta1":0.9,"beta2":0.999,"checkpoint_every":500,"conditioning_dropout":0.1,"ema_decay":0,"grad_clip":1,"learning_rate":0.001,"lr_decay":"constant","min_lr_factor":0.1,"seed":0,"warmup_steps":100,"weight_decay":0}"#)
    pretrain["loss_weighting"] = "min_snr"; pretrain["min_snr_gamma"] = 5.0; pretrain["lr_decay"] = "cosine"
    pretrain["learning_rate"] = 2e-5; pretrain["ema_decay"] = 0.995; pretrain["seed"] = 7
    #expect(try JSON.serialize(any: pretrain) == #"{"batch_size":32,"beta1":0.9,"beta2":0.999,"checkpoint_every":500,"conditioning_dropout":0.1,"ema_decay":0.995,"grad_clip":1,"learning_rate":2e-05,"loss_weighting":"min_snr","lr_decay":"cosine","min_lr_factor":0.1,"min_snr_gamma":5,"seed":7,"warmup_steps":100,"weight_decay":0}"#)
    var tiny = DiffusionConfig.tiny(vocabulary: ["red", "circle"])
    tiny.schedule = .cosine
    #expect(try tiny.json() == #"{"attention_heads":2,"attention_resolutions":[4],"beta_end":0.012,"beta_start":0.00085,"channels":[8,16],"embedding_dimension":16,"image_channels":3,"image_size":8,"max_tokens":4,"norm_groups":4,"res_blocks":1,"schedule":"cosine","text_dimension":16,"text_heads":2,"text_layers":1,"text_mlp_ratio":2,"time_dimension":8,"timesteps":1000,"vocabulary":["red","circle"]}"#)
    #expect(try DiffusionConfig(json: tiny.json()) == tiny)
    // Escapes as Foundation wrote them (lower-case \u00XX; DEL and U+2028 raw).
    #expect(try JSON.serialize(any: ["é\u{1}\u{1f}\t\n\u{8}\u{c}\"\\", "\u{7f}", "\u{2028}"])
            == #"["é\u0001\u001f\t\n\b\f\"\\",""# + "\u{7f}\",\"\u{2028}\"]")
    // Floats are written in their own shortest form, as Foundation did; a nil or a non-JSON type is an error.
    #expect(try JSON.serialize(any: [Float(0.1), Float(1e-8), Float(3)]) == "[0.1,1e-08,3]")
    #expect(throws: CoreError.self) { try JSON.serialize(any: ["a": Optional<Int>.none as Any]) }
    #expect(throws: CoreError.self) { try JSON.serialize(any: ["a": Date()]) }
    #expect(try JSON.serialize(any: ["b": [1, 2], "a": Optional(true) as Any]) == #"{"a":true,"b":[1,2]}"#)
}
