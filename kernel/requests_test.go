package kernel_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
	"github.com/kernelhost/kernelhost/store"
)

func pay(from, to string, amount int64, id string) kernel.Action {
	return kernel.Action{Kind: kernel.KindTransfer, Caller: from, To: to, Amount: amount, RequestID: id}
}

func eventCount(t *testing.T, k *kernel.Kernel) int {
	t.Helper()
	evs, err := k.Events(ctx, 0, 100000)
	require.NoError(t, err)
	return len(evs)
}

// TestRequestIDExactlyOnce: an action repeated with its request_id runs
// once, whoever repeats it how often, concurrently or after a restart; the
// repeat gets the first result and leaves no trace.
func TestRequestIDExactlyOnce(t *testing.T) {
	t.Run("repeat", func(t *testing.T) {
		w := kerneltest.NewWorld(t, nil)
		w.Principal(t, "alice", 100)
		w.Principal(t, "bob", 0)
		first := w.Do(pay("alice", "bob", 10, "pay-1"))
		requireCode(t, abi.OK, first)
		require.False(t, first.Replayed)
		events := eventCount(t, w.K)
		for i := 0; i < 3; i++ {
			again := w.Do(pay("alice", "bob", 10, "pay-1"))
			requireCode(t, abi.OK, again)
			require.True(t, again.Replayed)
			require.Equal(t, first.Event, again.Event, "the first result, event number included")
			require.Equal(t, first.Charges, again.Charges)
		}
		require.Equal(t, uint64(90), w.Balance(t, "alice"), "moved once")
		require.Equal(t, uint64(10), w.Balance(t, "bob"))
		require.Equal(t, events, eventCount(t, w.K), "a repeat writes no event")
		requireCode(t, abi.NotFound, w.Do(pay("ghost", "bob", 1, ""))) // no caller: no event either
		next := w.Do(pay("alice", "bob", 1, ""))
		require.Equal(t, first.Event+1, next.Event, "and neither took a number: no gap")
		require.NoError(t, w.K.CheckLedger(ctx))
	})
	t.Run("same id, other action", func(t *testing.T) {
		w := kerneltest.NewWorld(t, nil)
		w.Principal(t, "alice", 100)
		w.Principal(t, "bob", 0)
		requireCode(t, abi.OK, w.Do(pay("alice", "bob", 10, "pay-1")))
		res := w.Do(pay("alice", "bob", 20, "pay-1"))
		requireCode(t, abi.InvalidArgument, res)
		require.Contains(t, res.Message, "used for another action")
		require.Equal(t, uint64(90), w.Balance(t, "alice"))
	})
	t.Run("ids are the caller's own", func(t *testing.T) {
		w := kerneltest.NewWorld(t, nil)
		w.Principal(t, "alice", 100)
		w.Principal(t, "mallory", 100)
		w.Principal(t, "bob", 0)
		requireCode(t, abi.OK, w.Do(pay("alice", "bob", 10, "pay-1")))
		// mallory's "pay-1" neither finds alice's result nor is blocked by it.
		res := w.Do(pay("mallory", "bob", 5, "pay-1"))
		requireCode(t, abi.OK, res)
		require.False(t, res.Replayed)
		require.Equal(t, uint64(95), w.Balance(t, "mallory"))
		require.Equal(t, uint64(15), w.Balance(t, "bob"))
	})
	t.Run("concurrent repeats", func(t *testing.T) {
		w := kerneltest.NewWorld(t, nil)
		w.Principal(t, "alice", 100)
		w.Principal(t, "bob", 0)
		var wg sync.WaitGroup
		results := make([]kernel.Result, 32)
		for i := range results {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				results[i] = w.K.Do(context.Background(), pay("alice", "bob", 7, "once"))
			}(i)
		}
		wg.Wait()
		ran := 0
		for _, r := range results {
			requireCode(t, abi.OK, r)
			require.Equal(t, results[0].Event, r.Event)
			if !r.Replayed {
				ran++
			}
		}
		require.Equal(t, 1, ran, "exactly one execution")
		require.Equal(t, uint64(93), w.Balance(t, "alice"))
	})
	t.Run("final failures are kept, retriable ones are not", func(t *testing.T) {
		w := kerneltest.NewWorld(t, nil)
		w.Principal(t, "alice", 5)
		w.Principal(t, "bob", 0)
		denied := w.Do(pay("alice", "bob", 10, "too-much"))
		requireCode(t, abi.InsufficientFunds, denied)
		require.NoError(t, w.K.Mint(ctx, "alice", 100))
		again := w.Do(pay("alice", "bob", 10, "too-much"))
		requireCode(t, abi.InsufficientFunds, again)
		require.True(t, again.Replayed, "the first answer stands")
		require.Equal(t, denied.Event, again.Event)

		require.NoError(t, w.K.SetQuota(ctx, "alice", kernel.LLMRate, 10))
		consume := kernel.Action{Kind: kernel.KindConsumeQuota, Caller: "alice", Resource: "llm_rate", Amount: 10}
		requireCode(t, abi.OK, w.Do(consume))
		consume.RequestID = "later"
		res := w.Do(consume)
		requireCode(t, abi.QuotaExceeded, res)
		require.True(t, res.Retriable)
		w.Clock.Advance(time.Minute)
		res = w.Do(consume)
		requireCode(t, abi.OK, res)
		require.False(t, res.Replayed, "a retriable refusal was not kept: the retry ran")
	})
	t.Run("window", func(t *testing.T) {
		w := kerneltest.NewWorld(t, func(c *kernel.Config) { c.RequestWindow = time.Hour })
		w.Principal(t, "alice", 100)
		w.Principal(t, "bob", 0)
		requireCode(t, abi.OK, w.Do(pay("alice", "bob", 1, "a")))
		requireCode(t, abi.OK, w.Do(pay("alice", "bob", 1, "b")))
		w.Clock.Advance(time.Hour)
		res := w.Do(pay("alice", "bob", 1, "a"))
		requireCode(t, abi.OK, res)
		require.False(t, res.Replayed, "past the window the id is free: the action runs again")
		require.Equal(t, uint64(97), w.Balance(t, "alice"))
		// That write deleted alice's expired records ("b"; "a" is new).
		keys := 0
		require.NoError(t, w.Store.View(func(tx store.Txn) error {
			return tx.Iterate([]byte("q/alice\x00"), nil, func(_, _ []byte) error { keys++; return nil })
		}))
		require.Equal(t, 1, keys)
	})
	t.Run("read", func(t *testing.T) {
		w := kerneltest.NewWorld(t, nil)
		w.Principal(t, "alice", 100)
		requireCode(t, abi.OK, w.Do(write("alice", "doc", "hello", nil)))
		read := kernel.Action{Kind: kernel.KindRead, Caller: "alice", Target: "doc", RequestID: "r1"}
		first := w.Do(read)
		requireCode(t, abi.OK, first)
		require.Equal(t, "hello", string(first.Content))
		require.NotZero(t, first.Event, "a read with a request id commits, numbered")
		again := w.Do(read)
		require.True(t, again.Replayed)
		require.Nil(t, again.Content, "content is not kept: read it again")
		require.Equal(t, first.Event, again.Event)
	})
	t.Run("bad id", func(t *testing.T) {
		w := kerneltest.NewWorld(t, nil)
		w.Principal(t, "alice", 100)
		w.Principal(t, "bob", 0)
		for _, id := range []string{"a b", "../x", string(make([]byte, 129))} {
			res := w.Do(pay("alice", "bob", 1, id))
			requireCode(t, abi.InvalidArgument, res)
		}
		require.Equal(t, uint64(100), w.Balance(t, "alice"))
	})
	t.Run("across a restart", func(t *testing.T) {
		open, _, _ := restartable(t)
		k, st := open()
		require.NoError(t, k.CreatePrincipal(ctx, "alice", 100))
		require.NoError(t, k.CreatePrincipal(ctx, "bob", 0))
		first := k.Do(ctx, pay("alice", "bob", 10, "pay-1"))
		requireCode(t, abi.OK, first)
		require.NoError(t, k.Close(ctx))
		require.NoError(t, st.Close())

		k, st = open()
		defer func() { _ = k.Close(ctx); _ = st.Close() }()
		again := k.Do(ctx, pay("alice", "bob", 10, "pay-1"))
		requireCode(t, abi.OK, again)
		require.True(t, again.Replayed, "the record committed with the transfer")
		require.Equal(t, first.Event, again.Event)
		p, err := k.Principal(ctx, "alice")
		require.NoError(t, err)
		require.Equal(t, uint64(90), p.Balance)
	})
}
