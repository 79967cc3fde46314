// Accuracy of the vectorisable Float exp and sigmoid (Sources/Core/Tensor/Scalar.swift) that SiLU and
// sigmoid use, against Double libm over the whole clamped range.
import Foundation
import Testing
@testable import Core

struct VectorExpTests {
    /// ulp distance between a Float and the correctly rounded Float of a Double.
    func ulps(_ a: Float, _ exact: Double) -> Double {
        let e = Float(exact)
        return Double(Swift.abs(a - e)) / Double(e.ulp)
    }

    @Test func expWithinTwoUlpOverTheRange() {
        var worst = 0.0
        var x: Float = -87
        while x <= 88 {
            worst = max(worst, ulps(Float.vectorExp(x), Foundation.exp(Double(x))))
            x += 0.0137
        }
        for x: Float in [0, -0, 1e-8, -1e-8, 0.5 * Float(M_LN2), -0.5 * Float(M_LN2), 88, -87] {
            worst = max(worst, ulps(Float.vectorExp(x), Foundation.exp(Double(x))))
        }
        #expect(worst <= 2, "worst error \(worst) ulp")
        // Clamped, never inf or zero.
        #expect(Float.vectorExp(1000).isFinite && Float.vectorExp(-1000) > 0)
        #expect(Float.vectorExp(.infinity).isFinite)
    }

    @Test func sigmoidCloseToDoubleEverywhere() {
        var worst = 0.0
        var x: Float = -100
        while x <= 100 {
            let exact = 1 / (1 + Foundation.exp(-Double(x)))
            let got = Float.sigmoid(x)
            #expect(got.isFinite && got >= 0 && got <= 1)
            if exact > 1e-30 { worst = max(worst, Swift.abs(Double(got) - exact) / exact) }
            x += 0.0173
        }
        #expect(worst < 5e-7, "worst relative error \(worst)")
        #expect(Float.sigmoid(100) == 1 && Float.sigmoid(-200) < 1e-37)
    }

    /// The AVX-512 SiLU kernels of GroupNorm + SiLU (Sources/CKernels/fused.c) give the Swift loops'
    /// bits: forward y = z·σ(z) and backward σ(z)(1 + z(1 − σ(z)))·dy with z = x·scale + shift (and
    /// the FiLM form with u = z·s1 + h in place of z), on
    /// values across and beyond the clamp (±0, tiny, ±90, ±1000), for lengths with and without a
    /// partial 16-lane tail. Runs only where the CPU has AVX-512 (elsewhere the kernels are never used).
    @Test(.enabled(if: groupNormSiLUUsesAVX512, "AVX-512 not in use here (no AVX-512F, or SEMIDPO_NO_AVX512=1): the kernels are not called"))
    func avx512SiLUKernelsMatchSwiftBitForBit() {
        var rng = SplitMix(seed: 11)
        for n in [1, 7, 16, 17, 64, 255, 256, 1000] {
            var x = (0..<n).map { _ in Float(rng.nextDouble() * 24 - 12) }
            let special: [Float] = [0, -0, 1e-30, -1e-30, 87.5, -87.5, 90, -90, 1000, -1000]
            for (i, v) in special.enumerated() where i < n { x[(i * 37) % n] = v }
            let dy = (0..<n).map { _ in Float(rng.nextDouble() * 2 - 1) }
            for (scale, shift): (Float, Float) in [(1, 0), (0.37, -1.25), (-2.5, 0.75)] {
                var expectY = [Float](repeating: 0, count: n), expectDz = [Float](repeating: 0, count: n)
                for i in 0..<n {
                    let z = x[i] * scale + shift, s = Float.sigmoid(z)
                    expectY[i] = z * s
                    expectDz[i] = s * (1 + z * (1 - s)) * dy[i]
                }
                var y = [Float](repeating: .nan, count: n), dz = [Float](repeating: .nan, count: n)
                x.withUnsafeBufferPointer { xp in dy.withUnsafeBufferPointer { dp in
                    y.withUnsafeMutableBufferPointer { yp in dz.withUnsafeMutableBufferPointer { zp in
                        #expect(siluAffineAVX512(xp.baseAddress!, yp.baseAddress!, n, scale, shift))
                        #expect(siluAffineBackwardAVX512(xp.baseAddress!, dp.baseAddress!, zp.baseAddress!, n, scale, shift))
                    } }
                } }
                #expect(y.map(\.bitPattern) == expectY.map(\.bitPattern), "forward, n = \(n), scale \(scale)")
                #expect(dz.map(\.bitPattern) == expectDz.map(\.bitPattern), "backward, n = \(n), scale \(scale)")
                // The FiLM form: u = (x·scale + shift)·s1 + h.
                let s1 = 1 + shift * 0.5, h = scale * 0.25
                for i in 0..<n {
                    let u = (x[i] * scale + shift) * s1 + h, s = Float.sigmoid(u)
                    expectY[i] = u * s
                    expectDz[i] = s * (1 + u * (1 - s)) * dy[i]
                }
                x.withUnsafeBufferPointer { xp in dy.withUnsafeBufferPointer { dp in
                    y.withUnsafeMutableBufferPointer { yp in dz.withUnsafeMutableBufferPointer { zp in
                        #expect(siluModulatedAVX512(xp.baseAddress!, yp.baseAddress!, n, scale, shift, s1, h))
                        #expect(siluModulatedBackwardAVX512(xp.baseAddress!, dp.baseAddress!, zp.baseAddress!, n, scale, shift, s1, h))
                    } }
                } }
                #expect(y.map(\.bitPattern) == expectY.map(\.bitPattern), "modulated forward, n = \(n), scale \(scale)")
                #expect(dz.map(\.bitPattern) == expectDz.map(\.bitPattern), "modulated backward, n = \(n), scale \(scale)")
            }
        }
    }
}

/// A tiny deterministic generator for test inputs (SplitMix64).
private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func nextDouble() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Double((z ^ (z >> 31)) >> 11) / Double(1 << 53)
    }
}
