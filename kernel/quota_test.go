package kernel_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/internal/hammer"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
	"github.com/kernelhost/kernelhost/store"
)

func quotaWorld(t *testing.T, quotas map[kernel.Resource]int64) *kerneltest.World {
	return kerneltest.NewWorld(t, func(c *kernel.Config) { c.DefaultQuotas = quotas })
}

// TestKernelQuotaState: quotas are kernel state per principal, persisted in
// the store, defaulting from the config and overridable per principal.
func TestKernelQuotaState(t *testing.T) {
	st := store.NewMem()
	ev := kerneltest.NewEvaluator()
	clock := kerneltest.NewClock(kerneltest.Start)
	cfg := kernel.Config{Store: st, Evaluator: ev, Clock: clock.Now, DefaultQuotas: map[kernel.Resource]int64{kernel.LLMBudget: 5000}}
	k, err := kernel.Open(ctx, cfg)
	require.NoError(t, err)
	require.NoError(t, k.CreatePrincipal(ctx, "alice", 0))
	qs, err := k.Quotas(ctx, "alice")
	require.NoError(t, err)
	got := map[kernel.Resource]int64{}
	for _, q := range qs {
		got[q.Resource] = q.Quota
	}
	require.Equal(t, map[kernel.Resource]int64{
		kernel.CPURate: 10_000_000, kernel.LLMRate: 1000, kernel.LLMBudget: 5000, kernel.Disk: 1_000_000, kernel.Memory: 100_000_000,
	}, got)
	require.NoError(t, k.SetQuota(ctx, "alice", kernel.Disk, 42))
	requireCode(t, abi.OK, k.ConsumeQuota(ctx, "alice", kernel.LLMBudget, 1200))
	require.NoError(t, k.Close(ctx))

	// Allocations and depletable usage survive a reopen.
	k, err = kernel.Open(ctx, cfg)
	require.NoError(t, err)
	s, err := k.QuotaStatus(ctx, "alice", kernel.Disk)
	require.NoError(t, err)
	require.Equal(t, int64(42), s.Quota)
	s, err = k.QuotaStatus(ctx, "alice", kernel.LLMBudget)
	require.NoError(t, err)
	require.Equal(t, kernel.QuotaStatus{Resource: kernel.LLMBudget, Quota: 5000, Used: 1200, Available: 3800}, s)

	require.ErrorIs(t, k.SetQuota(ctx, "ghost", kernel.Disk, 1), kernel.ErrNotFound)
	require.ErrorIs(t, k.SetQuota(ctx, "alice", "compute", 1), kernel.ErrInvalidArgument)
	require.ErrorIs(t, k.SetQuota(ctx, "alice", kernel.Disk, -1), kernel.ErrInvalidArgument)
	_, err = kernel.Open(ctx, kernel.Config{Store: st, Evaluator: ev, Clock: clock.Now, DefaultQuotas: map[kernel.Resource]int64{"compute": 1}})
	require.ErrorContains(t, err, `unknown resource "compute"`)
}

func TestKernelGetQuota(t *testing.T) {
	w := quotaWorld(t, nil)
	w.Principal(t, "alice", 0)
	tests := []struct {
		res  kernel.Resource
		want int64
	}{
		{kernel.CPURate, 10_000_000},
		{kernel.LLMRate, 1000},
		{kernel.LLMBudget, 0},
		{kernel.Disk, 1_000_000},
		{kernel.Memory, 100_000_000},
	}
	for _, tc := range tests {
		t.Run(string(tc.res), func(t *testing.T) {
			q, err := w.K.Quota(ctx, "alice", tc.res)
			require.NoError(t, err)
			require.Equal(t, tc.want, q)
		})
	}
	_, err := w.K.Quota(ctx, "ghost", kernel.Disk)
	require.ErrorIs(t, err, kernel.ErrNotFound)
	_, err = w.K.Quota(ctx, "alice", "compute")
	require.ErrorIs(t, err, kernel.ErrInvalidArgument, `"compute" is not a resource`)
}

