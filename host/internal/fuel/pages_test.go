package fuel

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// pagesConfig is how the host instruments a module with a large memory.
var pagesConfig = Config{TrackWrites: true, TrackPages: true}

// pagedModule is an instance of a module instrumented with page tracking,
// with what a host reads and writes of it.
type pagedModule struct {
	metered
	info        Info
	count, last api.MutableGlobal
	lo, hi      api.MutableGlobal
	scan, clear api.Function
	globals     experimental.InternalModule
}

func newPaged(t *testing.T, wasm []byte) *pagedModule {
	t.Helper()
	r := newRuntime(t)
	out, info := mustInstrument(t, wasm, pagesConfig)
	mod := instantiate(t, r, compile(t, r, out))
	g := func(name string) api.MutableGlobal {
		v, ok := mod.ExportedGlobal(name).(api.MutableGlobal)
		require.True(t, ok, name)
		return v
	}
	x, ok := mod.(experimental.InternalModule)
	require.True(t, ok)
	p := &pagedModule{metered: metered{mod, fuelGlobal(t, mod)}, info: info,
		count: g(DirtyCountExportName), last: g(DirtyLastExportName), lo: g(DirtyLoExportName), hi: g(DirtyHiExportName),
		scan: mod.ExportedFunction(ScanExportName), clear: mod.ExportedFunction(ClearExportName), globals: x}
	require.NotNil(t, p.scan)
	require.NotNil(t, p.clear)
	require.NotZero(t, info.PageList)
	p.reset(t)
	return p
}

// reset clears all tracking, as a host does after initialisation.
func (p *pagedModule) reset(t *testing.T) {
	t.Helper()
	_, err := p.clear.Call(context.Background())
	require.NoError(t, err)
}

// listed returns the pages in the list, in the order they were listed.
func (p *pagedModule) listed() []uint32 {
	var out []uint32
	for i := range uint32(min(p.count.Get(), PageListLen)) {
		out = append(out, uint32(p.globals.Global(int(p.info.PageList+i)).Get()))
	}
	return out
}

// pages returns every page written since the last restore, as a host
// finds them: the list, or after an overflow the scans of the table, and
// then marks the list stale (last = -1), as a host does after copying.
func (p *pagedModule) pages(t *testing.T) []uint32 {
	t.Helper()
	var out []uint32
	if n := p.count.Get(); n&PageStale != 0 {
		return nil // nothing written since the last restore
	} else if n <= PageListLen {
		out = p.listed()
	} else {
		for from := p.lo.Get() >> PageShift; ; {
			res, err := p.scan.Call(context.Background(), from)
			require.NoError(t, err)
			from = res[0]
			got := p.listed()
			out = append(out, got...)
			if len(got) < PageListLen {
				break
			}
		}
	}
	if len(out) > 0 {
		p.last.Set(math.MaxUint32)
		p.count.Set(p.count.Get() | PageStale)
	}
	return out
}

