package hostile_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	ccontract "github.com/kernelhost/kernelhost/examples/c-contract"
	"github.com/kernelhost/kernelhost/genesis"
	"github.com/kernelhost/kernelhost/internal/testworld"
	"github.com/kernelhost/kernelhost/kernel"
)

// priceWorld deploys examples/c-contract's pay_per_read as mallory's
// contract "m/pay" with config, governing her document "m/doc"; alice and a
// sponsor have 1000 scrip each.
func priceWorld(t *testing.T, config map[string]string) *kernel.Kernel {
	t.Helper()
	k := testworld.HostWorld(t, genesis.Spec{Principals: []genesis.PrincipalSpec{{ID: alice, Balance: 1000}, {ID: "sponsor", Balance: 1000}, {ID: mallory}}})
	for _, a := range []kernel.Action{
		{Kind: kernel.KindWrite, Caller: mallory, Target: "m/pay", Type: kernel.TypeContract, Content: ccontract.PayPerRead(), Metadata: config},
		{Kind: kernel.KindWrite, Caller: mallory, Target: "m/doc", Type: "data", Contract: "m/pay", Content: []byte("news")},
	} {
		res := k.Do(ctx, a)
		require.True(t, res.OK, "%s %s: %s", a.Kind, a.Target, res.Message)
	}
	return k
}

func reconfigure(t *testing.T, k *kernel.Kernel, config map[string]string) {
	t.Helper()
	res := k.Do(ctx, kernel.Action{Kind: kernel.KindEdit, Caller: mallory, Target: "m/pay", Metadata: config})
	require.True(t, res.OK, res.Message)
}

// TestPriceRaisedAfterLook: alice looks at the price (explain: 50), mallory
// raises it to 900 before alice reads. A read that says what alice agreed
// to (max_cost 50), or one with no max_cost (her default limit, 100), is
// denied with COST_LIMIT_EXCEEDED and charges nothing.
func TestPriceRaisedAfterLook(t *testing.T) {
	k := priceWorld(t, map[string]string{"price": "50", "payee": mallory})
	ex, err := k.Explain(ctx, kernel.Action{Kind: kernel.KindRead, Caller: alice, Target: "m/doc"})
	require.NoError(t, err)
	require.Equal(t, uint64(50), ex.Decision.Cost)
	require.Equal(t, uint64(100), ex.SpendingLimit)

	reconfigure(t, k, map[string]string{"price": "900"})
	fifty := int64(50)
	for _, max := range []*int64{&fifty, nil} {
		res := k.Do(ctx, kernel.Action{Kind: kernel.KindRead, Caller: alice, Target: "m/doc", MaxCost: max})
		require.Equal(t, abi.CostLimitExceeded, res.Code, res.Message)
		require.Contains(t, res.Message, "900")
		require.False(t, res.Retriable)
		require.Equal(t, uint64(1000), balance(t, k, alice))
		require.Equal(t, uint64(0), balance(t, k, mallory))
	}
	require.NoError(t, k.CheckLedger(ctx))
}

// TestConsentReconfigured replays the examples/c-contract attack: the
// sponsor consents to price 1, burned; mallory edits the contract's config
// to price 50, payee mallory. The consent was to the old terms: the read
// fails PAYER_NOT_AUTHORIZED and the sponsor pays nothing.
func TestConsentReconfigured(t *testing.T) {
	k := priceWorld(t, map[string]string{"price": "1", "sponsor": "sponsor"})
	res := k.Do(ctx, kernel.Action{Kind: kernel.KindGrantConsent, Caller: "sponsor", Contract: "m/pay", PerCallCap: 1000, TotalCap: 1000})
	require.True(t, res.OK, res.Message)
	res = k.Do(ctx, kernel.Action{Kind: kernel.KindRead, Caller: alice, Target: "m/doc"})
	require.True(t, res.OK, res.Message)
	require.Equal(t, uint64(999), balance(t, k, "sponsor"))

	reconfigure(t, k, map[string]string{"price": "50", "payee": mallory})
	for i := 0; i < 3; i++ {
		res = k.Do(ctx, kernel.Action{Kind: kernel.KindRead, Caller: alice, Target: "m/doc"})
		require.Equal(t, abi.PayerNotAuthorized, res.Code, res.Message)
		require.Contains(t, res.Message, "other terms")
	}
	require.Equal(t, uint64(999), balance(t, k, "sponsor"))
	require.Equal(t, uint64(0), balance(t, k, mallory))
	require.NoError(t, k.CheckLedger(ctx))
}
