// The package's version string, shared by the CLI and run manifests.

public enum SemidpoVersion {
    public static let string = "0.1.0"
}
