package fuel

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/internal/testenv"
	"github.com/tetratelabs/wazero"
)

// TestInstrument_sameResults runs functions of the test modules, original and
// instrumented, in the same order, and compares their results.
func TestInstrument_sameResults(t *testing.T) {
	type call struct {
		fn   string
		args []uint64
	}
	tests := []struct {
		name   string
		module string
		calls  []call
	}{
		{"straight", "compute", []call{{"straight", []uint64{3, 4}}, {"straight", []uint64{1 << 31, 2}}}},
		{"factorial", "compute", []call{{"fac", []uint64{0}}, {"fac", []uint64{1}}, {"fac", []uint64{20}}}},
		{"fib", "compute", []call{{"fib", []uint64{0}}, {"fib", []uint64{1}}, {"fib", []uint64{30}}}},
		{"sum", "compute", []call{{"sum", []uint64{1}}, {"sum", []uint64{1000}}}},
		{"collatz", "compute", []call{{"collatz", []uint64{27}}, {"collatz", []uint64{97}}}},
		{"br_table and multi-value", "compute", []call{{"switch", []uint64{0}}, {"switch", []uint64{1}}, {"switch", []uint64{2}}, {"switch", []uint64{7}}}},
		{"call_indirect", "compute", []call{{"indirect", []uint64{0}}, {"indirect", []uint64{1}}}},
		{"memory ops", "compute", []call{{"memops", []uint64{0, 9}}, {"memops", []uint64{100, 7}}, {"memops", []uint64{3000, 255}}}},
		{"memory.grow", "compute", []call{{"grow", []uint64{1}}, {"grow", []uint64{0}}, {"grow", []uint64{1000}}, {"grow", []uint64{2}}}},
		{"globals", "compute", []call{{"bump", nil}, {"bump", nil}, {"bump", nil}}},
		{"recursion", "compute", []call{{"recurse", []uint64{1000}}}},
		{"tables", "tables", []call{{"grow_fill", []uint64{3}}, {"grow_fill", []uint64{0}}, {"init_call", []uint64{3}}, {"is_null", []uint64{0}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			in := readTestdata(t, tc.module)
			out, _ := mustInstrument(t, in, Config{})
			r := newRuntime(t)
			orig := instantiate(t, r, compile(t, r, in))
			m := metered{mod: instantiate(t, r, compile(t, r, out))}
			m.fuel = fuelGlobal(t, m.mod)
			for _, c := range tc.calls {
				want, err := orig.ExportedFunction(c.fn).Call(ctx, c.args...)
				require.NoError(t, err)
				got, used, err := m.call(c.fn, 1e9, c.args...)
				require.NoError(t, err)
				require.Equal(t, want, got, "%s%v", c.fn, c.args)
				require.Positive(t, used, "%s%v", c.fn, c.args)
			}
		})
	}
}

// TestFuel_loopLinear checks that a loop of n iterations uses exactly
// 12n+1 fuel. The loop body of compute.wat's sum is one straight-line run of
// 12 instructions costing 1 each (local.get, local.get, i64.extend_i32_u,
// i64.add, local.set, local.get, i32.const, i32.add, local.tee, local.get,
// i32.lt_u, br_if), charged at the top of each iteration. Before the loop
// there is only the loop opener (cost 0: no charge); after it, local.get $s
// (1) and end (0).
func TestFuel_loopLinear(t *testing.T) {
	const a, b = 12, 1
	out, _ := mustInstrument(t, readTestdata(t, "compute"), Config{})
	r := newRuntime(t)
	m := metered{mod: instantiate(t, r, compile(t, r, out))}
	m.fuel = fuelGlobal(t, m.mod)
	for _, n := range []int64{1, 2, 3, 10, 1000, 1e6} {
		res, used, err := m.call("sum", MaxFuel, uint64(n))
		require.NoError(t, err)
		require.Equal(t, uint64(n*(n-1)/2), res[0])
		require.Equal(t, a*n+b, used, "n=%d", n)
	}
	// With exactly the fuel it needs, the loop finishes with 0 left; with
	// one unit less it runs out.
	_, used, err := m.call("sum", a*100+b, 100)
	require.NoError(t, err)
	require.Equal(t, int64(a*100+b), used)
	_, _, err = m.call("sum", a*100+b-1, 100)
	require.True(t, m.outOfFuel(err), "%v", err)
}

// TestFuel_runaways runs guests that would never end, or end too late, with
// a budget: each must run out of fuel, and the fuel it used (read back after
// the trap) must be the same on every run.
func TestFuel_runaways(t *testing.T) {
	tests := []struct {
		name   string
		fn     string
		args   []uint64
		budget int64
	}{
		{"infinite loop", "spin", nil, 1e6},
		{"deep recursion", "recurse", []uint64{1e9}, 1e6},
		{"memory.fill bomb", "fill_bomb", nil, 1e7},
		{"memory.copy bomb", "copy_bomb", nil, 1e7},
		{"memory.grow", "grow", []uint64{1 << 31}, 1e6},
	}
	out, _ := mustInstrument(t, readTestdata(t, "compute"), Config{})
	runs := 100
	if testing.Short() {
		runs = 10
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRuntime(t)
			compiled := compile(t, r, out)
			var first int64
			for i := 0; i < runs; i++ {
				m := metered{mod: instantiate(t, r, compiled)}
				m.fuel = fuelGlobal(t, m.mod)
				_, used, err := m.call(tc.fn, tc.budget, tc.args...)
				require.True(t, m.outOfFuel(err), "run %d: err %v, fuel %d", i, err, int64(m.fuel.Get()))
				require.Greater(t, used, tc.budget)
				if i == 0 {
					first = used
					t.Logf("%s: budget %d, used %d at the trap", tc.fn, tc.budget, used)
				}
				require.Equal(t, first, used, "run %d", i)
				require.NoError(t, m.mod.Close(context.Background()))
			}
		})
	}
}

