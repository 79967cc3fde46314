// Word tokenizer for prompts: lower-cases, treats punctuation as a separator, splits on white space
// and maps each word to its id in a fixed vocabulary (id 0 = padding; "" is the null prompt).
import Foundation

/// Maps prompts to fixed-length rows of token ids over a word vocabulary.
///
/// Id 0 is `TokenBatch.pad`; vocabulary word `i` (0-based) gets id `i + 1`. A prompt is lower-cased,
/// every punctuation character is replaced by a space, and the result is split on white space.
/// The empty prompt "" (or one made only of punctuation/space) is the **null prompt**: all padding,
/// the classifier-free "unconditional" input. A word outside the vocabulary, or more than
/// `maxLength` words, is a `CoreError` naming the word and the prompt.
public struct Tokenizer: Equatable, Sendable {
    public let vocabulary: [String]
    public let maxLength: Int
    private let ids: [String: Int32]

    /// Number of embedding rows a model needs: the vocabulary plus the padding id.
    public var tokenCount: Int { vocabulary.count + 1 }

    public init(vocabulary: [String], maxLength: Int = 8) throws {
        guard maxLength >= 1 else { throw CoreError("tokenizer: maxLength must be ≥ 1 (got \(maxLength))") }
        guard !vocabulary.isEmpty else { throw CoreError("tokenizer: the vocabulary is empty") }
        var ids: [String: Int32] = [:]
        for (i, word) in vocabulary.enumerated() {
            guard Tokenizer.words(of: word) == [word] else {
                throw CoreError("tokenizer: vocabulary entry \(i) '\(word)' is not a single lower-case word without punctuation")
            }
            guard ids[word] == nil else { throw CoreError("tokenizer: vocabulary word '\(word)' appears twice") }
            ids[word] = Int32(i + 1)
        }
        self.vocabulary = vocabulary
        self.maxLength = maxLength
        self.ids = ids
    }

    /// The normalised words of a text: lower-cased, punctuation → space, split on white space.
    public static func words(of text: String) -> [String] {
        var cleaned = ""
        for scalar in text.lowercased().unicodeScalars {
            if CharacterSet.punctuationCharacters.contains(scalar) || CharacterSet.symbols.contains(scalar) {
                cleaned.unicodeScalars.append(" ")
            } else {
                cleaned.unicodeScalars.append(scalar)
            }
        }
        return cleaned.split(whereSeparator: { $0.isWhitespace }).map(String.init)
    }

    /// Token ids of one prompt, padded with 0 to `maxLength`.
    public func encode(_ prompt: String) throws -> [Int32] {
        let words = Tokenizer.words(of: prompt)
        guard words.count <= maxLength else {
            throw CoreError("tokenizer: prompt \"\(prompt)\" has \(words.count) words, the model takes at most \(maxLength)")
        }
        var row = [Int32](repeating: TokenBatch.pad, count: maxLength)
        for (i, w) in words.enumerated() {
            guard let id = ids[w] else { throw CoreError("tokenizer: unknown word '\(w)' in prompt \"\(prompt)\"") }
            row[i] = id
        }
        return row
    }

    /// A batch of prompts → (B, maxLength) ids.
    public func encode(_ prompts: [String]) throws -> TokenBatch {
        var ids: [Int32] = []
        ids.reserveCapacity(prompts.count * maxLength)
        for p in prompts { ids += try encode(p) }
        return TokenBatch(ids: ids, batch: prompts.count, length: maxLength)
    }

    /// The words of an id row (padding and ids outside the vocabulary — negative ones included —
    /// skipped; `DiffusionModel.checkTokens` is where such ids are errors).
    public func decode(_ row: [Int32]) -> String {
        row.filter { $0 > TokenBatch.pad && Int($0) <= vocabulary.count }.map { vocabulary[Int($0) - 1] }.joined(separator: " ")
    }

    /// `count` null prompts (all padding).
    public func nullTokens(count: Int) -> TokenBatch {
        TokenBatch(ids: [Int32](repeating: TokenBatch.pad, count: count * maxLength), batch: count, length: maxLength)
    }
}
