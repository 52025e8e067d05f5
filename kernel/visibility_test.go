package kernel_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
)

// visibilityWorld is a world where alice, bob, carol and mallory act on
// each other: writes, denials, transfers, a sponsored (consented) charge,
// quota transfers and rights, mallory's refused probes included. dave is
// party to nothing.
func visibilityWorld(t *testing.T) *kerneltest.World {
	t.Helper()
	w := kerneltest.NewWorld(t, nil)
	for _, p := range []string{"alice", "bob", "carol", "mallory", "dave"} {
		w.Principal(t, p, 100)
	}
	// "sponsored" bills alice for reads, paid to carol: alice consents.
	w.Deploy(t, "alice", "sponsored", "private", func(req *abi.Request) (abi.Decision, error) {
		if req.Action == abi.ActionRead {
			return abi.Decision{Allowed: true, Cost: 3, Payer: "alice", Payee: "carol", Reason: "sponsored read"}, nil
		}
		return kerneltest.Private(req)
	})
	for _, a := range []kernel.Action{
		{Kind: kernel.KindWrite, Caller: "alice", Target: "diary", Type: "text", Contract: "private", Content: []byte("dear diary")},
		{Kind: kernel.KindWrite, Caller: "alice", Target: "menu", Type: "text", Contract: "sponsored", Content: []byte("soup")},
		{Kind: kernel.KindGrantConsent, Caller: "alice", Contract: "sponsored", PerCallCap: 3, TotalCap: 30},
		{Kind: kernel.KindRead, Caller: "bob", Target: "menu"},
		{Kind: kernel.KindTransfer, Caller: "alice", To: "bob", Amount: 7},
		{Kind: kernel.KindTransferQuota, Caller: "bob", To: "carol", Resource: string(kernel.LLMRate), Amount: 5},
		mintRight("alice", "r", kernel.LLMRate, 40),
		transferRight("alice", "r", "carol"),
		{Kind: kernel.KindWrite, Caller: "carol", Target: "note", Type: "text", Content: []byte("hi")},
	} {
		requireCode(t, abi.OK, w.Do(a))
	}
	// Failures are events too: mallory's denied read of alice's diary, her
	// refused probe of carol's right, bob's transfer beyond his balance.
	requireCode(t, abi.PermissionDenied, w.Do(kernel.Action{Kind: kernel.KindRead, Caller: "mallory", Target: "diary"}))
	requireCode(t, abi.PermissionDenied, w.Do(redeemRight("mallory", "r")))
	requireCode(t, abi.InsufficientFunds, w.Do(kernel.Action{Kind: kernel.KindTransfer, Caller: "bob", To: "mallory", Amount: 1000}))
	return w
}

// visibleTo filters evs as EventsFor must: the events p is a party to, with
// a refused caller's view of a right's holder hidden.
func visibleTo(evs []kernel.Event, p string) []kernel.Event {
	var out []kernel.Event
	for _, ev := range evs {
		if !ev.Involves(p) {
			continue
		}
		if ev.Holder != ev.Caller && ev.Holder != p {
			ev.Holder = ""
		}
		out = append(out, ev)
	}
	return out
}

