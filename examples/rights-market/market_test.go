package market_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	market "github.com/kernelhost/kernelhost/examples/rights-market"
	"github.com/kernelhost/kernelhost/genesis"
	"github.com/kernelhost/kernelhost/internal/testenv"
	"github.com/kernelhost/kernelhost/internal/testworld"
	"github.com/kernelhost/kernelhost/kernel"
)

var ctx = context.Background()

// escrowID is the escrow executable's id; marketP is the principal it acts
// as, which granted it standing.
const (
	escrowID = "escrow/market"
	marketP  = "market"
)

// world opens a kernel on the real wasm host with genesis installed.
func world(t *testing.T, spec genesis.Spec) *kernel.Kernel {
	t.Helper()
	return testworld.HostWorld(t, spec)
}

// totals is, per resource, the principals' quotas plus the outstanding
// rights: conserved by every action.
func totals(t *testing.T, k *kernel.Kernel) map[kernel.Resource]int64 {
	t.Helper()
	q, err := k.QuotaTotals(ctx)
	require.NoError(t, err)
	r, err := k.RightTotals(ctx)
	require.NoError(t, err)
	out := map[kernel.Resource]int64{}
	for _, res := range kernel.Resources {
		out[res] = q[res] + r[res]
	}
	return out
}

// state is everything the market can change, as the public API shows it:
// balances, quotas, every principal's rights and the listings.
func state(t *testing.T, k *kernel.Kernel, listings ...string) map[string]any {
	t.Helper()
	out := map[string]any{}
	ps, err := k.Principals(ctx)
	require.NoError(t, err)
	for _, p := range ps {
		out["balance "+p.ID] = p.Balance
		for _, res := range kernel.Resources {
			q, err := k.Quota(ctx, p.ID, res)
			require.NoError(t, err)
			out["quota "+p.ID+" "+string(res)] = q
		}
		rs, err := k.Rights(ctx, p.ID)
		require.NoError(t, err)
		out["rights "+p.ID] = rs
	}
	for _, id := range listings {
		res := k.Do(ctx, kernel.Action{Kind: kernel.KindRead, Caller: "genesis", Target: id})
		out["listing "+id] = res.Code.String() + " " + string(res.Content)
	}
	return out
}

func invoke(caller, method, args string) kernel.Action {
	return kernel.Action{Kind: kernel.KindInvoke, Caller: caller, Target: escrowID, Method: method, Args: []byte(args)}
}

func requireOK(t *testing.T, res kernel.Result) {
	t.Helper()
	require.True(t, res.OK, "%s: %s", res.Code, res.Message)
}

func holder(t *testing.T, k *kernel.Kernel, id, right string) bool {
	t.Helper()
	rs, err := k.Rights(ctx, id)
	require.NoError(t, err)
	for _, r := range rs {
		if r.ID == right {
			return true
		}
	}
	return false
}

