package host_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/abi/abitest"
	contracts "github.com/kernelhost/kernelhost/contracts-wasm"
	"github.com/kernelhost/kernelhost/host"
)

// checkRequest is a realistic request for the freeware rule: a write by the
// controller (named in metadata), with a few metadata and config pairs.
func checkRequest() *abi.Request { return abitest.CheckRequest() }

// nativeFreeware is the freeware rule as plain Go on the decoded request:
// the floor every wasm path is compared with.
//
//go:noinline
func nativeFreeware(req *abi.Request) abi.Decision {
	switch req.Action {
	case abi.ActionRead, abi.ActionInvoke:
		return abi.Decision{Allowed: true}
	case abi.ActionWrite, abi.ActionEdit, abi.ActionDelete, abi.ActionSetContract:
	default:
		return abi.Decision{Reason: "freeware: unknown action"}
	}
	controller := req.CreatedBy
	for i := range req.Metadata {
		if req.Metadata[i].Key == "controller" {
			controller = req.Metadata[i].Value
			break
		}
	}
	if req.Caller == controller {
		return abi.Decision{Allowed: true}
	}
	return abi.Decision{Reason: "freeware: only the controller may change it"}
}

// BenchmarkCheck compares one permission check of the freeware rule: native
// Go, the C genesis contract and the Go SDK contract, each through a warm
// pooled instance with the host's limits armed (encode request, call, decode
// decision): fuel metering by default, deadlines for the -ctx row.
func BenchmarkCheck(b *testing.B) {
	req := checkRequest()
	b.Run("native", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if d := nativeFreeware(req); !d.Allowed {
				b.Fatal(d)
			}
		}
	})
	goWasm, err := os.ReadFile("../examples/go-contract/freeware.wasm")
	require.NoError(b, err)
	for _, mod := range []struct {
		name    string
		wasm    []byte
		cfg     host.Config
		noReset bool // the per-call reset off (host.SetNoReset), to measure its cost
	}{
		{"wasm-freeware", contracts.Freeware(), host.Config{}, false},
		{"wasm-freeware-noreset", contracts.Freeware(), host.Config{}, true},
		{"wasm-freeware-go", goWasm, host.Config{}, false},
		{"wasm-freeware-go-noreset", goWasm, host.Config{}, true},
		// The same C contract stopped by deadlines instead of fuel: wazero
		// watches each call's context with a goroutine.
		{"wasm-freeware-ctx", contracts.Freeware(), host.Config{DisableMetering: true}, false},
	} {
		b.Run(mod.name, func(b *testing.B) {
			h, err := host.New(context.Background(), mod.cfg)
			require.NoError(b, err)
			b.Cleanup(func() { _ = h.Close(context.Background()) })
			host.SetNoReset(h, mod.noReset)
			ctx := context.Background()
			hash, err := h.Prepare(ctx, mod.wasm)
			require.NoError(b, err)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				d, _, err := h.Evaluate(ctx, hash, req, abi.Limits{})
				if err != nil || !d.Allowed {
					b.Fatal(d, err)
				}
			}
		})
	}
}

// TestCheckAgreesWithNative: the benchmark's three paths decide alike.
func TestCheckAgreesWithNative(t *testing.T) {
	t.Parallel() // its host is its own; a Go guest is slow under -race
	h, err := host.New(context.Background(), host.Config{Timeout: 10 * time.Second, CacheDir: goCache()})
	require.NoError(t, err)
	defer h.Close(context.Background())
	goWasm, err := os.ReadFile("../examples/go-contract/freeware.wasm")
	require.NoError(t, err)
	hc, err := h.Prepare(context.Background(), contracts.Freeware())
	require.NoError(t, err)
	hg, err := h.Prepare(context.Background(), goWasm)
	require.NoError(t, err)
	for _, caller := range []string{"agent-0042", "agent-0007", "stranger"} {
		for a := abi.ActionRead; a.Valid(); a++ {
			req := checkRequest()
			req.Caller, req.Action = caller, a
			want := nativeFreeware(req).Allowed
			for _, hash := range [][32]byte{hc, hg} {
				d, _, err := h.Evaluate(context.Background(), hash, req, abi.Limits{})
				require.NoError(t, err)
				require.Equal(t, want, d.Allowed, "%s %s", caller, a)
			}
		}
	}
}
