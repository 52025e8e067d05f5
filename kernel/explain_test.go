package kernel_test

import (
	"errors"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
)

// payPerRead charges the config's price to its sponsor, credited to its
// payee, for every read; only the controller does anything else.
func payPerRead(req *abi.Request) (abi.Decision, error) {
	cfg := map[string]string{}
	for _, kv := range req.Config {
		cfg[kv.Key] = kv.Value
	}
	if req.Action == abi.ActionRead {
		price, _ := strconv.ParseUint(cfg["price"], 10, 64)
		return abi.Decision{Allowed: true, Cost: price, Payer: cfg["sponsor"], Payee: cfg["payee"], Reason: "paid read"}, nil
	}
	return kerneltest.Freeware(req)
}

// explainWorld has alice's private notes, alice's paid report governed by
// "paid" (price 5, sponsor carol, payee alice, governed by freeware so that
// anyone may read its config) and principals alice, bob, carol.
func explainWorld(t *testing.T) *kerneltest.World {
	t.Helper()
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "alice", 100)
	w.Principal(t, "bob", 100)
	w.Principal(t, "carol", 100)
	w.Deploy(t, "alice", "paid", "freeware", payPerRead)
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindEdit, Caller: "alice", Target: "paid",
		Metadata: map[string]string{"price": "5", "sponsor": "carol", "payee": "alice"}}))
	notes := write("alice", "notes", "secret text", map[string]string{"topic": "plans"})
	notes.Contract = "private"
	requireCode(t, abi.OK, w.Do(notes))
	report := write("alice", "report", "paid text", map[string]string{"title": "Q1"})
	report.Contract = "paid"
	requireCode(t, abi.OK, w.Do(report))
	return w
}

func lastEvent(t *testing.T, w *kerneltest.World) uint64 {
	t.Helper()
	evs, err := w.K.Events(ctx, 0, 100000)
	require.NoError(t, err)
	if len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].Seq
}

// TestExplain_noSideEffects: explaining a charged read reports the charge
// settlement would make, and changes nothing: no balance, no consent, no
// event.
func TestExplain_noSideEffects(t *testing.T) {
	w := explainWorld(t)
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindGrantConsent, Caller: "carol", Contract: "paid", PerCallCap: 10, TotalCap: 100}))
	before, seq := snapshot(t, w.Store), lastEvent(t, w)

	ex, err := w.K.Explain(ctx, kernel.Action{Kind: kernel.KindRead, Caller: "bob", Target: "report"})
	require.NoError(t, err)
	requireCode(t, abi.OK, ex.Outcome)
	require.Equal(t, []kernel.Charge{{Payer: "carol", Payee: "alice", Amount: 5, Reason: "contract"}}, ex.Outcome.Charges)
	require.Nil(t, ex.Outcome.Content)
	require.Nil(t, ex.Outcome.Artifact)
	require.Zero(t, ex.Outcome.Event)
	require.Equal(t, "paid", ex.Contract)
	require.Len(t, ex.ContractHash, 64)
	require.True(t, ex.TargetReadable)
	require.True(t, ex.ContractReadable)
	require.Empty(t, ex.Redacted)
	require.Equal(t, &abi.Decision{Allowed: true, Cost: 5, Payer: "carol", Payee: "alice", Reason: "paid read"}, ex.Decision)
	require.NotNil(t, ex.Request)
	require.Equal(t, abi.ActionRead, ex.Request.Action)
	require.Equal(t, "bob", ex.Request.Caller)
	require.Equal(t, "alice", ex.Request.CreatedBy)
	require.Equal(t, []abi.KV{{Key: "title", Value: "Q1"}}, ex.Request.Metadata)
	require.Equal(t, []abi.KV{{Key: "payee", Value: "alice"}, {Key: "price", Value: "5"}, {Key: "sponsor", Value: "carol"}}, ex.Request.Config)

	require.Equal(t, before, snapshot(t, w.Store))
	require.Equal(t, seq, lastEvent(t, w))
	g, err := w.K.Consent(ctx, "carol", "paid")
	require.NoError(t, err)
	require.Zero(t, g.Spent)

	// The real read then does what the explanation said.
	res := w.Do(kernel.Action{Kind: kernel.KindRead, Caller: "bob", Target: "report"})
	requireCode(t, abi.OK, res)
	require.Equal(t, ex.Outcome.Charges, res.Charges)
	require.Equal(t, uint64(95), w.Balance(t, "carol"))
}