// TestEventsVisibleToParties: EventsFor shows a principal only the events
// it is a party to (caller, recipient, payer, payee, holder), Events shows
// the operator all; paging a filtered view by its cursor, with any limit
// and any scan bound, terminates and neither skips nor repeats an event.
// Reference: issue 14, item 4.
func TestEventsVisibleToParties(t *testing.T) {
	w := visibilityWorld(t)
	all, err := w.K.Events(ctx, 0, 0)
	require.NoError(t, err)
	kinds := func(evs []kernel.Event) []string {
		var out []string
		for _, ev := range evs {
			out = append(out, ev.Caller+":"+string(ev.Kind)+":"+ev.Target+":"+ev.Code)
		}
		return out
	}

	// What each principal sees, exactly.
	for _, tc := range []struct {
		p    string
		want []string
	}{
		{"alice", []string{
			"alice:write:sponsored:OK", "alice:write:diary:OK", "alice:write:menu:OK", "alice:grant_consent::OK",
			"bob:read:menu:OK", // alice paid for bob's read
			"alice:transfer::OK", "alice:mint_right:r:OK", "alice:transfer_right:r:OK",
		}},
		{"bob", []string{
			"bob:read:menu:OK", "alice:transfer::OK", "bob:transfer_quota::OK",
			"bob:transfer::INSUFFICIENT_FUNDS",
		}},
		{"carol", []string{
			"bob:read:menu:OK", // carol was paid
			"bob:transfer_quota::OK", "alice:transfer_right:r:OK", "carol:write:note:OK",
			"mallory:redeem_right:r:PERMISSION_DENIED", // a probe of carol's right
		}},
		{"mallory", []string{
			"mallory:read:diary:PERMISSION_DENIED", "mallory:redeem_right:r:PERMISSION_DENIED",
			"bob:transfer::INSUFFICIENT_FUNDS", // mallory was the recipient
		}},
	} {
		t.Run(tc.p, func(t *testing.T) {
			evs, next, err := w.K.EventsFor(ctx, tc.p, 0, 0)
			require.NoError(t, err)
			require.Equal(t, tc.want, kinds(evs))
			require.Equal(t, visibleTo(all, tc.p), evs)
			require.Equal(t, all[len(all)-1].Seq, next, "the cursor is the last event examined")
			for _, ev := range evs {
				require.True(t, ev.Involves(tc.p))
			}
			// Caught up: asking from the cursor gives nothing and no progress.
			evs, again, err := w.K.EventsFor(ctx, tc.p, next, 0)
			require.NoError(t, err)
			require.Empty(t, evs)
			require.Equal(t, next, again)
		})
	}

	// mallory sees her own probe of carol's right, but not whose it is;
	// carol, the holder, does; the operator's Events too.
	probe := func(evs []kernel.Event) kernel.Event {
		for _, ev := range evs {
			if ev.Caller == "mallory" && ev.Kind == kernel.KindRedeemRight {
				return ev
			}
		}
		t.Fatal("no probe event")
		return kernel.Event{}
	}
	mine, _, err := w.K.EventsFor(ctx, "mallory", 0, 0)
	require.NoError(t, err)
	require.Empty(t, probe(mine).Holder)
	carols, _, err := w.K.EventsFor(ctx, "carol", 0, 0)
	require.NoError(t, err)
	require.Equal(t, "carol", probe(carols).Holder)
	require.Equal(t, "carol", probe(all).Holder)

	// Paging: every limit and every scan bound, continued from the cursor,
	// gives the whole view once, in order, and stops.
	for _, p := range []string{"alice", "bob", "carol", "mallory", "dave", "genesis"} {
		want := visibleTo(all, p)
		for limit := 1; limit <= 3; limit++ {
			for scan := 1; scan <= 4; scan++ {
				var got []kernel.Event
				since, calls := uint64(0), 0
				for {
					calls++
					require.LessOrEqual(t, calls, len(all)+1, "paging %s limit %d scan %d must end", p, limit, scan)
					evs, next, err := kernel.EventsForScan(ctx, w.K, p, since, limit, scan)
					require.NoError(t, err)
					require.LessOrEqual(t, len(evs), limit)
					require.GreaterOrEqual(t, next, since)
					if len(evs) > 0 {
						require.Greater(t, evs[0].Seq, since)
						require.LessOrEqual(t, evs[len(evs)-1].Seq, next)
					}
					got = append(got, evs...)
					if next == since {
						break
					}
					since = next
				}
				require.Equal(t, want, got, "paging %s limit %d scan %d", p, limit, scan)
			}
		}
	}

	// The scan bound holds even for a principal party to nothing: one call
	// examines at most the bound, and says where it stopped.
	evs, next, err := kernel.EventsForScan(ctx, w.K, "dave", 0, 1000, 2)
	require.NoError(t, err)
	require.Empty(t, evs, "dave is party to no event")
	require.Equal(t, all[1].Seq, next)

	// Bad readers get a stable code.
	_, _, err = w.K.EventsFor(ctx, "nobody", 0, 0)
	require.ErrorIs(t, err, kernel.ErrNotFound)
	_, _, err = w.K.EventsFor(ctx, "", 0, 0)
	require.ErrorIs(t, err, kernel.ErrInvalidArgument)
	_, _, err = w.K.EventsFor(ctx, "a//b", 0, 0)
	require.ErrorIs(t, err, kernel.ErrInvalidArgument)
}

