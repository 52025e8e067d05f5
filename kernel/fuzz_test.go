package kernel_test

import (
	"bytes"
	"errors"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
)

// fuzzCallers are the principals FuzzAction binds as caller: the transport
// binds the caller, never the JSON. "exe" is also an executable, which the
// principal "exe" granted standing, so that "as": "exe" works.
var fuzzCallers = []string{"alice", "bob", "carol", "exe", "genesis"}

// fuzzWorld is FuzzAction's world: principals with scrip, a paying contract
// ("fuzzpay": cost, payer and payee from the target's metadata) that bob
// consented to, data artifacts, an executable that performs its args as a
// host call, and a right.
func fuzzWorld(f *testing.F) *kerneltest.World {
	f.Helper()
	w := kerneltest.NewWorld(f, nil)
	for id, bal := range map[string]uint64{"alice": 100, "bob": 50, "carol": 0, "exe": 10} {
		w.Principal(f, id, bal)
	}
	w.Deploy(f, "alice", "fuzzpay", "private", func(req *abi.Request) (abi.Decision, error) {
		d := abi.Decision{Allowed: true}
		for _, kv := range req.Metadata {
			switch kv.Key {
			case "deny":
				d.Allowed, d.Reason = false, kv.Value
			case "cost":
				d.Cost, _ = strconv.ParseUint(kv.Value, 10, 64)
			case "payer":
				d.Payer = kv.Value
			case "payee":
				d.Payee = kv.Value
			}
		}
		return d, nil
	})
	w.DeployExecutable(f, "alice", "exe", "allow-all", func(req *abi.Request, calls abi.HostCalls) (abi.InvokeResult, error) {
		out := calls.Call(req.Args)
		return abi.InvokeResult{OK: bytes.HasPrefix(out, []byte(`{"ok":true`)), Output: out}, nil
	})
	for _, a := range []kernel.Action{
		{Kind: kernel.KindWrite, Caller: "alice", Target: "doc", Type: "data", Content: []byte("v1"), Metadata: map[string]string{"a": "b"}},
		{Kind: kernel.KindWrite, Caller: "alice", Target: "paid", Type: "data", Contract: "fuzzpay", Content: []byte("v1"),
			Metadata: map[string]string{"cost": "3", "payer": "bob", "payee": "carol"}},
		{Kind: kernel.KindGrantConsent, Caller: "bob", Contract: "fuzzpay", PerCallCap: 5, TotalCap: 40},
		{Kind: kernel.KindMintRight, Caller: "alice", Target: "r1", Resource: string(kernel.LLMRate), Amount: 10},
		{Kind: kernel.KindGrantStanding, Caller: "exe", Target: "exe"},
	} {
		res := w.Do(a)
		require.True(f, res.OK, "%s %s: %s", a.Kind, a.Target, res.Message)
	}
	return w
}

// fuzzSeed is one seed: the index of its caller in fuzzCallers and the
// action's JSON.
type fuzzSeed struct {
	caller uint8
	json   []byte
}

