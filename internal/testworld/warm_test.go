package testworld_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	contracts "github.com/kernelhost/kernelhost/contracts-wasm"
	"github.com/kernelhost/kernelhost/genesis"
	"github.com/kernelhost/kernelhost/host"
	"github.com/kernelhost/kernelhost/internal/testenv"
	"github.com/kernelhost/kernelhost/internal/testworld"
)

// repoFile reads a module committed elsewhere in the repository.
func repoFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", filepath.FromSlash(rel)))
	require.NoError(t, err)
	return b
}

// TestWarmCache compiles into the shared compilation cache
// (testenv.CacheDir) the large Go guests that the tests of other packages
// compile, in the two forms they compile them: instrumented by a host with
// HostConfig (every world with genesis installed prepares the rights
// registry; the examples and the demo deploy theirs), and as committed, in
// a plain wazero runtime with testenv.RuntimeConfig.
//
// `make test` runs it without the race detector before the race run: on a
// machine whose cache is empty (CI), wazero's compiler takes about 80 s of
// CPU per 3 MB Go guest under -race and about 8 s without, and every test
// process that meets the module first compiled it again. The race-built
// test binaries read the entries this one writes: wazero keys its cache by
// module, runtime settings, CPU and wazero version (which a test binary
// reports as "dev", whatever its build flags), not by how the reader was
// built. Under -race, as part of ./..., it finds everything cached.
func TestWarmCache(t *testing.T) {
	ctx := context.Background()
	hosted := map[string][]byte{
		"escrow":     repoFile(t, "examples/rights-market/escrow/escrow.wasm"),
		"counter":    repoFile(t, "examples/go-executable/counter.wasm"),
		"freeware-c": contracts.Freeware(),
	}
	for id, wasm := range genesis.Executables() {
		hosted[id] = wasm
	}
	raw := map[string][]byte{
		"rights":      contracts.RightsRegistry(),
		"freeware-go": repoFile(t, "examples/go-contract/freeware.wasm"),
	}

	h, err := host.New(ctx, testworld.HostConfig())
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, h.Close(ctx)) })
	r := testenv.NewRuntime(ctx)
	t.Cleanup(func() { require.NoError(t, r.Close(ctx)) })

	// As many compilations at once as there are CPUs: each is one thread.
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	errs := make(chan error, len(hosted)+len(raw))
	run := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs <- f()
		}()
	}
	for _, wasm := range hosted {
		run(func() error { _, err := h.Prepare(ctx, wasm); return err })
	}
	for _, wasm := range raw {
		run(func() error {
			cm, err := r.CompileModule(ctx, wasm)
			if err == nil {
				err = cm.Close(ctx)
			}
			return err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}
