package testworld

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/genesis"
	"github.com/kernelhost/kernelhost/host"
	"github.com/kernelhost/kernelhost/internal/testenv"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/store"
)

// HostConfig is the host configuration of tests that run real contracts
// through a kernel: the shared compilation cache, and a generous 10s check
// deadline, since deadline behaviour is tested in package host and a loaded
// machine under -race is slow.
func HostConfig() host.Config {
	return host.DefaultConfig().WithTimeout(10 * time.Second).WithCacheDir(testenv.CacheDir())
}

// RunWithHost is a TestMain body for packages whose tests share one Host
// (each module, the genesis ones included, then compiles once per run, not
// once per world; a Host is safe for concurrent use by many kernels): it
// creates the Host with HostConfig, stores it in *h, runs m and closes it.
// Its result is the exit code.
func RunWithHost(m *testing.M, h **host.Host) int {
	ctx := context.Background()
	hh, err := host.New(ctx, HostConfig())
	if err != nil {
		fmt.Fprintln(os.Stderr, "host:", err)
		return 1
	}
	defer hh.Close(ctx)
	*h = hh
	return m.Run()
}

// World opens a kernel on an in-memory store that runs contracts with ev,
// installs genesis with spec, and closes both when t ends. Its clock is
// fixed, and its contract deadline as generous as HostConfig's.
func World(t *testing.T, ev kernel.Evaluator, spec genesis.Spec) *kernel.Kernel {
	t.Helper()
	ctx := context.Background()
	st := store.NewMem()
	k, err := kernel.Open(ctx, kernel.Config{
		Store: st, Evaluator: ev, Clock: func() time.Time { return time.Unix(1_700_000_000, 0) },
		DefaultContract: genesis.DefaultContract, ContractTimeout: 10 * time.Second,
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, k.Close(ctx))
		require.NoError(t, st.Close())
	})
	require.NoError(t, genesis.Install(ctx, k, spec))
	return k
}

// HostWorld is World with a Host of its own (HostConfig), closed when t
// ends.
func HostWorld(t *testing.T, spec genesis.Spec) *kernel.Kernel {
	t.Helper()
	h, err := host.New(context.Background(), HostConfig())
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, h.Close(context.Background())) })
	return World(t, h, spec)
}

// WarmCache compiles modules into this process's shared compilation cache
// (testenv.CacheDir) as the tests that use them compile them: each of
// hosted prepared by a host with HostConfig (instrumented), each of raw in
// a plain wazero runtime with testenv.RuntimeConfig (as committed); as many
// at once as there are CPUs, since each compilation is one thread. It
// returns the errors of those that did not compile, and does nothing when
// there is no cache directory to fill. A package's TestMain calls it for
// its -warm flag, which `make test-warm` sets, without the race detector:
// under it a 3 MB Go guest takes about ten times as long to compile.
func WarmCache(hosted, raw [][]byte) error {
	if testenv.CacheDir() == "" {
		return nil
	}
	ctx := context.Background()
	h, err := host.New(ctx, HostConfig())
	if err != nil {
		return err
	}
	r := testenv.NewRuntime(ctx)

	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	errs := make(chan error, len(hosted)+len(raw))
	var wg sync.WaitGroup
	start := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs <- f()
		}()
	}
	for _, wasm := range hosted {
		start(func() error { _, err := h.Prepare(ctx, wasm); return err })
	}
	for _, wasm := range raw {
		start(func() error {
			cm, err := r.CompileModule(ctx, wasm)
			if err != nil {
				return err
			}
			return cm.Close(ctx)
		})
	}
	wg.Wait()
	close(errs)
	all := []error{h.Close(ctx), r.Close(ctx)}
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}
