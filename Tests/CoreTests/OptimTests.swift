// AdamW on Rosenbrock, schedules, and optimizer state round-trips.
import Testing
@testable import Core

@Suite struct OptimTests {
    @Test func adamWConvergesOnRosenbrock() {
        // f(x, y) = (1 − x)² + 100 (y − x²)², minimum at (1, 1).
        let p = T64(shape: [2], data: [-1.5, 2], requiresGrad: true)
        let opt = AdamWOf<Double>(config: AdamWConfig(learningRate: 0.05, weightDecay: 0,
                                                      schedule: LearningRateSchedule(warmupSteps: 10, decay: .cosine(totalSteps: 6000, minimumFactor: 0.001))))
        let one = T64.scalar(1)
        for _ in 0..<6000 {
            zeroGrad([("p", p)])
            let x = p.slice(batch: 0..<1), y = p.slice(batch: 1..<2)
            let f = sum(square(one - x) + 100.0 * square(y - square(x)))
            f.backward()
            opt.update([("p", p)])
        }
        #expect(Swift.abs(p.data[0] - 1) < 1e-3 && Swift.abs(p.data[1] - 1) < 2e-3, "ended at \(p.data)")
    }

    @Test func schedules() {
        let s = LearningRateSchedule(warmupSteps: 10, decay: .cosine(totalSteps: 110, minimumFactor: 0.1))
        #expect(s.factor(step: 5) == 0.5)
        #expect(s.factor(step: 10) == 1)
        #expect(Swift.abs(s.factor(step: 60) - 0.55) < 1e-12)
        #expect(Swift.abs(s.factor(step: 110) - 0.1) < 1e-12)
        #expect(LearningRateSchedule(warmupSteps: 4).factor(step: 100) == 1)
    }

    @Test func stateRoundTripGivesIdenticalUpdates() throws {
        func grads(_ p: Tensor, _ step: Int) { p.grad = (0..<p.count).map { Float(($0 + step) % 5) - 2 } }
        let a = Tensor.full([6], 0.5, requiresGrad: true), b = Tensor.full([6], 0.5, requiresGrad: true)
        let optA = AdamW(config: AdamWConfig(learningRate: 0.01))
        for s in 0..<3 { grads(a, s); optA.update([("w", a)]) }
        let optB = AdamW(config: AdamWConfig(learningRate: 0.01))
        try optB.loadState(optA.state(), for: [("w", b)])
        b.data = a.data
        grads(a, 3); optA.update([("w", a)])
        grads(b, 3); optB.update([("w", b)])
        #expect(a.data == b.data)
        #expect(optB.step == 4)
        #expect(optA.state().map(\.0) == ["step", "m.w", "v.w"])
        #expect(throws: CoreError.self) { try optB.loadState([("m.w", Tensor.zeros([6]))], for: [("w", b)]) }
    }

    @Test func emaTracksAverage() {
        // 0.5·1 + 0.5·3 = 2; 0.9·2 + 0.1·12 = 3 (by hand).
        let p = Tensor.full([2], 3), shadow = Tensor.full([2], 1)
        updateEMA([("p", shadow)], toward: [("p", p)], decay: 0.5)
        #expect(shadow.data == [2, 2])
        p.data = [12, 12]
        updateEMA([("p", shadow)], toward: [("p", p)], decay: 0.9)
        #expect(shadow.data.map { ($0 * 1000).rounded() / 1000 } == [3, 3])
    }
}
