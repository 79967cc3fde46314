// The statistics of issue 16 on hand-worked cases: the seeded bootstrap (pinned by an independent Python
// re-implementation of the draws), the exact permutation and sign tests, win rates with ties, mean ± sd over
// seeds, the claim checker's verdicts, and interval cells in tables.
import Foundation
import Testing
@testable import Core

/// The Python reference used for the pinned intervals below (an independent re-implementation of
/// `RandomKey`/`RandomStream.int` and of the percentile rule; run with python3):
///
///     M=(1<<64)-1
///     def mix64(x):
///         z=(x+0x9E3779B97F4A7C15)&M; z=((z^(z>>30))*0xBF58476D1CE4E5B9)&M; z=((z^(z>>27))*0x94D049BB133111EB)&M
///         return z^(z>>31)
///     def key(seed): return mix64(seed^0x5EED5EED5EED5EED)
///     def child(v,i): return mix64(v^mix64((i+0x12345678)&M))
///     def uni(v,i): return (mix64((v+i*0x9E3779B97F4A7C15)&M)>>11)*(1.0/9007199254740992.0)
///     def boot(seeds,B,seed,level,hier=True):          # seeds = [[(values, weight), ...] per seed]
///         import math; S=len(seeds); st=[]
///         for b in range(B):
///             k=child(key(seed),b); c=0
///             def nxt(n):
///                 nonlocal c; r=int(uni(k,c)*n)%n; c+=1; return r
///             chosen=[nxt(S) for _ in range(S)] if hier and S>1 else list(range(S)); tot=0.0
///             for s in chosen:
///                 for (x,w) in seeds[s]:
///                     n=len(x); sm=0.0
///                     for _ in range(n): sm+=x[nxt(n)]
///                     tot+=w*sm/n
///             st.append(tot/S)
///         st.sort(); a=1-level
///         return st[math.ceil(B*a/2-1e-9)-1], st[math.ceil(B*(1-a/2)-1e-9)-1]
@Suite struct BootstrapTests {
    /// boot([[([1,2,3,4,10],1)]], 1000, 7, 0.95) = (1.8, 7.2); at B = 20, level 0.9: (1.4, 6.4) (the 1st and
    /// 19th of 20 sorted resample means).
    @Test func meanIntervalMatchesTheIndependentReimplementation() throws {
        let e = try Statistics.bootstrapMean([[1, 2, 3, 4, 10]], config: BootstrapConfig(resamples: 1000, level: 0.95, seed: 7))
        #expect(e.mean == 4)
        #expect(abs(e.lo - 1.8) < 1e-12 && abs(e.hi - 7.2) < 1e-12)
        #expect(e.perSeed == [4] && e.counts == [5] && e.seeds == 1 && abs(e.halfWidth - 2.7) < 1e-12)
        let small = try Statistics.bootstrapMean([[1, 2, 3, 4, 10]], config: BootstrapConfig(resamples: 20, level: 0.9, seed: 7))
        #expect(abs(small.lo - 1.4) < 1e-12 && abs(small.hi - 6.4) < 1e-12)
    }

    /// Two seeds [1, 2, 3] and [10, 20], B = 1000, seed 3, level 0.9:
    /// boot(..., hier=True) = (1.6666666666666667, 17.5) — resamples that draw seed 1 twice reach its range;
    /// boot(..., hier=False) = (5.833333333333333, 11.166666666666666) — every resample keeps both seeds.
    @Test func poolingOverSeeds() throws {
        let seeds: [[Double]] = [[1, 2, 3], [10, 20]]
        let h = try Statistics.bootstrapMean(seeds, config: BootstrapConfig(resamples: 1000, level: 0.9, seed: 3, pooling: .seedsAndPrompts))
        #expect(h.mean == 8.5 && h.perSeed == [2, 15] && h.counts == [3, 2])
        #expect(abs(h.lo - 1.6666666666666667) < 1e-12 && abs(h.hi - 17.5) < 1e-12)
        let p = try Statistics.bootstrapMean(seeds, config: BootstrapConfig(resamples: 1000, level: 0.9, seed: 3, pooling: .prompts))
        #expect(abs(p.lo - 5.833333333333333) < 1e-12 && abs(p.hi - 11.166666666666666) < 1e-12)
        #expect(abs(h.sdOverSeeds - 13 / 2.0.squareRoot()) < 1e-12, "sd of (2, 15) = 13/√2")
    }

