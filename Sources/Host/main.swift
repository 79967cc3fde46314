// Entry point of the `semidpo` command: fix up the BLAS kernels first (this may re-exec), join the MPI
// world when a launcher started us, then parse.
import Core

BLASRuntime.configureProcess(arguments: CommandLine.arguments)
// Under mpirun/srun: MPI_Init (after the possible re-exec), rank and size; a plain run never touches MPI.
Cluster.initializeIfLaunched()
SemidpoCommand.main()