// TestKernelGetAvailableCapacity: the rolling window is exact: usage frees
// up exactly one window after it happened, not at a bucket boundary.
func TestKernelGetAvailableCapacity(t *testing.T) {
	w := quotaWorld(t, map[kernel.Resource]int64{kernel.LLMRate: 1000, kernel.LLMBudget: 100})
	w.Principal(t, "alice", 0)
	avail := func(r kernel.Resource) int64 {
		t.Helper()
		v, err := w.K.AvailableCapacity(ctx, "alice", r)
		require.NoError(t, err)
		return v
	}
	require.Equal(t, int64(1000), avail(kernel.LLMRate))
	requireCode(t, abi.OK, w.K.ConsumeQuota(ctx, "alice", kernel.LLMRate, 300)) // t=0
	w.Clock.Advance(30 * time.Second)
	requireCode(t, abi.OK, w.K.ConsumeQuota(ctx, "alice", kernel.LLMRate, 200)) // t=30s
	require.Equal(t, int64(500), avail(kernel.LLMRate))
	w.Clock.Advance(29*time.Second + 999*time.Millisecond) // t=59.999s
	require.Equal(t, int64(500), avail(kernel.LLMRate))
	w.Clock.Advance(time.Millisecond) // t=60s: the first use leaves the window
	require.Equal(t, int64(800), avail(kernel.LLMRate))
	w.Clock.Advance(30 * time.Second) // t=90s
	require.Equal(t, int64(1000), avail(kernel.LLMRate))

	// Depletable: never refills.
	requireCode(t, abi.OK, w.K.ConsumeQuota(ctx, "alice", kernel.LLMBudget, 60))
	w.Clock.Advance(time.Hour)
	require.Equal(t, int64(40), avail(kernel.LLMBudget))

	// Disk: quota minus bytes stored (content, metadata and the
	// per-artifact overhead); deletes give it back.
	const ov = kernel.ArtifactOverheadBytes
	requireCode(t, abi.OK, w.Do(write("alice", "doc", "0123456789", nil)))
	require.Equal(t, int64(1_000_000-10-ov), avail(kernel.Disk))
	requireCode(t, abi.OK, w.Do(write("alice", "doc", "01234", nil)))
	require.Equal(t, int64(1_000_000-5-ov), avail(kernel.Disk))
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindEdit, Caller: "alice", Target: "doc", Metadata: map[string]string{"k": "vv"}}))
	require.Equal(t, int64(1_000_000-5-3-ov), avail(kernel.Disk))
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindDelete, Caller: "alice", Target: "doc"}))
	require.Equal(t, int64(1_000_000), avail(kernel.Disk))
	require.Equal(t, int64(100_000_000), avail(kernel.Memory))
}

