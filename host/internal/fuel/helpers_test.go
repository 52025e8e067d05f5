package fuel

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/kernelhost/kernelhost/internal/testenv"
)

// Paths of the real contracts, relative to this package.
const (
	freewareC  = "../../../contracts-wasm/freeware.wasm"
	freewareGo = "../../../examples/go-contract/freeware.wasm"
)

// contractPaths are every genesis contract plus the Go SDK contract.
var contractPaths = []string{
	"../../../contracts-wasm/freeware.wasm",
	"../../../contracts-wasm/private.wasm",
	"../../../contracts-wasm/public.wasm",
	freewareGo,
}

// testCache is shared by every runtime of the tests but the spec suite's,
// so that each distinct module (the 5.6 MB instrumented Go contract above
// all, a minute or more of CPU to compile under -race) compiles once: the
// compilation cache directory shared by the test processes of this machine
// (testenv.CacheDir, where make test-warm compiles the original Go guests),
// or one in memory when there is none.
var testCache = func() wazero.CompilationCache {
	if dir := testenv.CacheDir(); dir != "" {
		if c, err := wazero.NewCompilationCacheWithDir(dir); err == nil {
			return c
		}
	}
	return wazero.NewCompilationCache()
}()

// newBareRuntime returns a runtime sharing testCache.
func newBareRuntime(ctx context.Context) wazero.Runtime {
	return wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(testCache))
}

// readFile returns the contents of path, relative to this package.
func readFile(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	require.NoError(tb, err)
	return b
}

// readTestdata returns testdata/name.wasm.
func readTestdata(tb testing.TB, name string) []byte {
	tb.Helper()
	return readFile(tb, filepath.Join("testdata", name+".wasm"))
}

// mustInstrument instruments wasm with cfg and checks the result compiles.
func mustInstrument(tb testing.TB, wasm []byte, cfg Config) ([]byte, Info) {
	tb.Helper()
	out, info, err := Instrument(wasm, cfg)
	require.NoError(tb, err)
	ctx := context.Background()
	r := newBareRuntime(ctx)
	defer r.Close(ctx)
	_, err = r.CompileModule(ctx, out)
	require.NoError(tb, err)
	return out, info
}

// newRuntime returns a runtime with WASI and testdata/env.wasm as "env",
// closed when tb ends.
func newRuntime(tb testing.TB) wazero.Runtime {
	tb.Helper()
	ctx := context.Background()
	r := newBareRuntime(ctx)
	tb.Cleanup(func() { _ = r.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	_, err := r.InstantiateWithConfig(ctx, readTestdata(tb, "env"), wazero.NewModuleConfig().WithName("env"))
	require.NoError(tb, err)
	return r
}

// instantiate instantiates compiled anonymously in r, with no start
// functions but _initialize called when exported (a reactor, like a Go
// contract).
func instantiate(tb testing.TB, r wazero.Runtime, compiled wazero.CompiledModule) api.Module {
	tb.Helper()
	ctx := context.Background()
	mod, err := r.InstantiateModule(ctx, compiled, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	require.NoError(tb, err)
	if f := mod.ExportedFunction("_initialize"); f != nil {
		_, err := f.Call(ctx)
		require.NoError(tb, err)
	}
	return mod
}

// compile compiles wasm in r.
func compile(tb testing.TB, r wazero.Runtime, wasm []byte) wazero.CompiledModule {
	tb.Helper()
	c, err := r.CompileModule(context.Background(), wasm)
	require.NoError(tb, err)
	return c
}

// fuelGlobal returns mod's fuel global.
func fuelGlobal(tb testing.TB, mod api.Module) api.MutableGlobal {
	tb.Helper()
	g, ok := mod.ExportedGlobal(ExportName).(api.MutableGlobal)
	require.True(tb, ok, "no mutable global exported as %s", ExportName)
	return g
}

// metered is an instrumented module instance with its fuel global.
type metered struct {
	mod  api.Module
	fuel api.MutableGlobal
}

// call sets the fuel to budget, calls name and returns its results, the
// fuel used (budget minus what is left, which exceeds budget after running
// out) and the call's error.
func (m metered) call(name string, budget int64, args ...uint64) ([]uint64, int64, error) {
	m.fuel.Set(uint64(budget))
	res, err := m.mod.ExportedFunction(name).Call(context.Background(), args...)
	return res, budget - int64(m.fuel.Get()), err
}

// outOfFuel reports whether the last call ran out of fuel: it trapped and
// the fuel is negative.
func (m metered) outOfFuel(err error) bool {
	return err != nil && int64(m.fuel.Get()) < 0
}
