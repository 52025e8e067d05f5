package server_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/server"
	"github.com/kernelhost/kernelhost/kernel"
)

// TestTotals: GET /v1/totals answers the admin token the world's totals as
// the kernel reads them (minted, burned, balances, quota and right totals
// per resource, the ledger checking), and refuses a principal's token (403)
// and no token (401).
func TestTotals(t *testing.T) {
	t.Parallel()
	e, _ := partiesEnv(t) // alice minted a right of 337 llm_rate
	status, b := e.raw(t, http.MethodGet, "/v1/totals", e.admin, "")
	require.Equal(t, http.StatusOK, status, "%s", b)
	var got server.TotalsResponse
	require.NoError(t, json.Unmarshal(b, &got))

	want, err := e.w.K.Audit(ctx)
	require.NoError(t, err)
	require.Equal(t, server.TotalsResponse{OK: true, Audit: want}, got)
	tot, err := e.w.K.Totals(ctx)
	require.NoError(t, err)
	require.Equal(t, tot.Minted, got.Minted)
	require.Equal(t, tot.Burned, got.Burned)
	require.Equal(t, uint64(300), got.Balances, "alice, bob and mallory, 100 each; nothing burned")
	require.True(t, got.LedgerOK)
	require.Equal(t, int64(337), got.RightTotals[kernel.LLMRate])
	qt, err := e.w.K.QuotaTotals(ctx)
	require.NoError(t, err)
	for _, r := range kernel.Resources {
		require.Equal(t, qt[r], got.QuotaTotals[r], r)
	}
	for _, k := range []string{`"minted"`, `"burned"`, `"balances"`, `"ledger_ok"`, `"quota_totals"`, `"right_totals"`, `"llm_rate"`} {
		require.Contains(t, string(b), k)
	}

	var ae api.Error
	resp := e.call(t, http.MethodGet, "/v1/totals", e.alice, "", &ae)
	requireError(t, resp, ae, http.StatusForbidden, abi.PermissionDenied)
	resp = e.call(t, http.MethodGet, "/v1/totals", "", "", &ae)
	requireError(t, resp, ae, http.StatusUnauthorized, abi.Unauthenticated)
}
