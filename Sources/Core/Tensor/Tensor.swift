// Tensors: contiguous row-major storage (NCHW for images), a shape, and the autograd links.
// `Tensor` (Float32) is what product code uses; `TensorOf<Double>` exists for gradient checks.

/// A contiguous row-major n-d array that can take part in reverse-mode autograd.
///
/// `data` is a Swift array: a reshape shares it (copy-on-write), nothing is copied until written.
/// `grad` is created lazily by `backward()` (same count as `data`); `nil` means "no gradient yet".
public final class TensorOf<S: TensorScalar> {
    /// Dimensions, outermost first; `[]` for a scalar.
    public let shape: [Int]
    /// Elements in row-major order; `data.count == shape.product`.
    public var data: [S]
    /// Accumulated gradient of the last `backward()`, same layout as `data`.
    public var grad: [S]?
    /// True for parameters and for results of ops on tensors that require grad (while grad is enabled).
    public var requiresGrad: Bool

    /// Autograd links: the op inputs, and the closure that accumulates into their `grad` given ours.
    var inputs: [TensorOf<S>] = []
    var backwardFn: (([S]) -> Void)?

    public init(shape: [Int], data: [S], requiresGrad: Bool = false) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in shape \(shape)")
        precondition(shape.reduce(1, *) == data.count,
                     "Tensor: shape \(shape) needs \(shape.reduce(1, *)) elements, got \(data.count)")
        self.shape = shape
        self.data = data
        self.requiresGrad = requiresGrad
    }

    /// Number of elements.
    @inline(__always) public var count: Int { data.count }
    @inline(__always) public var rank: Int { shape.count }
    /// True if this tensor was made by an op and will pass gradients back to its inputs.
    public var isLeaf: Bool { backwardFn == nil }

    /// The single value of a one-element tensor.
    public func item() -> S {
        precondition(count == 1, "item(): tensor of shape \(shape) has \(count) elements")
        return data[0]
    }

    /// Element at a full multi-index (for tests and inspection, not for loops).
    public subscript(_ index: Int...) -> S {
        precondition(index.count == rank, "subscript: \(index.count) indices for shape \(shape)")
        var flat = 0
        for (i, (v, n)) in zip(index, shape).enumerated() {
            precondition(v >= 0 && v < n, "subscript: index \(v) out of range for dim \(i) of shape \(shape)")
            flat = flat * n + v
        }
        return data[flat]
    }

    /// The gradient as a tensor of the same shape (zeros if none was accumulated).
    public var gradTensor: TensorOf<S> {
        TensorOf(shape: shape, data: grad ?? [S](repeating: 0, count: count))
    }

    /// A tensor sharing this one's values (copy-on-write) but cut from the graph.
    public func detached() -> TensorOf<S> { TensorOf(shape: shape, data: data) }

    /// The same values in another scalar type (no gradient link).
    public func converted<T: TensorScalar>(to: T.Type = T.self) -> TensorOf<T> {
        TensorOf<T>(shape: shape, data: data.map { T($0) })
    }
}

/// The product's tensor type.
public typealias Tensor = TensorOf<Float>

// MARK: - Creation

extension TensorOf {
    public static func zeros(_ shape: [Int], requiresGrad: Bool = false) -> TensorOf {
        full(shape, 0, requiresGrad: requiresGrad)
    }
    public static func ones(_ shape: [Int], requiresGrad: Bool = false) -> TensorOf {
        full(shape, 1, requiresGrad: requiresGrad)
    }
    public static func full(_ shape: [Int], _ value: S, requiresGrad: Bool = false) -> TensorOf {
        TensorOf(shape: shape, data: [S](repeating: value, count: shape.reduce(1, *)), requiresGrad: requiresGrad)
    }
    /// A 0-d tensor.
    public static func scalar(_ value: S, requiresGrad: Bool = false) -> TensorOf {
        TensorOf(shape: [], data: [value], requiresGrad: requiresGrad)
    }
    /// Element i is `mean + std · key.normal(i)`: a pure function of (key, i), whatever the threads.
    public static func normal(_ shape: [Int], key: RandomKey, mean: Double = 0, std: Double = 1,
                              requiresGrad: Bool = false) -> TensorOf {
        let n = shape.reduce(1, *)
        let data = [S](unsafeUninitializedCapacity: n) { buf, initialized in
            let p = buf.baseAddress!
            parallelFor(n, grain: 4096) { r in
                for i in r { (p + i).initialize(to: S(mean + std * key.normal(UInt64(i)))) }
            }
            initialized = n
        }
        return TensorOf(shape: shape, data: data, requiresGrad: requiresGrad)
    }
    /// Element i is uniform in [low, high) from `key.uniform(i)`.
    public static func uniform(_ shape: [Int], key: RandomKey, low: Double = 0, high: Double = 1,
                               requiresGrad: Bool = false) -> TensorOf {
        let n = shape.reduce(1, *)
        let data = [S](unsafeUninitializedCapacity: n) { buf, initialized in
            let p = buf.baseAddress!
            parallelFor(n, grain: 4096) { r in
                for i in r { (p + i).initialize(to: S(low + (high - low) * key.uniform(UInt64(i)))) }
            }
            initialized = n
        }
        return TensorOf(shape: shape, data: data, requiresGrad: requiresGrad)
    }
    /// `[0, 1, …, n-1]` as a 1-d tensor.
    public static func arange(_ n: Int) -> TensorOf {
        TensorOf(shape: [n], data: (0..<n).map { S($0) })
    }
}

extension TensorOf: CustomStringConvertible {
    public var description: String {
        let head = data.prefix(8).map { "\(Double($0))" }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(head)\(count > 8 ? ", …" : "")]\(requiresGrad ? ", requiresGrad" : ""))"
    }
}

/// Allocates an array of `count` elements and lets `body` fill all of them (no zero-fill).
@inline(__always)
func uninitializedArray<S>(_ count: Int, _ body: (UnsafeMutablePointer<S>) -> Void) -> [S] {
    [S](unsafeUninitializedCapacity: count) { buf, initialized in
        if count > 0 { body(buf.baseAddress!) }
        initialized = count
    }
}

/// Product of a shape's dimensions.
@inline(__always) func shapeCount(_ shape: [Int]) -> Int { shape.reduce(1, *) }
