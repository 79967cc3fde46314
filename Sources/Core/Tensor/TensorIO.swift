// Tensors ↔ safetensors files: named tensors with string metadata, and training checkpoints
// (module parameters + AdamW state + metadata in one atomic file) for the diffusion and DPO code.
import Foundation

extension TensorOf where S == Float {
    /// This tensor's values under a name, for `Safetensors` (shares storage, copy-on-write).
    public func named(_ name: String) -> NamedTensor { NamedTensor(name: name, shape: shape, data: data) }

    /// A tensor (no gradient) holding a loaded safetensors entry.
    public convenience init(_ named: NamedTensor) {
        self.init(shape: named.shape, data: named.data)
    }
}

/// Saving and loading named `Tensor`s as safetensors (F32, interoperable with Python's `safetensors`).
public enum TensorIO {
    /// Writes `tensors` (in the given order) and string `metadata` to `path`, atomically.
    /// Names must be unique and non-empty.
    public static func save(_ tensors: [(String, Tensor)], metadata: [String: String] = [:], to path: String) throws {
        try Safetensors.write(tensors.map { $0.1.named($0.0) }, metadata: metadata, to: path)
    }

    /// Reads every tensor of `path` (in data-offset order) and the file's metadata.
    /// Errors name the file (truncated, corrupt, non-F32 …).
    public static func load(_ path: String) throws -> (tensors: [(String, Tensor)], metadata: [String: String]) {
        let (named, metadata) = try Safetensors.read(path)
        return (named.map { ($0.name, Tensor($0)) }, metadata)
    }
}

// MARK: - Checkpoints

/// What a checkpoint file holds once loaded: parameters by name, the optimizer state (names without
/// the `optimizer.` prefix, as `AdamW.state()` produced them) and the user metadata.
public struct Checkpoint {
    public var parameters: [(String, Tensor)]
    public var optimizerState: [(String, Tensor)]
    public var metadata: [String: String]
}

/// Layout of a checkpoint (one safetensors file):
/// - parameters under their own dotted names (`conv1.weight`), so a PyTorch `state_dict` of the
///   same architecture reads them directly;
/// - AdamW state under `optimizer.` (`optimizer.step`, `optimizer.m.conv1.weight`, …);
/// - metadata: the caller's keys plus `semidpo.format = checkpoint-1`.
public enum CheckpointFormat {
    public static let optimizerPrefix = "optimizer."
    public static let formatKey = "semidpo.format"
    public static let formatValue = "checkpoint-1"
}

/// Saves parameters, optionally the optimizer state, and metadata to `path` in one atomic write
/// (a reader never sees a half-written checkpoint; an existing file is replaced only when complete).
public func saveCheckpoint(parameters: [(String, Tensor)], optimizer: AdamW? = nil,
                           metadata: [String: String] = [:], to path: String) throws {
    for (name, _) in parameters where name.hasPrefix(CheckpointFormat.optimizerPrefix) {
        throw CoreError("saveCheckpoint: parameter name '\(name)' uses the reserved prefix '\(CheckpointFormat.optimizerPrefix)'")
    }
    guard metadata[CheckpointFormat.formatKey] == nil else {
        throw CoreError("saveCheckpoint: metadata key '\(CheckpointFormat.formatKey)' is reserved")
    }
    var entries = parameters
    if let optimizer {
        entries += optimizer.state().map { (CheckpointFormat.optimizerPrefix + $0.0, $0.1) }
    }
    var meta = metadata
    meta[CheckpointFormat.formatKey] = CheckpointFormat.formatValue
    try TensorIO.save(entries, metadata: meta, to: path)
}

/// Saves a module's parameters (and optionally its optimizer's state) — see
/// `saveCheckpoint(parameters:optimizer:metadata:to:)`.
public func saveCheckpoint<M: Module>(_ module: M, optimizer: AdamW? = nil,
                                      metadata: [String: String] = [:], to path: String) throws where M.Scalar == Float {
    try saveCheckpoint(parameters: module.parameters(), optimizer: optimizer, metadata: metadata, to: path)
}