    /// Unpaired groups [1, 1, 0] (+1) and [0, 0, 1, 0] (−1), B = 1000, seed 5, level 0.9:
    /// boot([[([1,1,0],1),([0,0,1,0],-1)]], 1000, 5, 0.9) = (-0.16666666666666669, 1.0); θ = 2/3 − 1/4.
    @Test func unpairedStrataResampleApart() throws {
        let e = try Statistics.bootstrap([.unpaired([1, 1, 0], [0, 0, 1, 0])], config: BootstrapConfig(resamples: 1000, level: 0.9, seed: 5))
        #expect(abs(e.mean - (2.0 / 3 - 0.25)) < 1e-15)
        #expect(abs(e.lo - -0.16666666666666669) < 1e-12 && abs(e.hi - 1.0) < 1e-12)
        #expect(e.counts == [7])
    }

    /// The paired difference is the bootstrap of the per-prompt differences (same draws, same interval).
    @Test func pairedDifferenceIsTheMeanOfDifferences() throws {
        let a: [Double] = [0.5, 0.7, 0.2, 0.9, 0.4], b: [Double] = [0.4, 0.5, 0.3, 0.6, 0.4]
        let c = BootstrapConfig(resamples: 500, seed: 11)
        let d = try Statistics.bootstrapDifference([a], [b], config: c)
        let m = try Statistics.bootstrapMean([zip(a, b).map { $0 - $1 }], config: c)
        #expect(d == m)
        #expect(throws: CoreError.self) { try Statistics.bootstrapDifference([a], [Array(b.prefix(4))]) }
    }

    /// Same seed ⇒ the same interval, bit for bit; another seed ⇒ (here) another interval.
    @Test func deterministicWithASeed() throws {
        let v = (0..<50).map { Double(($0 * 37) % 17) / 7 }
        let c = BootstrapConfig(resamples: 1000, seed: 42)
        let a = try Statistics.bootstrapMean([v], config: c), b = try Statistics.bootstrapMean([v], config: c)
        #expect(a == b)
        var other = c
        other.seed = 43
        let o = try Statistics.bootstrapMean([v], config: other)
        #expect(o.lo != a.lo || o.hi != a.hi)
        #expect(o.mean == a.mean)
    }

    /// For n = 400 draws the percentile interval is close to mean ± 1.96·sd/√n (within 15% in width).
    @Test func agreesWithTheNormalApproximation() throws {
        var r = RandomStream(seed: 9)
        let v = (0..<400).map { _ in r.normal() }
        let e = try Statistics.bootstrapMean([v], config: BootstrapConfig(resamples: 2000, seed: 1))
        let se = Metrics.standardError(v)
        #expect(abs(e.halfWidth / (1.959964 * se) - 1) < 0.15)
        #expect(e.lo < e.mean && e.mean < e.hi)
    }

    @Test func badInputIsRefusedByName() {
        #expect(throws: CoreError("bootstrap: value 2 is nan; every value must be finite")) {
            try Statistics.bootstrapMean([[1, .nan]])
        }
        #expect(throws: CoreError("bootstrap: no values in seed 2")) { try Statistics.bootstrapMean([[1, 2], []]) }
        #expect(throws: CoreError("bootstrap: resamples must be 10…10,000,000, got 5")) {
            try Statistics.bootstrapMean([[1, 2]], config: BootstrapConfig(resamples: 5))
        }
        #expect(throws: CoreError("bootstrap: level must be in (0, 1), got 95.0")) {
            try Statistics.bootstrapMean([[1, 2]], config: BootstrapConfig(level: 95))
        }
        // one value and one seed: nothing to resample; several seeds of one value each: the seeds are resampled
        #expect(throws: CoreError.self) { try Statistics.bootstrapMean([[1]]) }
        #expect(throws: CoreError.self) { try Statistics.bootstrapMean([[1], [2]], config: BootstrapConfig(pooling: .prompts)) }
        #expect((try? Statistics.bootstrapMean([[1], [2], [3]])) != nil)
    }
}

