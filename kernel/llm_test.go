package kernel_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
)

func llmCall(caller string, in, out int64) kernel.LLMCall {
	return kernel.LLMCall{Caller: caller, Model: "test-model", MaxInputTokens: in, MaxOutputTokens: out, InputPrice: 1000, OutputPrice: 2000}
}

func used(t *testing.T, k *kernel.Kernel, id string, res kernel.Resource) int64 {
	t.Helper()
	s, err := k.QuotaStatus(ctx, id, res)
	require.NoError(t, err)
	return s.Used
}

// TestLLMReserveSettle: a call reserves the most it can use of llm_rate
// and llm_budget before it is sent, and settles to what the provider
// reported, with one audit event.
func TestLLMReserveSettle(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "agent", 0)
	require.NoError(t, w.K.SetQuota(ctx, "agent", kernel.LLMRate, 1000))
	require.NoError(t, w.K.SetQuota(ctx, "agent", kernel.LLMBudget, 10_000))

	r, res := w.K.ReserveLLM(ctx, llmCall("agent", 100, 200))
	requireCode(t, abi.OK, res)
	require.Equal(t, int64(300), r.Tokens())
	require.Equal(t, int64(100+400), r.Cost(), "100 in at 1 µ$ each, 200 out at 2")
	require.Equal(t, int64(300), used(t, w.K, "agent", kernel.LLMRate), "held while the call runs")
	require.Equal(t, int64(500), used(t, w.K, "agent", kernel.LLMBudget))

	res = w.K.SettleLLM(ctx, r, kernel.LLMUsage{InputTokens: 80, OutputTokens: 20})
	requireCode(t, abi.OK, res)
	require.Equal(t, int64(100), used(t, w.K, "agent", kernel.LLMRate), "settled to the usage")
	require.Equal(t, int64(80+40), used(t, w.K, "agent", kernel.LLMBudget))
	ev := lastStoredEvent(t, w.K)
	require.Equal(t, kernel.KindLLMCall, ev.Kind)
	require.Equal(t, "agent", ev.Caller)
	require.Equal(t, "test-model", ev.Target)
	require.Equal(t, []int64{80, 20}, ev.Amounts)
	require.Equal(t, int64(120), ev.Amount)
	require.Equal(t, res.Event, ev.Seq)

	requireCode(t, abi.InvalidArgument, w.K.SettleLLM(ctx, r, kernel.LLMUsage{}))

	// A provider that reports more than was reserved is charged the reservation.
	r, res = w.K.ReserveLLM(ctx, llmCall("agent", 10, 10))
	requireCode(t, abi.OK, res)
	requireCode(t, abi.OK, w.K.SettleLLM(ctx, r, kernel.LLMUsage{InputTokens: 1000, OutputTokens: 1000}))
	require.Equal(t, int64(120), used(t, w.K, "agent", kernel.LLMRate))
	require.Equal(t, int64(120+30), used(t, w.K, "agent", kernel.LLMBudget))
}