// TestKernelTransferQuota: atomic, conserving, refusing bad amounts, unknown
// principals and transfers below what is in use; concurrent transfers keep
// the total exact.
func TestKernelTransferQuota(t *testing.T) {
	w := quotaWorld(t, map[kernel.Resource]int64{kernel.LLMRate: 1000, kernel.Disk: 100 + kernel.ArtifactOverheadBytes})
	w.Principal(t, "alice", 0)
	w.Principal(t, "bob", 0)
	res := w.K.TransferQuota(ctx, "alice", "bob", kernel.LLMRate, 400)
	requireCode(t, abi.OK, res)
	q := func(id string, r kernel.Resource) int64 {
		v, err := w.K.Quota(ctx, id, r)
		require.NoError(t, err)
		return v
	}
	require.Equal(t, int64(600), q("alice", kernel.LLMRate))
	require.Equal(t, int64(1400), q("bob", kernel.LLMRate))

	requireCode(t, abi.OK, w.K.ConsumeQuota(ctx, "alice", kernel.LLMRate, 500))
	requireCode(t, abi.OK, w.Do(write("alice", "doc", string(make([]byte, 80)), nil)))
	tests := []struct {
		name string
		a    kernel.Action
		want abi.Code
	}{
		{"zero", kernel.Action{Kind: kernel.KindTransferQuota, Caller: "alice", To: "bob", Resource: "llm_rate", Amount: 0}, abi.InvalidArgument},
		{"negative", kernel.Action{Kind: kernel.KindTransferQuota, Caller: "alice", To: "bob", Resource: "llm_rate", Amount: -1}, abi.InvalidArgument},
		{"unknown resource", kernel.Action{Kind: kernel.KindTransferQuota, Caller: "alice", To: "bob", Resource: "compute", Amount: 1}, abi.InvalidArgument},
		{"unknown recipient", kernel.Action{Kind: kernel.KindTransferQuota, Caller: "alice", To: "ghost", Resource: "llm_rate", Amount: 1}, abi.NotFound},
		{"unknown sender", kernel.Action{Kind: kernel.KindTransferQuota, Caller: "ghost", To: "bob", Resource: "llm_rate", Amount: 1}, abi.NotFound},
		{"to self", kernel.Action{Kind: kernel.KindTransferQuota, Caller: "alice", To: "alice", Resource: "llm_rate", Amount: 1}, abi.InvalidArgument},
		{"below rate in use", kernel.Action{Kind: kernel.KindTransferQuota, Caller: "alice", To: "bob", Resource: "llm_rate", Amount: 101}, abi.QuotaExceeded},
		{"below disk in use", kernel.Action{Kind: kernel.KindTransferQuota, Caller: "alice", To: "bob", Resource: "disk", Amount: 21}, abi.QuotaExceeded},
		{"more than held", kernel.Action{Kind: kernel.KindTransferQuota, Caller: "alice", To: "bob", Resource: "memory", Amount: 1 << 40}, abi.QuotaExceeded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, w.Store)
			requireCode(t, tc.want, w.Do(tc.a))
			require.Equal(t, before, snapshot(t, w.Store))
		})
	}
	requireCode(t, abi.OK, w.K.TransferQuota(ctx, "alice", "bob", kernel.LLMRate, 100))
	requireCode(t, abi.OK, w.K.TransferQuota(ctx, "alice", "bob", kernel.Disk, 20))

	t.Run("concurrent", func(t *testing.T) {
		w := kerneltest.NewWorld(t, func(c *kernel.Config) {
			st, err := store.OpenBadger("", store.BadgerOptions{InMemory: true})
			require.NoError(t, err)
			t.Cleanup(func() { _ = st.Close() })
			c.Store = st
		})
		const n = 6
		for i := 0; i < n; i++ {
			w.Principal(t, fmt.Sprintf("p%d", i), 0)
		}
		before, err := w.K.QuotaTotals(ctx)
		require.NoError(t, err)
		hammer.Run(t, 8, 100, func(p, i int) {
			from, to := fmt.Sprintf("p%d", (p+i)%n), fmt.Sprintf("p%d", (p*7+i*3+1)%n)
			if from == to {
				return
			}
			res := w.K.TransferQuota(ctx, from, to, kernel.Resources[i%len(kernel.Resources)], int64(1+i*997%50_000))
			if !res.OK && res.Code != abi.QuotaExceeded {
				t.Errorf("transfer: %s %s", res.ErrorCode, res.Message)
			}
		})
		after, err := w.K.QuotaTotals(ctx)
		require.NoError(t, err)
		require.Equal(t, before, after)
	})
}

func TestQuotaWouldExceed(t *testing.T) {
	w := quotaWorld(t, map[kernel.Resource]int64{kernel.LLMRate: 100})
	w.Principal(t, "alice", 0)
	requireCode(t, abi.OK, w.K.ConsumeQuota(ctx, "alice", kernel.LLMRate, 60))
	tests := []struct {
		amount int64
		want   bool
	}{{0, false}, {40, false}, {41, true}, {1000, true}}
	for _, tc := range tests {
		got, err := w.K.WouldExceed(ctx, "alice", kernel.LLMRate, tc.amount)
		require.NoError(t, err)
		require.Equal(t, tc.want, got, "amount %d", tc.amount)
	}
	_, err := w.K.WouldExceed(ctx, "alice", kernel.LLMRate, -1)
	require.ErrorIs(t, err, kernel.ErrInvalidArgument)
	// WouldExceed reserves nothing.
	requireCode(t, abi.OK, w.K.ConsumeQuota(ctx, "alice", kernel.LLMRate, 40))
}

