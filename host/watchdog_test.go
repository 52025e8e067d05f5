package host_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/host"
)

// TestWatchdog_stopsRunawayCheck: a guest with (practically) unlimited fuel
// that loops forever is stopped by the watchdog once it runs Watchdog past
// its deadline, without any per-call timer; its instance is discarded and
// the module keeps serving. Garbage collections run meanwhile: each stops
// the world, which waits for the guest's next tick (fuel.TickSlice), not
// for the guest to end.
func TestWatchdog_stopsRunawayCheck(t *testing.T) {
	stop := make(chan struct{})
	gcs := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				gcs <- n
				return
			default:
				runtime.GC()
				n++
			}
		}
	}()
	h := newHost(t, host.Config{CheckFuel: 1 << 62, Timeout: 5 * time.Millisecond, Watchdog: 20 * time.Millisecond})
	hash := prepare(t, h, "behave")

	_, use, err := h.Evaluate(context.Background(), hash, behave(2), abi.Limits{})
	close(stop)
	require.Positive(t, <-gcs, "collections completed while the guest ran")
	require.ErrorIs(t, err, host.ErrTimeout)
	require.ErrorContains(t, err, "stopped by the watchdog")
	var he *host.Error
	require.ErrorAs(t, err, &he)
	require.Equal(t, abi.ContractTimeout, he.Code())
	require.Positive(t, use.Fuel, "the fuel it burnt is reported")

	st := h.Stats()
	require.Equal(t, uint64(1), st.WatchdogStops)
	require.Equal(t, uint64(1), st.Modules[hash].Discarded, "a stopped instance is never reused")

	d, _, err := h.Evaluate(context.Background(), hash, behave(0), abi.Limits{})
	require.NoError(t, err)
	require.True(t, d.Allowed)
	require.Equal(t, uint64(1), h.Stats().WatchdogStops)
}

// TestWatchdog_stopsInvokeStuckInHostCall: fuel cannot see time spent in a
// host call. An executable whose kernel call takes far past its deadline is
// stopped: it fails with ErrTimeout once the call returns, and its instance
// is discarded.
func TestWatchdog_stopsInvokeStuckInHostCall(t *testing.T) {
	h := newHost(t, host.Config{InvokeTimeout: 5 * time.Millisecond, Watchdog: 20 * time.Millisecond})
	hash := prepare(t, h, "exec")
	f := &fakeCalls{reply: func([]byte) []byte {
		// Stuck until the watchdog has acted, however long that takes.
		for h.Stats().WatchdogStops == 0 {
			time.Sleep(time.Millisecond)
		}
		return []byte(`{"ok":true}`)
	}}
	res, _, err := h.Invoke(context.Background(), hash, invokeReq("call", `{"query":"balance"}`), abi.Limits{}, f)
	require.ErrorIs(t, err, host.ErrTimeout)
	require.ErrorContains(t, err, "stopped by the watchdog")
	require.False(t, res.OK)
	require.Equal(t, uint64(1), h.Stats().WatchdogStops)
	require.Equal(t, uint64(1), h.Stats().Modules[hash].Discarded)

	// A prompt invocation of the same module is untouched.
	res, _, err = h.Invoke(context.Background(), hash, invokeReq("call", `{"query":"balance"}`), abi.Limits{}, &fakeCalls{})
	require.NoError(t, err)
	require.True(t, res.OK)
}

// TestWatchdog_off: a negative Watchdog starts no watchdog, and a host
// without one still runs and closes.
func TestWatchdog_off(t *testing.T) {
	h := newHost(t, host.Config{Watchdog: -1})
	hash := prepare(t, h, "behave")
	_, _, err := h.Evaluate(context.Background(), hash, behave(2), abi.Limits{Fuel: 10_000})
	require.ErrorIs(t, err, host.ErrOutOfFuel, "fuel still bounds the guest")
	require.Zero(t, h.Stats().WatchdogStops)
}