// TestTrackPages: with Config.TrackPages every store and bulk write lists
// the 1 KiB pages it writes, once per page until the host restores them,
// a page's entry is cleared by the first write after the host marked the
// list stale, more pages than the list holds overflow it and are found by
// the scan, memory grown past the table still tracks, and fuel used is the
// same as without tracking.
func TestTrackPages(t *testing.T) {
	wasm := readTestdata(t, "pages")
	p := newPaged(t, wasm)
	r := newRuntime(t)
	plain, _ := mustInstrument(t, wasm, Config{})
	ref := metered{instantiate(t, r, compile(t, r, plain)), nil}
	ref.fuel = fuelGlobal(t, ref.mod)
	const K = PageSize
	tests := []struct {
		fn    string
		args  []uint64
		pages []uint32 // listed, in order
	}{
		{"store8", []uint64{100}, []uint32{0}},
		{"store8", []uint64{K - 1}, []uint32{0}},
		{"store8", []uint64{K}, []uint32{1}},
		// The store's offset counts: 3 + 2*K-3 is page 2.
		{"store64", []uint64{2*K - 3}, []uint32{2}},
		// An 8-byte store at a page's last bytes writes into the next
		// page: the host copies PageStraddle bytes past each page.
		{"store64", []uint64{3*K - 4}, []uint32{2}},
		{"storef32", []uint64{5 * K}, []uint32{5}},
		{"storef64", []uint64{200 * K}, []uint32{200}},
		// Two far-apart pages, and one of them again: listed once each.
		{"store16x2", []uint64{10, 250 * K}, []uint32{0, 250}},
		{"fill", []uint64{K - 1, K + 2}, []uint32{0, 1, 2}},
		{"fill", []uint64{7 * K, 0}, nil},
		{"copy", []uint64{9*K + 5, 8}, []uint32{9}},
		{"init", []uint64{4*K - 4}, []uint32{3, 4}},
		{"load", []uint64{5 * K}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.fn, func(t *testing.T) {
			res, used, err := p.call(tc.fn, 1_000_000, tc.args...)
			require.NoError(t, err)
			want, wantUsed, err := ref.call(tc.fn, 1_000_000, tc.args...)
			require.NoError(t, err)
			require.Equal(t, want, res)
			require.Equal(t, wantUsed, used, "tracking costs no fuel")
			require.Equal(t, tc.pages, p.pages(t))
		})
	}
	t.Run("written again before a restore", func(t *testing.T) {
		_, _, err := p.call("store8", 1000, 100)
		require.NoError(t, err)
		_, _, err = p.call("store8", 1000, 3*K)
		require.NoError(t, err)
		_, _, err = p.call("store8", 1000, 101)
		require.NoError(t, err)
		require.Equal(t, []uint32{0, 3}, p.pages(t))
		// Stale now: the next write clears the list and lists anew.
		_, _, err = p.call("store8", 1000, 3*K+1)
		require.NoError(t, err)
		require.Equal(t, []uint32{3}, p.pages(t))
	})
	t.Run("overflow", func(t *testing.T) {
		// 300 pages, one byte each, 1 KiB apart: more than the list holds.
		_, _, err := p.call("scatter", 1_000_000, 1000, 300, K)
		require.NoError(t, err)
		require.Equal(t, uint64(PageListLen+1), p.count.Get())
		var want []uint32
		for i := range uint32(300) {
			want = append(want, (1000+i*K)>>PageShift)
		}
		require.Equal(t, want, p.pages(t))
		// The scan nulled every entry: the same writes list anew.
		_, _, err = p.call("scatter", 1_000_000, 1000, 2, K)
		require.NoError(t, err)
		require.Equal(t, want[:2], p.pages(t))
	})
	t.Run("bulk overflow", func(t *testing.T) {
		_, _, err := p.call("fill", 1_000_000, 3*K+1, (PageListLen+10)*K)
		require.NoError(t, err)
		require.Equal(t, uint64(PageListLen+1), p.count.Get())
		var want []uint32
		for i := range uint32(PageListLen + 11) {
			want = append(want, 3+i)
		}
		require.Equal(t, want, p.pages(t))
	})
	t.Run("grown memory", func(t *testing.T) {
		// The table covers the memory when it grows, so that a store
		// past the initial memory is listed, not a trap.
		res, _, err := p.call("grow", 1_000_000, 2)
		require.NoError(t, err)
		require.Equal(t, uint64(8), res[0])
		_, _, err = p.call("store8", 1000, 10*64<<10-1)
		require.NoError(t, err)
		require.Equal(t, []uint32{(10*64<<10 - 1) >> PageShift}, p.pages(t))
	})
	t.Run("trap", func(t *testing.T) {
		// A store out of bounds traps as it would without tracking.
		_, _, err := p.call("store8", 1000, 10*64<<10)
		require.ErrorContains(t, err, "out of bounds memory access")
	})
}

