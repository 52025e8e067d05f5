package fuel

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"testing"
)

var warm = flag.Bool("warm", false, "compile the Go contract, as committed and instrumented, into the shared compilation cache and exit (make test-warm)")

// TestMain with -warm compiles into the shared compilation cache
// (testCache, testenv.CacheDir) the Go contract in the forms this
// package's tests compile it under the race detector, and exits: as
// committed (TestContracts_sameDecisions' original) and instrumented as
// the host ships it (shippedConfig: by pages; TestTrackWrites,
// TestInstrument_info, TestContracts_sameDecisions,
// TestFuel_contractDeterministic). `make test-warm` runs it without the
// race detector, where the instrumented 5.6 MB module takes about 8 s of
// CPU to compile instead of a minute or more; on a cache that is already
// warm it only reads the entries back.
func TestMain(m *testing.M) {
	flag.Parse()
	if *warm {
		if err := warmCache(); err != nil {
			fmt.Fprintln(os.Stderr, "warm:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func warmCache() error {
	orig, err := os.ReadFile(freewareGo)
	if err != nil {
		return err
	}
	inst, _, err := Instrument(orig, shippedConfig(freewareGo))
	if err != nil {
		return err
	}
	ctx := context.Background()
	r := newBareRuntime(ctx)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, wasm := range [][]byte{orig, inst} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cm, err := r.CompileModule(ctx, wasm)
			if err == nil {
				err = cm.Close(ctx)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	return errors.Join(append(errs, r.Close(ctx))...)
}
