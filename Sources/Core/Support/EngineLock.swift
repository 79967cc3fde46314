// The engine's thread count is process-wide (`Engine.setThreads`). A command runs one recipe, so that is
// enough for the program; the test suite, though, runs suites in parallel in one process, and a test
// that sets the count (to compare 1 and 2 threads) would change it under a recipe another test is
// running — its numbers and its stage keys (which record the count). Whoever changes the count for a
// while holds this lock for that while: `RecipeRunner.run` for a whole recipe, tests around their
// set/restore.
import Foundation

extension Engine {
    /// Held (recursively, by one thread) while the thread count must not change under the holder.
    public static let threadsLock = NSRecursiveLock()

    /// Runs `body` holding `threadsLock`.
    public static func holdingThreads<R>(_ body: () throws -> R) rethrows -> R {
        threadsLock.lock()
        defer { threadsLock.unlock() }
        return try body()
    }
}
