// Entry point of the `semidpo` command.
import Core

print("semidpo \(SemidpoVersion.string)")
