package host_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	contracts "github.com/kernelhost/kernelhost/contracts-wasm"
	"github.com/kernelhost/kernelhost/host"
)

// BenchmarkEvaluate measures one warm check, interruption armed, of small
// contracts: the target is at most 3 allocs/op and 2µs/op.
func BenchmarkEvaluate(b *testing.B) {
	modules := []struct {
		name string
		wasm func(testing.TB) []byte
	}{
		{"wat-allow", func(tb testing.TB) []byte { return readWasm(tb, "allow") }},
		{"wat-freeware", func(tb testing.TB) []byte { return readWasm(tb, "freeware") }},
		{"go-freeware", buildGoGuest},
	}
	req := request(abi.ActionWrite, "alice", "alice")
	for _, mod := range modules {
		b.Run(mod.name, func(b *testing.B) {
			h := newHost(b, host.Config{})
			hash, err := h.Prepare(context.Background(), mod.wasm(b))
			require.NoError(b, err)
			ctx := context.Background()
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
	b.Run("wat-freeware-parallel", func(b *testing.B) {
		h := newHost(b, host.Config{})
		hash := prepare(b, h, "freeware")
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				d, _, err := h.Evaluate(context.Background(), hash, req, abi.Limits{})
				if err != nil || !d.Allowed {
					b.Error(d, err)
					return
				}
			}
		})
	})
}

// BenchmarkPrepare measures Validate+compile+instantiate of a small module
// that is not prepared yet (a fresh Host each time, in-memory cache).
func BenchmarkPrepare_wat(b *testing.B) {
	wasm := readWasm(b, "freeware")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		h, err := host.New(context.Background(), host.Config{})
		require.NoError(b, err)
		_, err = h.Prepare(context.Background(), wasm)
		require.NoError(b, err)
		require.NoError(b, h.Close(context.Background()))
	}
}

// quotaCalls answers the rights registry's quota query and keeps nothing,
// so that a benchmark's calls allocate nothing of its own.
type quotaCalls struct{}

func (quotaCalls) Call(req []byte) []byte { return quotaReply(req) }
func (quotaCalls) Log([]byte)             {}

// BenchmarkInvoke measures one invoke of the genesis rights registry (a Go
// executable, contracts-wasm/rights) through a warm pooled instance: its
// get_quota method, which makes one kernel call (answered here without a
// kernel). The -noreset row switches the per-call reset off (host.SetNoReset),
// everything else equal: with the reset every call runs from the
// post-initialisation state, as the first call of a fresh instance does.
func BenchmarkInvoke(b *testing.B) {
	for _, noReset := range []bool{false, true} {
		name := "rights-get_quota"
		if noReset {
			name += "-noreset"
		}
		b.Run(name, func(b *testing.B) {
			h := newHost(b, host.Config{})
			host.SetNoReset(h, noReset)
			ctx := context.Background()
			hash, err := h.Prepare(ctx, contracts.RightsRegistry())
			require.NoError(b, err)
			req := invokeReq("get_quota", `{"resource":"cpu_rate"}`)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				res, _, err := h.Invoke(ctx, hash, req, abi.Limits{}, quotaCalls{})
				if err != nil || !res.OK {
					b.Fatal(res, err)
				}
			}
		})
	}
}
