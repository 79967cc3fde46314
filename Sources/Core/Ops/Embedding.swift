// Embedding lookup with an optional padding index (its row gets no gradient, as in PyTorch).

/// out[i] = weight[indices[i]]: indices (shape `indexShape`, values in 0..<V), weight (V, D)
/// → (indexShape…, D). Backward: dweight[indices[i]] += dout[i], except for `paddingIndex`.
public func embedding<S>(_ indices: [Int], shape indexShape: [Int], weight: TensorOf<S>, paddingIndex: Int? = nil) -> TensorOf<S> {
    precondition(weight.rank == 2, "embedding: weight must be (V, D), got \(weight.shape)")
    precondition(shapeCount(indexShape) == indices.count, "embedding: \(indices.count) indices for shape \(indexShape)")
    let v = weight.shape[0], d = weight.shape[1]
    for (i, idx) in indices.enumerated() {
        precondition(idx >= 0 && idx < v, "embedding: index \(idx) at position \(i) outside vocabulary of \(v)")
    }
    let y: [S] = weight.data.withUnsafeBufferPointer { wp in
        uninitializedArray(indices.count * d) { yp in
            for (i, idx) in indices.enumerated() { (yp + i * d).update(from: wp.baseAddress! + idx * d, count: d) }
        }
    }
    let out = TensorOf(shape: indexShape + [d], data: y)
    if needsGrad(weight) {
        out.attach([weight]) { dout in
            weight.accumulateGrad { dweight in
                for (i, idx) in indices.enumerated() where idx != paddingIndex {
                    for j in 0..<d { dweight[idx * d + j] += dout[i * d + j] }
                }
            }
        }
    }
    return out
}