// TestLLMReserveRefuses: a call that does not fit is refused before
// anything is sent, and takes nothing.
func TestLLMReserveRefuses(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "agent", 0)
	require.NoError(t, w.K.SetQuota(ctx, "agent", kernel.LLMRate, 1000))
	require.NoError(t, w.K.SetQuota(ctx, "agent", kernel.LLMBudget, 1000))

	_, res := w.K.ReserveLLM(ctx, llmCall("agent", 100, 600)) // 1,300 µ$
	requireCode(t, abi.QuotaExceeded, res)
	require.Equal(t, "llm_budget", res.Resource)
	require.False(t, res.Retriable, "no wait refills a budget")

	_, res = w.K.ReserveLLM(ctx, llmCall("agent", 500, 501)) // 1,001 tokens, 1,502 µ$: the budget refuses first
	requireCode(t, abi.QuotaExceeded, res)

	require.NoError(t, w.K.SetQuota(ctx, "agent", kernel.LLMBudget, 1_000_000))
	_, res = w.K.ReserveLLM(ctx, llmCall("agent", 500, 501))
	requireCode(t, abi.QuotaExceeded, res)
	require.Equal(t, "llm_rate", res.Resource)
	require.Zero(t, used(t, w.K, "agent", kernel.LLMRate))
	require.Zero(t, used(t, w.K, "agent", kernel.LLMBudget))

	for _, c := range []kernel.LLMCall{
		{Caller: "agent", Model: "", MaxOutputTokens: 1},
		{Caller: "agent", Model: "m", MaxOutputTokens: 0},
		{Caller: "agent", Model: "m", MaxInputTokens: -1, MaxOutputTokens: 1},
		{Caller: "agent", Model: "m", MaxOutputTokens: 1, InputPrice: -1},
		{Caller: "no such", Model: "m", MaxOutputTokens: 1},
	} {
		_, res := w.K.ReserveLLM(ctx, c)
		requireCode(t, abi.InvalidArgument, res)
	}
	_, res = w.K.ReserveLLM(ctx, llmCall("ghost", 1, 1))
	requireCode(t, abi.NotFound, res)
}

// TestLLMReserveNeverOverspent: concurrent calls, on one kernel and on two
// sharing a store, are never granted more llm_rate than the quota.
func TestLLMReserveNeverOverspent(t *testing.T) {
	for _, sc := range sharedStores {
		t.Run(sc.name, func(t *testing.T) {
			w, nodes := sharedNodes(t, sc.open)
			w.Principal(t, "agent", 0)
			require.NoError(t, w.K.SetQuota(ctx, "agent", kernel.LLMRate, 1000))
			require.NoError(t, w.K.SetQuota(ctx, "agent", kernel.LLMBudget, 1<<40))

			var granted atomic.Int64
			var mu sync.Mutex
			var held []struct {
				k *kernel.Kernel
				r *kernel.LLMReservation
			}
			var wg sync.WaitGroup
			for g := 0; g < 16; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					k := nodes[g%2]
					for i := 0; i < 4; i++ {
						r, res := k.ReserveLLM(context.Background(), llmCall("agent", 30, 40))
						switch {
						case res.OK:
							granted.Add(1)
							mu.Lock()
							held = append(held, struct {
								k *kernel.Kernel
								r *kernel.LLMReservation
							}{k, r})
							mu.Unlock()
						case res.Code != abi.QuotaExceeded:
							t.Errorf("reserve: %s %s", res.ErrorCode, res.Message)
						}
					}
				}(g)
			}
			wg.Wait()
			require.Equal(t, int64(1000/70), granted.Load(), "exactly what fits, across both kernels")
			for _, h := range held {
				requireCode(t, abi.OK, h.k.SettleLLM(ctx, h.r, kernel.LLMUsage{InputTokens: 30, OutputTokens: 10}))
			}
			for _, k := range nodes {
				require.Equal(t, int64(1000/70*40), used(t, k, "agent", kernel.LLMRate))
			}
		})
	}
}

// TestLLMUnsettledSurvivesRestart: a call whose node died before it was
// settled stays charged in full.
func TestLLMUnsettledSurvivesRestart(t *testing.T) {
	open, _, _ := restartable(t)
	k, st := open()
	require.NoError(t, k.CreatePrincipal(ctx, "agent", 0))
	require.NoError(t, k.SetQuota(ctx, "agent", kernel.LLMRate, 1000))
	require.NoError(t, k.SetQuota(ctx, "agent", kernel.LLMBudget, 10_000))
	_, res := k.ReserveLLM(ctx, llmCall("agent", 100, 200))
	requireCode(t, abi.OK, res)
	require.NoError(t, k.Close(ctx))
	require.NoError(t, st.Close())

	k, st = open()
	defer func() { _ = k.Close(ctx); _ = st.Close() }()
	require.Equal(t, int64(300), used(t, k, "agent", kernel.LLMRate))
	require.Equal(t, int64(500), used(t, k, "agent", kernel.LLMBudget))
}

