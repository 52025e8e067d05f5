package kernel_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
	"github.com/kernelhost/kernelhost/store"
)

// sharedStores are the stores several kernels can share in one process: the
// in-memory store (serial commits) and one Badger store (serialisable, so
// concurrent batches of two kernels really conflict). PostgreSQL, the store
// several processes share, runs the same attack in bench/postgres and
// cmd/kernelhost's TestMultiNodeWorld.
var sharedStores = []struct {
	name string
	open func(t *testing.T) store.Store
}{
	{"mem", func(*testing.T) store.Store { return store.NewMem() }},
	{"badger", func(t *testing.T) store.Store {
		st, err := store.OpenBadger(t.TempDir(), store.BadgerOptions{})
		require.NoError(t, err)
		return st
	}},
}

// secondKernel opens another kernel ("node") on w's store, as a second
// process on a shared database would.
func secondKernel(t *testing.T, w *kerneltest.World) *kernel.Kernel {
	t.Helper()
	k, err := kernel.Open(context.Background(), kernel.Config{Store: w.Store, Evaluator: w.Eval, Clock: w.Clock.Now, DefaultContract: "freeware"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = k.Close(context.Background()) })
	return k
}

// sharedNodes builds a world on sc's store with a second kernel on it,
// both with Config.SharedStore: two nodes of one world.
func sharedNodes(t *testing.T, open func(*testing.T) store.Store) (*kerneltest.World, []*kernel.Kernel) {
	t.Helper()
	st := open(t)
	w := kerneltest.NewWorld(t, func(c *kernel.Config) { c.Store = st; c.SharedStore = true })
	t.Cleanup(func() { _ = st.Close() })
	k2, err := kernel.Open(context.Background(), kernel.Config{Store: st, Evaluator: w.Eval, Clock: w.Clock.Now, DefaultContract: "freeware", SharedStore: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = k2.Close(context.Background()) })
	return w, []*kernel.Kernel{w.K, k2}
}

// restartable returns a function that opens a kernel on a Badger store in
// a directory of the test, with a fake clock and evaluator that outlive
// each opening: call it, close both, call it again to restart.
func restartable(t *testing.T) (open func() (*kernel.Kernel, store.Store), clock *kerneltest.Clock, eval *kerneltest.Evaluator) {
	dir := t.TempDir()
	clock = kerneltest.NewClock(kerneltest.Start)
	eval = kerneltest.NewEvaluator()
	return func() (*kernel.Kernel, store.Store) {
		st, err := store.OpenBadger(dir, store.BadgerOptions{})
		require.NoError(t, err)
		k, err := kernel.Open(ctx, kernel.Config{Store: st, Evaluator: eval, Clock: clock.Now, DefaultContract: "freeware"})
		require.NoError(t, err)
		return k, st
	}, clock, eval
}