// TestExplain_settlementFailures: without consent the named payer is not
// honoured; with a per-call cap too low neither.
func TestExplain_settlementFailures(t *testing.T) {
	w := explainWorld(t)
	ex, err := w.K.Explain(ctx, kernel.Action{Kind: kernel.KindRead, Caller: "bob", Target: "report"})
	require.NoError(t, err)
	requireCode(t, abi.PayerNotAuthorized, ex.Outcome)
	require.True(t, ex.Decision.Allowed)

	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindGrantConsent, Caller: "carol", Contract: "paid", PerCallCap: 1, TotalCap: 100}))
	ex, err = w.K.Explain(ctx, kernel.Action{Kind: kernel.KindRead, Caller: "bob", Target: "report"})
	require.NoError(t, err)
	requireCode(t, abi.PayerNotAuthorized, ex.Outcome)
	require.Contains(t, ex.Outcome.Message, "per-call cap")
}

// TestExplain_redactsWhatCallerCannotRead: a stranger learns the decision,
// never the metadata of an artifact (or contract) it may not read.
// Reference: docs/ARCHITECTURE.md, "no path returns an artifact's content or metadata
// without that artifact's read check".
func TestExplain_redactsWhatCallerCannotRead(t *testing.T) {
	w := explainWorld(t)
	ex, err := w.K.Explain(ctx, kernel.Action{Kind: kernel.KindRead, Caller: "bob", Target: "notes"})
	require.NoError(t, err)
	requireCode(t, abi.PermissionDenied, ex.Outcome)
	require.False(t, ex.TargetReadable)
	require.False(t, ex.ContractReadable, "private governs itself and is controlled by genesis")
	require.Equal(t, []string{"metadata", "config"}, ex.Redacted)
	require.Nil(t, ex.Request.Metadata)
	require.Nil(t, ex.Request.Config)
	require.False(t, ex.Decision.Allowed)
	require.NotContains(t, ex.Outcome.Message, "plans")

	// The controller sees everything about its own artifact.
	ex, err = w.K.Explain(ctx, kernel.Action{Kind: kernel.KindEdit, Caller: "alice", Target: "notes", Metadata: map[string]string{"x": "y"}})
	require.NoError(t, err)
	requireCode(t, abi.OK, ex.Outcome)
	require.True(t, ex.TargetReadable)
	require.Equal(t, []string{"config"}, ex.Redacted)
	require.Equal(t, []abi.KV{{Key: "topic", Value: "plans"}}, ex.Request.Metadata)
	require.Equal(t, abi.ActionEdit, ex.Request.Action)

	// A readable target whose write is denied: metadata shown, write denied.
	ex, err = w.K.Explain(ctx, kernel.Action{Kind: kernel.KindWrite, Caller: "bob", Target: "report", Content: []byte("mine")})
	require.NoError(t, err)
	requireCode(t, abi.PermissionDenied, ex.Outcome)
	require.True(t, ex.TargetReadable)
	require.Empty(t, ex.Redacted)
	require.Equal(t, uint64(4), ex.Request.PayloadSize)
}

