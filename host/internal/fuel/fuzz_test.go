package fuel

import (
	"context"
	"errors"
	"math/rand"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"
)

// withoutCustom returns wasm without its custom sections, or wasm itself
// when its framing is broken. Instrument copies custom sections unchanged,
// and wazero decodes the name section with counts that the host's pre-scan,
// not this package, guards against: the fuzz targets compare modules
// without them.
func withoutCustom(wasm []byte) []byte {
	if len(wasm) < len(header) {
		return wasm
	}
	out := append([]byte(nil), wasm[:len(header)]...)
	r := reader{b: wasm, off: len(header)}
	for !r.eof() {
		start := r.off
		id, _ := r.byte()
		size, ok := r.u32()
		if !ok || !r.skip(int(size)) {
			return wasm
		}
		if id != secCustom {
			out = append(out, wasm[start:r.off]...)
		}
	}
	return out
}

// compiles reports whether wazero compiles (validates) wasm.
func compiles(wasm []byte) error {
	ctx := context.Background()
	r := newBareRuntime(ctx)
	defer r.Close(ctx)
	_, err := r.CompileModule(ctx, wasm)
	return err
}

// FuzzInstrument feeds arbitrary bytes to Instrument: it must never panic,
// must fail with an *Error, and when it succeeds its output must compile
// exactly when its input does (the pass neither breaks a valid module nor
// mends an invalid one). Inputs of odd length are instrumented without
// metering (only the memory cap), the others with it; inputs whose length
// is 2 or 3 modulo 4 also with write tracking, by pages when the length is
// even (as the host ships both), by range when it is odd.
func FuzzInstrument(f *testing.F) {
	seeds, err := filepath.Glob("testdata/*.wasm")
	require.NoError(f, err)
	for _, p := range append(seeds, contractPaths...) {
		if p == freewareGo && (testing.Short() || raceEnabled) {
			continue // compiled twice more here; TestContracts_sameDecisions covers it
		}
		f.Add(readFile(f, p))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		track := len(in)%4 >= 2
		out, info, err := Instrument(in, Config{NoMetering: len(in)%2 == 1, TrackWrites: track, TrackPages: track && len(in)%2 == 0})
		if err != nil {
			require.Nil(t, out)
			var e *Error
			require.True(t, errors.As(err, &e), "%T %v", err, err)
			require.True(t, errors.Is(err, ErrMalformed) || errors.Is(err, ErrUnsupported), "%v", err)
			return
		}
		require.Equal(t, CostTableVersion, info.CostTableVersion)
		inErr, outErr := compiles(withoutCustom(in)), compiles(withoutCustom(out))
		if inErr == nil {
			require.NoError(t, outErr, "the input compiles, the instrumented module must too")
		} else {
			require.Error(t, outErr, "the input does not compile (%v), the instrumented module must not either", inErr)
		}
	})
}

// gen builds random valid modules: one exported function f () -> i32 made
// of straight-line code, blocks, ifs, br, br_if, br_table, counted loops,
// calls and bulk memory operations, and a helper (i32) -> i32.
type gen struct {
	rnd    *rand.Rand
	code   []byte
	locals int // i32 locals declared by f; loop counters use them in turn
	used   int
	loops  bool
	depth  int // labels open around the code being generated
}

const genLocals = 8

func (g *gen) op(b ...byte) { g.code = append(g.code, b...) }

func (g *gen) i32(v int32) { g.op(opI32Const); g.code = appendS64(g.code, int64(v)) }

