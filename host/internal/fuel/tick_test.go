package fuel

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero/api"
)

// TestTick_letsTheWorldStop: a guest spinning on an endless budget ticks
// every TickSlice fuel, so garbage collections (which stop the world, and
// could never stop a goroutine inside compiled wasm otherwise) complete
// while it runs. Without the tick this test hangs until its timeout.
func TestTick_letsTheWorldStop(t *testing.T) {
	m, mark := tickedCompute(t)
	mod := m.mod
	m.fuel.Set(MaxFuel)
	mark.Set(Mark(MaxFuel))

	var running atomic.Bool
	done := make(chan error, 1)
	go func() {
		running.Store(true)
		_, err := mod.ExportedFunction("spin").Call(context.Background())
		done <- err
	}()
	for !running.Load() {
		runtime.Gosched()
	}
	time.Sleep(20 * time.Millisecond) // let the call get into the loop
	for range 3 {
		runtime.GC()
	}
	select {
	case err := <-done:
		t.Fatalf("the guest ended before it was stopped: %v", err)
	default:
	}

	// Stop it as the host's watchdog does: zero the fuel (again, should
	// the guest's own write of a charge in flight undo it).
	var err error
	for stopped := false; !stopped; {
		m.fuel.Set(0)
		select {
		case err = <-done:
			stopped = true
		case <-time.After(10 * time.Millisecond):
		}
	}
	require.True(t, m.outOfFuel(err), "err %v, fuel %d", err, int64(m.fuel.Get()))
}

// TestTick_mark: the mark the host sets with a budget, and what a tick
// leaves it at, are never negative and always TickSlice below the fuel while
// there is more than that.
func TestTick_mark(t *testing.T) {
	for _, tc := range []struct{ fuel, mark uint64 }{
		{0, 0}, {1, 0}, {TickSlice, 0}, {TickSlice + 1, 1}, {MaxFuel, MaxFuel - TickSlice},
	} {
		require.Equal(t, tc.mark, Mark(tc.fuel), "Mark(%d)", tc.fuel)
	}

	m, mark := tickedCompute(t)
	// A budget of 3 slices and a stale mark above it: the first charge ticks.
	mark.Set(MaxFuel)
	res, used, err := m.call("sum", 3*TickSlice, 100)
	require.NoError(t, err)
	require.Equal(t, uint64(4950), res[0])
	// The first charge ticked: the mark is a slice below the fuel then.
	require.GreaterOrEqual(t, mark.Get(), Mark(uint64(3*TickSlice-used)))
	require.Less(t, mark.Get(), Mark(3*TickSlice))
}

// tickedCompute returns an instance of the instrumented testdata/compute.wasm
// and its mark global.
func tickedCompute(t *testing.T) (metered, api.MutableGlobal) {
	t.Helper()
	out, _ := mustInstrument(t, readTestdata(t, "compute"), Config{})
	r := newRuntime(t)
	mod := instantiate(t, r, compile(t, r, out))
	mark, ok := mod.ExportedGlobal(MarkExportName).(api.MutableGlobal)
	require.True(t, ok)
	return metered{mod: mod, fuel: fuelGlobal(t, mod)}, mark
}
