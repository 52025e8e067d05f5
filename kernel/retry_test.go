package kernel_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
)

// requireQuotaExceeded checks a QUOTA_EXCEEDED result of resource res: it
// is retriable, with a positive RetryAfter, exactly when retriable says,
// and a final one says nothing about capacity freeing up.
func requireQuotaExceeded(t *testing.T, res kernel.Result, r kernel.Resource, retriable bool) {
	t.Helper()
	require.Equal(t, abi.QuotaExceeded.String(), res.ErrorCode, "message: %s", res.Message)
	require.False(t, res.OK)
	require.Equal(t, abi.CategoryResource, res.Category)
	require.Equal(t, string(r), res.Resource)
	require.ErrorIs(t, res.Err(), kernel.ErrQuotaExceeded)
	require.Equal(t, retriable, res.Retriable, "message: %s", res.Message)
	if retriable {
		require.Positive(t, res.RetryAfter, "a retriable QUOTA_EXCEEDED says how long to wait")
	} else {
		require.Zero(t, res.RetryAfter, "no wait helps: no retry-after")
		require.NotContains(t, res.Message, "frees up")
	}
}

// TestQuotaExceededRetriableOnlyIfWaitingHelps: QUOTA_EXCEEDED is retriable,
// with a retry-after, only when waiting can make the same request succeed:
// renewable capacity (cpu_rate, llm_rate) in use that leaves the window.
// A request larger than the whole quota, and any shortage of a depletable
// (llm_budget), allocatable (disk) or cap (memory) resource, is final: an
// agent that honours retriable never loops on it. Each retriable case is
// shown to succeed after the wait, each final one to fail after any wait.
// Reference: issue 14, item 5.
func TestQuotaExceededRetriableOnlyIfWaitingHelps(t *testing.T) {
	const window = 60 * time.Second
	newWorld := func(t *testing.T) *kerneltest.World {
		w := kerneltest.NewWorld(t, nil)
		w.Principal(t, "alice", 100)
		w.Principal(t, "bob", 100)
		require.NoError(t, w.K.SetQuota(ctx, "alice", kernel.LLMRate, 290))
		require.NoError(t, w.K.SetQuota(ctx, "alice", kernel.LLMBudget, 1000))
		return w
	}
	consume := func(w *kerneltest.World, r kernel.Resource, n int64) kernel.Result {
		return w.K.ConsumeQuota(ctx, "alice", r, n)
	}
	// final fails the action again after a whole window and more.
	final := func(t *testing.T, w *kerneltest.World, r kernel.Resource, a kernel.Action) {
		t.Helper()
		requireQuotaExceeded(t, w.Do(a), r, false)
		w.Clock.Advance(10 * window)
		requireQuotaExceeded(t, w.Do(a), r, false)
	}
	// retriable succeeds with the action once its retry-after passed.
	retriable := func(t *testing.T, w *kerneltest.World, r kernel.Resource, a kernel.Action) {
		t.Helper()
		res := w.Do(a)
		requireQuotaExceeded(t, res, r, true)
		require.LessOrEqual(t, res.RetryAfter, window)
		w.Clock.Advance(res.RetryAfter)
		requireCode(t, abi.OK, w.Do(a))
	}
	consumeAction := func(r kernel.Resource, n int64) kernel.Action {
		return kernel.Action{Kind: kernel.KindConsumeQuota, Caller: "alice", Resource: string(r), Amount: n}
	}

	t.Run("consume more than the whole rate quota", func(t *testing.T) {
		w := newWorld(t)
		final(t, w, kernel.LLMRate, consumeAction(kernel.LLMRate, 100000)) // the case
		final(t, w, kernel.LLMRate, consumeAction(kernel.LLMRate, 291))
		requireCode(t, abi.OK, consume(w, kernel.LLMRate, 290))
	})
	t.Run("consume what the window frees", func(t *testing.T) {
		w := newWorld(t)
		requireCode(t, abi.OK, consume(w, kernel.LLMRate, 200))
		w.Clock.Advance(10 * time.Second)
		requireCode(t, abi.OK, consume(w, kernel.LLMRate, 50))
		res := consume(w, kernel.LLMRate, 200)
		requireQuotaExceeded(t, res, kernel.LLMRate, true)
		require.Equal(t, 50*time.Second, res.RetryAfter, "the first 200 leave the window then")
		retriable(t, w, kernel.LLMRate, consumeAction(kernel.LLMRate, 200))
	})
	t.Run("consume more than the rate quota left after a transfer", func(t *testing.T) {
		w := newWorld(t)
		requireCode(t, abi.OK, consume(w, kernel.LLMRate, 200))
		requireCode(t, abi.OK, w.K.TransferQuota(ctx, "alice", "bob", kernel.LLMRate, 90))
		retriable(t, w, kernel.LLMRate, consumeAction(kernel.LLMRate, 200))
		final(t, w, kernel.LLMRate, consumeAction(kernel.LLMRate, 201)) // the quota is now 200
	})
	t.Run("depletable llm_budget", func(t *testing.T) {
		w := newWorld(t)
		requireCode(t, abi.OK, consume(w, kernel.LLMBudget, 600))
		final(t, w, kernel.LLMBudget, consumeAction(kernel.LLMBudget, 600))
		final(t, w, kernel.LLMBudget, consumeAction(kernel.LLMBudget, 5000))
		requireCode(t, abi.OK, consume(w, kernel.LLMBudget, 400))
	})
	t.Run("allocatable disk", func(t *testing.T) {
		w := newWorld(t)
		require.NoError(t, w.K.SetQuota(ctx, "alice", kernel.Disk, 10+kernel.ArtifactOverheadBytes))
		final(t, w, kernel.Disk, write("alice", "big", "0123456789a", nil))
		requireCode(t, abi.OK, w.Do(write("alice", "six", "012345", nil)))
		final(t, w, kernel.Disk, write("alice", "six-more", "012345", nil))
		// Only the principal's own delete frees disk, not time.
		requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindDelete, Caller: "alice", Target: "six"}))
		requireCode(t, abi.OK, w.Do(write("alice", "six-more", "012345", nil)))
	})
	t.Run("memory cap", func(t *testing.T) {
		w := newWorld(t)
		requireCode(t, abi.OK, w.Do(write("alice", "doc", "x", nil)))
		require.NoError(t, w.K.SetQuota(ctx, "alice", kernel.Memory, 0))
		read := kernel.Action{Kind: kernel.KindRead, Caller: "alice", Target: "doc"}
		final(t, w, kernel.Memory, read)
		ex, err := w.K.Explain(ctx, read)
		require.NoError(t, err)
		requireQuotaExceeded(t, ex.Outcome, kernel.Memory, false)
	})
	t.Run("cpu_rate", func(t *testing.T) {
		w := newWorld(t)
		requireCode(t, abi.OK, w.Do(write("alice", "doc", "x", nil)))
		read := kernel.Action{Kind: kernel.KindRead, Caller: "alice", Target: "doc"}
		// Used up in the window: the read runs again once it frees.
		cpu, err := w.K.Quota(ctx, "alice", kernel.CPURate)
		require.NoError(t, err)
		requireCode(t, abi.OK, consume(w, kernel.CPURate, cpu))
		retriable(t, w, kernel.CPURate, read)
		// No cpu_rate at all: no contract can ever run for alice.
		require.NoError(t, w.K.SetQuota(ctx, "alice", kernel.CPURate, 0))
		final(t, w, kernel.CPURate, read)
	})
	t.Run("compile charge", func(t *testing.T) {
		// Deploying a module costs cpu_rate (Config.CompileMicrosPerKiB):
		// at least 1µs per module; "fake:c1" costs 2.
		w := newWorld(t)
		w.Eval.Register([]byte("fake:c1"), kerneltest.AllowAll)
		deploy := kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: "c1", Type: kernel.TypeContract, Contract: "private", Content: []byte("fake:c1")}
		require.NoError(t, w.K.SetQuota(ctx, "alice", kernel.CPURate, 5))
		requireCode(t, abi.OK, consume(w, kernel.CPURate, 4))
		retriable(t, w, kernel.CPURate, deploy) // 1 of 5 left: the window frees the rest
		require.NoError(t, w.K.SetQuota(ctx, "alice", kernel.CPURate, 1))
		deploy.Target = "c2"
		final(t, w, kernel.CPURate, deploy) // the whole quota is less than the cost
	})
	t.Run("explain without cpu_rate", func(t *testing.T) {
		w := newWorld(t)
		requireCode(t, abi.OK, w.Do(write("alice", "doc", "x", nil)))
		read := kernel.Action{Kind: kernel.KindRead, Caller: "alice", Target: "doc"}
		requireCode(t, abi.OK, consume(w, kernel.CPURate, 10))
		// Usage in the window, but no quota left to wait for.
		require.NoError(t, w.K.SetQuota(ctx, "alice", kernel.CPURate, 0))
		ex, err := w.K.Explain(ctx, read)
		require.NoError(t, err)
		requireQuotaExceeded(t, ex.Outcome, kernel.CPURate, false)
		requireQuotaExceeded(t, w.Do(read), kernel.CPURate, false)
	})
	t.Run("transfer_quota and mint_right", func(t *testing.T) {
		w := newWorld(t)
		give := func(r kernel.Resource, n int64) kernel.Action {
			return kernel.Action{Kind: kernel.KindTransferQuota, Caller: "alice", To: "bob", Resource: string(r), Amount: n}
		}
		final(t, w, kernel.LLMRate, give(kernel.LLMRate, 300))                    // more than alice's quota
		final(t, w, kernel.LLMRate, mintRight("alice", "r", kernel.LLMRate, 300)) // the same for a right
		requireCode(t, abi.OK, consume(w, kernel.LLMRate, 250))
		retriable(t, w, kernel.LLMRate, give(kernel.LLMRate, 100)) // in use, until the window frees it
		requireCode(t, abi.OK, consume(w, kernel.LLMBudget, 600))
		final(t, w, kernel.LLMBudget, give(kernel.LLMBudget, 500)) // spent budget never comes back
		final(t, w, kernel.LLMBudget, mintRight("alice", "b", kernel.LLMBudget, 500))
	})
	t.Run("host call", func(t *testing.T) {
		// An executable sees the same answer as a direct caller.
		w := newWorld(t)
		got := map[string]map[string]any{}
		w.DeployExecutable(t, "alice", "agent", "allow-all", func(req *abi.Request, calls abi.HostCalls) (abi.InvokeResult, error) {
			for name, n := range map[string]int64{"huge": 100000, "fits later": 250} {
				var m map[string]any
				_ = json.Unmarshal(calls.Call([]byte(`{"action":{"kind":"consume_quota","resource":"llm_rate","amount":`+jsonInt(n)+`}}`)), &m)
				got[name] = m
			}
			return abi.InvokeResult{OK: true}, nil
		})
		requireCode(t, abi.OK, consume(w, kernel.LLMRate, 100))
		requireCode(t, abi.OK, w.Do(invoke("alice", "agent", "run")))
		require.Equal(t, "QUOTA_EXCEEDED", got["huge"]["error_code"])
		require.Equal(t, false, got["huge"]["retriable"])
		require.NotContains(t, got["huge"], "retry_after_ns")
		require.Equal(t, "QUOTA_EXCEEDED", got["fits later"]["error_code"])
		require.Equal(t, true, got["fits later"]["retriable"])
		require.Positive(t, got["fits later"]["retry_after_ns"])
	})
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
