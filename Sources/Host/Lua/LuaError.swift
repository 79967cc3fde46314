// Errors that cross the Lua/Swift boundary: a failed call into Lua (LuaError) and a bad argument
// to a bound function (LuaArgumentError).
import Foundation

/// A Lua error that reached Swift: a syntax error, a runtime error in a recipe or callback, or a
/// file that could not be read. `message` is Lua's full message (`recipe.lua:12: boom`); `file`
/// and `line` are parsed from its position prefix when there is one.
public struct LuaError: Error, CustomStringConvertible {
    public enum Kind: String, Sendable { case syntax, runtime, file, memory, handler }
    public let kind: Kind
    /// The full message, including the `file:line: ` prefix when Lua added one.
    public let message: String
    /// The chunk the error points at (`recipe.lua`), when the message has a position.
    public let file: String?
    /// The 1-based line the error points at, when the message has a position.
    public let line: Int?
    /// Lua's `stack traceback:` text (empty for syntax errors).
    public let traceback: String

    public init(kind: Kind, message: String, traceback: String = "") {
        self.kind = kind
        self.message = message
        self.traceback = traceback
        (self.file, self.line) = LuaError.position(of: message)
    }

    /// The message without its `file:line: ` prefix.
    public var reason: String {
        guard let file, let line else { return message }
        let prefix = "\(file):\(line): "
        return message.hasPrefix(prefix) ? String(message.dropFirst(prefix.count)) : message
    }

    /// This error with ` (context)` appended to its message — once: an error that already carries
    /// a context starting with `context`'s first word group (`in the rule function`) is returned
    /// unchanged, so an error from a callback nested in itself (a rule that recurses until the C stack
    /// overflows) names the innermost callback instead of repeating the suffix at every level.
    public func inContext(_ context: String) -> LuaError {
        let head = context.split(separator: ",", maxSplits: 1).first.map(String.init) ?? context
        if message.contains(" (\(head)") { return self }
        return LuaError(kind: kind, message: message + " (\(context))", traceback: traceback)
    }

    /// The message followed by the traceback, as printed by `semidpo run`.
    public var description: String { traceback.isEmpty ? message : message + "\n" + traceback }

    /// Parses Lua's `chunk:line: ` prefix (the chunk name itself may contain colons).
    static func position(of message: String) -> (String?, Int?) {
        let firstLine = message.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        var search = firstLine.startIndex
        while let colon = firstLine[search...].firstIndex(of: ":") {
            let afterColon = firstLine.index(after: colon)
            let digits = firstLine[afterColon...].prefix(while: { $0.isNumber })
            if !digits.isEmpty, digits.endIndex < firstLine.endIndex, firstLine[digits.endIndex] == ":",
               colon > firstLine.startIndex, let n = Int(digits) {
                return (String(firstLine[..<colon]), n)
            }
            search = afterColon
        }
        return (nil, nil)
    }
}

/// A bad argument to a bound function, already formatted the way Lua's auxiliary library does:
/// `bad argument #2 to 'train' (expected Model, got nil)`.
public struct LuaArgumentError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