@Suite struct WinRateAndTestsTests {
    /// A = [3, 2, 5, 1], B = [1, 2, 4, 2]: credits 1, ½, 1, 0 ⇒ 2.5/4 = 0.625 (ties ½); ties 0 ⇒ 0.5 =
    /// `Metrics.winRate`. Interval: boot([[([1,.5,1,0],1)]], 1000, 1, 0.95) = (0.25, 1.0).
    @Test func winRateWithTies() throws {
        let a: [Double] = [3, 2, 5, 1], b: [Double] = [1, 2, 4, 2]
        #expect(try Statistics.winCredits(a, over: b) == [1, 0.5, 1, 0])
        let e = try Statistics.winRate([a], over: [b], config: BootstrapConfig(resamples: 1000, seed: 1))
        #expect(e.mean == 0.625 && e.lo == 0.25 && e.hi == 1.0)
        let strict = try Statistics.winRate([a], over: [b], tie: 0, config: BootstrapConfig(resamples: 1000, seed: 1))
        let authors = try Metrics.winRate(a, over: b)
        #expect(strict.mean == 0.5 && strict.mean == authors)
        #expect(throws: CoreError.self) { try Statistics.winCredits([1], over: [1, 2]) }
        #expect(throws: CoreError.self) { try Statistics.winCredits([1], over: [1], tie: 2) }
    }

    /// d = [1, 2, 3, −0.5]: |d| sums to 6.5 and T·n = 5.5. A sign pattern flipping the set F gives
    /// 6.5 − 2·Σ_F|d|, so |sum| ≥ 5.5 needs Σ_F ≤ 0.5 (F = {}, {0.5}) or Σ_F ≥ 6 (F = {1,2,3}, all):
    /// 4 of 2⁴ = 16 patterns ⇒ p = 0.25. d = [1, 2, 3, 4]: only all-plus and all-minus ⇒ 2/16 = 0.125.
    @Test func exactPermutationTestByHand() throws {
        let r = try Statistics.permutationTest([[1, 2, 3, -0.5]])
        #expect(r.exact && r.resamples == 16 && r.p == 0.25 && r.statistic == 1.375)
        #expect(try Statistics.permutationTest([[1, 2, 3, 4]]).p == 0.125)
        // all zero differences: every pattern is as extreme ⇒ p = 1
        #expect(try Statistics.permutationTest([[0, 0, 0]]).p == 1)
        // two seeds [1, 2] and [3]: weights ¼, ¼, ½ ⇒ a = (0.25, 0.5, 1.5); only ±(all) reach |T| = 2.25 ⇒ 2/8
        let two = try Statistics.permutationTest([[1, 2], [3]])
        #expect(two.p == 0.25 && two.statistic == 2.25)
    }

    /// n = 30 positive differences: the exact p is 2/2³⁰; Monte-Carlo with B = 999 draws none as extreme,
    /// so p = (1 + 0)/(999 + 1) = 0.001 (the +1 correction). On n = 21 mixed differences the Monte-Carlo p
    /// (B = 20,000) agrees with full enumeration within 4 standard errors.
    @Test func monteCarloPermutationTest() throws {
        let r = try Statistics.permutationTest([(1...30).map(Double.init)], resamples: 999, seed: 3)
        #expect(!r.exact && r.p == 0.001)
        let d = (0..<21).map { i -> Double in Double((i * 7) % 11) / 5 - 0.6 }
        let exact = try Statistics.permutationTest([d], exactLimit: 21)
        let mc = try Statistics.permutationTest([d], resamples: 20_000, seed: 5, exactLimit: 20)
        #expect(exact.exact && !mc.exact)
        let se = (exact.p * (1 - exact.p) / 20_000).squareRoot()
        #expect(abs(mc.p - exact.p) < 4 * se + 1e-4)
        let again1 = try Statistics.permutationTest([d], resamples: 2000, seed: 5, exactLimit: 20)
        let again2 = try Statistics.permutationTest([d], resamples: 2000, seed: 5, exactLimit: 20)
        #expect(again1 == again2)
    }

