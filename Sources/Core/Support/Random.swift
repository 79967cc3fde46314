// Counter-based random numbers: every draw is a pure function of (seed, stream, index), so results
// never depend on thread scheduling or on how work is split.

/// SplitMix64's finaliser: a bijective 64-bit mixer.
@inline(__always)
public func mix64(_ x: UInt64) -> UInt64 {
    var z = x &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// A key naming one independent random stream: derive children with `child(_:)`.
public struct RandomKey: Hashable, Sendable {
    public let value: UInt64
    public init(seed: UInt64) { value = mix64(seed ^ 0x5EED_5EED_5EED_5EED) }
    init(raw: UInt64) { value = raw }
    /// An independent sub-stream, e.g. `key.child(promptIndex)`.
    public func child(_ index: UInt64) -> RandomKey { RandomKey(raw: mix64(value ^ mix64(index &+ 0x1234_5678))) }
    public func child(_ label: String) -> RandomKey {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325  // FNV-1a
        for b in label.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return child(h)
    }
    /// The `index`-th 64-bit draw of this stream.
    @inline(__always) public func bits(_ index: UInt64) -> UInt64 { mix64(value &+ index &* 0x9E37_79B9_7F4A_7C15) }
    /// Uniform in [0, 1) with 24 bits of precision (Float) or 53 bits (Double).
    @inline(__always) public func uniformFloat(_ index: UInt64) -> Float { Float(bits(index) >> 40) * (1.0 / 16_777_216.0) }
    @inline(__always) public func uniform(_ index: UInt64) -> Double { Double(bits(index) >> 11) * (1.0 / 9_007_199_254_740_992.0) }
    /// Standard normal by Box–Muller over draws 2·index and 2·index+1.
    @inline(__always) public func normal(_ index: UInt64) -> Double {
        let u1 = max(uniform(2 &* index), 1e-300)
        let u2 = uniform(2 &* index &+ 1)
        return (-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2)
    }
}

/// A sequential generator over one stream, for code that draws a variable number of values.
public struct RandomStream: Sendable {
    public let key: RandomKey
    public private(set) var counter: UInt64 = 0
    public init(_ key: RandomKey) { self.key = key }
    public init(seed: UInt64) { self.key = RandomKey(seed: seed) }
    public mutating func next() -> UInt64 { defer { counter &+= 1 }; return key.bits(counter) }
    /// Uniform in [0, 1).
    public mutating func uniform() -> Double { defer { counter &+= 1 }; return key.uniform(counter) }
    public mutating func uniform(_ lo: Double, _ hi: Double) -> Double { lo + (hi - lo) * uniform() }
    /// Uniform integer in 0..<n (n > 0).
    public mutating func int(_ n: Int) -> Int { precondition(n > 0); return Int(uniform() * Double(n)) % n }
    public mutating func normal() -> Double { defer { counter &+= 1 }; return key.normal(counter) }
    public mutating func bernoulli(_ p: Double) -> Bool { uniform() < p }
    /// Gamma(shape, 1) by Marsaglia–Tsang (shape < 1 boosted).
    public mutating func gamma(_ shape: Double) -> Double {
        if shape < 1 { return gamma(shape + 1) * _pow(max(uniform(), 1e-300), 1 / shape) }
        let d = shape - 1.0 / 3.0, c = 1 / (9 * d).squareRoot()
        while true {
            var x = 0.0, v = 0.0
            repeat { x = normal(); v = 1 + c * x } while v <= 0
            v = v * v * v
            let u = uniform()
            if u < 1 - 0.0331 * x * x * x * x { return d * v }
            if _log(max(u, 1e-300)) < 0.5 * x * x + d * (1 - v + _log(v)) { return d * v }
        }
    }
    /// Dirichlet(alpha) sample.
    public mutating func dirichlet(_ alpha: [Double]) -> [Double] {
        let g = alpha.map { gamma($0) }
        let s = g.reduce(0, +)
        return g.map { $0 / s }
    }
    public mutating func shuffle<T>(_ a: inout [T]) {
        guard a.count > 1 else { return }
        for i in stride(from: a.count - 1, to: 0, by: -1) { a.swapAt(i, int(i + 1)) }
    }
}

#if canImport(Glibc)
import Glibc
@inline(__always) func _log(_ x: Double) -> Double { Glibc.log(x) }
@inline(__always) func _cos(_ x: Double) -> Double { Glibc.cos(x) }
@inline(__always) func _pow(_ x: Double, _ y: Double) -> Double { Glibc.pow(x, y) }
#else
import Foundation
@inline(__always) func _log(_ x: Double) -> Double { Foundation.log(x) }
@inline(__always) func _cos(_ x: Double) -> Double { Foundation.cos(x) }
@inline(__always) func _pow(_ x: Double, _ y: Double) -> Double { Foundation.pow(x, y) }
#endif
