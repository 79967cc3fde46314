// The scalar types tensors are made of: Float for the product, Double for Float64 gradient checks.
// Everything numeric is generic over `TensorScalar` and specialised by -wmo in release builds.
import CBLAS
#if canImport(Glibc)
import Glibc
#else
import Foundation
#endif

/// A floating-point scalar a tensor can hold, with the BLAS GEMM and the libm functions ops need.
public protocol TensorScalar: BinaryFloatingPoint, Sendable {
    /// Row-major C = alpha · op(A) · op(B) + beta · C, with op(A): (m, k), op(B): (k, n), C: (m, n).
    static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Self,
                     a: UnsafePointer<Self>, lda: Int, b: UnsafePointer<Self>, ldb: Int,
                     beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)
    static func exp(_ x: Self) -> Self
    static func log(_ x: Self) -> Self
    static func log1p(_ x: Self) -> Self
    static func tanh(_ x: Self) -> Self
    static func erf(_ x: Self) -> Self
    /// σ(x) = 1 / (1 + e^{−x}) for any x without overflow. Float's is branch-free so that loops over
    /// it vectorise; Double's (gradient checks) uses libm.
    static func sigmoid(_ x: Self) -> Self
}

@inline(__always) private func trans(_ t: Bool) -> CBLAS_TRANSPOSE { t ? CblasTrans : CblasNoTrans }

extension Float: TensorScalar {
    @inline(__always)
    public static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                            beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        cblas_sgemm(CblasRowMajor, trans(transA), trans(transB), blasint(m), blasint(n), blasint(k),
                    alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
    }
    @inline(__always) public static func exp(_ x: Float) -> Float { expf(x) }
    @inline(__always) public static func log(_ x: Float) -> Float { logf(x) }
    @inline(__always) public static func log1p(_ x: Float) -> Float { log1pf(x) }
    @inline(__always) public static func tanh(_ x: Float) -> Float { tanhf(x) }
    @inline(__always) public static func erf(_ x: Float) -> Float { erff(x) }
    @inline(__always) public static func sigmoid(_ x: Float) -> Float { 1 / (1 + vectorExp(-x)) }

    /// e^x with x clamped to [−87, 88] (so the result is a normal float, never inf), branch-free so
    /// that a loop over it vectorises. Error ≤ 2 ulp over the range (checked against Double exp in
    /// the tests). reference: Cephes `expf` — x = n·ln2 + r with ln2 split in two, |r| ≤ ½ln2,
    /// e^r ≈ 1 + r + r²·P(r), 2^n put in the exponent bits.
    @inline(__always) public static func vectorExp(_ x: Float) -> Float {
        let x = Swift.min(Swift.max(x, -87), 88)
        // round(x / ln2) by adding and subtracting 1.5·2²³ (plain SSE2 adds, no roundps); the sum's
        // low mantissa bits then hold n as a two's-complement integer.
        let shifter: Float = 12_582_912
        let t = x * 1.44269504088896341 + shifter
        let n = t - shifter
        var r = x - n * 0.693359375                                       // ln2 high part (exact product)
        r = r - n * -2.12194440e-4                                        // ln2 low part
        var p: Float = 1.9875691500e-4
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        let e = p * (r * r) + r + 1
        let bits = t.bitPattern &- shifter.bitPattern &+ 127               // n + 127 ∈ [1, 254]
        let scale = Float(bitPattern: bits << 23)                          // 2^n
        return e * scale
    }
}

extension Double: TensorScalar {
    @inline(__always)
    public static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Double,
                            a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
                            beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int) {
        cblas_dgemm(CblasRowMajor, trans(transA), trans(transB), blasint(m), blasint(n), blasint(k),
                    alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
    }
    #if canImport(Glibc)
    @inline(__always) public static func exp(_ x: Double) -> Double { Glibc.exp(x) }
    @inline(__always) public static func log(_ x: Double) -> Double { Glibc.log(x) }
    @inline(__always) public static func log1p(_ x: Double) -> Double { Glibc.log1p(x) }
    @inline(__always) public static func tanh(_ x: Double) -> Double { Glibc.tanh(x) }
    @inline(__always) public static func erf(_ x: Double) -> Double { Glibc.erf(x) }
    @inline(__always) public static func sigmoid(_ x: Double) -> Double {
        if x >= 0 { return 1 / (1 + Glibc.exp(-x)) }
        let e = Glibc.exp(x)
        return e / (1 + e)
    }
    #else
    @inline(__always) public static func exp(_ x: Double) -> Double { Foundation.exp(x) }
    @inline(__always) public static func log(_ x: Double) -> Double { Foundation.log(x) }
    @inline(__always) public static func log1p(_ x: Double) -> Double { Foundation.log1p(x) }
    @inline(__always) public static func tanh(_ x: Double) -> Double { Foundation.tanh(x) }
    @inline(__always) public static func erf(_ x: Double) -> Double { Foundation.erf(x) }
    @inline(__always) public static func sigmoid(_ x: Double) -> Double {
        if x >= 0 { return 1 / (1 + Foundation.exp(-x)) }
        let e = Foundation.exp(x)
        return e / (1 + e)
    }
    #endif
}
