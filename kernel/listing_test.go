package kernel_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
)

// listWorld: alice owns a private diary (with secret content and metadata),
// public notes, a priced report (read allowed at 5 scrip), a right governed
// by "private", and an artifact whose contract fails; bob owns public
// notes; mallory owns nothing.
func listWorld(t *testing.T) *kerneltest.World {
	t.Helper()
	w := kerneltest.NewWorld(t, nil)
	for _, p := range []string{"alice", "bob", "mallory"} {
		w.Principal(t, p, 100)
	}
	w.Deploy(t, "alice", "alice/paid", "private", func(req *abi.Request) (abi.Decision, error) {
		if req.Action == abi.ActionRead {
			return abi.Decision{Allowed: true, Cost: 5, Payee: "alice"}, nil
		}
		return kerneltest.Private(req)
	})
	w.Deploy(t, "alice", "alice/broken", "private", func(*abi.Request) (abi.Decision, error) {
		return abi.Decision{}, errors.New("trap")
	})
	for _, a := range []kernel.Action{
		{Kind: kernel.KindWrite, Caller: "alice", Target: "alice/diary", Type: "text", Contract: "private",
			Content: []byte("SECRET-CONTENT"), Metadata: map[string]string{"mood": "SECRET-META"}},
		{Kind: kernel.KindWrite, Caller: "alice", Target: "alice/notes", Type: "text", Contract: "freeware", Content: []byte("n")},
		{Kind: kernel.KindWrite, Caller: "alice", Target: "alice/report", Type: "data", Contract: "alice/paid", Content: []byte("SECRET-REPORT")},
		{Kind: kernel.KindWrite, Caller: "alice", Target: "alice/odd", Type: "data", Contract: "alice/broken", Content: []byte("o")},
		{Kind: kernel.KindWrite, Caller: "bob", Target: "bob/notes", Type: "text", Contract: "freeware", Content: []byte("b")},
	} {
		requireCode(t, abi.OK, w.Do(a))
	}
	require.NoError(t, w.K.SetQuota(ctx, "alice", kernel.LLMRate, 100))
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindMintRight, Caller: "alice", Target: "alice/llm", Resource: "llm_rate", Amount: 10, Contract: "private"}))
	return w
}

func listedIDs(l []kernel.ListedArtifact) []string {
	out := []string{}
	for _, a := range l {
		out = append(out, a.ID)
	}
	return out
}

// TestListArtifactsVisibility: a listing shows only what the caller's read
// checks allow, judged by each artifact's own contract: mallory does not see
// alice's private diary, alice's right (governed by "private"), alice's
// contract alice/paid (governed by "private") or an artifact whose contract
// fails; she does see a priced report (a priced read is visible, and
// listing it charges no scrip). Alice sees her own. Types
// come with the ids; content and metadata never do.
func TestListArtifactsVisibility(t *testing.T) {
	w := listWorld(t)
	balances := map[string]uint64{}
	for _, p := range []string{"alice", "bob", "mallory"} {
		balances[p] = w.Balance(t, p)
	}

	l, err := w.K.ListArtifacts(ctx, "mallory", "alice/", "", 0)
	require.NoError(t, err)
	require.Equal(t, []string{"alice/notes", "alice/report"}, listedIDs(l.Artifacts))
	require.Equal(t, "", l.Next, "the whole prefix fit in one page")
	require.Nil(t, l.Quota)
	// alice/broken, alice/diary, alice/llm, alice/notes, alice/odd, alice/paid, alice/report
	require.Equal(t, 7, l.Examined)
	require.Equal(t, []kernel.ListedArtifact{{ID: "alice/notes", Type: "text", Contract: "freeware", Revision: 1}, {ID: "alice/report", Type: "data", Contract: "alice/paid", Revision: 1}}, l.Artifacts)

	l, err = w.K.ListArtifacts(ctx, "alice", "alice/", "", 0)
	require.NoError(t, err)
	require.Equal(t, []string{"alice/broken", "alice/diary", "alice/llm", "alice/notes", "alice/paid", "alice/report"}, listedIDs(l.Artifacts),
		"alice reads her diary, her right and her contracts; the failing contract hides alice/odd from her too")
	for _, a := range l.Artifacts {
		if a.ID == "alice/llm" {
			require.Equal(t, kernel.TypeRight, a.Type)
		}
	}

	l, err = w.K.ListArtifacts(ctx, "mallory", "", "", 0)
	require.NoError(t, err)
	require.NotContains(t, listedIDs(l.Artifacts), "alice/diary")
	require.NotContains(t, listedIDs(l.Artifacts), "alice/llm")
	require.Contains(t, listedIDs(l.Artifacts), "bob/notes")

	// No content, no metadata: an entry has exactly an id, a type, its
	// governing contract and its revision.
	typ := reflect.TypeOf(kernel.ListedArtifact{})
	require.Equal(t, 4, typ.NumField())
	for i, name := range []string{"ID", "Type", "Contract", "Revision"} {
		require.Equal(t, name, typ.Field(i).Name)
	}
	l, err = w.K.ListArtifacts(ctx, "alice", "", "", 0)
	require.NoError(t, err)
	b, err := json.Marshal(l)
	require.NoError(t, err)
	require.NotContains(t, string(b), "SECRET")
	require.Contains(t, string(b), "alice/diary", "alice's own listing names her diary, and only that")

	for p, bal := range balances {
		require.Equal(t, bal, w.Balance(t, p), "listing moves no scrip (%s)", p)
	}
}

