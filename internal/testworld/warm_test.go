package testworld_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	contracts "github.com/kernelhost/kernelhost/contracts-wasm"
	"github.com/kernelhost/kernelhost/genesis"
	"github.com/kernelhost/kernelhost/internal/testenv"
	"github.com/kernelhost/kernelhost/internal/testworld"
)

var warm = flag.Bool("warm", false, "compile the large Go guests into the shared compilation cache and exit (make test-warm)")

// TestMain with -warm compiles into the shared compilation cache of test
// binaries of library packages (testenv.CacheDir, wazero version "dev")
// the large Go guests their tests compile, in the forms they compile them,
// and exits: instrumented by a host (every world with genesis installed
// prepares the rights registry; the examples deploy theirs), and as
// committed, in a plain wazero runtime (contracts-wasm,
// examples/go-contract). cmd/kernelhost's TestMain does the same for its
// own version.
//
// `make test-warm` runs it without the race detector before the race run:
// on a machine whose cache is empty (CI), wazero's compiler takes about
// 80 s of CPU per 3 MB Go guest under -race and about 8 s without, and
// every test process that met the module first compiled it again. The
// race-built test binaries read the entries this one writes: wazero keys
// its cache by module, runtime settings, CPU and wazero version, not by
// how the reader was built.
func TestMain(m *testing.M) {
	flag.Parse()
	testenv.ExitIfWarming(*warm, warmCache)
	os.Exit(m.Run())
}

func warmCache() error {
	var hosted [][]byte
	for _, rel := range []string{"examples/rights-market/escrow/escrow.wasm", "examples/go-executable/counter.wasm"} {
		b, err := os.ReadFile(filepath.Join("..", "..", filepath.FromSlash(rel)))
		if err != nil {
			return err
		}
		hosted = append(hosted, b)
	}
	for _, wasm := range genesis.Executables() {
		hosted = append(hosted, wasm)
	}
	freeware, err := os.ReadFile(filepath.Join("..", "..", "examples", "go-contract", "freeware.wasm"))
	if err != nil {
		return err
	}
	return testworld.WarmCache(hosted, [][]byte{contracts.RightsRegistry(), freeware})
}