// TestActionQuotaEnforcement: the kernel checks quotas before the action runs;
// over quota, nothing changes and the contract does not run.
func TestActionQuotaEnforcement(t *testing.T) {
	w := quotaWorld(t, map[kernel.Resource]int64{kernel.Disk: 10 + kernel.ArtifactOverheadBytes, kernel.CPURate: 3})
	w.Principal(t, "alice", 0)
	w.Principal(t, "bob", 0)
	require.NoError(t, w.K.SetQuota(ctx, "bob", kernel.Memory, 0))

	t.Run("disk on create", func(t *testing.T) {
		before := snapshot(t, w.Store)
		res := w.Do(write("alice", "big", "01234567890", nil))
		requireCode(t, abi.QuotaExceeded, res)
		require.Equal(t, "disk", res.Resource)
		require.Equal(t, int64(10+kernel.ArtifactOverheadBytes), res.Available)
		require.Equal(t, before, snapshot(t, w.Store))
	})
	t.Run("disk on growth", func(t *testing.T) {
		requireCode(t, abi.OK, w.Do(write("alice", "doc", "0123456789", nil)))
		calls := w.Eval.Calls()
		before := snapshot(t, w.Store)
		res := w.Do(write("alice", "doc", "0123456789a", nil))
		requireCode(t, abi.QuotaExceeded, res)
		require.Equal(t, calls, w.Eval.Calls(), "the contract did not run")
		require.Equal(t, before, snapshot(t, w.Store))
	})
	t.Run("cpu", func(t *testing.T) {
		// The fake evaluator reports 1µs per run; alice has 3µs per window.
		// Creation runs no contract, and the refused write never ran one.
		for i := 0; i < 3; i++ {
			requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindRead, Caller: "alice", Target: "doc"}))
		}
		calls := w.Eval.Calls()
		res := w.Do(kernel.Action{Kind: kernel.KindRead, Caller: "alice", Target: "doc"})
		requireCode(t, abi.QuotaExceeded, res)
		require.Equal(t, "cpu_rate", res.Resource)
		require.Equal(t, calls, w.Eval.Calls(), "the contract did not run")
		require.Nil(t, res.Content)
	})
	t.Run("memory", func(t *testing.T) {
		res := w.Do(kernel.Action{Kind: kernel.KindRead, Caller: "bob", Target: "doc"})
		requireCode(t, abi.QuotaExceeded, res)
		require.Equal(t, "memory", res.Resource)
	})
	t.Run("events record the refusals", func(t *testing.T) {
		evs, err := w.K.Events(ctx, 0, 0)
		require.NoError(t, err)
		last := evs[len(evs)-1]
		require.Equal(t, "QUOTA_EXCEEDED", last.Code)
		require.Equal(t, "bob", last.Caller)
	})
}

// TestQuotaRetriableError: QUOTA_EXCEEDED is retriable, says which resource,
// what is available and when capacity frees; retrying then succeeds.
func TestQuotaRetriableError(t *testing.T) {
	w := quotaWorld(t, map[kernel.Resource]int64{kernel.LLMRate: 100})
	w.Principal(t, "alice", 0)
	requireCode(t, abi.OK, w.K.ConsumeQuota(ctx, "alice", kernel.LLMRate, 70))
	w.Clock.Advance(10 * time.Second)
	requireCode(t, abi.OK, w.K.ConsumeQuota(ctx, "alice", kernel.LLMRate, 20))
	res := w.K.ConsumeQuota(ctx, "alice", kernel.LLMRate, 50)
	requireCode(t, abi.QuotaExceeded, res)
	require.True(t, res.Retriable)
	require.Equal(t, abi.CategoryResource, res.Category)
	require.Equal(t, "llm_rate", res.Resource)
	require.Equal(t, int64(10), res.Available)
	// 50 fits once the 70 used at t=0 leaves the window: 50s from now.
	require.Equal(t, 50*time.Second, res.RetryAfter)
	require.Contains(t, res.Message, "capacity frees up in 50s")
	require.ErrorIs(t, res.Err(), kernel.ErrQuotaExceeded)

	w.Clock.Advance(res.RetryAfter - time.Nanosecond)
	requireCode(t, abi.QuotaExceeded, w.K.ConsumeQuota(ctx, "alice", kernel.LLMRate, 50))
	w.Clock.Advance(time.Nanosecond)
	requireCode(t, abi.OK, w.K.ConsumeQuota(ctx, "alice", kernel.LLMRate, 50))
}

