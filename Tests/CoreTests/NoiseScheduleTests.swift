// Noise schedule values against numpy, and sampler coefficient identities.
import Testing
@testable import Core

/// Goldens: numpy, `b = np.linspace(0.00085**0.5, 0.012**0.5, 1000)**2; a = np.cumprod(1 - b)`.
@Test func stableDiffusionScheduleMatchesNumpy() {
    let s = NoiseSchedule.stableDiffusion
    #expect(abs(s.alphaBar[0] - 0.99915) < 1e-12)
    #expect(abs(s.alphaBar[499] - 0.27766965045646763) < 1e-12)
    #expect(abs(s.alphaBar[999] - 0.004660098513077238) < 1e-12)
}

/// With η = 0 and prev = −1, DDIM returns x̂_0 = (x_t − sqrt(1−ᾱ_t) ε̂)/sqrt(ᾱ_t).
@Test func ddimFinalStepPredictsCleanImage() {
    let s = NoiseSchedule.stableDiffusion
    let (cx, ceps, cz) = s.ddimCoefficients(t: 500, prev: -1, eta: 0)
    let at = s.alphaBar[500]
    #expect(abs(Double(cx) - 1 / at.squareRoot()) < 1e-5)
    #expect(abs(Double(ceps) + ((1 - at) / at).squareRoot()) < 1e-5)
    #expect(cz == 0)
}

/// Noising x_0 then one η = 0 DDIM step with the true ε lands exactly on the noised x_0 at prev.
@Test func ddimWithTrueNoiseIsConsistent() {
    let s = NoiseSchedule.stableDiffusion
    let x0 = 0.7, eps = -1.3
    let (a, b) = s.noisingCoefficients(600)
    let xt = Double(a) * x0 + Double(b) * eps
    let (cx, ceps, _) = s.ddimCoefficients(t: 600, prev: 400, eta: 0)
    let (a2, b2) = s.noisingCoefficients(400)
    #expect(abs(Double(cx) * xt + Double(ceps) * eps - (Double(a2) * x0 + Double(b2) * eps)) < 1e-5)
}

@Test func scheduleRejectsBadSettings() {
    #expect(throws: CoreError.self) { try NoiseSchedule(kind: .linear, steps: 1) }
    #expect(throws: CoreError.self) { try NoiseSchedule(kind: .linear, betaStart: 0.02, betaEnd: 0.01) }
}

@Test func samplingTimestepsAreDescendingAndEvenlySpaced() throws {
    let t = try NoiseSchedule.stableDiffusion.samplingTimesteps(count: 4)
    #expect(t == [750, 500, 250, 0])
}

@Test(arguments: NoiseSchedule.Kind.allCases)
func alphaBarDecreases(kind: NoiseSchedule.Kind) throws {
    let s = try NoiseSchedule(kind: kind)
    #expect(zip(s.alphaBar, s.alphaBar.dropFirst()).allSatisfy { $0 > $1 })
    #expect(s.alphaBar.last! > 0 && s.alphaBar.first! < 1)
}