// TestExplain_kernelJudged covers actions no contract judges, and bad input.
func TestExplain_kernelJudged(t *testing.T) {
	w := explainWorld(t)
	before := snapshot(t, w.Store)

	ex, err := w.K.Explain(ctx, write("bob", "new", "x", nil))
	require.NoError(t, err)
	requireCode(t, abi.OK, ex.Outcome)
	require.Nil(t, ex.Request)
	require.Empty(t, ex.Contract)
	require.Equal(t, before, snapshot(t, w.Store), "explained creation creates nothing")

	ex, err = w.K.Explain(ctx, kernel.Action{Kind: kernel.KindRead, Caller: "bob", Target: "missing"})
	require.NoError(t, err)
	requireCode(t, abi.NotFound, ex.Outcome)

	_, err = w.K.Explain(ctx, kernel.Action{Kind: kernel.KindTransfer, Caller: "bob", To: "alice", Amount: 1})
	require.ErrorIs(t, err, kernel.ErrInvalidArgument)
	_, err = w.K.Explain(ctx, kernel.Action{Kind: kernel.KindRead, Caller: "nobody", Target: "report"})
	require.ErrorIs(t, err, kernel.ErrNotFound)
	_, err = w.K.Explain(ctx, kernel.Action{Kind: kernel.KindRead, Caller: "bob", Target: "bad id!"})
	require.ErrorIs(t, err, kernel.ErrInvalidArgument)
}

// TestExplain_contractFails reports the failing contract's code as the
// outcome; the deny is fail-closed as in Do.
func TestExplain_contractFails(t *testing.T) {
	w := explainWorld(t)
	w.Deploy(t, "alice", "broken", "freeware", func(*abi.Request) (abi.Decision, error) {
		return abi.Decision{}, errors.New("trap")
	})
	a := write("alice", "x", "x", nil)
	a.Contract = "broken"
	requireCode(t, abi.OK, w.Do(a))
	ex, err := w.K.Explain(ctx, kernel.Action{Kind: kernel.KindDelete, Caller: "alice", Target: "x"})
	require.NoError(t, err)
	requireCode(t, abi.ContractFailed, ex.Outcome)
	require.Nil(t, ex.Decision)
	require.False(t, ex.TargetReadable)
}

// TestExplain_closed fails with UNAVAILABLE once the kernel is closed.
func TestExplain_closed(t *testing.T) {
	w := explainWorld(t)
	require.NoError(t, w.K.Close(ctx))
	_, err := w.K.Explain(ctx, kernel.Action{Kind: kernel.KindRead, Caller: "bob", Target: "report"})
	require.ErrorIs(t, err, kernel.ErrClosed)
}

// TestExplain_quota reports QUOTA_EXCEEDED when the caller has no cpu_rate
// left for the contract, as Do would; its own runs are charged to the
// caller's cpu_rate (see TestExplainCharged).
func TestExplain_quota(t *testing.T) {
	w := explainWorld(t)
	before, err := w.K.QuotaStatus(ctx, "bob", kernel.CPURate)
	require.NoError(t, err)
	ex, err := w.K.Explain(ctx, kernel.Action{Kind: kernel.KindRead, Caller: "bob", Target: "report"})
	require.NoError(t, err)
	after, err := w.K.QuotaStatus(ctx, "bob", kernel.CPURate)
	require.NoError(t, err)
	// Two runs of 1µs each (the fake evaluator's): the read check of the
	// report and that of its contract "paid".
	require.Equal(t, int64(2), ex.CPU)
	require.Equal(t, before.Used+ex.CPU, after.Used, "explain is charged its runs")

	require.NoError(t, w.K.SetQuota(ctx, "bob", kernel.CPURate, 0))
	ex, err = w.K.Explain(ctx, kernel.Action{Kind: kernel.KindRead, Caller: "bob", Target: "report"})
	require.NoError(t, err)
	requireCode(t, abi.QuotaExceeded, ex.Outcome)
	require.Equal(t, string(kernel.CPURate), ex.Outcome.Resource)
	requireCode(t, abi.QuotaExceeded, w.Do(kernel.Action{Kind: kernel.KindRead, Caller: "bob", Target: "report"}))
}
