package genesis_test

import (
	"context"
	"os"
	"testing"

	"github.com/kernelhost/kernelhost/host"
)

// cacheDir is the wazero compilation cache shared by the package's hosts, so
// that the rights registry (a Go module of a few MiB, slow to compile under
// the race detector) is compiled once per run rather than once per world.
var cacheDir string

// TestMain creates the compilation cache and one host on it before the
// tests run. NB: wazero v1.11 caches its version string in an unsynchronised
// global on the first NewCompilationCacheWithDir; one call up front makes
// every later call a read.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "kernelhost-genesis-test-")
	if err != nil {
		return m.Run() // no cache: every host compiles on its own
	}
	defer os.RemoveAll(dir)
	cacheDir = dir
	if h, err := host.New(context.Background(), host.DefaultConfig().WithCacheDir(dir)); err == nil {
		_ = h.Close(context.Background())
	}
	return m.Run()
}