    /// 8 positive, 2 negative, 1 zero: p = 2·P(X ≤ 2), X ~ Bin(10, ½) = 2·(1 + 10 + 45)/1024 = 0.109375.
    @Test func exactSignTest() throws {
        let d: [Double] = [1, 2, 3, 4, 5, 6, 7, 8, -1, -2, 0]
        let r = try Statistics.signTest([d])
        #expect(r.positive == 8 && r.negative == 2 && r.ties == 1)
        #expect(abs(r.p - 0.109375) < 1e-12)
        #expect(try Statistics.signTest([[1, -1], [0]]).p == 1)            // pooled over seeds: 1 vs 1 ⇒ min(1, 2·¾)
        #expect(try Statistics.signTest([[0, 0]]).p == 1)
        // n = 20, all positive: 2·2⁻²⁰
        #expect(abs(try Statistics.signTest([(1...20).map(Double.init)]).p - 2 / 1_048_576.0) < 1e-18)
        #expect(throws: CoreError.self) { try Statistics.signTest([[]]) }
    }

    /// [1, 2, 3, 4]: mean 2.5, sd √(5/3) = 1.2909944487358056; one seed: sd NaN.
    @Test func meanAndSdOverSeeds() {
        let s = Statistics.overSeeds([1, 2, 3, 4])
        #expect(s.mean == 2.5 && abs(s.sd - 1.2909944487358056) < 1e-15 && s.seeds == 4)
        #expect(Statistics.overSeeds([3]).sd.isNaN)
    }
}

@Suite struct ClaimCheckerTests {
    private func est(_ lo: Double, _ hi: Double) -> Estimate { Estimate(mean: (lo + hi) / 2, lo: lo, hi: hi, perSeed: [(lo + hi) / 2], counts: [10]) }

    @Test func verdictFromTheInterval() {
        #expect(ClaimChecker.verdict(est(0.1, 0.3), .above, 0) == .holds)
        #expect(ClaimChecker.verdict(est(-0.3, -0.1), .above, 0) == .fails)
        #expect(ClaimChecker.verdict(est(-0.1, 0.3), .above, 0) == .inconclusive)
        #expect(ClaimChecker.verdict(est(0, 0.3), .above, 0) == .inconclusive, "an end at the threshold is not on the claimed side")
        #expect(ClaimChecker.verdict(est(-0.3, -0.1), .below, 0) == .holds)
        #expect(ClaimChecker.verdict(est(0.1, 0.3), .below, 0) == .fails)
        #expect(ClaimChecker.verdict(est(0.3, 0.45), .below, 0.5) == .holds)
    }

    /// Synthetic per-seed tables, 3 seeds × 30 prompts, with per-prompt noise u ∈ [−0.05, 0.05):
    /// Semi-DPO = DPO + 0.2 + u (holds), KTO = Semi-DPO + 0.2 + u (fails), and a third suite where
    /// Semi-DPO − DPO = ±0.1 alternating (mean 0: inconclusive).
    private func seeds() -> [PaperSeedTables] {
        (0..<3).map { s in
            var r = RandomStream(seed: UInt64(100 + s))
            let n = 30
            let base = (0..<n).map { _ in r.uniform(0.4, 0.6) }
            func noisy(_ shift: Double) -> [Double] { base.map { $0 + shift + r.uniform(-0.05, 0.05) } }
            let semi = noisy(0.2)
            var t = PaperSeedTables()
            t.scores = [
                "hpsv2": ["Semi-DPO": semi, "Diffusion-DPO": base, "Diffusion-KTO": semi.map { $0 - 0.2 + r.uniform(-0.05, 0.05) }],
                "parti": ["Semi-DPO": semi, "Diffusion-DPO": base, "Diffusion-KTO": semi.map { $0 + 0.2 + r.uniform(-0.05, 0.05) }],
                "tie": ["Semi-DPO": base.indices.map { base[$0] + ($0 % 2 == 0 ? 0.1 : -0.1) }, "Diffusion-DPO": base, "Diffusion-KTO": base.map { $0 - 1 }],
            ]
            // iterations 0, 1, 2 = base, base + 1, base + 1.5: gains 1 then 0.5 (second difference −0.5 on every prompt)
            t.iterations = ["hpsv2": [base, base.map { $0 + 1 }, base.map { $0 + 1.5 }]]
            // committees of 2…5 members = base + 0, 1, 2, 3: slope exactly 1 per member
            t.committees = ["hpsv2": (0..<4).map { k in base.map { $0 + Double(k) } }]
            // 40 pairs, the first 12 kept (30%): kept labels all right, the rest right 1 in 4
            t.kept = (0..<40).map { $0 < 12 }
            t.agrees = (0..<40).map { $0 < 12 ? 1 : ($0 % 4 == 0 ? 1 : 0) }
            // accuracy per anchor (one number per seed): late anchors 0.6, early 0.8
            t.anchors = [(50, [0.8]), (450, [0.8 + 0.01 * Double(s)]), (750, [0.6]), (950, [0.6 - 0.01 * Double(s)])]
            return t
        }
    }

