package host_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/kernelhost/kernelhost/host"
	"github.com/kernelhost/kernelhost/internal/testenv"
)

var warm = flag.Bool("warm", false, "compile the Go guests this package's tests prepare into the shared compilation cache and exit (make test-warm)")

// TestMain with -warm prepares, with a host of the tests' configuration
// (Config{CacheDir: goCache()}), the Go guests the tests prepare that no
// other package's -warm does, so that their instrumented code lands in the
// shared compilation cache, and exits: testdata/goguest (built by
// buildGoGuest; TestGoGuest, TestStatefulContractIsDeterministic) and the
// Go SDK contract (TestFuelDeterministic; the rights registry, which it
// prepares too, is internal/testworld's, prepared alike). `make test-warm`
// runs it without the race detector, where each compiles in seconds
// instead of a minute or more of CPU; on a warm cache it only reads them
// back.
func TestMain(m *testing.M) {
	flag.Parse()
	testenv.ExitIfWarming(*warm, warmCache)
	os.Exit(m.Run())
}

func warmCache() error {
	goguest, out, err := goGuestWasm()
	if err != nil {
		return fmt.Errorf("build testdata/goguest: %w: %s", err, out)
	}
	sdk, err := os.ReadFile("../examples/go-contract/freeware.wasm")
	if err != nil {
		return err
	}
	ctx := context.Background()
	h, err := host.New(ctx, host.Config{CacheDir: goCache(), Timeout: 10 * time.Second}) // as newHost
	if err != nil {
		return err
	}
	mods := [][]byte{goguest, sdk}
	errs := make([]error, len(mods))
	var wg sync.WaitGroup
	for i, wasm := range mods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = h.Prepare(ctx, wasm)
		}()
	}
	wg.Wait()
	return errors.Join(append(errs, h.Close(ctx))...)
}