// TestListArtifactsPaginates: following Next lists every visible artifact
// exactly once, in order, whatever the limit; a page examines at most
// kernel.MaxListExamined artifacts, so a caller who may see none of a long
// run still gets a bounded page (empty, with Next) and goes on from there.
func TestListArtifactsPaginates(t *testing.T) {
	w := kerneltest.NewWorld(t, func(c *kernel.Config) { c.DefaultQuotas = map[kernel.Resource]int64{kernel.Disk: 10 << 20} })
	w.Principal(t, "alice", 0)
	w.Principal(t, "mallory", 0)
	var want []string
	for i := 0; i < 30; i++ {
		id := fmt.Sprintf("p/%02d", i)
		contract := "freeware"
		if i%3 == 0 {
			contract = "private"
		} else {
			want = append(want, id)
		}
		requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: id, Type: "data", Contract: contract, Content: []byte("x")}))
	}
	// Ids that continue another id sort after it and are still reached.
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: "p/05.1", Type: "data", Contract: "freeware", Content: []byte("x")}))
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: "p/05/a", Type: "data", Contract: "freeware", Content: []byte("x")}))
	want = append(want[:4:4], append([]string{"p/05.1", "p/05/a"}, want[4:]...)...)
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: "q/1", Type: "data", Contract: "freeware", Content: []byte("x")}))

	for _, limit := range []int{1, 4, 7, 100} {
		var got []string
		cursor, pages := "", 0
		for {
			l, err := w.K.ListArtifacts(ctx, "mallory", "p/", cursor, limit)
			require.NoError(t, err)
			require.LessOrEqual(t, len(l.Artifacts), limit)
			got = append(got, listedIDs(l.Artifacts)...)
			pages++
			if l.Next == "" {
				break
			}
			require.Greater(t, l.Next, cursor, "the cursor moves forward")
			cursor = l.Next
			require.Less(t, pages, 100)
		}
		require.Equal(t, want, got, "limit %d", limit)
	}

	// A cursor before the prefix starts at the prefix; one past it ends.
	l, err := w.K.ListArtifacts(ctx, "mallory", "p/", "a", 2)
	require.NoError(t, err)
	require.Equal(t, want[:2], listedIDs(l.Artifacts))
	l, err = w.K.ListArtifacts(ctx, "mallory", "p/", "z", 2)
	require.NoError(t, err)
	require.Empty(t, l.Artifacts)
	require.Equal(t, "", l.Next)
	require.Zero(t, l.Examined)

	// Bounded examination: more private artifacts than one page examines.
	for i := 0; i < kernel.MaxListExamined+5; i++ {
		requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: fmt.Sprintf("r/%04d", i), Type: "data", Contract: "private", Content: []byte("x")}))
	}
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: "r/zz", Type: "data", Contract: "freeware", Content: []byte("x")}))
	calls := w.Eval.Calls()
	l, err = w.K.ListArtifacts(ctx, "mallory", "r/", "", 10)
	require.NoError(t, err)
	require.Empty(t, l.Artifacts)
	require.Equal(t, kernel.MaxListExamined, l.Examined)
	require.Equal(t, int64(kernel.MaxListExamined), w.Eval.Calls()-calls, "one read check per artifact examined")
	require.Equal(t, fmt.Sprintf("r/%04d", kernel.MaxListExamined-1), l.Next)
	l, err = w.K.ListArtifacts(ctx, "mallory", "r/", l.Next, 10)
	require.NoError(t, err)
	require.Equal(t, []string{"r/zz"}, listedIDs(l.Artifacts))
	require.Equal(t, 6, l.Examined)
	require.Equal(t, "", l.Next)
}