// Test_main plays the README's market through the kernel and the wasm host
// with the committed escrow.wasm: alice sells a right on 300 of her
// llm_rate to bob for 40 scrip, atomically; carol, who cannot pay, changes
// nothing; bob redeems the right and uses quota that was QUOTA_EXCEEDED.
func Test_main(t *testing.T) {
	k := world(t, genesis.Spec{Principals: []genesis.PrincipalSpec{
		{ID: "alice", Balance: 0}, {ID: "bob", Balance: 100}, {ID: "carol", Balance: 10}, {ID: marketP, Balance: 0},
	}})
	// The escrow deploys itself: its code is controlled by nobody who trades.
	// A Go module is a few MiB: more than a new principal's default disk.
	require.NoError(t, k.SetQuota(ctx, marketP, kernel.Disk, 8<<20))
	require.NoError(t, market.Deploy(ctx, k, marketP, escrowID))

	// bob has used all of his llm_rate.
	require.NoError(t, k.SetQuota(ctx, "bob", kernel.LLMRate, 100))
	requireOK(t, k.ConsumeQuota(ctx, "bob", kernel.LLMRate, 100))
	require.Equal(t, abi.QuotaExceeded, k.ConsumeQuota(ctx, "bob", kernel.LLMRate, 50).Code)
	tot := totals(t, k)

	// alice wraps 300 of her llm_rate into a right and lists it for 40.
	requireOK(t, k.Do(ctx, kernel.Action{Kind: kernel.KindMintRight, Caller: "alice", Target: "alice/llm-300", Resource: string(kernel.LLMRate), Amount: 300}))
	res := k.Do(ctx, invoke("alice", "sell", `{"right":"alice/llm-300","price":40}`))
	requireOK(t, res)
	require.JSONEq(t, `{"right":"alice/llm-300","seller":"alice","price":40,"resource":"llm_rate","amount":300}`, string(res.Output))
	require.Equal(t, []string{"alice lists alice/llm-300 (300 llm_rate) for 40"}, res.Logs)
	require.True(t, holder(t, k, marketP, "alice/llm-300"))
	listing := marketP + "/listing/alice/llm-300"
	res = k.Do(ctx, kernel.Action{Kind: kernel.KindRead, Caller: "bob", Target: listing})
	requireOK(t, res)
	require.Equal(t, marketP, res.Artifact.CreatedBy, "the escrow wrote the listing as its principal")
	require.Equal(t, tot, totals(t, k))

	// Refusals change nothing but the audit trail.
	before := state(t, k, listing)
	for _, tc := range []struct {
		name, caller, method, args string
		code                       abi.Code
		msg                        string
	}{
		{"carol cannot pay", "carol", "buy", `{"right":"alice/llm-300","price":40}`, abi.ExecutionFailed, "escrow: pay alice: INSUFFICIENT_FUNDS"},
		{"a price other than the listing's", "bob", "buy", `{"right":"alice/llm-300","price":30}`, abi.ExecutionFailed, "listed at 40, not 30"},
		{"the seller cannot buy", "alice", "buy", `{"right":"alice/llm-300","price":40}`, abi.ExecutionFailed, "use cancel"},
		{"only the seller cancels", "bob", "cancel", `{"right":"alice/llm-300"}`, abi.ExecutionFailed, `only the seller "alice"`},
		{"nothing else is for sale", "bob", "buy", `{"right":"bob/none","price":1}`, abi.ExecutionFailed, "bob/none is not for sale"},
		{"a right the seller does not hold", "carol", "sell", `{"right":"alice/llm-300","price":1}`, abi.ExecutionFailed, "escrow: deposit alice/llm-300: PERMISSION_DENIED"},
		{"bad args", "bob", "buy", `{"right":"alice/llm-300"}`, abi.ExecutionFailed, `positive "price"`},
		{"unknown method", "bob", "steal", `{"right":"alice/llm-300"}`, abi.ExecutionFailed, `unknown method "steal"`},
		{"the escrow does not call itself", marketP, "buy", `{"right":"alice/llm-300","price":40}`, abi.ExecutionFailed, "does not trade with itself"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := k.Do(ctx, invoke(tc.caller, tc.method, tc.args))
			require.Equal(t, tc.code, res.Code, res.Message)
			require.Contains(t, res.Message, tc.msg)
			require.Equal(t, before, state(t, k, listing))
		})
	}

	// bob can pay: the right and the scrip change hands in one invoke.
	res = k.Do(ctx, invoke("bob", "buy", `{"right":"alice/llm-300","price":40}`))
	requireOK(t, res)
	require.Equal(t, []string{"bob buys alice/llm-300 (300 llm_rate) from alice for 40"}, res.Logs)
	for id, want := range map[string]uint64{"alice": 40, "bob": 60, marketP: 0} {
		p, err := k.Principal(ctx, id)
		require.NoError(t, err)
		require.Equal(t, want, p.Balance, id)
	}
	rs, err := k.Rights(ctx, "bob")
	require.NoError(t, err)
	require.Len(t, rs, 1)
	require.Equal(t, "alice", rs[0].CreatedBy, "the minter stays the minter")
	require.Equal(t, int64(300), rs[0].Amount)
	require.Equal(t, abi.NotFound, k.Do(ctx, kernel.Action{Kind: kernel.KindRead, Caller: "bob", Target: listing}).Code, "delisted")

	// It cannot be sold twice, and the seller has no claim left.
	before = state(t, k, listing)
	res = k.Do(ctx, invoke("carol", "buy", `{"right":"alice/llm-300","price":40}`))
	require.Equal(t, abi.ExecutionFailed, res.Code)
	require.Contains(t, res.Message, "not for sale")
	require.Equal(t, before, state(t, k, listing))
	require.Equal(t, abi.PermissionDenied, k.Do(ctx, kernel.Action{Kind: kernel.KindRedeemRight, Caller: "alice", Target: "alice/llm-300"}).Code)

	// bob redeems it: what was QUOTA_EXCEEDED now succeeds.
	requireOK(t, k.Do(ctx, kernel.Action{Kind: kernel.KindRedeemRight, Caller: "bob", Target: "alice/llm-300"}))
	q, err := k.Quota(ctx, "bob", kernel.LLMRate)
	require.NoError(t, err)
	require.Equal(t, int64(400), q)
	requireOK(t, k.ConsumeQuota(ctx, "bob", kernel.LLMRate, 50))

	// A listing can be cancelled: the right goes back to its seller.
	requireOK(t, k.Do(ctx, kernel.Action{Kind: kernel.KindMintRight, Caller: "alice", Target: "alice/disk-1k", Resource: string(kernel.Disk), Amount: 1000}))
	requireOK(t, k.Do(ctx, invoke("alice", "sell", `{"right":"alice/disk-1k","price":5}`)))
	require.True(t, holder(t, k, marketP, "alice/disk-1k"))
	requireOK(t, k.Do(ctx, invoke("alice", "cancel", `{"right":"alice/disk-1k"}`)))
	require.True(t, holder(t, k, "alice", "alice/disk-1k"))

	require.NoError(t, k.CheckLedger(ctx))
	require.Equal(t, tot, totals(t, k), "quotas + rights conserved throughout")
}

