package hostile_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/kernel"
)

// TestExplainSpinCharged: explaining is no free way to run a contract. A
// principal with 120ms of cpu_rate explains, 20 times, a read of
// testdata/loop_check.wasm (a contract that spins, governing itself, so one
// run per explanation). Each run gets the caller's remaining cpu_rate as its
// fuel budget (at most the host's 50M check budget) and is charged what it
// burnt, exactly as the same read through Do is: 50ms, 50ms, then what is
// left; the other 17 explanations are refused with QUOTA_EXCEEDED and run
// nothing. Nothing is recorded or changed in the store. Before, all 20 ran
// at the host's full budget (8 s) and cpu_rate stayed at 0.
//
// Reference: issue 15, item 3a.
func TestExplainSpinCharged(t *testing.T) {
	w := newWorld(t, true)
	t.Cleanup(func() { w.close(t) })
	const (
		spinner = "m-explain-spin" // explains
		twin    = "m-explain-twin" // does the same through Do
		quota   = 120_000          // µs of cpu_rate
		spin    = "c/explain-spin"
		tries   = 20
	)
	for _, p := range []string{spinner, twin} {
		require.NoError(t, w.k.CreatePrincipal(ctx, p, attackerBalance))
		require.NoError(t, w.k.SetQuota(ctx, p, kernel.CPURate, quota))
	}
	dep := w.ok(t, kernel.Action{Kind: kernel.KindWrite, Caller: spinner, Target: spin, Type: kernel.TypeContract, Contract: spin, Content: readModule(t, "loop_check")})
	before := w.snapshot(t)
	used := func(p string) int64 {
		s, err := w.k.QuotaStatus(ctx, p, kernel.CPURate)
		require.NoError(t, err)
		return s.Used
	}
	read := func(p string) kernel.Action { return kernel.Action{Kind: kernel.KindRead, Caller: p, Target: spin} }
	// Each run is charged the host's whole check budget, 50M fuel = 50ms
	// (the initialisation of the instance its trap discards is charged only
	// up to the budget: COSTS.md), until less is left, then what is left
	// (the deploy charged the spinner some cpu_rate already).
	const perRun = 50_000 // µs: the budget
	want := func(p string) []int64 {
		left := quota - used(p)
		require.Greater(t, left, int64(2*perRun))
		return []int64{perRun, perRun, left - 2*perRun}
	}
	wantSpinner, wantTwin := want(spinner), want(twin)

	var ran, refused int
	var charges []int64
	start := time.Now()
	for range tries {
		ex, err := w.k.Explain(ctx, read(spinner))
		require.NoError(t, err)
		switch ex.Outcome.Code {
		case abi.OutOfFuel:
			ran++
			charges = append(charges, ex.CPU)
		case abi.QuotaExceeded:
			refused++
			require.Zero(t, ex.CPU)
			require.Equal(t, string(kernel.CPURate), ex.Outcome.Resource)
		default:
			t.Fatalf("unexpected outcome %s: %s", ex.Outcome.ErrorCode, ex.Outcome.Message)
		}
	}
	took := time.Since(start)
	t.Logf("%d explains: %d ran, %d refused, charges %v µs, cpu_rate used %d of %d, in %v", tries, ran, refused, charges, used(spinner), quota, took.Round(time.Millisecond))
	require.Equal(t, wantSpinner, charges)
	require.Equal(t, tries-3, refused)
	require.Equal(t, int64(quota), used(spinner))

	// The same reads through Do cost the same, and are refused the same.
	var doCharges []int64
	for range 4 {
		res := w.k.Do(ctx, read(twin))
		if res.Code == abi.QuotaExceeded {
			break
		}
		require.Equal(t, abi.OutOfFuel, res.Code, res.Message)
		doCharges = append(doCharges, w.event(t, w.lastEventOf(t, twin, kernel.KindRead)).CPU)
	}
	require.Equal(t, wantTwin, doCharges)
	require.Equal(t, int64(quota), used(twin))

	// Explanations recorded nothing: the first event after the deploy is
	// the twin's first read.
	evs, err := w.k.Events(ctx, dep.Event, 1)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	require.Equal(t, twin, evs[0].Caller)
	require.Equal(t, before, w.snapshot(t))
	require.NoError(t, w.k.CheckLedger(ctx))
}
