package kernel_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

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
