// The `Module` protocol: layers own named parameters, so weights and gradients travel as
// (name, tensor) pairs for optimizers and checkpoints (Torch `parameters()`, mlx-swift `Module`).

/// A layer or network with named parameters. Composite modules prefix their children's names
/// ("conv1.weight"). Each module also has a `callAsFunction` whose arguments fit the layer.
public protocol Module: AnyObject {
    associatedtype Scalar: TensorScalar
    /// All trainable tensors with stable dotted names, in a fixed order.
    func parameters() -> [(String, TensorOf<Scalar>)]
}

/// Prefixes child parameter names: `prefixed("conv1", conv1.parameters())` → "conv1.weight", ….
public func prefixed<S>(_ prefix: String, _ parameters: [(String, TensorOf<S>)]) -> [(String, TensorOf<S>)] {
    parameters.map { ("\(prefix).\($0.0)", $0.1) }
}

extension Module {
    /// Total number of scalars in the parameters.
    public var parameterCount: Int { parameters().reduce(0) { $0 + $1.1.count } }

    /// Drops all parameter gradients.
    public func zeroGrad() { Core.zeroGrad(parameters()) }

    /// Parameters by name.
    public func parameterDictionary() -> [String: TensorOf<Scalar>] {
        Dictionary(parameters(), uniquingKeysWith: { a, _ in a })
    }

    /// Overwrites parameter values from named arrays (e.g. a checkpoint). Every parameter must be
    /// present with the right element count, unless `strict` is false (missing ones are kept).
    public func loadParameters(_ values: [String: (shape: [Int], data: [Scalar])], strict: Bool = true) throws {
        for (name, p) in parameters() {
            guard let v = values[name] else {
                if strict { throw CoreError("loadParameters: missing parameter '\(name)'") }
                continue
            }
            guard v.shape == p.shape, v.data.count == p.count else {
                throw CoreError("loadParameters: '\(name)' has shape \(v.shape), model expects \(p.shape)")
            }
            p.data = v.data
        }
    }

    /// Copies all parameter values from a module of the same architecture (e.g. to make a frozen
    /// reference model: build a second instance, `copyParameters(from:)`, run it under `noGrad`).
    public func copyParameters(from other: Self) {
        let mine = parameters(), theirs = other.parameters()
        precondition(mine.count == theirs.count, "copyParameters: \(mine.count) vs \(theirs.count) parameters")
        for ((n1, p), (n2, q)) in zip(mine, theirs) {
            precondition(n1 == n2 && p.shape == q.shape, "copyParameters: \(n1) \(p.shape) vs \(n2) \(q.shape)")
            p.data = q.data
        }
    }

    /// Marks every parameter as (not) requiring grad — e.g. freeze a reference model.
    public func setRequiresGrad(_ flag: Bool) { for (_, p) in parameters() { p.requiresGrad = flag } }
}

/// Kaiming-uniform bound PyTorch uses for Linear/Conv weights and biases: 1 / sqrt(fanIn).
@inline(__always) func defaultInitBound(fanIn: Int) -> Double { 1 / Double(max(fanIn, 1)).squareRoot() }