// TestLLMSponsorNeedsConsent: a call billed to another principal needs
// that principal's grant_llm_consent for the caller and stays within its
// caps; the sponsor's quotas pay, never the caller's, and what a call did
// not use goes back to the caps.
func TestLLMSponsorNeedsConsent(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "agent", 0)
	w.Principal(t, "sponsor", 0)
	w.Principal(t, "victim", 0)
	for _, p := range []string{"agent", "sponsor", "victim"} {
		require.NoError(t, w.K.SetQuota(ctx, p, kernel.LLMRate, 10_000))
		require.NoError(t, w.K.SetQuota(ctx, p, kernel.LLMBudget, 100_000))
	}
	call := llmCall("agent", 100, 100) // 300 µ$, 200 tokens
	call.Payer = "victim"
	_, res := w.K.ReserveLLM(ctx, call)
	requireCode(t, abi.PayerNotAuthorized, res)
	require.Zero(t, used(t, w.K, "victim", kernel.LLMBudget), "no consent: nothing taken")

	grant := kernel.Action{Kind: kernel.KindGrantLLMConsent, Caller: "sponsor", To: "agent", PerCallCap: 400, TotalCap: 500, Amount: 1000}
	requireCode(t, abi.OK, w.Do(grant))
	call.Payer = "sponsor"
	r, res := w.K.ReserveLLM(ctx, call)
	requireCode(t, abi.OK, res)
	require.Equal(t, int64(300), used(t, w.K, "sponsor", kernel.LLMBudget))
	require.Equal(t, int64(200), used(t, w.K, "sponsor", kernel.LLMRate))
	require.Zero(t, used(t, w.K, "agent", kernel.LLMBudget), "the caller's quotas are not used")
	require.Zero(t, used(t, w.K, "agent", kernel.LLMRate))

	_, res = w.K.ReserveLLM(ctx, call) // 300 more would pass the total cap of 500
	requireCode(t, abi.PayerNotAuthorized, res)
	require.Contains(t, res.Message, "left")

	requireCode(t, abi.OK, w.K.SettleLLM(ctx, r, kernel.LLMUsage{InputTokens: 50, OutputTokens: 25})) // 100 µ$
	c, err := w.K.LLMConsent(ctx, "sponsor", "agent")
	require.NoError(t, err)
	require.Equal(t, uint64(100), c.SpentCost, "the unused part went back to the cap")
	require.Equal(t, uint64(75), c.SpentTokens)
	require.Equal(t, int64(100), used(t, w.K, "sponsor", kernel.LLMBudget))
	ev := lastStoredEvent(t, w.K)
	require.Equal(t, "sponsor", ev.To, "the sponsor is party to the call's event")
	evs, _, err := w.K.EventsFor(ctx, "sponsor", ev.Seq-1, 1)
	require.NoError(t, err)
	require.Len(t, evs, 1)

	big := llmCall("agent", 1000, 1000) // 3,000 µ$: above the per-call cap
	big.Payer = "sponsor"
	_, res = w.K.ReserveLLM(ctx, big)
	requireCode(t, abi.PayerNotAuthorized, res)
	require.Contains(t, res.Message, "per-call cap")

	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindRevokeLLMConsent, Caller: "sponsor", To: "agent"}))
	_, res = w.K.ReserveLLM(ctx, call)
	requireCode(t, abi.PayerNotAuthorized, res)
	requireCode(t, abi.InvalidArgument, w.Do(kernel.Action{Kind: kernel.KindGrantLLMConsent, Caller: "sponsor", To: "agent", PerCallCap: 1, TotalCap: 1}))
	requireCode(t, abi.InvalidArgument, w.Do(kernel.Action{Kind: kernel.KindGrantLLMConsent, Caller: "sponsor", To: "sponsor", PerCallCap: 1, TotalCap: 1, Amount: 1}))
	requireCode(t, abi.NotFound, w.Do(kernel.Action{Kind: kernel.KindGrantLLMConsent, Caller: "sponsor", To: "ghost", PerCallCap: 1, TotalCap: 1, Amount: 1}))
}
