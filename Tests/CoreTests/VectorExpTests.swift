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
}