// expr appends code that pushes exactly one i32.
func (g *gen) expr(budget int) {
	if budget <= 0 {
		g.i32(int32(g.rnd.Uint32()))
		return
	}
	switch g.rnd.Intn(12) {
	case 0:
		g.i32(int32(g.rnd.Uint32()))
	case 1: // binary operator
		g.expr(budget - 1)
		g.expr(budget - 1)
		g.op([]byte{0x6a, 0x6b, 0x6c, 0x71, 0x72, 0x73, 0x74, 0x77}[g.rnd.Intn(8)])
	case 2: // division by a non-zero value
		g.expr(budget - 1)
		g.expr(budget - 1)
		g.i32(1)
		g.op(0x72, 0x6e) // i32.or, i32.div_u
	case 3: // block
		g.op(opBlock, valTypeI32)
		g.depth++
		g.expr(budget - 1)
		g.depth--
		g.op(opEnd)
	case 4: // if/else, or if without else around a statement
		g.expr(budget - 1)
		if g.rnd.Intn(2) == 0 {
			g.op(opIf, valTypeI32)
			g.depth++
			g.expr(budget - 1)
			g.op(opElse)
			g.expr(budget - 1)
			g.depth--
			g.op(opEnd)
		} else {
			g.op(opIf, blockTypeEmpty)
			g.expr(budget - 1)
			g.op(0x1a, opEnd) // drop
			g.expr(budget - 1)
		}
	case 5: // br_if out of a block, with a value
		g.op(opBlock, valTypeI32)
		g.depth++
		g.expr(budget - 1)
		g.expr(budget - 1)
		g.op(opBrIf, 0)
		g.expr(budget - 1)
		g.op(0x6a) // i32.add
		g.depth--
		g.op(opEnd)
	case 6: // br with a value, then dead code
		g.op(opBlock, valTypeI32)
		g.expr(budget - 1)
		g.op(opBr, 0)
		g.i32(5)
		g.op(0x1a, opEnd) // drop, end
	case 7: // br_table among three exits
		g.op(opBlock, valTypeI32, opBlock, blockTypeEmpty, opBlock, blockTypeEmpty)
		g.depth += 3
		g.expr(budget - 1)
		g.op(opBrTable, 2, 0, 1, byte(g.rnd.Intn(2)))
		g.op(opEnd) // inner block: label 0 lands here
		g.depth--
		g.expr(budget - 1)
		g.op(opBr, 1)
		g.op(opEnd) // label 1 lands here
		g.depth--
		g.expr(budget - 1)
		g.depth--
		g.op(opEnd)
	case 8: // counted loop of 1 to 4 iterations, with a fresh counter
		if !g.loops || g.used == g.locals {
			g.i32(7)
			return
		}
		l := byte(g.used)
		g.used++
		g.i32(int32(1 + g.rnd.Intn(4)))
		g.op(opLocalSet, l)
		g.op(opLoop, valTypeI32)
		g.depth++
		g.expr(budget - 1)
		g.op(opLocalGet, l)
		g.i32(1)
		g.op(0x6b, opLocalTee, l) // i32.sub
		g.op(opBrIf, 0)
		g.depth--
		g.op(opEnd)
	case 9: // memory.fill then a load
		g.i32(int32(g.rnd.Intn(1000)))
		g.expr(budget - 1)
		g.i32(int32(g.rnd.Intn(64)))
		g.op(opPrefixMisc, miscMemoryFill, 0)
		g.i32(int32(g.rnd.Intn(1100)))
		g.op(0x2d, 0, 0) // i32.load8_u
	case 10: // memory.copy then a load
		g.i32(int32(g.rnd.Intn(1000)))
		g.i32(int32(g.rnd.Intn(1000)))
		g.i32(int32(g.rnd.Intn(64)))
		g.op(opPrefixMisc, miscMemoryCopy, 0, 0)
		g.i32(int32(g.rnd.Intn(1000)))
		g.op(0x28, 2, 0) // i32.load
	case 11: // a call
		g.expr(budget - 1)
		g.op(opCall, 1)
	}
}

// module returns a module whose f is a random expression.
func (g *gen) module() []byte {
	g.code, g.used, g.locals = g.code[:0], 0, genLocals
	g.expr(1 + g.rnd.Intn(6))
	body := append([]byte{1, genLocals, valTypeI32}, g.code...)
	body = append(body, opEnd)
	helper := []byte{0, opLocalGet, 0, opI32Const, 3, 0x6c, opI32Const, 1, 0x6a, opEnd}
	var code []byte
	code = appendU32(code, 2)
	code = appendU32(code, uint32(len(body)))
	code = append(code, body...)
	code = appendU32(code, uint32(len(helper)))
	code = append(code, helper...)
	m := append([]byte(nil), header...)
	m = appendFramed(m, secType, []byte{2, 0x60, 0, 1, valTypeI32, 0x60, 1, valTypeI32, 1, valTypeI32})
	m = appendFramed(m, secFunction, []byte{2, 0, 1})
	m = appendFramed(m, secMemory, []byte{1, 0, 1})
	m = appendFramed(m, secExport, []byte{1, 1, 'f', 0, 0})
	return appendFramed(m, secCode, code)
}

// checkGenerated instruments a generated module, checks that it compiles
// and that f gives the same result (or trap) as the original.
func checkGenerated(t *testing.T, seed int64, loops bool) {
	g := &gen{rnd: rand.New(rand.NewSource(seed)), loops: loops}
	in := g.module()
	require.NoError(t, compiles(in), "generator bug, seed %d", seed)
	out, _, err := Instrument(in, Config{})
	require.NoError(t, err, "seed %d", seed)
	require.NoError(t, compiles(out), "seed %d", seed)
	ctx := context.Background()
	r := newBareRuntime(ctx)
	defer r.Close(ctx)
	orig, err := r.InstantiateWithConfig(ctx, in, wazero.NewModuleConfig().WithName("orig"))
	require.NoError(t, err)
	mod, err := r.InstantiateWithConfig(ctx, out, wazero.NewModuleConfig().WithName("inst"))
	require.NoError(t, err)
	inst := metered{mod: mod}
	inst.fuel = fuelGlobal(t, inst.mod)
	want, wantErr := orig.ExportedFunction("f").Call(ctx)
	got, used, gotErr := inst.call("f", 1e9)
	require.Equal(t, wantErr == nil, gotErr == nil, "seed %d: %v / %v", seed, wantErr, gotErr)
	require.Equal(t, want, got, "seed %d", seed)
	require.Positive(t, used, "seed %d", seed)
}

// TestGenerated runs checkGenerated over many seeds, loop-free and with
// loops.
func TestGenerated(t *testing.T) {
	n := int64(300)
	if testing.Short() {
		n = 50
	}
	for seed := int64(0); seed < n; seed++ {
		checkGenerated(t, seed, seed%2 == 1)
	}
}

// FuzzGenerated is checkGenerated with fuzzed seeds.
func FuzzGenerated(f *testing.F) {
	f.Add(int64(1), false)
	f.Add(int64(2), true)
	f.Fuzz(func(t *testing.T, seed int64, loops bool) { checkGenerated(t, seed, loops) })
}