// TestListArtifactsCharged: every read check a listing runs is charged to
// the caller's cpu_rate as Do charges a read's run (the fake evaluator's
// runs cost 1µs each), and ArtifactList.CPU says how much. When cpu_rate
// runs out mid-page the page stops there with QUOTA_EXCEEDED (retriable,
// with a delay) in Quota, listing what was examined; Next continues after
// it, and a caller with nothing left runs no check at all.
func TestListArtifactsCharged(t *testing.T) {
	w := listWorld(t)
	used := func(p string) int64 {
		s, err := w.K.QuotaStatus(ctx, p, kernel.CPURate)
		require.NoError(t, err)
		return s.Used
	}
	before := used("mallory")
	l, err := w.K.ListArtifacts(ctx, "mallory", "alice/", "", 0)
	require.NoError(t, err)
	require.Equal(t, int64(l.Examined), l.CPU, "1µs per check")
	require.Equal(t, l.CPU, used("mallory")-before)

	// Three µs left: three checks, then QUOTA_EXCEEDED.
	require.NoError(t, w.K.SetQuota(ctx, "mallory", kernel.CPURate, used("mallory")+3))
	l, err = w.K.ListArtifacts(ctx, "mallory", "alice/", "", 0)
	require.NoError(t, err)
	require.Equal(t, 3, l.Examined)
	require.Equal(t, int64(3), l.CPU)
	require.Equal(t, "alice/llm", l.Next, "alice/broken, alice/diary, alice/llm were examined")
	require.Empty(t, l.Artifacts)
	require.NotNil(t, l.Quota)
	requireCode(t, abi.QuotaExceeded, *l.Quota)
	require.Equal(t, string(kernel.CPURate), l.Quota.Resource)
	require.Positive(t, l.Quota.RetryAfter)

	calls := w.Eval.Calls()
	l, err = w.K.ListArtifacts(ctx, "mallory", "alice/", "alice/llm", 0)
	require.NoError(t, err)
	require.NotNil(t, l.Quota)
	requireCode(t, abi.QuotaExceeded, *l.Quota)
	require.Zero(t, l.Examined)
	require.Zero(t, l.CPU)
	require.Equal(t, "alice/llm", l.Next, "nothing examined: the next try starts where this one was asked to")
	require.Equal(t, calls, w.Eval.Calls(), "no check ran for an exhausted caller")

	// Later, capacity is back and the listing goes on from the cursor.
	w.Clock.Advance(2 * time.Minute) // the default window is 60s
	l, err = w.K.ListArtifacts(ctx, "mallory", "alice/", "alice/llm", 0)
	require.NoError(t, err)
	require.Nil(t, l.Quota)
	require.Equal(t, []string{"alice/notes", "alice/report"}, listedIDs(l.Artifacts))
}

// TestListArtifactsWritesNothing: a listing changes nothing in the store
// but the caller's rate window (its checks' cpu_rate): no artifact, balance,
// grant or ledger entry, and no audit event.
func TestListArtifactsWritesNothing(t *testing.T) {
	w := listWorld(t)
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindGrantConsent, Caller: "mallory", Contract: "alice/paid", PerCallCap: 10, TotalCap: 100}))
	before, seq := snapshot(t, w.Store), lastEvent(t, w)
	for _, p := range []string{"mallory", "alice", "bob"} {
		_, err := w.K.ListArtifacts(ctx, p, "", "", 0)
		require.NoError(t, err)
	}
	_, _, err := w.K.ArtifactsPage(ctx, "", "", 0)
	require.NoError(t, err)
	require.Equal(t, seq, lastEvent(t, w))
	// Close writes what the committer still holds (the rate rows).
	require.NoError(t, w.K.Close(context.Background()))
	require.Equal(t, before, snapshot(t, w.Store), "only rate windows (w/) may change")
}