    @Test func paperClaimsComeOutHoldsFailsInconclusive() throws {
        let config = BootstrapConfig(resamples: 1000, seed: 0)
        let results = try PaperClaims().claims(seeds()).map { try ClaimChecker.check($0, config: config) }
        #expect(results.map(\.name) == ["(a)", "(b)", "(c)", "(d)", "(e)"])
        let byName = Dictionary(uniqueKeysWithValues: results.map { ($0.name, $0) })
        #expect(byName["(a)"]!.verdict == .holds)
        let b = byName["(b)"]!
        #expect(b.verdict == .fails, "KTO beats Semi-DPO on parti: one failing part fails the all-of")
        let parts = Dictionary(uniqueKeysWithValues: b.parts.map { ($0.statement, $0.verdict) })
        #expect(parts["hpsv2: Semi-DPO − Diffusion-DPO > 0"] == .holds)
        #expect(parts["hpsv2: Semi-DPO − Diffusion-KTO > 0"] == .holds)
        #expect(parts["parti: Semi-DPO − Diffusion-KTO > 0"] == .fails)
        #expect(parts["tie: Semi-DPO − Diffusion-DPO > 0"] == .inconclusive)
        let c = byName["(c)"]!
        #expect(c.verdict == .holds)
        #expect(abs(c.parts[0].estimate!.mean - 1) < 1e-12 && abs(c.parts[1].estimate!.mean - -0.5) < 1e-12)
        let d = byName["(d)"]!
        #expect(d.verdict == .holds && abs(d.parts[0].estimate!.lo - 1) < 1e-12 && abs(d.parts[0].estimate!.hi - 1) < 1e-12,
                "score = base + k on every prompt: the per-prompt slope is exactly 1")
        let e = byName["(e)"]!
        #expect(e.verdict == .holds && e.parts[0].estimate!.seeds == 3 && abs(e.parts[0].estimate!.mean - -0.21) < 1e-12)

