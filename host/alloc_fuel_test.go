package host_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/host"
)

// allocBurn is the fuel alloc_big.wat's kh_alloc spends beyond
// alloc_once.wat's for a region over 16 KiB: 3,999,999 more turns of a
// 5-fuel loop.
const allocBurn = (4_000_000 - 1) * 5

// bigRequest is behave(mode) with 20 KB of invoke args: more than the 16 KiB
// region the host asks kh_alloc for at initialisation.
func bigRequest(mode uint32) *abi.Request {
	r := behave(mode)
	r.Args = make([]byte, 20_000)
	return r
}

// TestAllocFuelCharged: the fuel a guest spends in kh_alloc is charged.
// Before, a call that ran kh_alloc gave the entry point a fresh budget
// afterwards and left kh_alloc out of Usage.Fuel: a kh_alloc that looped 4M
// times cost the same as one that did not, and with a trapping kh_check
// (every call then needs a fresh instance, so runs kh_alloc again) each
// action burnt ~20M fuel for the price of a few instructions. Now the host
// asks kh_alloc for a 16 KiB region at initialisation, whose fuel the
// deployer and every call that ends its instance pay; a larger request runs
// kh_alloc in the call, out of the call's one budget, and a call that reuses
// such a region pays what kh_alloc used to make it, so fuel used does not
// depend on pool warmth.
//
// Reference: abi/SPEC.md sections 1 and 6.1.
func TestAllocFuelCharged(t *testing.T) {
	ctx := context.Background()

	t.Run("a call that needs a larger region pays for kh_alloc", func(t *testing.T) {
		h := newHost(t, host.Config{})
		big, once := prepare(t, h, "alloc_big"), prepare(t, h, "alloc_once")
		_, useBig, err := h.Evaluate(ctx, big, bigRequest(0), abi.Limits{})
		require.NoError(t, err)
		_, useOnce, err := h.Evaluate(ctx, once, bigRequest(0), abi.Limits{})
		require.NoError(t, err)
		require.Equal(t, uint64(allocBurn), useBig.Fuel-useOnce.Fuel, "kh_alloc's loop is in Usage.Fuel")

		// Warm calls reuse the region and pay the same.
		for i := 0; i < 3; i++ {
			_, use, err := h.Evaluate(ctx, big, bigRequest(0), abi.Limits{})
			require.NoError(t, err)
			require.Equal(t, useBig.Fuel, use.Fuel, "warm call %d", i)
		}
		require.Equal(t, uint64(1), h.Stats().Modules[big].Instantiated, "one instance served every call")

		// A request that fits the initial region pays no kh_alloc, on the
		// warm instance as on a fresh one.
		_, small, err := h.Evaluate(ctx, big, behave(0), abi.Limits{})
		require.NoError(t, err)
		_, smallOnce, err := h.Evaluate(ctx, once, behave(0), abi.Limits{})
		require.NoError(t, err)
		require.Equal(t, smallOnce.Fuel, small.Fuel)
		fresh := newHost(t, host.Config{})
		_, smallFresh, err := fresh.Evaluate(ctx, prepare(t, fresh, "alloc_big"), behave(0), abi.Limits{})
		require.NoError(t, err)
		require.Equal(t, small.Fuel, smallFresh.Fuel)
	})

	t.Run("trapping checks pay for kh_alloc every time", func(t *testing.T) {
		h := newHost(t, host.Config{})
		big := prepare(t, h, "alloc_big")
		var total uint64
		for i := 0; i < 3; i++ {
			_, use, err := h.Evaluate(ctx, big, bigRequest(1), abi.Limits{})
			require.ErrorIs(t, err, host.ErrTrap)
			require.Greater(t, use.Fuel, uint64(allocBurn), "action %d", i)
			total += use.Fuel
		}
		require.Equal(t, uint64(3), h.Stats().Modules[big].Discarded, "each trap discards its instance")
		require.Greater(t, total, uint64(3*allocBurn))
	})

	t.Run("kh_alloc and the entry point share one budget", func(t *testing.T) {
		h := newHost(t, host.Config{})
		big := prepare(t, h, "alloc_big")
		_, full, err := h.Evaluate(ctx, big, bigRequest(0), abi.Limits{})
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
					big := prepare(t, h, "alloc_big")
					_, use, err := h.Evaluate(ctx, big, bigRequest(0), abi.Limits{Fuel: tc.budget})
					require.ErrorIs(t, err, host.ErrOutOfFuel)
					require.Equal(t, abi.OutOfFuel, codeOf(err))
					require.Equal(t, tc.budget, use.Fuel, "the whole budget is used, to be charged")
				}
			})
		}
		_, use, err := h.Evaluate(ctx, big, bigRequest(0), abi.Limits{Fuel: full.Fuel})
		require.NoError(t, err, "exactly enough fuel is enough")
		require.Equal(t, full.Fuel, use.Fuel)
	})

	t.Run("kh_alloc at initialisation is paid by the deployer and by calls that end their instance", func(t *testing.T) {
		const burn = 1_000_000 * 5 // alloc_init.wat's loop
		h := newHost(t, host.Config{})
		hash, deployed, err := h.PrepareMetered(ctx, readWasm(t, "alloc_init"))
		require.NoError(t, err)
		require.Greater(t, deployed, uint64(burn), "preparing ran kh_alloc")
		_, use, err := h.Evaluate(ctx, hash, behave(0), abi.Limits{})
		require.NoError(t, err)
		require.Less(t, use.Fuel, uint64(1000), "a call that keeps its instance does not pay it again")
		var total uint64
		for i := 0; i < 3; i++ {
			_, use, err := h.Evaluate(ctx, hash, behave(1), abi.Limits{})
			require.ErrorIs(t, err, host.ErrTrap)
			require.Greater(t, use.Fuel, uint64(burn), "action %d pays for the instance its trap ended", i)
			total += use.Fuel
		}
		require.Greater(t, total, uint64(3*burn))
	})

	t.Run("a kh_alloc beyond the initialisation budget is refused at deploy", func(t *testing.T) {
		h := newHost(t, host.Config{})
		_, used, err := h.PrepareMetered(ctx, readWasm(t, "alloc_loop"))
		require.ErrorIs(t, err, host.ErrInvalidModule)
		require.ErrorIs(t, err, host.ErrOutOfFuel)
		require.ErrorContains(t, err, "initialisation ran out of fuel: kh_alloc")
		require.Equal(t, uint64(host.DefaultInitFuel), used)
	})
}
