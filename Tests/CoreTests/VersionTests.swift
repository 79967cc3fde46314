// Smoke test that the Core module links.
import Testing
@testable import Core

@Test func versionIsSemantic() {
    #expect(SemidpoVersion.string.split(separator: ".").count == 3)
}