        // Without the 'tie' and 'parti' suites, (b) holds; one seed of per-anchor accuracies gives no interval.
        var one = seeds()[0]
        one.scores.removeValue(forKey: "tie")
        one.scores.removeValue(forKey: "parti")
        let single = try PaperClaims().claims([one]).map { try ClaimChecker.check($0, config: config) }
        #expect(single[1].verdict == .holds)
        #expect(single[4].verdict == .inconclusive && single[4].parts[0].note == "no interval: one value and one seed" && single[4].parts[0].estimate == nil)
    }

    @Test func paperClaimsRefuseInconsistentSeeds() {
        var s = seeds()
        s[1].iterations = [:]
        #expect(throws: CoreError("paper claims: seed 2 has 'iterations' suites [], seed 1 has [\"hpsv2\"]")) { try PaperClaims().claims(s) }
        var t = seeds()
        t[2].scores["hpsv2"]!["Diffusion-DPO"]!.removeLast()
        #expect(throws: CoreError.self) { try PaperClaims().claims(t) }
        #expect(throws: CoreError.self) { try PaperClaims().claims([PaperSeedTables()]) }
    }

    @Test func claimsMarkdownAndJSON() throws {
        let claim = Claim.allOf(name: "(x)", statement: "A beats B", parts: [
            .test(name: "t1", quantity: "A − B", samples: [.mean([0.1, 0.2, 0.3])], direction: .above, threshold: 0),
            .test(name: "t2", quantity: "C", samples: [.mean([5])], direction: .below, threshold: 1),
        ])
        let r = try ClaimChecker.check(claim, config: BootstrapConfig(resamples: 100, seed: 1))
        #expect(r.verdict == .inconclusive && r.parts[0].verdict == .holds && r.parts[1].verdict == .inconclusive)
        let md = ClaimChecker.markdown([r])
        #expect(md.contains("| (x): A beats B | **inconclusive** |"))
        #expect(md.contains("| A − B > 0 | 0.2 | [0.1, 0.3] | 0.2 | 3 | holds |"))
        #expect(md.contains("| C < 1 | — | no interval: one value and one seed | — | — | inconclusive |"))
        let dir = NSTemporaryDirectory() + "claims-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let files = try ClaimChecker.write([r], name: "claims", directory: dir)
        #expect(FileManager.default.fileExists(atPath: files.markdown))
        guard case let .object(top) = try JSON.parse(file: files.json), case let .object(x)? = top.first(where: { $0.key == "claims" })?.value,
              case let .object(cx)? = x.first(where: { $0.key == "(x)" })?.value else { Issue.record("claims entry missing"); return }
        #expect(cx.first { $0.key == "verdict" }?.value == .string("inconclusive"))
    }
}

@Suite struct IntervalTableTests {
    @Test func intervalCellsRenderAndKeepTheirNumbers() throws {
        let e = Estimate(mean: 0.5123, lo: 0.49, hi: 0.53, perSeed: [0.50, 0.52], counts: [100, 100], resamples: 1000)
        var t = ResultTable(title: "T", columns: ["method", "overall"])
        t.addRow([.text("Semi-DPO"), .estimate(e, decimals: 3)])
        t.addRow([.text("Base"), .number(0.4, decimals: 3)])
        #expect(t.markdown.contains("| Semi-DPO | 0.512 [0.490, 0.530] |"))
        #expect(t.markdown.contains("each cell: 100 prompts × 2 seeds."))
        #expect(t.csv == "method,overall,overall lo,overall hi\nSemi-DPO,0.5123,0.49,0.53\nBase,0.4,,\n")
        t.intervalStyle = .plusMinus
        #expect(t.markdown.contains("| Semi-DPO | 0.512 ± 0.020 |"))
        // cells with different backing say their own
        var u = ResultTable(title: "U", columns: ["x"], unit: "pairs")
        u.addRow([.estimate(e, decimals: 2)])
        u.addRow([.estimate(Estimate(mean: 1, lo: 0, hi: 2, perSeed: [1], counts: [40]), decimals: 2)])
        #expect(u.markdown.contains("| 0.51 [0.49, 0.53] (100 pairs × 2 seeds) |") && u.markdown.contains("(40 pairs)"))
        let rows = try TableFiles.numbers(of: t)
        guard case let .object(f) = rows[0].cells[0].value else { Issue.record("interval cell is not an object"); return }
        #expect(f.first { $0.key == "per_seed" }?.value == .array([.number(0.5), .number(0.52)]))
        #expect(f.first { $0.key == "lo" }?.value == .number(0.49) && f.first { $0.key == "n" }?.value == .array([.number(100), .number(100)]))
        #expect(rows[1].cells[0].value == .number(0.4))
    }
}