// TestFuel_stackLimit checks that recursion deep enough to overflow the
// stack, with fuel to spare, is an ordinary trap: the fuel is not negative.
func TestFuel_stackLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("overflows the guest stack")
	}
	out, _ := mustInstrument(t, readTestdata(t, "compute"), Config{})
	r := newRuntime(t)
	m := metered{mod: instantiate(t, r, compile(t, r, out))}
	m.fuel = fuelGlobal(t, m.mod)
	_, used, err := m.call("recurse", MaxFuel, 1<<30)
	require.Error(t, err)
	require.False(t, m.outOfFuel(err))
	require.Positive(t, used)
}

// TestInstrument_startFuel checks that the fuel global is placed after the
// imported and defined globals, that a module without an export section
// gets one, and that a start function runs on Config.StartFuel.
func TestInstrument_startFuel(t *testing.T) {
	in := readTestdata(t, "globals")
	tests := []struct {
		name     string
		start    int64
		wantFuel int64 // left after instantiation; -1: instantiation fails
	}{
		// $f costs 4 (consts) + 10 (memory.init) + 12 (per byte) + 2 (load)
		// + 1 (global.get) + 1 (add) + 1 (extend) + 1 (global.set) = 32.
		{"default", 0, DefaultStartFuel - 32},
		{"exact", 32, 0},
		{"short", 31, -1},
		{"none", -1, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, info := mustInstrument(t, in, Config{StartFuel: tc.start})
			require.Equal(t, uint32(3), info.FuelGlobal) // 2 imported + 1 defined
			r := newRuntime(t)
			mod, err := r.InstantiateWithConfig(context.Background(), out, wazero.NewModuleConfig().WithName(""))
			if tc.wantFuel < 0 {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.wantFuel, int64(fuelGlobal(t, mod).Get()))
			// The start function stored 'h' + 5 in the imported env.h.
			require.Equal(t, uint64('h'+5), r.Module("env").ExportedGlobal("h").Get())
		})
	}
}