// TestRightDetailsPrivate: a non-holder's refused right primitive reveals
// nothing stored in the right (resource, amount, holder) in its error or
// in the event it can read, and every right primitive checks the holder
// before anything else about the right; the holder's own primitives still
// record the details. Reference: issue 14, item 4.
func TestRightDetailsPrivate(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	for _, p := range []string{"alice", "bob", "mallory"} {
		w.Principal(t, p, 100)
	}
	// alice's right is private: its contract lets only alice read it.
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindMintRight, Caller: "alice", Target: "secret", Resource: string(kernel.LLMRate), Amount: 337, Contract: "private"}))
	requireCode(t, abi.OK, w.Do(mintRight("mallory", "m-cpu", kernel.CPURate, 11)))
	requireCode(t, abi.OK, w.Do(mintRight("mallory", "m-llm", kernel.LLMRate, 12)))
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: "ledger", Type: "xyzzy", Contract: "private", Content: []byte("x")}))

	// What mallory must not learn.
	secrets := []string{"337", "llm_rate", "alice", "xyzzy"}
	requireNoSecret := func(t *testing.T, what string, v any, own string) {
		t.Helper()
		b, err := json.Marshal(v)
		require.NoError(t, err)
		for _, s := range secrets {
			if s != own {
				require.NotContains(t, string(b), s, "%s reveals %q: %s", what, s, b)
			}
		}
	}

	for _, tc := range []struct {
		name string
		a    kernel.Action
		code abi.Code
		own  string // a secret's string that is mallory's own here
	}{
		{"redeem", redeemRight("mallory", "secret"), abi.PermissionDenied, ""},
		{"transfer", transferRight("mallory", "secret", "bob"), abi.PermissionDenied, ""},
		{"split", splitRight("mallory", "secret", []int64{1, 2}), abi.PermissionDenied, ""},
		{"split exact", splitRight("mallory", "secret", []int64{300, 37}), abi.PermissionDenied, ""},
		{"merge into", mergeRights("mallory", "secret", "m-llm"), abi.PermissionDenied, ""},
		// As a part: the same answer whether the resources match or not,
		// so the answer is no oracle for the right's resource.
		{"merge part, other resource", mergeRights("mallory", "m-cpu", "secret"), abi.PermissionDenied, ""},
		{"merge part, same resource", mergeRights("mallory", "m-llm", "secret"), abi.PermissionDenied, "llm_rate"},
		// A private artifact that is not a right: its type stays private.
		{"not a right", redeemRight("mallory", "ledger"), abi.InvalidArgument, ""},
		{"read", kernel.Action{Kind: kernel.KindRead, Caller: "mallory", Target: "secret"}, abi.PermissionDenied, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, w.Store)
			res := w.Do(tc.a)
			requireCode(t, tc.code, res)
			require.Equal(t, before, snapshot(t, w.Store), "nothing changed")
			require.Nil(t, res.Content)
			require.Nil(t, res.Artifact)
			requireNoSecret(t, "the result", res, tc.own)

			// mallory's view of her event, and the event as stored (a
			// read's result carries no number: its event is numbered
			// when the committer writes it, after the answer).
			seq := res.Event
			if tc.a.Kind == kernel.KindRead {
				require.Zero(t, seq)
				seq = lastStoredEvent(t, w.K).Seq
			}
			evs, _, err := w.K.EventsFor(ctx, "mallory", seq-1, 1)
			require.NoError(t, err)
			require.Len(t, evs, 1)
			require.Equal(t, seq, evs[0].Seq)
			requireNoSecret(t, "mallory's event", evs[0], tc.own)
			stored, err := w.K.Events(ctx, seq-1, 1)
			require.NoError(t, err)
			require.Len(t, stored, 1)
			if tc.a.Kind != kernel.KindRead && tc.a.Target == "secret" {
				require.Empty(t, stored[0].Resource, "no detail before the holder check")
				require.Zero(t, stored[0].Amount, "no detail before the holder check")
				require.Equal(t, "alice", stored[0].Holder, "the holder is recorded, for the holder and the operator")
			}
		})
	}
	// Both merges of alice's right as a part answer alike.
	a := w.Do(mergeRights("mallory", "m-cpu", "secret"))
	b := w.Do(mergeRights("mallory", "m-llm", "secret"))
	require.Equal(t, a.Message, b.Message)

	// alice sees the probes of her right (not the merges naming it as a
	// part: an event records one holder, Target's).
	evs, _, err := w.K.EventsFor(ctx, "alice", 0, 0)
	require.NoError(t, err)
	probes := 0
	for _, ev := range evs {
		if ev.Caller == "mallory" {
			probes++
			require.Equal(t, "secret", ev.Target)
			require.Equal(t, "alice", ev.Holder)
		}
	}
	require.Equal(t, 5, probes, "redeem, transfer, two splits, merge into")

	// The holder's own primitive records the details, after the check.
	res := w.Do(redeemRight("alice", "secret"))
	requireCode(t, abi.OK, res)
	evs, _, err = w.K.EventsFor(ctx, "alice", res.Event-1, 1)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	require.Equal(t, string(kernel.LLMRate), evs[0].Resource)
	require.Equal(t, int64(337), evs[0].Amount)
	require.Equal(t, "alice", evs[0].Holder)
	requireRightsSound(t, w)
}
