package fuel

import (
	"context"
	"errors"
	"flag"
	"os"
	"testing"

	"github.com/kernelhost/kernelhost/internal/testenv"
)

var warm = flag.Bool("warm", false, "compile the Go contract, as committed and instrumented, into the shared compilation cache and exit (make test-warm)")

// TestMain with -warm compiles into the shared compilation cache
// (testCache, testenv.CacheDir) the Go contract instrumented as the host
// ships it (shippedConfig: by pages; TestTrackWrites, TestInstrument_info,
// TestContracts_sameDecisions), the form only this package's tests compile,
// and exits (the contract as committed is internal/testworld's -warm,
// compiled alike). `make test-warm` runs it without the race detector,
// where the instrumented 5.6 MB module takes about 8 s of CPU to compile
// instead of a minute or more; on a cache that is already warm it only
// reads the entry back.
func TestMain(m *testing.M) {
	flag.Parse()
	testenv.ExitIfWarming(*warm, warmCache)
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
	cm, err := r.CompileModule(ctx, inst)
	if err == nil {
		err = cm.Close(ctx)
	}
	return errors.Join(err, r.Close(ctx))
}