// TestInstrument_info checks Info and the added global and export.
func TestInstrument_info(t *testing.T) {
	tests := []struct {
		name      string
		wasm      []byte
		functions int
		global    uint32
	}{
		{"empty", readTestdata(t, "empty"), 0, 0},
		{"compute", readTestdata(t, "compute"), 14, 1},
		{"globals", readTestdata(t, "globals"), 1, 3},
		// kh_abi_version, kh_alloc, kh_check and the header's out-of-line
		// caller_rights parser.
		{"freeware-c", readFile(t, freewareC), 4, 1},
		// The Go contract is rebuilt as the SDK changes: -1 means only
		// "some", and the export below is what matters.
		{"freeware-go", readFile(t, freewareGo), -1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{}
			if tc.name == "freeware-go" {
				// As the host instruments it (and TestContracts_sameDecisions
				// compiles it): one compilation of the 5.6 MB output.
				cfg = shippedConfig(freewareGo)
			}
			out, info := mustInstrument(t, tc.wasm, cfg)
			require.Equal(t, CostTableVersion, info.CostTableVersion)
			if tc.functions >= 0 {
				require.Equal(t, tc.functions, info.Functions)
				require.Equal(t, tc.global, info.FuelGlobal)
			}
			if tc.functions != 0 {
				require.Positive(t, info.Charges)
			}
			r := newRuntime(t)
			mod := instantiate(t, r, compile(t, r, out))
			fuelGlobal(t, mod).Set(42)
			require.Equal(t, uint64(42), mod.ExportedGlobal(ExportName).Get())
		})
	}
}

// TestInstrument_deterministic checks that the same input and config give
// the same bytes.
func TestInstrument_deterministic(t *testing.T) {
	for _, p := range append([]string{"testdata/compute.wasm", "testdata/tables.wasm"}, contractPaths...) {
		in := readFile(t, p)
		a, _, err := Instrument(in, Config{})
		require.NoError(t, err)
		b, _, err := Instrument(bytes.Clone(in), Config{})
		require.NoError(t, err)
		require.Equal(t, a, b, p)
	}
}

// TestInstrument_keepsOtherSections checks that sections the pass does not
// rewrite are copied byte for byte (the Go module's name and producers
// custom sections and data included).
func TestInstrument_keepsOtherSections(t *testing.T) {
	in := readFile(t, freewareGo)
	out, _, err := Instrument(in, Config{})
	require.NoError(t, err)
	sectionsOf := func(b []byte) map[string][]byte {
		got := map[string][]byte{}
		r := reader{b: b, off: len(header)}
		for !r.eof() {
			start := r.off
			id, _ := r.byte()
			size, ok := r.u32()
			require.True(t, ok)
			body := r.off
			require.True(t, r.skip(int(size)))
			name := sectionName[id]
			if id == secCustom {
				cr := reader{b: b[body:r.off]}
				n, _ := cr.count(1)
				name = "custom " + string(cr.b[cr.off:cr.off+n])
			}
			got[name] = b[start:r.off]
		}
		return got
	}
	before, after := sectionsOf(in), sectionsOf(out)
	for name, b := range before {
		switch name {
		case "type", "function", "global", "export", "code":
			require.NotEqual(t, b, after[name], name)
		default:
			require.Equal(t, b, after[name], name)
		}
	}
	require.Len(t, after, len(before))
}

