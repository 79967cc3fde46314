// OpenBLAS's CBLAS interface (cblas.h lives under openblas-pthread/, found through pkg-config).
#include <cblas.h>