// TestTwoKernelsShareEventOrder: two kernels on one store number audit
// events in one gapless order, with no number given twice and no event
// lost. Each kept its own counter before (two events numbered alike
// overwrote each other).
func TestTwoKernelsShareEventOrder(t *testing.T) {
	for _, sc := range sharedStores {
		t.Run(sc.name, func(t *testing.T) {
			st := sc.open(t)
			w := kerneltest.NewWorld(t, func(c *kernel.Config) { c.Store = st })
			t.Cleanup(func() { _ = st.Close() })
			k2 := secondKernel(t, w)
			nodes := []*kernel.Kernel{w.K, k2}
			const principals, workers, perWorker = 8, 8, 25
			for i := 0; i < principals; i++ {
				w.Principal(t, fmt.Sprintf("p%d", i), 1000)
			}
			requireCode(t, abi.OK, w.Do(write("p0", "doc", "hello", nil)))

			type done struct {
				res kernel.Result
				a   kernel.Action
			}
			var mu sync.Mutex
			var results []done
			var wg sync.WaitGroup
			for g := 0; g < workers; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					k := nodes[g%len(nodes)]
					for i := 0; i < perWorker; i++ {
						a := kernel.Action{Kind: kernel.KindTransfer, Caller: fmt.Sprintf("p%d", (g+i)%principals), To: fmt.Sprintf("p%d", (g+i+1)%principals), Amount: 1}
						if i%5 == 4 {
							a = kernel.Action{Kind: kernel.KindRead, Caller: fmt.Sprintf("p%d", g%principals), Target: "doc"}
						}
						res := k.Do(context.Background(), a)
						mu.Lock()
						results = append(results, done{res, a})
						mu.Unlock()
					}
				}(g)
			}
			wg.Wait()

			// Events writes the caller's own queued read events first:
			// ask each node once, so that both queues are flushed.
			for _, k := range nodes {
				_, err := k.Events(ctx, 0, 1)
				require.NoError(t, err)
			}
			evs1, err := w.K.Events(ctx, 0, 100000)
			require.NoError(t, err)
			evs2, err := k2.Events(ctx, 0, 100000)
			require.NoError(t, err)
			require.Equal(t, evs1, evs2, "both nodes read one audit trail")
			for i, ev := range evs1 {
				require.Equal(t, uint64(i+1), ev.Seq, "numbers are gapless and in order")
			}
			bySeq := map[uint64]kernel.Event{}
			for _, ev := range evs1 {
				bySeq[ev.Seq] = ev
			}
			transfers, reads := 0, 0
			for _, d := range results {
				require.True(t, d.res.OK, "%s: %s", d.a.Kind, d.res.Message)
				if d.a.Kind == kernel.KindRead {
					reads++
					continue
				}
				transfers++
				ev, ok := bySeq[d.res.Event]
				require.True(t, ok, "transfer event %d is stored", d.res.Event)
				require.Equal(t, d.a.Caller, ev.Caller, "event %d is this transfer's", d.res.Event)
				require.Equal(t, d.a.To, ev.To)
				delete(bySeq, d.res.Event) // no number given twice
			}
			readEvents := 0
			for _, ev := range evs1 {
				if ev.Kind == kernel.KindRead {
					readEvents++
				}
			}
			require.Equal(t, reads, readEvents, "every read left its event")
			require.Equal(t, workers*perWorker, transfers+reads)
			require.NoError(t, w.K.CheckLedger(ctx))
		})
	}
}

// TestTwoKernelsShareRateWindow: two kernels consuming one principal's
// llm_rate at once, many times more than the quota, together get exactly
// what one kernel would grant: each checks the other's stored usage, and
// the store's serialisability makes a consumption that raced another run
// again. Each kernel counted only its own usage before (2× the quota).
func TestTwoKernelsShareRateWindow(t *testing.T) {
	for _, sc := range sharedStores {
		t.Run(sc.name, func(t *testing.T) {
			w, nodes := sharedNodes(t, sc.open)
			w.Principal(t, "agent", 0)
			const quota, amount = 1000, 7
			require.NoError(t, w.K.SetQuota(ctx, "agent", kernel.LLMRate, quota))

			var granted, refused sync.Map
			var wg sync.WaitGroup
			for g := 0; g < 8; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					k := nodes[g%2]
					for i := 0; i < 20; i++ {
						res := k.ConsumeQuota(context.Background(), "agent", kernel.LLMRate, amount)
						switch {
						case res.OK:
							granted.Store(fmt.Sprint(g, i), true)
						case res.Code == abi.QuotaExceeded:
							refused.Store(fmt.Sprint(g, i), true)
						default:
							t.Errorf("consume: %s %s", res.ErrorCode, res.Message)
						}
					}
				}(g)
			}
			wg.Wait()
			n := 0
			granted.Range(func(any, any) bool { n++; return true })
			require.Equal(t, quota/amount, n, "exactly the quota is granted across both kernels")
			for _, k := range nodes {
				s, err := k.QuotaStatus(ctx, "agent", kernel.LLMRate)
				require.NoError(t, err)
				require.Equal(t, int64(quota/amount*amount), s.Used, "each node sees the whole usage")
			}
		})
	}
}