// TestEscrowNeedsStanding: an escrow whose principal never granted it
// standing, or whose code or configuration changed after the grant, can
// hold nothing: the sell fails with NO_STANDING and the invocation changes
// nothing.
func TestEscrowNeedsStanding(t *testing.T) {
	require.Equal(t, []byte("\x00asm"), market.Escrow[:4])
	k := world(t, genesis.Spec{Principals: []genesis.PrincipalSpec{{ID: "op"}, {ID: "mkt"}}})
	require.NoError(t, k.SetQuota(ctx, "op", kernel.Disk, 8<<20))
	require.NoError(t, k.SetQuota(ctx, "mkt", kernel.Disk, 8<<20))
	requireOK(t, k.Do(ctx, kernel.Action{Kind: kernel.KindMintRight, Caller: "op", Target: "r", Resource: string(kernel.LLMRate), Amount: 1}))
	sell := func(exe string) kernel.Result {
		t.Helper()
		res := k.Do(ctx, kernel.Action{Kind: kernel.KindInvoke, Caller: "op", Target: exe, Method: "sell", Args: []byte(`{"right":"r","price":1}`)})
		require.True(t, holder(t, k, "op", "r"), "rolled back")
		return res
	}
	// Configured to act as "mkt", which never agreed: an id (or a name in
	// metadata) gives nothing.
	requireOK(t, k.Do(ctx, kernel.Action{Kind: kernel.KindWrite, Caller: "op", Target: "x", Type: kernel.TypeExecutable, Content: market.Escrow,
		Metadata: map[string]string{"principal": "mkt"}}))
	res := sell("x")
	require.Equal(t, abi.ExecutionFailed, res.Code)
	require.Contains(t, res.Message, "NO_STANDING")

	// Granted, then reconfigured by its controller: the grant is void.
	require.NoError(t, market.Deploy(ctx, k, "mkt", "y"))
	requireOK(t, k.Do(ctx, kernel.Action{Kind: kernel.KindEdit, Caller: "mkt", Target: "y", Metadata: map[string]string{"note": "v2"}}))
	res = sell("y")
	require.Equal(t, abi.ExecutionFailed, res.Code)
	require.Contains(t, res.Message, "NO_STANDING")
}

// TestReproducible rebuilds the escrow with the README's command and
// requires the committed escrow.wasm byte for byte.
func TestReproducible(t *testing.T) {
	if runtime.Version() != market.BuiltWith {
		testenv.SkipOrFail(t, fmt.Sprintf("escrow.wasm was built with %s; this test runs %s", market.BuiltWith, runtime.Version()))
	}
	out := filepath.Join(t.TempDir(), "escrow.wasm")
	cmd := exec.Command("go", append(market.BuildArgs, "-o", out, ".")...)
	cmd.Dir = "escrow"
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOFLAGS=", "CGO_ENABLED=0")
	msg, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", msg)
	rebuilt, err := os.ReadFile(out)
	require.NoError(t, err)
	require.True(t, bytes.Equal(market.Escrow, rebuilt),
		"escrow.wasm differs from a rebuild (%d vs %d bytes): rebuild with the README command and commit",
		len(market.Escrow), len(rebuilt))
}