// fuzzSeeds are valid actions of every kind, by callers and in an order under
// which each succeeds when the seeds run in sequence on a fresh fuzzWorld,
// then JSON-only forms and inputs DecodeAction or Do must refuse.
func fuzzSeeds(f *testing.F) []fuzzSeed {
	f.Helper()
	const alice, bob, carol, exe, genesis = 0, 1, 2, 3, 4
	var seeds []fuzzSeed
	for _, s := range []struct {
		caller uint8
		a      kernel.Action
	}{
		{alice, kernel.Action{Kind: kernel.KindRead, Target: "doc"}},
		{carol, kernel.Action{Kind: kernel.KindRead, Target: "paid"}}, // bob pays carol
		{alice, kernel.Action{Kind: kernel.KindWrite, Target: "doc", Content: []byte("v2")}},
		{exe, kernel.Action{Kind: kernel.KindWrite, Target: "new", Type: "data", Content: []byte("x"), Metadata: map[string]string{"cost": "1", "payer": "bob"}, Contract: "fuzzpay"}},
		{alice, kernel.Action{Kind: kernel.KindWrite, Target: "c2", Type: kernel.TypeContract, Contract: "private", Content: []byte("fake:allow-all")}},
		{alice, kernel.Action{Kind: kernel.KindEdit, Target: "doc", Metadata: map[string]string{"k": "v"}, Unset: []string{"a"}}},
		{alice, kernel.Action{Kind: kernel.KindEdit, Target: "paid", Metadata: map[string]string{"cost": "2"}}},
		{alice, kernel.Action{Kind: kernel.KindSetContract, Target: "doc", Contract: "c2"}},
		{exe, kernel.Action{Kind: kernel.KindDelete, Target: "new"}},
		{alice, kernel.Action{Kind: kernel.KindInvoke, Target: "exe", Method: "run", Args: []byte(`{"action":{"kind":"transfer","to":"bob","amount":1}}`)}},
		{alice, kernel.Action{Kind: kernel.KindInvoke, Target: "exe", Args: []byte(`{"action":{"kind":"transfer","to":"carol","amount":1},"as":"exe"}`)}},
		{bob, kernel.Action{Kind: kernel.KindInvoke, Target: "exe", Args: []byte(`{"action":{"kind":"invoke","target":"exe","args_text":"{\"query\":\"balance\",\"principal\":\"bob\"}"}}`)}},
		{carol, kernel.Action{Kind: kernel.KindInvoke, Target: "exe", Args: []byte(`{"query":"quota","principal":"alice","resource":"llm_rate"}`)}},
		{alice, kernel.Action{Kind: kernel.KindTransfer, To: "bob", Amount: 5}},
		{carol, kernel.Action{Kind: kernel.KindGrantConsent, Contract: "fuzzpay", PerCallCap: 5, TotalCap: 50}},
		{carol, kernel.Action{Kind: kernel.KindRevokeConsent, Contract: "fuzzpay"}},
		{bob, kernel.Action{Kind: kernel.KindTransferQuota, To: "carol", Resource: string(kernel.LLMRate), Amount: 10}},
		{carol, kernel.Action{Kind: kernel.KindConsumeQuota, Resource: string(kernel.LLMRate), Amount: 3}},
		{alice, kernel.Action{Kind: kernel.KindMintRight, Target: "r2", Resource: string(kernel.Disk), Amount: 10, Contract: "private"}},
		{alice, kernel.Action{Kind: kernel.KindTransferRight, Target: "r2", To: "bob"}},
		{alice, kernel.Action{Kind: kernel.KindSplitRight, Target: "r1", Amounts: []int64{3, 7}}},
		{alice, kernel.Action{Kind: kernel.KindMergeRights, Target: "r1.1", IDs: []string{"r1.2"}}},
		{alice, kernel.Action{Kind: kernel.KindRedeemRight, Target: "r1.1"}},
		{alice, kernel.Action{Kind: kernel.KindDelete, Target: "doc"}},
	} {
		b, err := kernel.EncodeAction(s.a)
		require.NoError(f, err)
		seeds = append(seeds, fuzzSeed{s.caller, b})
	}
	for _, s := range []string{
		`{"kind":"write","target":"t","type":"data","text":"hello"}`,
		`{"kind":"invoke","target":"exe","args_text":"{\"query\":\"balance\",\"principal\":\"alice\"}"}`,
		`{"kind":"invoke","target":"exe","args_text":"{\"action\":{\"kind\":\"transfer\",\"caller\":\"bob\",\"to\":\"alice\",\"amount\":1}}"}`,
		`{"kind":"write","target":"c3","type":"contract","content":"AGFzbQEAAAA="}`,
		`{"kind":"edit","target":"paid","metadata":{"cost":"18446744073709551615"}}`,
		`{"kind":"read","target":"paid"}`,
		`{"kind":"transfer","caller":"bob","to":"alice","amount":1}`,
		`{"kind":"edit","target":"doc","created_by":"bob"}`,
		`{"kind":"transfer","to":"bob","amount":-1}`,
		`{"kind":"transfer","to":"bob","amount":9223372036854775807}`,
		`{"kind":"grant_consent","contract":"fuzzpay","per_call_cap":9223372036854775807,"total_cap":9223372036854775807}`,
		`{"kind":"read","target":"doc"} {}`,
		`{"kind":"read","target":"doc","bogus":1}`,
		`{"kind":"write","target":"t","content":"aGk=","text":"hi"}`,
		`null`, `[]`, `"read"`, ``,
	} {
		seeds = append(seeds, fuzzSeed{bob, []byte(s)})
	}
	return seeds
}

// FuzzAction feeds arbitrary bytes to kernel.DecodeAction and every action it
// decodes to Do, as an existing principal, on a kerneltest world. Nothing may
// panic; a refused decode carries INVALID_ARGUMENT or IMMUTABLE_FIELD; every
// result is consistent; and after each action the ledger balances (minted =
// balances + burned, nothing minted), quotas plus rights are conserved and
// the rights index is sound.
func FuzzAction(f *testing.F) {
	w := fuzzWorld(f)
	for _, s := range fuzzSeeds(f) {
		f.Add(s.caller, s.json)
	}
	minted, err := w.K.Totals(ctx)
	require.NoError(f, err)
	conserved := fuzzTotals(f, w)
	f.Fuzz(func(t *testing.T, caller uint8, b []byte) {
		a, err := kernel.DecodeAction(b)
		if err != nil {
			var ke *kernel.Error
			require.True(t, errors.As(err, &ke), "DecodeAction returned %T: %v", err, err)
			require.Contains(t, []abi.Code{abi.InvalidArgument, abi.ImmutableField}, ke.Code, "%v", err)
			return
		}
		a.Caller = fuzzCallers[int(caller)%len(fuzzCallers)]
		res := w.Do(a)
		t.Logf("%s %s by %s: ok=%v %s %.120s", a.Kind, a.Target, a.Caller, res.OK, res.ErrorCode, res.Message)
		require.Equal(t, res.Code == abi.OK, res.OK, "%+v", res)
		if res.OK {
			require.Empty(t, res.ErrorCode)
		} else {
			require.Equal(t, res.Code.String(), res.ErrorCode)
			require.Error(t, res.Err())
		}
		require.NoError(t, w.K.CheckLedger(ctx))
		got, err := w.K.Totals(ctx)
		require.NoError(t, err)
		require.Equal(t, minted.Minted, got.Minted, "an action minted scrip")
		require.Equal(t, conserved, fuzzTotals(t, w), "quotas plus rights changed")
		require.NoError(t, kernel.CheckRightIndex(w.K))
	})
}

// fuzzTotals returns, per resource, the sum of all quotas and all rights:
// what every action conserves.
func fuzzTotals(tb testing.TB, w *kerneltest.World) map[kernel.Resource]int64 {
	tb.Helper()
	q, err := w.K.QuotaTotals(ctx)
	require.NoError(tb, err)
	r, err := w.K.RightTotals(ctx)
	require.NoError(tb, err)
	out := map[kernel.Resource]int64{}
	for _, res := range kernel.Resources {
		out[res] = q[res] + r[res]
	}
	return out
}
