package watcontract_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/kernelhost/kernelhost/host"
	"github.com/kernelhost/kernelhost/internal/testenv"
)

// sharedHost runs the contracts of every world of this package's tests, so
// that each module, the genesis ones included (the rights registry is a Go
// module of a few MiB, slow to compile under the race detector), is compiled
// once per run rather than once per world; its compilation cache is shared
// with other packages' tests (internal/testenv). A Host is safe for
// concurrent use by many kernels.
var sharedHost *host.Host

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	ctx := context.Background()
	// Generous deadlines: deadline behaviour is not under test here, and a
	// loaded machine under -race is slow.
	h, err := host.New(ctx, host.DefaultConfig().WithTimeout(10*time.Second).WithCacheDir(testenv.CacheDir()))
	if err != nil {
		fmt.Fprintln(os.Stderr, "host:", err)
		return 1
	}
	defer h.Close(ctx)
	sharedHost = h
	return m.Run()
}
