package host_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/host"
)

var goGuest struct {
	once sync.Once
	wasm []byte
	err  error
	out  string
}

// buildGoGuest builds testdata/goguest with the go command running this test
// (GOOS=wasip1 GOARCH=wasm -buildmode=c-shared -trimpath). It skips in
// -short mode.
func buildGoGuest(tb testing.TB) []byte {
	tb.Helper()
	if testing.Short() {
		tb.Skip("building a Go wasip1 guest is slow; skipped in -short mode")
	}
	wasm, out, err := goGuestWasm()
	require.NoError(tb, err, "%s", out)
	return wasm
}

// goGuestWasm builds testdata/goguest once per process (buildGoGuest); out
// is the go command's output when it fails.
func goGuestWasm() (wasm []byte, out string, err error) {
	goGuest.once.Do(func() {
		dir, err := os.MkdirTemp("", "kernelhost-goguest")
		if err != nil {
			goGuest.err = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "goguest.wasm")
		// The flags and environment of the examples' reproducible builds:
		// the module's bytes do not depend on the checkout's path (so that
		// the shared compilation cache keeps it across clones), and the
		// standard library compiled for them serves this build too.
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-buildvcs=false", "-ldflags=-buildid=", "-o", out, "./testdata/goguest")
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOFLAGS=", "CGO_ENABLED=0")
		b, err := cmd.CombinedOutput()
		if err != nil {
			goGuest.err, goGuest.out = err, string(b)
			return
		}
		goGuest.wasm, goGuest.err = os.ReadFile(out)
	})
	return goGuest.wasm, goGuest.out, goGuest.err
}

// TestGoGuest checks that a standard Go guest (fmt, time, package abi)
// passes validation with the deterministic WASI subset and decides right.
func TestGoGuest(t *testing.T) {
	t.Parallel() // its host is its own; a Go guest is slow under -race
	wasm := buildGoGuest(t)
	h := newHost(t, host.Config{CacheDir: goCache()})
	hash, err := h.Prepare(context.Background(), wasm) // validates too
	require.NoError(t, err)
	tests := []struct {
		name    string
		req     *abi.Request
		allowed bool
		reason  string
	}{
		{"read by anyone", request(abi.ActionRead, "bob", "alice"), true, ""},
		{"write by creator", request(abi.ActionWrite, "alice", "alice"), true, ""},
		{"write by other", request(abi.ActionWrite, "bob", "alice"), false, "bob is not the controller (checked 2022)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, _, err := h.Evaluate(context.Background(), hash, tc.req, abi.Limits{})
			require.NoError(t, err)
			require.Equal(t, abi.Decision{Allowed: tc.allowed, Reason: tc.reason}, d)
		})
	}
	require.Equal(t, 1, h.Stats().Modules[hash].Live)
}