// TestRateWindowSurvivesRestart: usage of a renewable quota is in the
// store, so a restarted kernel still counts it (before, a restart forgot
// it and granted a whole window again), until it leaves the window.
func TestRateWindowSurvivesRestart(t *testing.T) {
	open, clock, eval := restartable(t)
	eval.Register([]byte("fake:freeware"), kerneltest.Freeware)
	k, st := open()
	require.NoError(t, k.CreatePrincipal(ctx, "agent", 0))
	require.NoError(t, k.SetQuota(ctx, "agent", kernel.LLMRate, 1000))
	requireCode(t, abi.OK, k.ConsumeQuota(ctx, "agent", kernel.LLMRate, 900))
	clock.Advance(10 * time.Second)
	requireCode(t, abi.OK, k.ConsumeQuota(ctx, "agent", kernel.LLMRate, 50))
	require.NoError(t, k.Close(ctx))
	require.NoError(t, st.Close())

	k, st = open()
	defer func() { _ = k.Close(ctx); _ = st.Close() }()
	s, err := k.QuotaStatus(ctx, "agent", kernel.LLMRate)
	require.NoError(t, err)
	require.Equal(t, int64(950), s.Used, "the restarted kernel counts the usage")
	clock.Advance(5 * time.Second) // t0+15s
	res := k.ConsumeQuota(ctx, "agent", kernel.LLMRate, 100)
	requireCode(t, abi.QuotaExceeded, res)
	require.True(t, res.Retriable)
	require.Equal(t, 45*time.Second, res.RetryAfter, "the 900 leave the window 60 s after they were used")
	requireCode(t, abi.OK, k.ConsumeQuota(ctx, "agent", kernel.LLMRate, 50))

	// At the bucket's resolution (1 s of a 60 s window, times on whole
	// seconds here), usage leaves exactly when the exact log would drop it.
	used := func() int64 {
		s, err := k.QuotaStatus(ctx, "agent", kernel.LLMRate)
		require.NoError(t, err)
		return s.Used
	}
	clock.Advance(45 * time.Second) // t0+60s
	require.Equal(t, int64(100), used(), "the 900 left the window")
	clock.Advance(10 * time.Second) // t0+70s
	require.Equal(t, int64(50), used(), "the first run's 50 left too")
	clock.Advance(5 * time.Second) // t0+75s
	require.Zero(t, used(), "this run's 50 left")
}

// TestLedgerTotalsSharded: burns of different principals go to different
// shards of l/burned (one key every burning action would write is a hot
// key for several nodes), Totals and CheckLedger sum them, and a store's
// unsharded total (written before the shards) still counts.
func TestLedgerTotalsSharded(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "owner", 0)
	w.Deploy(t, "owner", "toll", "private", func(*abi.Request) (abi.Decision, error) {
		return abi.Decision{Allowed: true, Cost: 3}, nil // no payee: burned
	})
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindWrite, Caller: "owner", Target: "gate", Type: "data", Content: []byte("x"), Contract: "toll"}))
	const n = 16
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("reader-%d", i)
		w.Principal(t, id, 10)
		requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindRead, Caller: id, Target: "gate"}))
	}
	shards := map[string]uint64{}
	require.NoError(t, w.Store.View(func(tx store.Txn) error {
		return tx.Iterate([]byte("l/burned"), nil, func(k, v []byte) error {
			shards[string(k)] = 0
			return nil
		})
	}))
	require.NotContains(t, shards, "l/burned", "no unsharded total is written")
	require.Greater(t, len(shards), 4, "16 principals' burns spread over the shards")
	tot, err := w.K.Totals(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(3*n), tot.Burned)
	require.NoError(t, w.K.CheckLedger(ctx))

	// An older store's single key adds to the shards.
	require.NoError(t, w.Store.Update(func(tx store.Txn) error {
		var key string
		for k := range shards {
			key = k
			break
		}
		v, err := tx.Get([]byte(key))
		if err != nil {
			return err
		}
		if err := tx.Delete([]byte(key)); err != nil {
			return err
		}
		return tx.Set([]byte("l/burned"), v)
	}))
	tot, err = w.K.Totals(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(3*n), tot.Burned)
	require.NoError(t, w.K.CheckLedger(ctx))
}