@Suite struct IntervalTablesTests {
    /// Cells are the hand-worked intervals above: [1, 2, 3, 4, 10] (seed 7) ⇒ 4 [1.8, 7.2]; A = [3, 2, 5, 1] over
    /// B = [1, 2, 4, 2] (seed 1) ⇒ 62.5% [25, 100]; Δ = mean(2, 0, 1, −1) = 0.5; permutation p over 2⁴ sign
    /// patterns of (2, 0, 1, −1): |Σ| ≥ 2 needs the flipped |d| to sum to ≤ 1 or ≥ 3 — 3 of the 8 subsets of
    /// {2, 1, 1}, times 2 for the zero's sign ⇒ (3 + 3)·2/16 = 0.75.
    @Test func meansAndWinRateTables() throws {
        let means = try IntervalTables.means(title: "T1", labelColumns: ["suite", "method"], metrics: ["overall"],
                                             rows: [(["hpsv2", "A"], [["overall": [1, 2, 3, 4, 10]]])],
                                             config: BootstrapConfig(resamples: 1000, seed: 7))
        #expect(means.markdown.contains("| hpsv2 | A | 4.000 [1.800, 7.200] |"))
        let wins = try IntervalTables.winRates(title: "T2", labelColumns: ["method 1", "method 2"], metrics: ["overall"],
                                               rows: [(["A", "B"], [["overall": [3, 2, 5, 1]]], [["overall": [1, 2, 4, 2]]])],
                                               config: BootstrapConfig(resamples: 1000, seed: 1))
        #expect(wins.columns == ["method 1", "method 2", "overall", "Δ overall", "p overall"])
        guard case let .estimate(w, _) = wins.rows[0][2], case let .estimate(d, _) = wins.rows[0][3], case let .number(p, _) = wins.rows[0][4] else {
            Issue.record("unexpected cells \(wins.rows[0])"); return
        }
        #expect(w.mean == 62.5 && w.lo == 25 && w.hi == 100 && w.perSeed == [62.5])
        #expect(d.mean == 0.5 && p == 0.75)
        #expect(throws: CoreError("row 'hpsv2 / A', seed 1: no metric 'clip' (has overall)")) {
            try IntervalTables.means(title: "T", labelColumns: ["suite", "method"], metrics: ["clip"], rows: [(["hpsv2", "A"], [["overall": [1, 2]]])])
        }
        #expect(throws: CoreError.self) {
            try IntervalTables.winRates(title: "T", labelColumns: ["m"], metrics: ["overall"], rows: [(["A"], [["overall": [1, 2]]], [["overall": [1]]])])
        }
    }
}

@Suite struct GenevalIntervalTableTests {
    /// counting = [1, 0, 1, 1] (75%), colors = [0, 0, 1, 0] (25%), overall = their mean 50%. Seed 0, B = 1000:
    /// boot([[([1,0,1,1],1)]], 1000, 0, .95) = (0.25, 1.0); overall as strata ½, ½ (counting first, GenEval order):
    /// boot([[([1,0,1,1],.5),([0,0,1,0],.5)]], 1000, 0, .95) = (0.25, 0.75).
    @Test func genevalTableWithStrata() throws {
        let t = try IntervalTables.geneval(title: "T3", labelColumns: ["method"],
                                           rows: [(["A"], [["colors": [0, 0, 1, 0], "counting": [1, 0, 1, 1]]])],
                                           config: BootstrapConfig(resamples: 1000, seed: 0))
        #expect(t.columns == ["method", "counting", "colors", "overall"])
        guard case let .estimate(c, _) = t.rows[0][1], case let .estimate(o, _) = t.rows[0][3] else { Issue.record("cells \(t.rows[0])"); return }
        #expect(c.mean == 75 && c.lo == 25 && c.hi == 100)
        #expect(o.mean == 50 && o.lo == 25 && o.hi == 75 && o.counts == [8])
        #expect(t.markdown.contains("(4 prompts)") && t.markdown.contains("(8 prompts)"), "cells with different backing say their own")
        #expect(throws: CoreError.self) {
            try IntervalTables.geneval(title: "T", labelColumns: ["m"], rows: [(["A"], [["counting": [1]]]), (["B"], [["colors": [1]]])])
        }
    }

}

