package postgres_test

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
)

// TestThreeNodesOnePostgres: three kernels on one PostgreSQL database (each
// on its own connection pool), with concurrent transfers through all three
// around a ring of principals (every principal is paid by a writer of one
// node and pays through another's, so the nodes' batches overlap), leave a
// ledger that CheckLedger accepts and that every node reads alike, with the
// balances the successful transfers make, and one audit order: every node
// reads the same events, numbered 1..N without a gap or a number given
// twice, one per successful transfer (the number its result named, with
// its parties) and nothing else. A CONFLICT result (retries ran out) is
// allowed and must leave no event; any other failure fails the test.
func TestThreeNodesOnePostgres(t *testing.T) {
	ctx := context.Background()
	const (
		nodeCount = 3
		writers   = 12 // 4 per node, round-robin
		perWriter = 20
		balance   = 1000
	)
	clock := kerneltest.NewClock(time.Unix(1_700_000_000, 0))
	nodes := openNodes(t, nodeCount, kernel.Config{Clock: clock.Now}, func(int) kernel.Evaluator {
		return kerneltest.NewEvaluator() // transfers run no contract
	})
	ids := make([]string, writers)
	for g := range ids {
		ids[g] = fmt.Sprintf("p%02d", g)
		require.NoError(t, nodes[g%nodeCount].k.CreatePrincipal(ctx, ids[g], balance))
	}

	// Writer g, on node g%3, pays ids[g+1] from ids[g], perWriter times.
	type done struct {
		from, to string
		seq      uint64
	}
	var (
		mu        sync.Mutex
		ok        []done
		conflicts int
		perNode   [nodeCount]int
		wg        sync.WaitGroup
	)
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := nodes[g%nodeCount].k
			a := kernel.Action{Kind: kernel.KindTransfer, Caller: ids[g], To: ids[(g+1)%writers], Amount: 1}
			for range perWriter {
				res := k.Do(ctx, a)
				mu.Lock()
				switch {
				case res.OK:
					ok = append(ok, done{from: a.Caller, to: a.To, seq: res.Event})
					perNode[g%nodeCount]++
				case res.Code == abi.Conflict:
					conflicts++
				default:
					t.Errorf("transfer %s -> %s on node %d: %s %s", a.Caller, a.To, g%nodeCount, res.ErrorCode, res.Message)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("%d transfers committed, %d CONFLICT, per node %v", len(ok), conflicts, perNode)
	for i, n := range perNode {
		require.Positive(t, n, "node %d committed no transfer", i)
	}

	// The ledger: conserved, and each balance what the committed transfers
	// made it, as every node reads it.
	want := map[string]uint64{}
	for _, id := range ids {
		want[id] = balance
	}
	for _, d := range ok {
		want[d.from]--
		want[d.to]++
	}
	for i, nd := range nodes {
		require.NoError(t, nd.k.CheckLedger(ctx), "node %d", i)
		for _, id := range ids {
			p, err := nd.k.Principal(ctx, id)
			require.NoError(t, err)
			require.Equal(t, want[id], p.Balance, "node %d reads %s's balance", i, id)
		}
	}

	// The audit order: 1..N, one event per committed transfer, the same on
	// every node.
	bySeq := map[uint64]done{}
	for _, d := range ok {
		_, twice := bySeq[d.seq]
		require.False(t, twice, "event %d named by two results", d.seq)
		bySeq[d.seq] = d
	}
	var first []kernel.Event
	for i, nd := range nodes {
		evs := allEvents(t, nd.k)
		require.Len(t, evs, len(ok), "node %d reads %d events for %d committed transfers", i, len(evs), len(ok))
		for j, ev := range evs {
			require.Equal(t, uint64(j+1), ev.Seq, "node %d: event %d of the order", i, j+1)
			d, found := bySeq[ev.Seq]
			require.True(t, found, "node %d: event %d is no committed transfer's", i, ev.Seq)
			require.Equal(t, kernel.KindTransfer, ev.Kind)
			require.Equal(t, abi.OK.String(), ev.Code)
			require.Equal(t, d.from, ev.Caller, "event %d", ev.Seq)
			require.Equal(t, d.to, ev.To, "event %d", ev.Seq)
		}
		if i == 0 {
			first = evs
		} else {
			require.Equal(t, first, evs, "node %d reads another order than node 0", i)
		}
	}
}

// allEvents reads every audit event through k, page by page.
func allEvents(t *testing.T, k *kernel.Kernel) []kernel.Event {
	t.Helper()
	var out []kernel.Event
	since := uint64(0)
	for {
		page, err := k.Events(context.Background(), since, 100)
		require.NoError(t, err)
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		since = page[len(page)-1].Seq
	}
}
