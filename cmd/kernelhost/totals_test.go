package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/server"
	"github.com/kernelhost/kernelhost/kernel"
)

// TestTotalsCommand: 'kernelhost totals' prints the ledger and the quota
// and right totals; -o json prints what GET /v1/totals answers; a minted
// right moves quota into rights and leaves their sum unchanged.
func TestTotalsCommand(t *testing.T) {
	t.Parallel()
	dir := newWorld(t)
	var before server.TotalsResponse
	require.NoError(t, json.Unmarshal([]byte(ok(t, dir, "totals", "-o", "json")), &before))
	require.True(t, before.OK)
	require.True(t, before.LedgerOK)
	require.Equal(t, before.Minted, before.Balances+before.Burned)
	require.GreaterOrEqual(t, before.Balances, uint64(1000+100+5000))

	ok(t, dir, "right", "mint", "r1", "--as", "alice", "--resource", "llm_rate", "--amount", "300")
	var after server.TotalsResponse
	require.NoError(t, json.Unmarshal([]byte(ok(t, dir, "totals", "-o", "json")), &after))
	require.Equal(t, 1, after.Rights)
	require.Equal(t, int64(300), after.RightTotals[kernel.LLMRate])
	require.Equal(t, before.QuotaTotals[kernel.LLMRate]-300, after.QuotaTotals[kernel.LLMRate])

	out := ok(t, dir, "totals")
	require.Contains(t, out, "ledger      ok: minted = balances + burned")
	require.Regexp(t, `llm_rate +\d+ +300 +\d+`, out)
	require.Contains(t, fails(t, dir, exitUsage, "totals", "extra"), "unknown command")
}
