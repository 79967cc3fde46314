// Entry point of the `semidpo` command: fix up the BLAS kernels first (this may re-exec), then parse.
import Core

BLASRuntime.configureProcess(arguments: CommandLine.arguments)
SemidpoCommand.main()