// TestListArtifactsRefusesBadInput: a prefix no id could start with, a
// cursor that is no id and an unknown caller are refused with stable codes.
func TestListArtifactsRefusesBadInput(t *testing.T) {
	w := listWorld(t)
	for _, tc := range []struct {
		caller, prefix, cursor string
		code                   abi.Code
	}{
		{"mallory", "a b", "", abi.InvalidArgument},
		{"mallory", "a\x00", "", abi.InvalidArgument},
		{"mallory", string(make([]byte, abi.MaxIDLen+1)), "", abi.InvalidArgument},
		{"mallory", "", "a//b", abi.InvalidArgument},
		{"mallory", "", "../x", abi.InvalidArgument},
		{"nobody", "", "", abi.NotFound},
		{"", "", "", abi.InvalidArgument},
	} {
		_, err := w.K.ListArtifacts(ctx, tc.caller, tc.prefix, tc.cursor, 0)
		var ke *kernel.Error
		require.ErrorAs(t, err, &ke, "%q %q %q", tc.caller, tc.prefix, tc.cursor)
		require.Equal(t, tc.code, ke.Code, ke.Msg)
		if tc.caller != "nobody" && tc.caller != "" {
			_, _, err = w.K.ArtifactsPage(ctx, tc.prefix, tc.cursor, 0)
			require.ErrorAs(t, err, &ke)
			require.Equal(t, tc.code, ke.Code, ke.Msg)
		}
	}
}

// TestArtifactsPage: the embedding program's listing (the admin token's)
// shows every artifact of the prefix, paged, with no contract run.
func TestArtifactsPage(t *testing.T) {
	w := listWorld(t)
	calls := w.Eval.Calls()
	var got []string
	cursor := ""
	for {
		page, more, err := w.K.ArtifactsPage(ctx, "alice/", cursor, 2)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page), 2)
		got = append(got, listedIDs(page)...)
		if !more {
			break
		}
		cursor = page[len(page)-1].ID
	}
	require.Equal(t, []string{"alice/broken", "alice/diary", "alice/llm", "alice/notes", "alice/odd", "alice/paid", "alice/report"}, got)
	require.Equal(t, calls, w.Eval.Calls(), "no contract runs")
}

// TestContentLimit: the limits front ends bound uploads by are the
// kernel's own: a module may be as large as Config.MaxModuleBytes, data as
// Config.MaxContentBytes, and "" means the larger.
func TestContentLimit(t *testing.T) {
	w := kerneltest.NewWorld(t, func(c *kernel.Config) { c.MaxContentBytes, c.MaxModuleBytes = 1000, 5000 })
	require.Equal(t, 5000, w.K.ContentLimit(kernel.TypeContract))
	require.Equal(t, 5000, w.K.ContentLimit(kernel.TypeExecutable))
	require.Equal(t, 1000, w.K.ContentLimit("data"))
	require.Equal(t, 5000, w.K.ContentLimit(""))
	d := kerneltest.NewWorld(t, nil)
	require.Equal(t, 8<<20, d.K.ContentLimit(kernel.TypeContract), "the default module limit")
	require.Equal(t, 1<<20, d.K.ContentLimit("text"))
}

// TestListArtifactsBoundedCPU: a page stops once its read checks have used
// kernel.MaxListCPU of the caller's cpu_rate, so a run of artifacts whose
// contract burns its whole budget (a hostile owner's) costs a lister about
// that a page, not its whole window; following Next goes on from there.
// Without the bound, one page of 30 such artifacts spent 150ms of the
// lister's cpu_rate.
func TestListArtifactsBoundedCPU(t *testing.T) {
	const (
		burn    = 5_000_000 // fuel per burner run: 5000µs at 1000 fuel per µs
		burnCPU = 5_000
	)
	var ev *meteredEval
	w := kerneltest.NewWorld(t, func(c *kernel.Config) {
		ev = &meteredEval{Evaluator: c.Evaluator.(*kerneltest.Evaluator), burner: sha256.Sum256([]byte("fake:burner")), burn: burn}
		c.Evaluator = ev
	})
	w.Principal(t, "mallory", 0)
	w.Principal(t, "bob", 0)
	w.Deploy(t, "mallory", "burner", "burner", kerneltest.AllowAll)
	for i := 0; i < 30; i++ {
		requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindWrite, Caller: "mallory", Target: fmt.Sprintf("m/%02d", i), Type: "data", Contract: "burner", Content: []byte("x")}))
	}
	l, err := w.K.ListArtifacts(ctx, "bob", "m/", "", 0)
	require.NoError(t, err)
	want := kernel.MaxListCPU / burnCPU
	require.Equal(t, want, l.Examined)
	require.Equal(t, int64(kernel.MaxListCPU), l.CPU)
	require.Len(t, l.Artifacts, want, "each is visible: the burner allows")
	require.Equal(t, fmt.Sprintf("m/%02d", want-1), l.Next)
	l, err = w.K.ListArtifacts(ctx, "bob", "m/", l.Next, 0)
	require.NoError(t, err)
	require.Equal(t, 30-want, l.Examined)
	require.Equal(t, "", l.Next)
}