// TestQuotaTrading: two principals trade quota for scrip; both totals are
// conserved.
func TestQuotaTrading(t *testing.T) {
	w := quotaWorld(t, map[kernel.Resource]int64{kernel.LLMRate: 1000})
	w.Principal(t, "alice", 0)
	w.Principal(t, "bob", 500)
	qBefore, err := w.K.QuotaTotals(ctx)
	require.NoError(t, err)
	// bob buys 300 llm_rate from alice at 1 scrip per token.
	requireCode(t, abi.OK, w.K.TransferQuota(ctx, "alice", "bob", kernel.LLMRate, 300))
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindTransfer, Caller: "bob", To: "alice", Amount: 300}))
	require.Equal(t, uint64(300), w.Balance(t, "alice"))
	require.Equal(t, uint64(200), w.Balance(t, "bob"))
	bobQ, err := w.K.Quota(ctx, "bob", kernel.LLMRate)
	require.NoError(t, err)
	require.Equal(t, int64(1300), bobQ)
	// bob can now use more than his original quota in one window.
	requireCode(t, abi.OK, w.K.ConsumeQuota(ctx, "bob", kernel.LLMRate, 1300))
	qAfter, err := w.K.QuotaTotals(ctx)
	require.NoError(t, err)
	require.Equal(t, qBefore, qAfter)
	require.NoError(t, w.K.CheckLedger(ctx))
}

// TestRateLimitedAgent: an agent with a low cpu_rate completes fewer actions
// in a window than one with a high quota, and recovers when the window moves.
func TestRateLimitedAgent(t *testing.T) {
	w := quotaWorld(t, nil)
	w.Principal(t, "slow", 0)
	w.Principal(t, "fast", 0)
	require.NoError(t, w.K.SetQuota(ctx, "slow", kernel.CPURate, 5))   // 5µs per minute
	require.NoError(t, w.K.SetQuota(ctx, "fast", kernel.CPURate, 500)) // 500µs per minute
	w.Principal(t, "owner", 0)
	requireCode(t, abi.OK, w.Do(write("owner", "doc", "x", nil)))
	run := func(agent string) (done int) {
		for i := 0; i < 50; i++ {
			res := w.Do(kernel.Action{Kind: kernel.KindRead, Caller: agent, Target: "doc"})
			if res.OK {
				done++
				continue
			}
			require.Equal(t, abi.QuotaExceeded, res.Code)
		}
		return done
	}
	slow, fast := run("slow"), run("fast")
	require.Equal(t, 5, slow)
	require.Equal(t, 50, fast)
	w.Clock.Advance(time.Minute)
	require.Equal(t, 5, run("slow"), "the window moved on: capacity is back")
}

// TestQuotaTransferEnablesExecution: an action fails with QUOTA_EXCEEDED, a
// transfer arrives, the same action succeeds.
func TestQuotaTransferEnablesExecution(t *testing.T) {
	w := quotaWorld(t, map[kernel.Resource]int64{kernel.Disk: 8 + kernel.ArtifactOverheadBytes})
	w.Principal(t, "writer", 0)
	w.Principal(t, "donor", 0)
	a := write("writer", "essay", "twelve bytes", nil)
	res := w.Do(a)
	requireCode(t, abi.QuotaExceeded, res)
	requireCode(t, abi.OK, w.K.TransferQuota(ctx, "donor", "writer", kernel.Disk, 4))
	requireCode(t, abi.OK, w.Do(a))

	requireCode(t, abi.OK, w.K.ConsumeQuota(ctx, "writer", kernel.LLMRate, 1000))
	requireCode(t, abi.QuotaExceeded, w.K.ConsumeQuota(ctx, "writer", kernel.LLMRate, 10))
	requireCode(t, abi.OK, w.K.TransferQuota(ctx, "donor", "writer", kernel.LLMRate, 10))
	requireCode(t, abi.OK, w.K.ConsumeQuota(ctx, "writer", kernel.LLMRate, 10))
}
