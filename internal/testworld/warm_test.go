package testworld_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	contracts "github.com/kernelhost/kernelhost/contracts-wasm"
	"github.com/kernelhost/kernelhost/genesis"
	"github.com/kernelhost/kernelhost/internal/testworld"
)

// repoFile reads a module committed elsewhere in the repository.
func repoFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", filepath.FromSlash(rel)))
	require.NoError(t, err)
	return b
}

// TestWarmCache compiles into the shared compilation cache of test binaries
// of library packages (testenv.CacheDir, wazero version "dev") the large Go
// guests their tests compile, in the forms they compile them: instrumented
// by a host (every world with genesis installed prepares the rights
// registry; the examples deploy theirs), and as committed, in a plain
// wazero runtime (contracts-wasm, examples/go-contract). cmd/kernelhost's
// TestWarmCache does the same for its own version.
//
// `make test` runs it without the race detector before the race run: on a
// machine whose cache is empty (CI), wazero's compiler takes about 80 s of
// CPU per 3 MB Go guest under -race and about 8 s without, and every test
// process that met the module first compiled it again. The race-built test
// binaries read the entries this one writes: wazero keys its cache by
// module, runtime settings, CPU and wazero version, not by how the reader
// was built. Under -race, as part of ./..., it finds everything cached.
func TestWarmCache(t *testing.T) {
	hosted := [][]byte{
		repoFile(t, "examples/rights-market/escrow/escrow.wasm"),
		repoFile(t, "examples/go-executable/counter.wasm"),
	}
	for _, wasm := range genesis.Executables() {
		hosted = append(hosted, wasm)
	}
	raw := [][]byte{contracts.RightsRegistry(), repoFile(t, "examples/go-contract/freeware.wasm")}
	testworld.WarmCache(t, hosted, raw)
}
