// swift-tools-version:6.0
// semidpo: Semi-DPO preference alignment of a small text-to-image diffusion model, driven by Lua recipes.
import Foundation
import PackageDescription

// Swift code is compiled for x86-64-v3 (AVX2, FMA, BMI1/2, F16C, LZCNT, MOVBE; "haswell" is the
// Swift compiler's name for that level): the elementwise loops run 8 floats wide. CKernels stays
// baseline (but for winograd.c's functions, marked target("avx2,fma") in this build) and refuses to
// start on a CPU without those features (ck_require_x86_64_v3).
// `SEMIDPO_PORTABLE=1 swift build` builds for baseline x86-64 instead (run `swift package clean`
// first when switching). docs/performance.md has the numbers.
#if arch(x86_64)
let portable = ProcessInfo.processInfo.environment["SEMIDPO_PORTABLE"] != nil
#else
let portable = true
#endif
let cpuLevel: [SwiftSetting] = portable ? [] : [.unsafeFlags(["-target-cpu", "haswell"])]
// Release builds keep Swift's checks (bounds, overflow, preconditions): no -Ounchecked, so a bad
// value is a trap with a message, not memory corruption. The few hot loops that need it use
// unchecked arithmetic locally (&+, &*); docs/performance.md "Checked release builds" has the numbers.
let optimize: [SwiftSetting] = [.unsafeFlags(["-wmo"], .when(configuration: .release))] + cpuLevel

let package = Package(
    name: "semidpo",
    products: [
        .executable(name: "semidpo", targets: ["Host"]),
        .library(name: "Core", targets: ["Core"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // SHA-256 (BoringSSL's, streamed) for stage keys and manifests.
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        // System libraries, found through pkg-config (SPEC §7).
        .systemLibrary(name: "CLua", pkgConfig: "lua5.4", providers: [.apt(["liblua5.4-dev"])]),
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // MPI for runs over several processes/machines (mpirun/srun; docs/architecture.md "MPI").
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),
        // Lua's function-like macros as inline functions, and the error trampoline (SPEC §7).
        .target(name: "CLuaShim", dependencies: ["CLua"]),
        // CPU feature probes, FTZ/DAZ, and the few hot loops kept in C.
        .target(name: "CKernels",
                cSettings: [.unsafeFlags(["-O3"])] + (portable ? [] : [.define("SEMIDPO_REQUIRE_X86_64_V3")])),
        // Everything numeric. Never imports Lua.
        .target(name: "Core", dependencies: ["CBLAS", "CYAML", "CZlib", "CKernels", "CMPI",
                                             .product(name: "Crypto", package: "swift-crypto")],
                swiftSettings: optimize),
        // Lua embedding, bindings and the `semidpo` command.
        .executableTarget(
            name: "Host",
            dependencies: ["Core", "CLua", "CLuaShim",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: optimize),
        .testTarget(name: "CoreTests", dependencies: ["Core"], resources: [.copy("Fixtures")]),
        .testTarget(name: "HostTests", dependencies: ["Host", "Core"]),
    ],
    swiftLanguageModes: [.v5]
)

// Fuzz targets (docs/formats.md "Fuzzing"): `fuzz/run.sh` builds them with SEMIDPO_FUZZ=1 and
// -sanitize=fuzzer into .build-fuzz; a plain `swift build` never sees them (they need libFuzzer's main).
if ProcessInfo.processInfo.environment["SEMIDPO_FUZZ"] != nil {
    package.products.append(.executable(name: "semidpo-fuzz", targets: ["Fuzz"]))
    package.targets.append(.systemLibrary(name: "CFuzzer", path: "fuzz/CFuzzer"))
    package.targets.append(.executableTarget(name: "Fuzz", dependencies: ["Core", "CFuzzer"], path: "fuzz/Sources",
                                             swiftSettings: [.unsafeFlags(["-parse-as-library"])]))
}
