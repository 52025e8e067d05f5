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

// BenchmarkMetered runs a compute-heavy guest (10^6 rounds of xorshift32)
// original and instrumented, alternately, and reports the CPU time of the
// calling thread for each (metered-ns/op, original-ns/op: on Linux, so that
// other load on the machine does not skew them) and the overhead in
// percent.
func BenchmarkMetered(b *testing.B) {
	b.Run("compute", func(b *testing.B) {
		const rounds = 1_000_000
		ctx := context.Background()
		in := readTestdata(b, "bench")
		out, _ := mustInstrument(b, in, Config{})
		r := newBareRuntime(ctx)
		defer r.Close(ctx)
		orig, err := r.InstantiateWithConfig(ctx, in, wazero.NewModuleConfig().WithName("orig"))
		require.NoError(b, err)
		inst, err := r.InstantiateWithConfig(ctx, out, wazero.NewModuleConfig().WithName("inst"))
		require.NoError(b, err)
		m := metered{mod: inst, fuel: fuelGlobal(b, inst)}
		fo, fm := orig.ExportedFunction("compute"), inst.ExportedFunction("compute")
		want, err := fo.Call(ctx, rounds)
		require.NoError(b, err)
		got, used, err := m.call("compute", MaxFuel, rounds)
		require.NoError(b, err)
		require.Equal(b, want, got)
		b.ReportMetric(float64(used), "fuel/op")
		var tOrig, tMeter time.Duration
		defer lockThread()()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			t0 := threadCPU()
			if _, err := fo.Call(ctx, rounds); err != nil {
				b.Fatal(err)
			}
			t1 := threadCPU()
			m.fuel.Set(MaxFuel)
			if _, err := fm.Call(ctx, rounds); err != nil {
				b.Fatal(err)
			}
			tOrig += t1 - t0
			tMeter += threadCPU() - t1
		}
		b.StopTimer()
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(float64(tMeter.Nanoseconds())/float64(b.N), "metered-ns/op")
		b.ReportMetric(float64(tOrig.Nanoseconds())/float64(b.N), "original-ns/op")
		b.ReportMetric(100*(float64(tMeter)-float64(tOrig))/float64(tOrig), "overhead-%")
	})
}
