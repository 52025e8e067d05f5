package kernel_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
)

// TestAudit: Audit agrees with Totals, QuotaTotals, RightTotals and the sum
// of balances, and reports the ledger as checking.
func TestAudit(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "alice", 100)
	w.Principal(t, "bob", 50)
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindTransfer, Caller: "alice", To: "bob", Amount: 7}))
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindMintRight, Caller: "alice", Target: "r1", Resource: string(kernel.LLMRate), Amount: 30}))

	a, err := w.K.Audit(ctx)
	require.NoError(t, err)
	tot, err := w.K.Totals(ctx)
	require.NoError(t, err)
	qt, err := w.K.QuotaTotals(ctx)
	require.NoError(t, err)
	rt, err := w.K.RightTotals(ctx)
	require.NoError(t, err)
	ps, err := w.K.Principals(ctx)
	require.NoError(t, err)
	var sum uint64
	for _, p := range ps {
		sum += p.Balance
	}
	require.Equal(t, tot.Minted, a.Minted)
	require.Equal(t, tot.Burned, a.Burned)
	require.Equal(t, sum, a.Balances)
	require.Equal(t, len(ps), a.Principals)
	require.Equal(t, 1, a.Rights)
	for _, r := range kernel.Resources {
		require.Equal(t, qt[r], a.QuotaTotals[r], r)
	}
	require.Equal(t, rt, a.RightTotals)
	require.Equal(t, int64(30), a.RightTotals[kernel.LLMRate])
	require.True(t, a.LedgerOK)
	require.Empty(t, a.LedgerProblem)
	require.NoError(t, w.K.CheckLedger(ctx))

	require.NoError(t, w.K.Close(ctx))
	_, err = w.K.Audit(ctx)
	require.ErrorIs(t, err, kernel.ErrClosed)
}
