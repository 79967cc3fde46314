// The one pair type of the Lua API (`Pairs`): in-memory pairs (`semidpo.dpo.pairs`) and a world
// dataset's pairs (`ds:pairs()`, a partition's `clean()`/`test()`/`noisy()`) with one method table.
import Core

/// A pair source as Lua sees it. It is itself a `PairSource` (forwarding to the wrapped one), so every
/// binding that takes pairs reads it with `o.object("pairs", PairSource.self)`.
final class PairsObject: LuaObject, PairSource {
    static let luaTypeName = "Pairs"
    static let luaMethods: [LuaFunction] = [
        LuaFunction("count", pairs_count),
        LuaFunction("ids", pairs_ids),
        LuaFunction("subset", pairs_subset),
        LuaFunction("truth", pairs_truth),
    ]
    let source: PairSource
    init(_ source: PairSource) { self.source = source }

    var count: Int { source.count }
    var ids: [Int64] { source.ids }
    var imageShape: [Int] { source.imageShape }
    func batch(_ rows: [Int]) throws -> PairBatch { try source.batch(rows) }

    var luaDescription: String {
        if let d = source as? DatasetPairs { return "Pairs(\(count) of \(d.dataset.count) pairs of \(d.dataset.directory))" }
        if source is GeneratedPairs { return "Pairs(\(count) generated pairs of \(imageShape.map(String.init).joined(separator: "×")))" }
        return "Pairs(\(count) pairs of \(imageShape.map(String.init).joined(separator: "×")))"
    }
}

/// `pairs:count()`.
private func pairs_count(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "count") { args in try args.push(try args.this(PairsObject.self).count); return 1 }
}

/// `pairs:ids() -> {id, …}`: the pair ids in row order (a world dataset's are 0-based, as in the official files).
private func pairs_ids(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "ids") { args in try args.push(try args.this(PairsObject.self).ids.map { Int($0) }); return 1 }
}

/// `pairs:subset(ids) -> Pairs`: the pairs with these ids (as `pairs:ids()` lists them), in the given order.
private func pairs_subset(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "subset") { args in
        let p = try args.this(PairsObject.self)
        var rowOf: [Int64: Int] = [:]
        for (row, id) in p.ids.enumerated() where rowOf.updateValue(row, forKey: id) != nil {
            throw args.error(1, "pair id \(id) appears twice in this set; subset needs unique ids")
        }
        let wanted = try args.integers(2)
        let rows = try wanted.map { id in
            guard let row = rowOf[Int64(id)] else { throw args.error(2, "no pair with id \(id) in this set of \(p.count)") }
            return row
        }
        switch p.source {
        case let d as DatasetPairs: try args.push(PairsObject(try d.subset(ids: wanted)))
        case let m as InMemoryPairs: try args.push(PairsObject(try m.subset(rows)))
        case let g as GeneratedPairs: try args.push(PairsObject(try g.subset(rows)))
        default: throw args.error(1, "subset: unsupported pair source")
        }
        return 1
    }
}

/// `pairs:truth() -> {dimensions = {...}, winner = {{...}}, loser = {{...}}}` (pairs of a world dataset):
/// the form `semidpo.dpo.audit{truth = …}` takes — true alignment, aesthetics, detail, overall per pair.
private func pairs_truth(_ L: OpaquePointer?) -> Int32 {
    lua_method(L, "truth") { args in
        let source = try args.this(PairsObject.self).source
        let t: PairTruth
        switch source {
        case let d as DatasetPairs: t = try d.truth()
        case let g as GeneratedPairs: t = try g.truth()   // winner = image 0, loser = image 1
        default: throw args.error(1, "truth needs pairs of a world dataset (ds:pairs(), a partition's clean/test/noisy) or generated pairs (semidpo.online.generate)")
        }
        try args.push(["dimensions": t.dimensions, "winner": t.winner.map { r in r.map { Double($0) } as [Any] } as [Any],
                       "loser": t.loser.map { r in r.map { Double($0) } as [Any] } as [Any]] as [String: Any])
        return 1
    }
}
