package fuel

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero/api"
)

// TestTrackWrites: with Config.TrackWrites every store and bulk memory write
// widens the exported dirty range by exactly the bytes it writes, table and
// segment changes set the sticky flag, mutable globals are exported, and
// fuel used is the same as without tracking.
func TestTrackWrites(t *testing.T) {
	ctx := context.Background()
	r := newRuntime(t)
	out, info := mustInstrument(t, readTestdata(t, "track"), Config{TrackWrites: true})
	require.Equal(t, []uint32{0}, info.MutableGlobals, "$count only: $k is immutable")
	mod := instantiate(t, r, compile(t, r, out))
	plain, _ := mustInstrument(t, readTestdata(t, "track"), Config{})
	ref := metered{instantiate(t, r, compile(t, r, plain)), nil}
	ref.fuel = fuelGlobal(t, ref.mod)
	m := metered{mod, fuelGlobal(t, mod)}
	g := func(name string) api.MutableGlobal {
		v, ok := mod.ExportedGlobal(name).(api.MutableGlobal)
		require.True(t, ok, name)
		return v
	}
	lo, hi, sticky := g(DirtyLoExportName), g(DirtyHiExportName), g(StickyExportName)
	require.Equal(t, uint64(math.MaxInt64), lo.Get())
	require.Equal(t, uint64(0), hi.Get())

	tests := []struct {
		fn             string
		args           []uint64
		lo, hi, sticky uint64
	}{
		{"store32", []uint64{100}, 116, 120, 0},
		{"store8", []uint64{100}, 103, 104, 0},
		{"storef64", []uint64{200}, 200, 208, 0},
		{"storef32", []uint64{200}, 201, 205, 0},
		{"fill", []uint64{1000, 50}, 1000, 1050, 0},
		{"copy", []uint64{3000, 7}, 3000, 3007, 0},
		{"init", []uint64{5000}, 5000, 5004, 0},
		{"load", []uint64{5000}, math.MaxInt64, 0, 0},
		{"drop", nil, math.MaxInt64, 0, 1},
		{"tset", nil, math.MaxInt64, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.fn, func(t *testing.T) {
			lo.Set(math.MaxInt64)
			hi.Set(0)
			sticky.Set(0)
			res, used, err := m.call(tc.fn, 1000, tc.args...)
			require.NoError(t, err)
			want, wantUsed, err := ref.call(tc.fn, 1000, tc.args...)
			require.NoError(t, err)
			require.Equal(t, want, res)
			require.Equal(t, wantUsed, used, "tracking costs no fuel")
			require.Equal(t, tc.lo, lo.Get(), "lo")
			require.Equal(t, tc.hi, hi.Get(), "hi")
			require.Equal(t, tc.sticky, sticky.Get(), "sticky")
		})
	}
	cnt, ok := mod.ExportedGlobal(GlobalExportName(0)).(api.MutableGlobal)
	require.True(t, ok)
	res, _, err := m.call("count", 1000)
	require.NoError(t, err)
	require.Equal(t, uint64(8), res[0])
	require.Equal(t, uint64(8), cnt.Get())
	cnt.Set(7)
	res, _, err = m.call("count", 1000)
	require.NoError(t, err)
	require.Equal(t, uint64(8), res[0], "the host writes the global back")
	_ = ctx

	// Every testdata module and contract still instruments and compiles,
	// tracked by range and by pages. Under -race the Go contract (whose
	// compilation takes a minute or more of CPU there) compiles only as
	// the host tracks it, by pages.
	paths, err := filepath.Glob("testdata/*.wasm")
	require.NoError(t, err)
	for _, p := range append(paths, contractPaths...) {
		if _, _, err := Instrument(readFile(t, p), Config{}); err != nil {
			continue // refused without tracking too (simd, atomics)
		}
		if p != freewareGo || !raceEnabled {
			mustInstrument(t, readFile(t, p), Config{TrackWrites: true})
		}
		mustInstrument(t, readFile(t, p), pagesConfig)
	}
}
