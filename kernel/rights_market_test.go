package kernel_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
)

// escrow is a market executable with standing: principal "escrow" granted
// it (grant_standing), so it may act "as" escrow.
//
//	sell {"right": id, "price": n}: as the caller (the seller), hand the right
//	  to the escrow; as the escrow, record the listing (seller, price) in an
//	  artifact only the escrow controls.
//	buy {"right": id}: as the escrow, hand the right to the caller; as the
//	  caller, pay the seller; as the escrow, remove the listing.
//
// Each method is one invocation, so one transaction: if any step fails the
// executable fails and every step is rolled back. Nobody has to trust
// anybody: the right and the scrip move together or not at all.
func escrow(req *abi.Request, calls abi.HostCalls) (abi.InvokeResult, error) {
	var args struct {
		Right string `json:"right"`
		Price int64  `json:"price"`
	}
	if err := json.Unmarshal(req.Args, &args); err != nil {
		return abi.InvokeResult{Output: []byte("escrow: args: " + err.Error())}, nil
	}
	listing := "listing/" + args.Right
	step := func(what string, asSelf bool, action map[string]any) error {
		hc := map[string]any{"action": action}
		if asSelf {
			hc["as"] = "escrow" // the principal that granted this executable standing
		}
		r := call(calls, hc)
		if r["ok"] != true {
			return fmt.Errorf("escrow: %s: %v: %v", what, r["error_code"], r["message"])
		}
		return nil
	}
	fail := func(err error) (abi.InvokeResult, error) { return abi.InvokeResult{Output: []byte(err.Error())}, nil }
	switch req.Method {
	case "sell":
		if args.Price <= 0 {
			return fail(fmt.Errorf("escrow: price must be positive"))
		}
		if err := step("deposit", false, map[string]any{"kind": "transfer_right", "target": args.Right, "to": "escrow"}); err != nil {
			return fail(err)
		}
		terms, _ := json.Marshal(map[string]any{"seller": req.Caller, "price": args.Price})
		if err := step("list", true, map[string]any{"kind": "write", "target": listing, "type": "listing", "contract": "private", "text": string(terms)}); err != nil {
			return fail(err)
		}
		return abi.InvokeResult{OK: true, Output: []byte("listed " + args.Right)}, nil
	case "buy":
		r := call(calls, map[string]any{"action": map[string]any{"kind": "read", "target": listing}, "as": "escrow"})
		if r["ok"] != true {
			return fail(fmt.Errorf("escrow: %s is not for sale: %v", args.Right, r["error_code"]))
		}
		raw, _ := base64.StdEncoding.DecodeString(r["content"].(string))
		var terms struct {
			Seller string `json:"seller"`
			Price  int64  `json:"price"`
		}
		if err := json.Unmarshal(raw, &terms); err != nil {
			return fail(err)
		}
		if err := step("deliver", true, map[string]any{"kind": "transfer_right", "target": args.Right, "to": req.Caller}); err != nil {
			return fail(err)
		}
		if err := step("pay", false, map[string]any{"kind": "transfer", "to": terms.Seller, "amount": terms.Price}); err != nil {
			return fail(err)
		}
		if err := step("delist", true, map[string]any{"kind": "delete", "target": listing}); err != nil {
			return fail(err)
		}
		return abi.InvokeResult{OK: true, Output: []byte(fmt.Sprintf("bought %s for %d", args.Right, terms.Price))}, nil
	}
	return fail(fmt.Errorf("escrow: unknown method %q", req.Method))
}

func market(caller, method, args string) kernel.Action {
	return kernel.Action{Kind: kernel.KindInvoke, Caller: caller, Target: "escrow", Method: method, Args: []byte(args)}
}

// TestRightMarket: alice mints a right on part of her llm_rate and sells it
// to bob for scrip through an escrow executable, as an atomic swap inside
// one invoke; bob redeems it and can then use llm_rate that was
// QUOTA_EXCEEDED before. Scrip and quota totals are conserved throughout.
// Reference: issue 10, "Scenario test and example".
func TestRightMarket(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "alice", 0)
	w.Principal(t, "bob", 100)
	w.Principal(t, "carol", 10)
	w.Principal(t, "operator", 0)
	w.Principal(t, "escrow", 0) // the principal the executable acts as
	w.DeployExecutable(t, "operator", "escrow", "freeware", escrow)
	w.GrantStanding(t, "escrow", "escrow")

	// bob has used all of his llm_rate.
	require.NoError(t, w.K.SetQuota(ctx, "bob", kernel.LLMRate, 100))
	requireCode(t, abi.OK, w.K.ConsumeQuota(ctx, "bob", kernel.LLMRate, 100))
	requireCode(t, abi.QuotaExceeded, w.K.ConsumeQuota(ctx, "bob", kernel.LLMRate, 50))
	tot := totals(t, w)

	// alice wraps 300 of her llm_rate into a right and lists it for 40.
	requireCode(t, abi.OK, w.Do(mintRight("alice", "alice/llm-300", kernel.LLMRate, 300)))
	require.Equal(t, int64(700), quota(t, w, "alice", kernel.LLMRate))
	res := w.Do(market("alice", "sell", `{"right":"alice/llm-300","price":40}`))
	requireCode(t, abi.OK, res)
	m, _ := rightOf(t, w, "bob", "alice/llm-300")
	require.Equal(t, "escrow", m["holder"])

	// carol cannot pay: the whole swap rolls back, the right stays listed.
	before := snapshot(t, w.Store)
	res = w.Do(market("carol", "buy", `{"right":"alice/llm-300"}`))
	requireCode(t, abi.ExecutionFailed, res)
	require.Contains(t, res.Message, "INSUFFICIENT_FUNDS")
	require.Equal(t, before, snapshot(t, w.Store))

	// bob can: the right and the scrip change hands in one invoke.
	res = w.Do(market("bob", "buy", `{"right":"alice/llm-300"}`))
	requireCode(t, abi.OK, res)
	require.Equal(t, "bought alice/llm-300 for 40", string(res.Output))
	m, info := rightOf(t, w, "carol", "alice/llm-300")
	require.Equal(t, "bob", m["holder"])
	require.Equal(t, "alice", info.CreatedBy, "the minter is still the minter")
	require.Equal(t, uint64(40), w.Balance(t, "alice"))
	require.Equal(t, uint64(60), w.Balance(t, "bob"))
	require.Equal(t, uint64(0), w.Balance(t, "escrow"))

	// It cannot be sold twice.
	before = snapshot(t, w.Store)
	requireCode(t, abi.ExecutionFailed, w.Do(market("carol", "buy", `{"right":"alice/llm-300"}`)))
	require.Equal(t, before, snapshot(t, w.Store))

	// The seller has no claim left; the buyer redeems and uses the quota.
	requireCode(t, abi.PermissionDenied, w.Do(redeemRight("alice", "alice/llm-300")))
	requireCode(t, abi.OK, w.Do(redeemRight("bob", "alice/llm-300")))
	require.Equal(t, int64(400), quota(t, w, "bob", kernel.LLMRate))
	requireCode(t, abi.OK, w.K.ConsumeQuota(ctx, "bob", kernel.LLMRate, 50))

	require.NoError(t, w.K.CheckLedger(ctx))
	require.Equal(t, tot, totals(t, w))
	requireRightsSound(t, w)
	rt, err := w.K.RightTotals(ctx)
	require.NoError(t, err)
	require.Zero(t, rt[kernel.LLMRate], "no right outstanding")
}
