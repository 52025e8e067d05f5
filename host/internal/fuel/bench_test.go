package fuel

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"
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
