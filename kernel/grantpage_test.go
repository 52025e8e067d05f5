package kernel_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
)

// TestConsentsAndStandingsPage: a principal's consent and standing grants
// are listed in id order, a page at a time, each grant once however the
// pages are cut, only the principal's own (not another's), with what
// Consent and Standings say of each.
func TestConsentsAndStandingsPage(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "alice", 100)
	w.Principal(t, "bob", 100)
	var contracts, exes []string
	for i := 0; i < 7; i++ {
		c := fmt.Sprintf("c/%d", i)
		w.Deploy(t, "alice", c, "private", kerneltest.AllowAll)
		requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindGrantConsent, Caller: "alice", Contract: c, PerCallCap: int64(i + 1), TotalCap: 100}))
		contracts = append(contracts, c)
		e := fmt.Sprintf("e/%d", i)
		w.DeployExecutable(t, "alice", e, "allow-all", nil)
		w.GrantStanding(t, "alice", e)
		exes = append(exes, e)
	}
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindGrantConsent, Caller: "bob", Contract: "c/3", PerCallCap: 1, TotalCap: 1}))
	w.GrantStanding(t, "bob", "e/3")
	// A rewritten executable voids alice's standing for it.
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindEdit, Caller: "alice", Target: "e/5", Metadata: map[string]string{"v": "2"}}))

	standings, err := w.K.Standings(ctx, "alice")
	require.NoError(t, err)
	var got []string
	for _, st := range standings {
		got = append(got, st.Executable)
	}
	require.Equal(t, exes, got, "alice's standings, not bob's")
	for _, limit := range []int{1, 3, 100} {
		var gs []kernel.Grant
		cursor := ""
		for {
			page, more, err := w.K.ConsentsPage(ctx, "alice", cursor, limit)
			require.NoError(t, err)
			require.LessOrEqual(t, len(page), limit)
			gs = append(gs, page...)
			if !more {
				break
			}
			cursor = page[len(page)-1].Contract
		}
		require.Len(t, gs, len(contracts))
		for i, g := range gs {
			require.Equal(t, contracts[i], g.Contract)
			one, err := w.K.Consent(ctx, "alice", g.Contract)
			require.NoError(t, err)
			require.Equal(t, one, g)
		}

		var ss []kernel.Standing
		cursor = ""
		for {
			page, more, err := w.K.StandingsPage(ctx, "alice", cursor, limit)
			require.NoError(t, err)
			require.LessOrEqual(t, len(page), limit)
			ss = append(ss, page...)
			if !more {
				break
			}
			cursor = page[len(page)-1].Executable
		}
		require.Equal(t, standings, ss)
	}
	require.False(t, standings[5].Valid, "e/5 changed")
	require.True(t, standings[4].Valid)

	page, more, err := w.K.ConsentsPage(ctx, "bob", "", 0)
	require.NoError(t, err)
	require.False(t, more)
	require.Len(t, page, 1)
	require.Equal(t, "bob", page[0].Payer)

	_, _, err = w.K.ConsentsPage(ctx, "nobody", "", 0)
	require.ErrorIs(t, err, kernel.ErrNotFound)
	_, _, err = w.K.StandingsPage(ctx, "nobody", "", 0)
	require.ErrorIs(t, err, kernel.ErrNotFound)
	_, _, err = w.K.StandingsPage(ctx, "alice", "a//b", 0)
	require.ErrorIs(t, err, kernel.ErrInvalidArgument)
}
