package contracts_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/kernelhost/kernelhost/abi"
)

// guest is a minimal stand-in for the host package (written concurrently): it
// instantiates a contract with wazero and runs checks per SPEC section 1. It
// is not safe for concurrent use, like a wazero module instance.
type guest struct {
	mod            api.Module
	alloc, check   api.Function
	regionPtr      uint32 // region kh_alloc last returned; reused while requests fit
	regionCap      uint32
	allocCallCount int
}

// newGuest compiles and instantiates wasm in a fresh runtime closed at the
// end of the test, and checks the exports and ABI version.
func newGuest(t *testing.T, wasm []byte) *guest {
	t.Helper()
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	t.Cleanup(func() { require.NoError(t, r.Close(ctx)) })
	mod, err := r.Instantiate(ctx, wasm)
	require.NoError(t, err)
	g := &guest{
		mod:   mod,
		alloc: mod.ExportedFunction("kh_alloc"),
		check: mod.ExportedFunction("kh_check"),
	}
	require.NotNil(t, g.alloc, "kh_alloc export")
	require.NotNil(t, g.check, "kh_check export")
	require.NotNil(t, mod.Memory(), "memory export")
	ver := mod.ExportedFunction("kh_abi_version")
	require.NotNil(t, ver, "kh_abi_version export")
	res, err := ver.Call(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(abi.Version), res[0])
	return g
}

// khAlloc calls kh_alloc(size) and returns the address.
func (g *guest) khAlloc(size uint32) (uint32, error) {
	g.allocCallCount++
	res, err := g.alloc.Call(context.Background(), api.EncodeU32(size))
	if err != nil {
		return 0, fmt.Errorf("kh_alloc(%d): %w", size, err)
	}
	return api.DecodeU32(res[0]), nil
}

// run writes req into the guest, calls kh_check and returns the raw decision
// bytes (a copy). Errors are what a host would map to CONTRACT_FAILED.
func (g *guest) run(req []byte) ([]byte, error) {
	n := uint32(len(req))
	if n > g.regionCap || g.regionPtr == 0 {
		p, err := g.khAlloc(n)
		if err != nil {
			return nil, err
		}
		if p == 0 {
			return nil, fmt.Errorf("kh_alloc(%d) returned 0", n)
		}
		g.regionPtr, g.regionCap = p, n
	}
	mem := g.mod.Memory()
	if !mem.Write(g.regionPtr, req) {
		return nil, fmt.Errorf("kh_alloc region %#x+%d outside memory of %d bytes", g.regionPtr, n, mem.Size())
	}
	res, err := g.check.Call(context.Background(), api.EncodeU32(g.regionPtr), api.EncodeU32(n))
	if err != nil {
		return nil, fmt.Errorf("kh_check: %w", err)
	}
	ptr, size := uint32(res[0]>>32), uint32(res[0])
	if size > abi.MaxDecisionSize {
		return nil, fmt.Errorf("decision of %d bytes > %d", size, abi.MaxDecisionSize)
	}
	out, ok := mem.Read(ptr, size)
	if !ok {
		return nil, fmt.Errorf("decision %#x+%d outside memory", ptr, size)
	}
	return append([]byte(nil), out...), nil
}

// decide runs req and decodes the decision, failing the test on any error.
func (g *guest) decide(t *testing.T, req []byte) abi.Decision {
	t.Helper()
	out, err := g.run(req)
	require.NoError(t, err)
	d, err := abi.DecodeDecision(out)
	require.NoError(t, err)
	return d
}

// encode encodes r, failing the test on error.
func encode(t testing.TB, r *abi.Request) []byte {
	t.Helper()
	b, err := abi.AppendRequest(nil, r)
	require.NoError(t, err)
	return b
}