// TestTrackPagesExact: after random writes (stores of every width at any
// offset, fills, copies, inits, between two restores), every byte that
// differs from before lies in a page the host finds (plus its
// PageStraddle bytes), within the host's snapshot; seeded, so that a
// failure repeats.
func TestTrackPagesExact(t *testing.T) {
	wasm := readTestdata(t, "pages")
	p := newPaged(t, wasm)
	mem := p.mod.Memory()
	size := int(mem.Size())
	rng := rand.New(rand.NewSource(16))
	fns := []string{"store8", "store64", "storef32", "storef64", "store16x2", "fill", "copy", "init", "scatter"}
	for round := 0; round < 200; round++ {
		before, _ := mem.Read(0, uint32(size))
		before = slices.Clone(before)
		writes := 1 + rng.Intn(12)
		if round%50 == 49 {
			writes = 40 // and a few rounds that overflow the list (scatter)
		}
		for range writes {
			fn := fns[rng.Intn(len(fns))]
			a := uint64(rng.Intn(size - 16))
			var args []uint64
			switch fn {
			case "store16x2":
				args = []uint64{a, uint64(rng.Intn(size - 2))}
			case "fill", "copy":
				args = []uint64{a, uint64(rng.Intn(min(size-int(a), 40*PageSize)))}
			case "scatter":
				stride := 1 + rng.Intn(4*PageSize)
				args = []uint64{a, uint64(rng.Intn((size-int(a))/stride + 1)), uint64(stride)}
			default:
				args = []uint64{a}
			}
			_, _, err := p.call(fn, 10_000_000, args...)
			require.NoError(t, err, "%s%v", fn, args)
		}
		covered := make([]bool, size)
		for _, pg := range p.pages(t) {
			lo := int(pg) << PageShift
			for i := lo; i < min(lo+PageSize+PageStraddle, size); i++ {
				covered[i] = true
			}
		}
		after, _ := mem.Read(0, uint32(size))
		// Page by page, byte by byte only where a page changed: the same
		// check, without a Go loop over every byte of memory each round
		// (seconds of CPU under the race detector).
		for lo := 0; lo < size; lo += PageSize {
			hi := min(lo+PageSize, size)
			if bytes.Equal(after[lo:hi], before[lo:hi]) {
				continue
			}
			for i := lo; i < hi; i++ {
				if after[i] != before[i] {
					require.True(t, covered[i], "round %d: byte %d changed, its page %d is not listed", round, i, i>>PageShift)
				}
			}
		}
	}
}

// TestTrackPagesNamesNoAddedTable: a table index one past the input's
// tables (the page table's, with TrackPages) is malformed wherever the
// input names a table, so that no guest can read or clear its page marks.
func TestTrackPagesNamesNoAddedTable(t *testing.T) {
	const hdr = "\x00asm\x01\x00\x00\x00"
	// mod is a module with a memory, no table and one function of type
	// () -> () with body (locals and code), plus extra sections.
	mod := func(body, extra string) []byte {
		code := string(appendU32(nil, uint32(len(body)))) + body
		return []byte(hdr + "\x01\x04\x01\x60\x00\x00" + "\x03\x02\x01\x00" + "\x05\x03\x01\x00\x01" + extra +
			"\x0a" + string(appendU32(nil, uint32(len(code)+1))) + "\x01" + code)
	}
	tests := []struct {
		name string
		wasm []byte
	}{
		{"table.get", mod("\x00\x41\x00\x25\x00\x1a\x0b", "")},
		{"table.set", mod("\x00\x41\x00\xd0\x70\x26\x00\x0b", "")},
		{"table.size", mod("\x00\xfc\x10\x00\x1a\x0b", "")},
		{"table.grow", mod("\x00\xd0\x70\x41\x01\xfc\x0f\x00\x1a\x0b", "")},
		{"table.fill", mod("\x00\x41\x00\xd0\x70\x41\x01\xfc\x11\x00\x0b", "")},
		{"table.copy", mod("\x00\x41\x00\x41\x00\x41\x00\xfc\x0e\x00\x00\x0b", "")},
		{"call_indirect", mod("\x00\x41\x00\x11\x00\x00\x0b", "")},
		{"export", mod("\x00\x0b", "\x07\x05\x01\x01t\x01\x00")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Error(t, compiles(tc.wasm), "the input names a table it lacks: invalid")
			out, _, err := Instrument(tc.wasm, pagesConfig)
			require.True(t, out == nil, "no output")
			require.True(t, errors.Is(err, ErrMalformed), "%v", err)
			require.ErrorContains(t, err, "table index 0")
		})
	}
}
