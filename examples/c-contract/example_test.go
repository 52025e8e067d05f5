package ccontract_test

import (
	"context"
	"fmt"
	"time"

	ccontract "github.com/kernelhost/kernelhost/examples/c-contract"
	"github.com/kernelhost/kernelhost/host"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/store"
)

// Example deploys the pay-per-read contract with a sponsor and a payee in its
// config, and reads an artifact it governs before and after the sponsor's
// consent. The world has no genesis: the contract governs itself (only its
// controller, alice, may change it) and the principals are created directly.
func Example() {
	ctx := context.Background()
	h, _ := host.New(ctx, host.DefaultConfig().WithTimeout(10*time.Second))
	defer h.Close(ctx)
	st := store.NewMem()
	defer st.Close()
	k, _ := kernel.Open(ctx, kernel.Config{Store: st, Evaluator: h, Clock: time.Now, ContractTimeout: 10 * time.Second})
	defer k.Close(ctx)
	for id, balance := range map[string]uint64{"alice": 1000, "bob": 100, "sponsor": 500, "mallory": 0} {
		_ = k.CreatePrincipal(ctx, id, balance)
	}

	show := func(what string, res kernel.Result) {
		switch {
		case !res.OK:
			fmt.Printf("%-18s %s: %s\n", what, res.ErrorCode, res.Message)
		case res.Content != nil:
			fmt.Printf("%-18s OK %q", what, res.Content)
			for _, c := range res.Charges {
				fmt.Printf(", %s paid %d to %s", c.Payer, c.Amount, c.Payee)
			}
			fmt.Println()
		default:
			fmt.Printf("%-18s OK\n", what)
		}
	}
	const contract = "alice/pay-per-read"
	show("alice deploys", k.Do(ctx, kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: contract,
		Type: kernel.TypeContract, Contract: contract, Content: ccontract.PayPerRead(),
		Metadata: map[string]string{"price": "7", "sponsor": "sponsor", "payee": "alice"}}))
	show("alice writes", k.Do(ctx, kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: "alice/report",
		Type: "text", Contract: contract, Content: []byte("Q1: revenue up 12%")}))
	read := kernel.Action{Kind: kernel.KindRead, Caller: "bob", Target: "alice/report"}
	show("bob reads", k.Do(ctx, read))
	show("sponsor consents", k.Do(ctx, kernel.Action{Kind: kernel.KindGrantConsent, Caller: "sponsor",
		Contract: contract, PerCallCap: 7, TotalCap: 70}))
	show("bob reads", k.Do(ctx, read))
	show("mallory overwrites", k.Do(ctx, kernel.Action{Kind: kernel.KindWrite, Caller: "mallory", Target: "alice/report", Content: []byte("pwned")}))
	for _, id := range []string{"alice", "bob", "sponsor"} {
		p, _ := k.Principal(ctx, id)
		fmt.Printf("%s: %d\n", id, p.Balance)
	}
	// Output:
	// alice deploys      OK
	// alice writes       OK
	// bob reads          PAYER_NOT_AUTHORIZED: contract alice/pay-per-read named payer "sponsor", who has not consented to it
	// sponsor consents   OK
	// bob reads          OK "Q1: revenue up 12%", sponsor paid 7 to alice
	// mallory overwrites PERMISSION_DENIED: write of "alice/report" denied by alice/pay-per-read: pay_per_read: only the controller may change or invoke this artifact
	// alice: 1007
	// bob: 100
	// sponsor: 493
}
