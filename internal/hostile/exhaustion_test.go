package hostile_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/kernel"
)

// withMemory returns module m with its memory section replaced by one
// memory of min pages, and a custom section named tag appended so that
// every call gives distinct bytes (a distinct sha256, so nothing is shared).
func withMemory(t *testing.T, m []byte, pages uint32, tag string) []byte {
	t.Helper()
	out := append([]byte(nil), m[:8]...)
	for off := 8; off < len(m); {
		id := m[off]
		size, n := uleb(m[off+1:])
		body := m[off+1+n : off+1+n+int(size)]
		if id == 5 { // memory: count 1, flags 0 (no max), min
			body = append([]byte{1, 0}, appendULEB(nil, pages)...)
		}
		out = append(out, id)
		out = appendULEB(out, uint32(len(body)))
		out = append(out, body...)
		off += 1 + n + int(size)
	}
	custom := append(append(appendULEB(nil, uint32(len(tag))), tag...), 1) // wazero wants a payload
	out = append(out, 0)
	out = appendULEB(out, uint32(len(custom)))
	return append(out, custom...)
}

func uleb(b []byte) (uint32, int) {
	var v uint32
	for i := 0; i < 5; i++ {
		v |= uint32(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, i + 1
		}
	}
	panic("uleb too long")
}

func appendULEB(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

// TestRejectedModuleWritesDoNotGrow replays the exhaustion attack of issue
// 15 on the real host: 300 writes of distinct modules declaring 16 MiB of
// memory each, by an unknown caller, by a principal the contract denies,
// and by one without the disk for them. Before the fix every one was
// compiled first (the module count went from 5 to 305, the heap from 16 MB
// to 4.8 GB); now none is compiled, and the host's module count and heap
// stay flat.
func TestRejectedModuleWritesDoNotGrow(t *testing.T) {
	w := newWorld(t, true)
	defer w.close(t)
	require.NoError(t, w.k.CreatePrincipal(ctx, "poor", 0))
	require.NoError(t, w.k.SetQuota(ctx, "poor", kernel.Disk, 100))
	w.ok(t, kernel.Action{Kind: kernel.KindWrite, Caller: root, Target: "c/root", Type: kernel.TypeContract, Content: readModule(t, "trap")})

	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	modules0, heap0 := len(w.h.Stats().Modules), heap()
	trap := readModule(t, "trap")
	for i := 0; i < 300; i++ {
		mod := withMemory(t, trap, 256, fmt.Sprintf("attack-%d", i))
		for _, tc := range []struct {
			a    kernel.Action
			code abi.Code
		}{
			{kernel.Action{Kind: kernel.KindWrite, Caller: "nobody", Target: fmt.Sprintf("n/%d", i), Type: kernel.TypeContract, Content: mod}, abi.NotFound},
			{kernel.Action{Kind: kernel.KindWrite, Caller: mallory, Target: "c/root", Content: mod}, abi.PermissionDenied},
			{kernel.Action{Kind: kernel.KindWrite, Caller: "poor", Target: fmt.Sprintf("p/%d", i), Type: kernel.TypeContract, Content: mod}, abi.QuotaExceeded},
		} {
			res := w.k.Do(ctx, tc.a)
			require.Equal(t, tc.code, res.Code, "%s by %s: %s", tc.a.Kind, tc.a.Caller, res.Message)
		}
	}
	require.Equal(t, modules0, len(w.h.Stats().Modules), "no refused module was compiled")
	grown := int64(heap()) - int64(heap0)
	t.Logf("heap %d -> %d bytes (%+d) across 900 refused writes", heap0, heap0+uint64(grown), grown)
	require.Less(t, grown, int64(64<<20), "the heap stays flat (it grew 4.8 GB before the fix)")

	// The same module from a principal with the permission and the disk is
	// compiled once: the refusals above were not for lack of a valid module.
	require.NoError(t, w.k.CreatePrincipal(ctx, "rich", 0))
	require.NoError(t, w.k.SetQuota(ctx, "rich", kernel.Disk, 1<<20))
	res := w.k.Do(ctx, kernel.Action{Kind: kernel.KindWrite, Caller: "rich", Target: "r/1", Type: kernel.TypeContract, Content: withMemory(t, trap, 256, "attack-0")})
	require.True(t, res.OK, res.Message)
	require.Equal(t, modules0+1, len(w.h.Stats().Modules))
}

// TestDeployChargesInitialisation: deploying a module costs its writer the
// compile charge and the fuel its initialisation runs, even when it fails
// there, and the same on every deploy of the same bytes (compiled already or
// not). Before, a module whose _initialize burned its whole 10M-fuel budget
// cost its writer only the compile charge: ~10 ms of host CPU for 1 µs of
// cpu_rate, as often as it liked.
func TestDeployChargesInitialisation(t *testing.T) {
	w := newWorld(t, true)
	defer w.close(t)
	require.NoError(t, w.k.CreatePrincipal(ctx, "writer", 0))
	used := func() int64 {
		s, err := w.k.QuotaStatus(ctx, "writer", kernel.CPURate)
		require.NoError(t, err)
		return s.Used
	}
	mod := readModule(t, "loop_init")
	compile := (int64(len(mod))*250 + 1023) / 1024
	var charges []int64
	for i := 0; i < 3; i++ {
		u0 := used()
		res := w.k.Do(ctx, kernel.Action{Kind: kernel.KindWrite, Caller: "writer", Target: fmt.Sprintf("w/%d", i), Type: kernel.TypeContract, Content: mod})
		require.Equal(t, abi.ContractInvalid, res.Code, res.Message)
		charges = append(charges, used()-u0)
	}
	t.Logf("deploying loop_init (%d bytes) charged %v µs", len(mod), charges)
	require.Equal(t, charges[0], charges[1], "deterministic")
	require.Equal(t, charges[0], charges[2], "deterministic")
	require.GreaterOrEqual(t, charges[0], compile+10_000, "the compile charge plus the 10M-fuel init budget (10 ms)")

	// A module whose initialisation is cheap costs little more than its
	// compile charge.
	ok := readModule(t, "trap")
	u0 := used()
	res := w.k.Do(ctx, kernel.Action{Kind: kernel.KindWrite, Caller: "writer", Target: "w/ok", Type: kernel.TypeContract, Content: ok})
	require.True(t, res.OK, res.Message)
	got := used() - u0
	require.GreaterOrEqual(t, got, (int64(len(ok))*250+1023)/1024)
	require.Less(t, got, int64(100))
}
