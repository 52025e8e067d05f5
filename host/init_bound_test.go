package host_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/host"
)

// safetyNet fails the test if f has not returned after a generous while. It
// bounds how long a regression can hang the test; it is never the assertion.
func safetyNet(t *testing.T, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("still running after 2 minutes: initialisation is not bounded")
	}
}

// TestInitBoundedInTime: deploy-time initialisation (the start function and
// _initialize) is bounded like a call: one fuel budget (Config.InitFuel)
// for both, host calls charged by the bytes they touch, and the watchdog.
// Before, fuel saw a host call as one call instruction and nothing watched
// the start function: a start function calling random_get(16 MiB) 2000 times
// ran 30 s or more before CONTRACT_INVALID, and the same loop in _initialize
// was accepted after 16 s. Now both fail on their fuel at the first call,
// deterministically, and the fuel initialisation used is reported for the
// kernel to charge the deployer (PrepareMetered).
//
// Reference: abi/SPEC.md sections 1 and 6.
func TestInitBoundedInTime(t *testing.T) {
	ctx := context.Background()

	for _, module := range []string{"random_start", "random_init"} {
		t.Run(module+" runs out of fuel", func(t *testing.T) {
			tests := []struct {
				name     string
				initFuel uint64
			}{
				// The first random_get alone costs more than the default.
				{"default budget", 0},
				// Room for one random_get, not for the second.
				{"budget for one call", 20_000_000},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					h := newHost(t, host.Config{InitFuel: tc.initFuel})
					want := tc.initFuel
					if want == 0 {
						want = host.DefaultInitFuel
					}
					safetyNet(t, func() {
						for i := 0; i < 2; i++ { // deterministic: the same twice
							_, used, err := h.PrepareMetered(ctx, readWasm(t, module))
							require.ErrorIs(t, err, host.ErrInvalidModule)
							require.ErrorIs(t, err, host.ErrOutOfFuel)
							require.Equal(t, abi.ContractInvalid, codeOf(err))
							require.ErrorContains(t, err, "initialisation ran out of fuel")
							require.Equal(t, want, used, "the whole initialisation budget is reported, to be charged")
						}
						require.ErrorIs(t, h.Validate(ctx, readWasm(t, module)), host.ErrOutOfFuel)
					})
				})
			}
		})
	}

	t.Run("moderate initialisation is accepted", func(t *testing.T) {
		var fuels []uint64
		for i := 0; i < 2; i++ {
			h := newHost(t, host.Config{})
			safetyNet(t, func() {
				hash, used, err := h.PrepareMetered(ctx, readWasm(t, "init_moderate"))
				require.NoError(t, err)
				// 16 random_get(64 KiB) calls, and a little code.
				require.Greater(t, used, uint64(16*(host.CostHostCall+65536*host.CostHostByte)))
				require.Less(t, used, uint64(host.DefaultInitFuel))
				// Prepared again: nothing runs, the same fuel is reported.
				again, used2, err := h.PrepareMetered(ctx, readWasm(t, "init_moderate"))
				require.NoError(t, err)
				require.Equal(t, hash, again)
				require.Equal(t, used, used2)
				fuels = append(fuels, used)

				d, _, err := h.Evaluate(ctx, hash, behave(0), abi.Limits{})
				require.NoError(t, err)
				require.True(t, d.Allowed)
			})
		}
		require.Equal(t, fuels[0], fuels[1], "the same on every host")
	})

	t.Run("the start function is watched", func(t *testing.T) {
		// Fuel cannot stop this one (practically unlimited): only the
		// watchdog can, and before, nothing watched a start function.
		h := newHost(t, host.Config{InitFuel: 1 << 62, InitTimeout: 5 * time.Millisecond, Watchdog: 20 * time.Millisecond})
		for _, module := range []string{"loop_start", "loop_init"} {
			safetyNet(t, func() {
				_, _, err := h.PrepareMetered(ctx, readWasm(t, module))
				require.ErrorIs(t, err, host.ErrInvalidModule, module)
				require.ErrorIs(t, err, host.ErrTimeout, module)
				require.ErrorContains(t, err, "stopped by the watchdog", module)
			})
		}
		require.Equal(t, uint64(2), h.Stats().WatchdogStops)
	})

	t.Run("the start function runs before _initialize, on one budget", func(t *testing.T) {
		// init_moderate's start function and _initialize do the same work:
		// with a budget for exactly one of them, _initialize runs out.
		h := newHost(t, host.Config{})
		_, used, err := h.PrepareMetered(ctx, readWasm(t, "init_moderate"))
		require.NoError(t, err)
		h2 := newHost(t, host.Config{InitFuel: used / 2})
		_, used2, err := h2.PrepareMetered(ctx, readWasm(t, "init_moderate"))
		require.ErrorIs(t, err, host.ErrOutOfFuel)
		require.ErrorContains(t, err, "ran out of fuel: _initialize used its")
		require.Equal(t, used/2, used2)
	})

	t.Run("the start function's export name is reserved", func(t *testing.T) {
		h := newHost(t, host.Config{})
		err := h.Validate(ctx, readWasm(t, "start_name"))
		require.ErrorIs(t, err, host.ErrInvalidModule)
		require.ErrorContains(t, err, `module exports "`+host.StartExport+`"`)
	})
}

// TestReplacementInitCharged: a call that ends its instance (here a trap)
// also pays for initialising the instance that replaces it, up to its budget,
// so that a module whose _initialize does the work and whose check fails
// cannot have the host initialise it again and again for free; a call that
// keeps its instance pays only its own fuel, and one that runs out pays its
// budget, no more.
func TestReplacementInitCharged(t *testing.T) {
	ctx := context.Background()
	h := newHost(t, host.Config{})
	hash, prepared, err := h.PrepareMetered(ctx, readWasm(t, "init_moderate"))
	require.NoError(t, err)
	initFuel := h.InitFuelOf(hash)
	require.Greater(t, initFuel, uint64(16*65536), "16 random_get(64 KiB)")
	require.Less(t, initFuel, prepared, "kh_abi_version is part of deploying, not of initialising")

	_, ok, err := h.Evaluate(ctx, hash, behave(0), abi.Limits{})
	require.NoError(t, err)
	require.Less(t, ok.Fuel, initFuel, "a call that keeps its instance pays its own fuel only")
	// random_get(64, 200000) runs past the end of memory: EFAULT, and the
	// check traps, after paying for the bytes asked.
	_, trapped, err := h.Evaluate(ctx, hash, behave(200_000), abi.Limits{})
	require.ErrorIs(t, err, host.ErrTrap)
	own := trapped.Fuel - initFuel
	require.Greater(t, own, uint64(200_000), "its own fuel")
	for i := 0; i < 3; i++ {
		_, use, err := h.Evaluate(ctx, hash, behave(200_000), abi.Limits{})
		require.ErrorIs(t, err, host.ErrTrap)
		require.Equal(t, trapped.Fuel, use.Fuel, "call %d", i)
	}
	// At most the budget it was given.
	_, capped, err := h.Evaluate(ctx, hash, behave(200_000), abi.Limits{Fuel: own + 1})
	require.ErrorIs(t, err, host.ErrTrap)
	require.Equal(t, own+1, capped.Fuel)
	_, use, err := h.Evaluate(ctx, hash, behave(1<<30), abi.Limits{Fuel: 100_000})
	require.ErrorIs(t, err, host.ErrOutOfFuel)
	require.Equal(t, uint64(100_000), use.Fuel, "running out costs the budget, no more")
	require.Equal(t, uint64(6), h.Stats().Modules[hash].Discarded, "every failing call ended its instance")
}
