package fuel

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/abi/abitest"
)

// BenchmarkInstrument measures the pass itself on the real contracts.
func BenchmarkInstrument(b *testing.B) {
	for _, bc := range []struct{ name, path string }{{"freeware-c", freewareC}, {"freeware-go", freewareGo}} {
		b.Run(bc.name, func(b *testing.B) {
			in := readFile(b, bc.path)
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := Instrument(in, Config{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMetered runs guests original and instrumented, alternately, and
// reports the CPU time of the calling thread for each (metered-ns/op,
// original-ns/op: on Linux, so that other load on the machine does not skew
// them), the overhead in percent and the fuel used. compute is the
// compute-heavy guest (10^6 rounds of xorshift32, whose dependency chain
// hides the charges); tightloop (compute.wat's sum: a 12-instruction body,
// 10^6 times) and calls (10^4 nested calls, each charged twice) are the
// unfavourable cases.
func BenchmarkMetered(b *testing.B) {
	for _, bc := range []struct {
		name, module, fn string
		arg              uint64
	}{
		{"compute", "bench", "compute", 1_000_000},
		{"tightloop", "compute", "sum", 1_000_000},
		{"calls", "compute", "recurse", 10_000},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			in := readTestdata(b, bc.module)
			out, _ := mustInstrument(b, in, Config{})
			r := newBareRuntime(ctx)
			defer r.Close(ctx)
			orig, err := r.InstantiateWithConfig(ctx, in, wazero.NewModuleConfig().WithName("orig"))
			require.NoError(b, err)
			inst, err := r.InstantiateWithConfig(ctx, out, wazero.NewModuleConfig().WithName("inst"))
			require.NoError(b, err)
			m := metered{mod: inst, fuel: fuelGlobal(b, inst)}
			fo, fm := orig.ExportedFunction(bc.fn), inst.ExportedFunction(bc.fn)
			want, err := fo.Call(ctx, bc.arg)
			require.NoError(b, err)
			got, used, err := m.call(bc.fn, MaxFuel, bc.arg)
			require.NoError(b, err)
			require.Equal(b, want, got)
			var tOrig, tMeter time.Duration
			defer lockThread()()
			b.ResetTimer()
			runOrig := func() {
				t0 := threadCPU()
				if _, err := fo.Call(ctx, bc.arg); err != nil {
					b.Fatal(err)
				}
				tOrig += threadCPU() - t0
			}
			runMetered := func() {
				t0 := threadCPU()
				m.fuel.Set(MaxFuel)
				if _, err := fm.Call(ctx, bc.arg); err != nil {
					b.Fatal(err)
				}
				tMeter += threadCPU() - t0
			}
			for i := 0; i < b.N; i++ {
				// NB: alternate the order, so that neither run always
				// follows the other.
				if i%2 == 0 {
					runOrig()
					runMetered()
				} else {
					runMetered()
					runOrig()
				}
			}
			b.StopTimer()
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(float64(used), "fuel/op")
			b.ReportMetric(float64(tMeter.Nanoseconds())/float64(b.N), "metered-ns/op")
			b.ReportMetric(float64(tOrig.Nanoseconds())/float64(b.N), "original-ns/op")
			b.ReportMetric(100*(float64(tMeter)-float64(tOrig))/float64(tOrig), "overhead-%")
		})
	}
}

// BenchmarkGuestCheck calls kh_check of the C freeware contract directly
// (no host: the request already in guest memory, a bare runtime without
// interruption), original and instrumented: what metering costs a real
// contract, as opposed to BenchmarkMetered's synthetic guests.
func BenchmarkGuestCheck(b *testing.B) {
	ctx := context.Background()
	in := readFile(b, freewareC)
	out, _ := mustInstrument(b, in, Config{})
	r := newBareRuntime(ctx)
	defer r.Close(ctx)
	req, err := abi.AppendRequest(nil, abitest.CheckRequest())
	require.NoError(b, err)
	for _, v := range []struct {
		name string
		wasm []byte
	}{{"freeware-c/original", in}, {"freeware-c/metered", out}} {
		b.Run(v.name, func(b *testing.B) {
			mod, err := r.InstantiateWithConfig(ctx, v.wasm, wazero.NewModuleConfig().WithName(""))
			require.NoError(b, err)
			var g api.MutableGlobal
			if mod.ExportedGlobal(ExportName) != nil {
				g = fuelGlobal(b, mod)
			}
			st := make([]uint64, 2)
			st[0] = uint64(len(req))
			require.NoError(b, mod.ExportedFunction("kh_alloc").CallWithStack(ctx, st))
			p := uint32(st[0])
			require.True(b, mod.Memory().Write(p, req))
			f := mod.ExportedFunction("kh_check")
			b.ReportAllocs()
			for b.Loop() {
				if g != nil {
					g.Set(DefaultStartFuel)
				}
				st[0], st[1] = uint64(p), uint64(len(req))
				if err := f.CallWithStack(ctx, st); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			d, err := abi.DecodeDecision(mustRead(b, mod, st[0]))
			require.NoError(b, err)
			require.True(b, d.Allowed)
		})
	}
}

// mustRead returns the guest memory region (ptr << 32 | len) names.
func mustRead(tb testing.TB, mod api.Module, region uint64) []byte {
	tb.Helper()
	b, ok := mod.Memory().Read(uint32(region>>32), uint32(region))
	require.True(tb, ok)
	return b
}
