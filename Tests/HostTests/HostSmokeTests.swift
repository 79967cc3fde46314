// Smoke test that the Host module links.
import Testing
@testable import Host

@Test func hostLinks() { #expect(Bool(true)) }