// TestInstrument_rejects checks the typed errors for modules the pass does
// not cover and for malformed input.
func TestInstrument_rejects(t *testing.T) {
	const hdr = "\x00asm\x01\x00\x00\x00"
	// fn wraps a function body (locals and code, without size) of type
	// () -> () into a module.
	fn := func(body string) []byte {
		code := string(appendU32(nil, uint32(len(body)))) + body
		return []byte(hdr + "\x01\x04\x01\x60\x00\x00" + "\x03\x02\x01\x00" +
			"\x0a" + string(appendU32(nil, uint32(len(code)+1))) + "\x01" + code)
	}
	tests := []struct {
		name string
		wasm []byte
		err  error
		msg  string
	}{
		{"SIMD", readTestdata(t, "simd"), ErrUnsupported, "SIMD"},
		{"atomics", readTestdata(t, "atomics"), ErrUnsupported, "shared memory (threads)"},
		{"atomic instruction", fn("\x00\x41\x00\xfe\x10\x02\x00\x1a\x0b"), ErrUnsupported, "threads/atomics instruction (0xfe prefix) in function 0"},
		{"name taken", readTestdata(t, "taken"), ErrUnsupported, `already exports "kh_fuel"`},
		{"mark name taken", []byte(hdr + "\x06\x06\x01\x7f\x00\x41\x00\x0b" + "\x07\x10\x01\x0ckh_fuel_mark\x03\x00"), ErrUnsupported, `already exports "kh_fuel_mark"`},
		{"unknown opcode", fn("\x00\x06\x0b"), ErrUnsupported, "unknown opcode 0x6 in function 0"},
		{"tail call", fn("\x00\x12\x00\x0b"), ErrUnsupported, "unknown opcode 0x12"},
		{"unknown 0xfc", fn("\x00\xfc\x13\x0b"), ErrUnsupported, "unknown opcode 0xfc 19"},
		{"component", []byte("\x00asm\x0d\x00\x01\x00"), ErrUnsupported, "binary format version"},
		{"too large", make([]byte, DefaultMaxModuleSize+1), ErrUnsupported, "larger than"},
		{"nil", nil, ErrMalformed, "bad magic"},
		{"garbage", []byte("hello, world"), ErrMalformed, "bad magic"},
		{"truncated section", []byte(hdr + "\x01\x05\x01"), ErrMalformed, "runs past the end"},
		{"sections out of order", []byte(hdr + "\x03\x01\x00\x01\x01\x00"), ErrMalformed, "out of order"},
		{"repeated section", []byte(hdr + "\x01\x01\x00\x01\x01\x00"), ErrMalformed, "out of order"},
		{"bodies without declarations", []byte(hdr + "\x0a\x02\x01\x00"), ErrMalformed, "1 function bodies"},
		// A code section of 0 bodies and a stray byte: wazero rejects it,
		// and the pass must not mend it into a valid module.
		{"stray byte after zero bodies", []byte(hdr + "\x0a\x02\x00\x00"), ErrMalformed, "trailing bytes in code section"},
		{"no end", fn("\x00\x01"), ErrMalformed, "ends without end"},
		{"unbalanced end", fn("\x00\x0b\x0b"), ErrMalformed, "after the end"},
		{"else without if", fn("\x00\x02\x40\x05\x0b\x0b"), ErrMalformed, "else without if"},
		{"branch too deep", fn("\x00\x0c\x01\x0b"), ErrMalformed, "bad branch label"},
		{"local out of range", fn("\x00\x20\x00\x1a\x0b"), ErrMalformed, "bad local index"},
		// The fuel global would make global.set 0 valid: it must stay invalid.
		{"fuel global named", fn("\x00\x42\x00\x24\x00\x0b"), ErrMalformed, "bad global index"},
		// So would the added tick function (index 1 here) and its type
		// (index 1): call, ref.func and call_indirect must stay invalid.
		{"tick called", fn("\x00\x10\x01\x0b"), ErrMalformed, "function index 1 out of range"},
		{"tick referenced", fn("\x00\xd2\x01\x1a\x0b"), ErrMalformed, "function index 1 out of range"},
		{"tick type named", fn("\x00\x41\x00\x11\x01\x00\x0b"), ErrMalformed, "type index 1 of call_indirect out of range"},
		{"tick exported", []byte(hdr + "\x01\x04\x01\x60\x00\x00" + "\x03\x02\x01\x00" + "\x07\x05\x01\x01f\x00\x01" +
			"\x0a\x04\x01\x02\x00\x0b"), ErrMalformed, "function index 1 of export 0 out of range"},
		{"tick as start", []byte(hdr + "\x01\x04\x01\x60\x00\x00" + "\x03\x02\x01\x00" + "\x08\x01\x01" +
			"\x0a\x04\x01\x02\x00\x0b"), ErrMalformed, "bad start function"},
		{"bad LEB", fn("\x00\x41\xff\xff\xff\xff\x4f\x1a\x0b"), ErrMalformed, "bad i32.const"},
		{"locals bomb", fn("\x01\xff\xff\xff\xff\x0f\x7f\x0b"), ErrUnsupported, "more than 50000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := Instrument(tc.wasm, Config{})
			require.Nil(t, out)
			require.ErrorIs(t, err, tc.err)
			var e *Error
			require.True(t, errors.As(err, &e))
			require.Contains(t, err.Error(), tc.msg)
		})
	}
}

// TestTestdataReproducible rebuilds every testdata/*.wat with wat2wasm, as
// testdata/Makefile does, and compares the result with the committed .wasm.
func TestTestdataReproducible(t *testing.T) {
	testenv.CheckWATs(t, "testdata", map[string][]string{"atomics": {"--enable-threads"}}, "run make -C testdata") // flags as in testdata/Makefile
}