/// Reads a checkpoint file without applying it (for inspection or partial loads).
public func readCheckpoint(_ path: String) throws -> Checkpoint {
    let (tensors, metadata) = try TensorIO.load(path)
    var params: [(String, Tensor)] = [], optim: [(String, Tensor)] = []
    for (name, t) in tensors {
        if name.hasPrefix(CheckpointFormat.optimizerPrefix) {
            optim.append((String(name.dropFirst(CheckpointFormat.optimizerPrefix.count)), t))
        } else {
            params.append((name, t))
        }
    }
    var meta = metadata
    meta[CheckpointFormat.formatKey] = nil
    return Checkpoint(parameters: params, optimizerState: optim, metadata: meta)
}

/// Loads a checkpoint into `parameters` (values replaced in place, gradients dropped) and, if given,
/// `optimizer`. Returns the user metadata. With `strict` (default) every parameter must be in the
/// file with the same shape and the file may hold no other parameters; an `optimizer` requires
/// optimizer state in the file. Nothing is modified unless the whole checkpoint fits.
@discardableResult
public func loadCheckpoint(_ path: String, into parameters: [(String, Tensor)], optimizer: AdamW? = nil,
                           strict: Bool = true) throws -> [String: String] {
    let ckpt = try readCheckpoint(path)
    let stored = Dictionary(ckpt.parameters, uniquingKeysWith: { a, _ in a })
    var assignments: [(Tensor, Tensor)] = []
    for (name, p) in parameters {
        guard let v = stored[name] else {
            if strict { throw CoreError("loadCheckpoint \(path): missing parameter '\(name)'") }
            continue
        }
        guard v.shape == p.shape else {
            throw CoreError("loadCheckpoint \(path): parameter '\(name)' has shape \(v.shape) in the file, the model expects \(p.shape)")
        }
        assignments.append((p, v))
    }
    if strict {
        let wanted = Set(parameters.map(\.0))
        let extra = ckpt.parameters.map(\.0).filter { !wanted.contains($0) }
        if !extra.isEmpty {
            throw CoreError("loadCheckpoint \(path): unexpected parameters \(extra.prefix(5).joined(separator: ", "))\(extra.count > 5 ? ", …" : "") (pass strict: false to ignore)")
        }
    }
    if let optimizer {
        let sizes = Dictionary(parameters.map { ($0.0, $0.1.count) }, uniquingKeysWith: { a, _ in a })
        for (name, t) in ckpt.optimizerState where name.hasPrefix("m.") || name.hasPrefix("v.") {
            let param = String(name.dropFirst(2))
            if let n = sizes[param], n != t.count {
                throw CoreError("loadCheckpoint \(path): optimizer state '\(name)' has \(t.count) values, parameter '\(param)' has \(n)")
            }
        }
        guard !ckpt.optimizerState.isEmpty else {
            throw CoreError("loadCheckpoint \(path): an optimizer was given but the file holds no optimizer state")
        }
        do { try optimizer.loadState(ckpt.optimizerState, for: parameters) } catch let e as CoreError {
            throw CoreError("loadCheckpoint \(path): \(e.message)")
        }
    }
    for (p, v) in assignments { p.data = v.data; p.grad = nil }
    return ckpt.metadata
}

/// Loads a checkpoint into a module (and optionally its optimizer); see `loadCheckpoint(_:into:optimizer:strict:)`.
@discardableResult
public func loadCheckpoint<M: Module>(_ path: String, into module: M, optimizer: AdamW? = nil,
                                      strict: Bool = true) throws -> [String: String] where M.Scalar == Float {
    try loadCheckpoint(path, into: module.parameters(), optimizer: optimizer, strict: strict)
}
