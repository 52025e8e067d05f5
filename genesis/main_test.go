package genesis_test

import "github.com/kernelhost/kernelhost/internal/testenv"

// cacheDir is the wazero compilation cache shared by the package's hosts (and
// by other packages' tests), so that the rights registry, a Go module of a
// few MiB that is slow to compile under the race detector, compiles once per
// machine rather than once per world.
var cacheDir = testenv.CacheDir()
