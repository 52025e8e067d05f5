package host_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/host"
)

// TestHostCallsCharged: every host call costs fuel by the bytes it touches,
// in checks and invocations as at initialisation (COSTS.md, "Host calls").
// Each case runs the same guest code twice with a different byte count:
// the fuel differs by exactly the bytes' cost.
func TestHostCallsCharged(t *testing.T) {
	ctx := context.Background()
	h := newHost(t, host.Config{})

	t.Run("random_get in a check", func(t *testing.T) {
		hash := prepare(t, h, "init_moderate") // kh_check: random_get(64, depth)
		fuel := func(n uint32) uint64 {
			_, use, err := h.Evaluate(ctx, hash, behave(n), abi.Limits{})
			require.NoError(t, err)
			return use.Fuel
		}
		require.Equal(t, uint64(60_000*host.CostHostByte), fuel(60_000)-fuel(0))
		_, use, err := h.Evaluate(ctx, hash, behave(60_000), abi.Limits{Fuel: fuel(60_000) - 1})
		require.ErrorIs(t, err, host.ErrOutOfFuel, "a call that cannot pay for its bytes runs out")
		require.Equal(t, fuel(60_000)-1, use.Fuel, "the whole budget, no more")
	})

	hash := prepare(t, h, "exec")
	invoke := func(method, args string, f *fakeCalls) uint64 {
		res, use, err := h.Invoke(ctx, hash, invokeReq(method, args), abi.Limits{}, f)
		require.NoError(t, err)
		require.True(t, res.OK, "%s", res.Output)
		return use.Fuel
	}
	t.Run("kernel.log", func(t *testing.T) {
		short, long := strings.Repeat("x", 10), strings.Repeat("x", 10_010)
		require.Equal(t, uint64(10_000*host.CostHostByte), invoke("log", long, &fakeCalls{})-invoke("log", short, &fakeCalls{}))
	})
	t.Run("kernel.call", func(t *testing.T) {
		// The request's bytes, then the response's: the echo grows with it.
		echo := &fakeCalls{reply: func(req []byte) []byte { return []byte(`{"ok":true,"echo":"` + string(req) + `"}`) }}
		short, long := strings.Repeat("x", 10), strings.Repeat("x", 10_010)
		require.Equal(t, uint64(2*10_000*host.CostHostByte), invoke("call", long, echo)-invoke("call", short, echo))
	})
}
