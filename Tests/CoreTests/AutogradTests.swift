// The tape itself: accumulation through shared subexpressions, no-grad scope, clipping, and a
// deliberately wrong backward that the gradient check must catch.
import Testing
@testable import Core

@Suite struct AutogradTests {
    @Test func sharedSubexpressionAccumulates() {
        let x = T64(shape: [2], data: [1.5, -2], requiresGrad: true)
        let y = x * x              // used twice below
        sum(y + y * x).backward()  // d/dx (x² + x³) = 2x + 3x²
        assertClose(x.gradTensor, [2 * 1.5 + 3 * 2.25, -4 + 12], shape: [2], rtol: 1e-12)
        sum(x).backward()          // a second backward accumulates into the leaf
        assertClose(x.gradTensor, [2 * 1.5 + 3 * 2.25 + 1, -4 + 12 + 1], shape: [2], rtol: 1e-12)
    }

    /// Add, sub and reshape hand d(out) on to an input with no gradient yet as the same array
    /// (copy-on-write): a gradient that arrives later at one of the sharers must not reach the others.
    @Test func passedOnGradientsStayIndependent() {
        let a = T64(shape: [3], data: [1, 2, 3], requiresGrad: true)
        let b = T64(shape: [3], data: [-1, 0.5, 4], requiresGrad: true)
        let w = T64(shape: [3], data: [2, -3, 5])
        let y = (a + b).reshaped([3, 1]).reshaped([3])   // d(y) reaches a and b unchanged
        sum(y * w + a * a - b).backward()                 // da = w + 2a, db = w − 1
        assertClose(a.gradTensor, [2 + 2, -3 + 4, 5 + 6], shape: [3], rtol: 1e-12)
        assertClose(b.gradTensor, [1, -4, 4], shape: [3], rtol: 1e-12)
        sum(a + b).backward()                             // accumulates into both leaves separately
        assertClose(a.gradTensor, [5, 2, 12], shape: [3], rtol: 1e-12)
        assertClose(b.gradTensor, [2, -3, 5], shape: [3], rtol: 1e-12)
        let x = T64(shape: [3], data: [0.5, -1, 2], requiresGrad: true)
        sum((x + x) * w + (x - x)).backward()             // d/dx = 2w; x − x adds 1 − 1
        assertClose(x.gradTensor, [4, -6, 10], shape: [3], rtol: 1e-12)
    }

    @Test func noGradRecordsNothing() {
        let w = Tensor.ones([3], requiresGrad: true)
        let y = noGrad { silu(w * w) }
        #expect(!y.requiresGrad && y.isLeaf)
        #expect(Autograd.isEnabled)
        let z = noGrad { withGrad { silu(w) } }
        #expect(z.requiresGrad)
    }

    @Test func clipByGlobalNorm() {
        let a = Tensor.zeros([2], requiresGrad: true), b = Tensor.zeros([1], requiresGrad: true)
        a.grad = [3, 0]; b.grad = [4]
        let norm = clipGradNorm([("a", a), ("b", b)], maxNorm: 1)
        #expect(Swift.abs(norm - 5) < 1e-6)
        #expect(Swift.abs(gradNorm([("a", a), ("b", b)]) - 1) < 1e-5)
        zeroGrad([("a", a), ("b", b)])
        #expect(a.grad == nil)
    }

    @Test func gradientCheckCatchesAWrongBackward() {
        let x = leaf([4], seed: 1)
        func badSquare(_ x: T64) -> T64 {
            let out = T64(shape: x.shape, data: x.data.map { $0 * $0 })
            if needsGrad(x) {  // wrong: d(x²)/dx is 2x, not x
                out.attach([x]) { dout in x.accumulateGrad { dx in for i in 0..<x.count { dx[i] += x.data[i] * dout[i] } } }
            }
            return out
        }
        let report = gradientCheck([("x", x)]) { sum(badSquare(x)) }
        #expect(!report.passed)
    }

    /// x ↦ x² with a backward that writes `bad` into element `at` of dx: the check must fail
    /// whatever the element (a NaN ratio compares false, so it once passed unless first).
    private func poisonedSquareReport(bad: Double, at: Int) -> GradCheckReport {
        let x = leaf([5], seed: 3)
        func square(_ x: T64) -> T64 {
            let out = T64(shape: x.shape, data: x.data.map { $0 * $0 })
            if needsGrad(x) {
                out.attach([x]) { dout in x.accumulateGrad { dx in
                    for i in 0..<x.count { dx[i] += i == at ? bad : 2 * x.data[i] * dout[i] }
                } }
            }
            return out
        }
        return gradientCheck([("x", x)]) { sum(square(x)) }
    }

    @Test func gradientCheckFailsOnNonFiniteGradients() {
        #expect(poisonedSquareReport(bad: 0, at: 9).passed)        // control: no poisoned element
        for at in [0, 3, 4] {
            for bad in [Double.nan, .infinity, -.infinity] {
                let report = poisonedSquareReport(bad: bad, at: at)
                #expect(!report.passed, "\(bad) at \(at): \(report)")
                #expect(report.worstIndex == at && report.worstRatio == .infinity)
            }
        }
    }

    @Test func closeViolationsReportTheWorstElement() {
        // element 1 exceeds by 0.1 (ratio ≈ 1e5), element 3 by 5 (ratio ≈ 5e6): 3 is the worst.
        let v = closeViolations([0, 1.1, 2, 8, 4], [0, 1, 2, 3, 4], rtol: 0, atol: 1e-6)
        #expect(v.count == 2 && v.worst == 3)
        let n = closeViolations([1, .nan, 3, .infinity, .nan], [1, 2, 3, .infinity, .nan], rtol: 0, atol: 1e-6)
        #expect(n.count == 1 && n.worst == 1 && n.ratio == .infinity)
        #expect(closeViolations([1, 2], [1, 2 + 1e-9], rtol: 1e-5, atol: 1e-6).count == 0)
    }

    @Test func badShapesAreRejectedBeforeComputing() {
        #expect(broadcastShape([2, 3, 1], [4]) == [2, 3, 4])
        #expect(blockPattern([1, 3, 1, 1], [2, 3, 4, 4])! == (period: 3, inner: 16))
        #expect(blockPattern([2, 3, 1, 1], [2, 3, 4, 4])! == (period: 6, inner: 16))
        #expect(blockPattern([2, 1, 4], [2, 3, 4]) == nil)
    }
}
