package fuel

import (
	"context"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero/api"
)

const page = 65536

// capped is an instance of testdata/grow.wasm with its cap globals.
type capped struct {
	mod                api.Module
	cap, elems, denied api.MutableGlobal
	fuel               api.MutableGlobal // nil without metering
	memoryGrows        int
	tables             int // table.grow sites
}

func newCapped(t *testing.T, cfg Config) capped {
	t.Helper()
	out, info := mustInstrument(t, readTestdata(t, "grow"), cfg)
	r := newRuntime(t)
	mod := instantiate(t, r, compile(t, r, out))
	g := func(name string) api.MutableGlobal {
		v, ok := mod.ExportedGlobal(name).(api.MutableGlobal)
		require.True(t, ok, "no mutable global exported as %s", name)
		return v
	}
	c := capped{mod: mod, cap: g(CapExportName), elems: g(TableElemsExportName), denied: g(DeniedExportName),
		memoryGrows: info.MemoryGrows, tables: info.TableGrows}
	require.Equal(t, uint64(2), info.TableElems, "the declared minimums: 2 + 0")
	if !cfg.NoMetering {
		c.fuel = fuelGlobal(t, mod)
	} else {
		require.Nil(t, mod.ExportedGlobal(ExportName), "no fuel global without metering")
		require.Nil(t, mod.ExportedGlobal(MarkExportName))
	}
	return c
}

func (c capped) call(t *testing.T, name string, args ...uint64) int32 {
	t.Helper()
	if c.fuel != nil {
		c.fuel.Set(1 << 50)
	}
	res, err := c.mod.ExportedFunction(name).Call(context.Background(), args...)
	require.NoError(t, err)
	return int32(res[0])
}

// TestInstrument_memoryCap checks that memory.grow and table.grow never take
// memory plus 8 bytes per table element past the cap global, that a refusal
// returns -1 and sets the denied global, that the element count follows
// successful table growth only, and that the same holds without metering.
func TestInstrument_memoryCap(t *testing.T) {
	type step struct {
		fn     string
		arg    uint64
		want   int32 // what the grow returned
		denied bool  // the denied global afterwards (reset before each step)
	}
	tests := []struct {
		name  string
		cap   int64 // set before the steps; 0 keeps Config.MemoryCap
		cfg   Config
		steps []step
		pages int32
		elems uint64
	}{
		{"no cap", 0, Config{}, []step{
			{"grow_mem", 3, 1, false}, {"grow_table", 1000, 2, false}, {"grow_ext", 5, 0, false},
		}, 4, 1007},
		{"memory up to the cap exactly", 3*page + 2*TableElemBytes, Config{}, []step{
			{"grow_mem", 2, 1, false}, {"grow_mem", 1, -1, true}, {"grow_table", 1, -1, true}, {"grow_mem", 0, 3, false},
		}, 3, 2},
		{"tables count against the same cap", 1*page + 10*TableElemBytes, Config{}, []step{
			{"grow_table", 8, 2, false}, {"grow_table", 1, -1, true}, {"grow_ext", 1, -1, true}, {"grow_mem", 1, -1, true},
		}, 1, 10},
		{"a delta of 2^32-1 is refused", 1 << 30, Config{}, []step{
			{"grow_mem", math.MaxUint32, -1, true}, {"grow_table", math.MaxUint32, -1, true}, {"grow_ext", math.MaxUint32, -1, true},
		}, 1, 2},
		{"initial cap from the config", 0, Config{MemoryCap: 2*page + 2*TableElemBytes}, []step{
			{"grow_mem", 1, 1, false}, {"grow_mem", 1, -1, true},
		}, 2, 2},
		{"without metering", 2*page + 3*TableElemBytes, Config{NoMetering: true}, []step{
			{"grow_mem", 1, 1, false}, {"grow_ext", 1, 0, false}, {"grow_table", 1, -1, true}, {"grow_mem", 1, -1, true},
		}, 2, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCapped(t, tc.cfg)
			require.Equal(t, [2]int{1, 2}, [2]int{c.memoryGrows, c.tables}, "1 memory.grow, 2 table.grow")
			if tc.cap != 0 {
				c.cap.Set(uint64(tc.cap))
			}
			for i, s := range tc.steps {
				c.denied.Set(0)
				require.Equal(t, s.want, c.call(t, s.fn, s.arg), "step %d: %s(%d)", i, s.fn, s.arg)
				require.Equal(t, s.denied, c.denied.Get() == 1, "step %d: denied", i)
			}
			require.Equal(t, tc.pages, c.call(t, "mem_size"))
			require.Equal(t, tc.elems, c.elems.Get())
			require.Equal(t, int32(tc.elems), c.call(t, "table_size"), "the element count matches the tables")
		})
	}
}

// TestInstrument_memoryCapFuel checks that the cap check costs no fuel: a
// refused memory.grow is charged exactly as an allowed one (for the pages
// asked), so that fuel does not depend on the caller's cap.
func TestInstrument_memoryCapFuel(t *testing.T) {
	used := func(cap int64) int64 {
		c := newCapped(t, Config{})
		c.cap.Set(uint64(cap))
		m := metered{mod: c.mod, fuel: c.fuel}
		res, u, err := m.call("grow_mem", 1<<40, 2)
		require.NoError(t, err)
		require.Equal(t, cap >= 3*page+2*TableElemBytes, int32(res[0]) == 1, "grown only under the cap")
		return u
	}
	allowed, refused := used(1<<40), used(page)
	require.Equal(t, allowed, refused)
	require.Equal(t, int64(CostMemoryGrow+2*CostMemoryGrowPerPage+CostDefault), allowed, "local.get, memory.grow and 2 pages")
}

// TestInstrument_capNamesTaken checks that a module exporting one of the cap
// globals' names is rejected.
func TestInstrument_capNamesTaken(t *testing.T) {
	const hdr = "\x00asm\x01\x00\x00\x00"
	for _, name := range []string{CapExportName, TableElemsExportName, DeniedExportName} {
		wasm := []byte(hdr + "\x06\x06\x01\x7f\x00\x41\x00\x0b" + "\x07" + string(rune(len(name)+4)) + "\x01" + string(rune(len(name))) + name + "\x03\x00")
		_, _, err := Instrument(wasm, Config{})
		require.ErrorIs(t, err, ErrUnsupported, name)
		require.ErrorContains(t, err, `already exports "`+name+`"`)
	}
}
