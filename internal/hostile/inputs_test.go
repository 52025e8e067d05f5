package hostile_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/genesis"
	"github.com/kernelhost/kernelhost/internal/testworld"
	"github.com/kernelhost/kernelhost/kernel"
)

// TestPryingAndAmbiguousInputs is issue 14's items 4 and 5 as mallory tries
// them on a genesis world with the real host: reading alice's audit trail,
// probing her private right, ids that a path-cleaning layer would read as
// other ids, fields the kind does not use, duplicate keys, and a
// QUOTA_EXCEEDED that no wait can cure. Nothing leaks, nothing changes, and
// no refusal invites a retry that cannot succeed.
func TestPryingAndAmbiguousInputs(t *testing.T) {
	k := testworld.HostWorld(t, genesis.Spec{Principals: []genesis.PrincipalSpec{{ID: alice, Balance: 100}, {ID: mallory, Balance: 1}}})
	do := func(a kernel.Action) kernel.Result { return k.Do(ctx, a) }
	require.NoError(t, k.SetQuota(ctx, alice, kernel.LLMRate, 1000))
	res := do(kernel.Action{Kind: kernel.KindMintRight, Caller: alice, Target: "alice/secret", Resource: string(kernel.LLMRate), Amount: 337, Contract: genesis.Private})
	require.True(t, res.OK, res.Message)
	require.True(t, do(kernel.Action{Kind: kernel.KindTransfer, Caller: alice, To: "bob-not-here", Amount: 1}).Code == abi.NotFound)
	require.True(t, do(kernel.Action{Kind: kernel.KindWrite, Caller: alice, Target: "alice/notes", Type: "data", Content: []byte("private plans"), Contract: genesis.Private}).OK)

	// Probing the right: every primitive is refused without its details.
	for _, a := range []kernel.Action{
		{Kind: kernel.KindRedeemRight, Caller: mallory, Target: "alice/secret"},
		{Kind: kernel.KindTransferRight, Caller: mallory, Target: "alice/secret", To: mallory},
		{Kind: kernel.KindSplitRight, Caller: mallory, Target: "alice/secret", Amounts: []int64{1, 336}},
		{Kind: kernel.KindRead, Caller: mallory, Target: "alice/secret"},
	} {
		res := do(a)
		require.False(t, res.OK, "%s", a.Kind)
		for _, secret := range []string{"337", "llm_rate"} {
			require.NotContains(t, res.Message, secret, "%s leaks the right's details", a.Kind)
		}
	}

	// mallory's view of the audit trail holds only her own events.
	evs, _, err := k.EventsFor(ctx, mallory, 0, 1000)
	require.NoError(t, err)
	require.NotEmpty(t, evs)
	for _, ev := range evs {
		require.True(t, ev.Involves(mallory), "event %d", ev.Seq)
		b, err := json.Marshal(ev)
		require.NoError(t, err)
		require.NotContains(t, string(b), "337")
		require.NotContains(t, string(b), "bob-not-here", "alice's failed transfer is hers")
	}

	// Ids with one meaning only: none of these is created or read.
	for _, id := range []string{"../alice/notes", "alice/../alice/notes", "alice//notes", "alice/notes/", "./alice/notes", "alice/./notes"} {
		res := do(kernel.Action{Kind: kernel.KindRead, Caller: mallory, Target: id})
		require.Equal(t, abi.InvalidArgument, res.Code, id)
		res = do(kernel.Action{Kind: kernel.KindWrite, Caller: mallory, Target: id, Type: "data", Content: []byte("x")})
		require.Equal(t, abi.InvalidArgument, res.Code, id)
	}

	// Fields the kind does not use, and duplicate keys, are refused: a
	// megabyte in "target" of a transfer never reaches the audit trail.
	for _, raw := range []string{
		`{"kind":"transfer","to":"alice","amount":1,"target":"` + strings.Repeat("x", 1<<20) + `"}`,
		`{"kind":"transfer","to":"alice","amount":1,"amount":100}`,
		`{"kind":"write","target":"m/x","type":"data","metadata":{"controller":"mallory","controller":"alice"}}`,
	} {
		_, err := kernel.DecodeAction([]byte(raw))
		require.ErrorIs(t, err, kernel.ErrInvalidArgument, raw[:40])
	}
	require.Equal(t, abi.InvalidArgument, do(kernel.Action{Kind: kernel.KindTransfer, Caller: mallory, To: alice, Amount: 1, Target: "x"}).Code)

	// A request larger than the whole quota is final: no retry-after.
	require.NoError(t, k.SetQuota(ctx, mallory, kernel.LLMRate, 290))
	res = do(kernel.Action{Kind: kernel.KindConsumeQuota, Caller: mallory, Resource: string(kernel.LLMRate), Amount: 100000})
	require.Equal(t, abi.QuotaExceeded, res.Code)
	require.False(t, res.Retriable)
	require.Zero(t, res.RetryAfter)

	p, err := k.Principal(ctx, mallory)
	require.NoError(t, err)
	require.Equal(t, uint64(1), p.Balance)
	rs, err := k.Rights(ctx, alice)
	require.NoError(t, err)
	require.Len(t, rs, 1)
	require.NoError(t, k.CheckLedger(ctx))
}
