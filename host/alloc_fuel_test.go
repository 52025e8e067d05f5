package host_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/host"
)

// allocBurn is the fuel alloc_loop.wat's kh_alloc spends beyond
// alloc_once.wat's: 3,999,999 more turns of a 5-fuel loop.
const allocBurn = (4_000_000 - 1) * 5

// TestAllocFuelCharged: the fuel a guest spends in kh_alloc is charged to the
// call that needs the request region, out of the call's one budget. Before,
// the entry point got a fresh budget after kh_alloc and Usage.Fuel left
// kh_alloc out: a kh_alloc that looped 4M times cost the same as one that
// did not, and with a trapping kh_check (every call then needs a fresh
// instance, so runs kh_alloc again) each action burnt ~20M fuel for the
// price of a few instructions. A call that reuses a warm instance's region
// pays what kh_alloc used to make it, so fuel used still does not depend on
// pool warmth.
//
// Reference: abi/SPEC.md section 6.1.
func TestAllocFuelCharged(t *testing.T) {
	ctx := context.Background()
	allow, trap := behave(0), behave(1)

	t.Run("the call that runs kh_alloc pays for it", func(t *testing.T) {
		h := newHost(t, host.Config{})
		loop, once := prepare(t, h, "alloc_loop"), prepare(t, h, "alloc_once")
		_, useLoop, err := h.Evaluate(ctx, loop, allow, abi.Limits{})
		require.NoError(t, err)
		_, useOnce, err := h.Evaluate(ctx, once, allow, abi.Limits{})
		require.NoError(t, err)
		require.Equal(t, uint64(allocBurn), useLoop.Fuel-useOnce.Fuel, "kh_alloc's loop is in Usage.Fuel")

		// Warm calls reuse the region and pay the same.
		for i := 0; i < 3; i++ {
			_, use, err := h.Evaluate(ctx, loop, allow, abi.Limits{})
			require.NoError(t, err)
			require.Equal(t, useLoop.Fuel, use.Fuel, "warm call %d", i)
		}
		require.Equal(t, uint64(1), h.Stats().Modules[loop].Instantiated, "one instance served every call")
	})

	t.Run("trapping checks pay for kh_alloc every time", func(t *testing.T) {
		h := newHost(t, host.Config{})
		loop := prepare(t, h, "alloc_loop")
		var total uint64
		for i := 0; i < 3; i++ {
			_, use, err := h.Evaluate(ctx, loop, trap, abi.Limits{})
			require.ErrorIs(t, err, host.ErrTrap)
			require.Greater(t, use.Fuel, uint64(allocBurn), "action %d", i)
			total += use.Fuel
		}
		require.Equal(t, uint64(3), h.Stats().Modules[loop].Discarded, "each trap discards its instance")
		require.Greater(t, total, uint64(3*allocBurn))
	})

	t.Run("kh_alloc and the entry point share one budget", func(t *testing.T) {
		h := newHost(t, host.Config{})
		loop := prepare(t, h, "alloc_loop")
		_, full, err := h.Evaluate(ctx, loop, allow, abi.Limits{})
		require.NoError(t, err)
		tests := []struct {
			name   string
			budget uint64
		}{
			{"enough for kh_alloc, not for the check", full.Fuel - 1},
			{"not enough for kh_alloc", allocBurn},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				// The same on a warm instance and on a fresh one.
				for _, h := range []*host.Host{h, newHost(t, host.Config{})} {
					loop := prepare(t, h, "alloc_loop")
					_, use, err := h.Evaluate(ctx, loop, allow, abi.Limits{Fuel: tc.budget})
					require.ErrorIs(t, err, host.ErrOutOfFuel)
					require.Equal(t, abi.OutOfFuel, codeOf(err))
					require.Equal(t, tc.budget, use.Fuel, "the whole budget is used, to be charged")
				}
			})
		}
		_, use, err := h.Evaluate(ctx, loop, allow, abi.Limits{Fuel: full.Fuel})
		require.NoError(t, err, "exactly enough fuel is enough")
		require.Equal(t, full.Fuel, use.Fuel)
	})
}
