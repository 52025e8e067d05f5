package host_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/host"
)

// FuzzValidate feeds arbitrary bytes to Validate: it must return nil or an
// *host.Error, never panic or hang. The seed corpus is every test module.
func FuzzValidate(f *testing.F) {
	wasms, err := filepath.Glob(filepath.Join("testdata", "*.wasm"))
	require.NoError(f, err)
	for _, p := range wasms {
		f.Add(readWasm(f, filepath.Base(p[:len(p)-len(".wasm")])))
	}
	h := newHost(f, host.Config{InitTimeout: 20 * time.Millisecond, MemoryLimitBytes: 4 << 20, MaxInitialMemoryPages: 16})
	f.Fuzz(func(t *testing.T, wasm []byte) {
		err := h.Validate(context.Background(), wasm)
		if err == nil {
			return
		}
		var he *host.Error
		if !errors.As(err, &he) {
			t.Fatalf("Validate returned %T %v, want *host.Error", err, err)
		}
		if !errors.Is(err, host.ErrInvalidModule) {
			t.Fatalf("Validate returned %v, want ErrInvalidModule", err)
		}
	})
}
