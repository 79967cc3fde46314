// swift-tools-version:6.0
// semidpo: Semi-DPO preference alignment of a small text-to-image diffusion model, driven by Lua recipes.
import PackageDescription

let optimize: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release))]

let package = Package(
    name: "semidpo",
    products: [
        .executable(name: "semidpo", targets: ["Host"]),
        .library(name: "Core", targets: ["Core"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // System libraries, found through pkg-config (SPEC §7).
        .systemLibrary(name: "CLua", pkgConfig: "lua5.4", providers: [.apt(["liblua5.4-dev"])]),
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        // Lua's function-like macros as inline functions, and the error trampoline (SPEC §7).
        .target(name: "CLuaShim", dependencies: ["CLua"]),
        // CPU feature probes, FTZ/DAZ, and the few hot loops kept in C.
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3"])]),
        // Everything numeric. Never imports Lua.
        .target(name: "Core", dependencies: ["CBLAS", "CYAML", "CKernels"], swiftSettings: optimize),
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