@Suite struct GenevalImagesIntervalTableTests {
    /// 3 prompts × 2 images per category. counting: passes {1,1}, {1,0}, {0,0} ⇒ per-prompt values 1, ½, 0,
    /// mean ½ (50%); colors: {1,1}, {0,1}, {1,1} ⇒ 1, ½, 1, mean 5/6 (83.3%); overall = (½ + 5/6) / 2 = 2/3.
    /// The bootstrap resamples the 3 prompts, not the 6 images: counting's interval is the one of the
    /// values [1, ½, 0] (P(all three draws = 0) = 1/27 ≈ 3.7% > 2.5% ⇒ lo = 0, likewise hi = 100), while
    /// resampling the 6 images [1,1,1,0,0,0] would give lo = 1/6 (P(all six = 0) = 1/64 ≈ 1.6% < 2.5%).
    @Test func promptsResampledNotImages() throws {
        let cfg = BootstrapConfig(resamples: 1000, seed: 0)
        let seed: GenevalPasses = ["counting": [[1, 1], [1, 0], [0, 0]], "colors": [[1, 1], [0, 1], [1, 1]]]
        let t = try IntervalTables.geneval(title: "T3", labelColumns: ["method"], rows: [(["A"], [seed])], config: cfg)
        #expect(t.columns == ["method", "counting", "colors", "overall"])
        guard case let .estimate(c, _) = t.rows[0][1], case let .estimate(k, _) = t.rows[0][2], case let .estimate(o, _) = t.rows[0][3] else {
            Issue.record("cells \(t.rows[0])"); return
        }
        #expect(c.mean == 50 && c.lo == 0 && c.hi == 100 && c.counts == [3] && c.images == [6])
        #expect(abs(k.mean - 250.0 / 3) < 1e-9 && k.counts == [3] && k.images == [6])
        #expect(abs(o.mean - 200.0 / 3) < 1e-9 && o.counts == [6] && o.images == [12])
        let byPrompt = try Statistics.bootstrapMean([[1, 0.5, 0]], config: cfg).scaled(by: 100)
        let byImage = try Statistics.bootstrapMean([[1, 1, 1, 0, 0, 0]], config: cfg).scaled(by: 100)
        #expect(c.lo == byPrompt.lo && c.hi == byPrompt.hi)
        #expect(abs(byImage.lo - 100.0 / 6) < 1e-9, "resampling images would give a narrower interval")
        // The rows after the method: prompts, images per prompt, images, seeds.
        #expect(t.rows.count == 5 && t.rows[1...].map { $0[0] } == [.text("prompts"), .text("images per prompt"), .text("images"), .text("seeds")])
        #expect(t.rows[1][1...] == [.number(3, decimals: 0), .number(3, decimals: 0), .number(6, decimals: 0)])
        #expect(t.rows[2][1...] == [.number(2, decimals: 0), .number(2, decimals: 0), .number(2, decimals: 0)])
        #expect(t.rows[3][1...] == [.number(6, decimals: 0), .number(6, decimals: 0), .number(12, decimals: 0)])
        #expect(t.rows[4][1...] == [.number(1, decimals: 0), .number(1, decimals: 0), .number(1, decimals: 0)])
        #expect(t.markdown.contains("(3 prompts (6 images))") && t.markdown.contains("(6 prompts (12 images))"))
        #expect(t.csv.contains("\nimages per prompt,2.0,,,2.0,,,2.0,,\n"))
        // Unequal images per prompt: a range, and the cell names prompts and images.
        let mixed = try IntervalTables.geneval(title: "T", labelColumns: ["m"], rows: [(["A"], [["counting": [[1, 0, 1], [1]], "colors": [[1], [0]]]])], config: cfg)
        #expect(mixed.rows[2][1] == .text("1–3") && mixed.rows[2][2] == .number(1, decimals: 0) && mixed.rows[2][3] == .text("1–3"))
        #expect(mixed.markdown.contains("(2 prompts (4 images))") && mixed.markdown.contains("(4 prompts (6 images))"))
        // Every row must score the same prompts and images.
        #expect(throws: CoreError("row 'B', seed 1, counting: 3 prompts with 3 images, the first row's first seed has 3 with 6; every cell must score the same prompts and images")) {
            try IntervalTables.geneval(title: "T", labelColumns: ["m"],
                                       rows: [(["A"], [seed]), (["B"], [["counting": [[1], [0], [1]], "colors": [[1, 1], [0, 1], [1, 1]]]])])
        }
    }
}
