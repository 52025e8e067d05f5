package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/genesis"
	"github.com/kernelhost/kernelhost/host"
	"github.com/kernelhost/kernelhost/internal/testworld"
	"github.com/kernelhost/kernelhost/kernel"
)

// benchRich is the scrip of every bench principal: transfers never run dry.
const benchRich = 1 << 40

// BenchmarkAction measures transfers through Kernel.Do on PostgreSQL, on
// one node and on three nodes sharing the database (see the package doc),
// with 16 and 64 writers: goroutines spread over the nodes round-robin,
// each repeating a transfer of 1 scrip between a pair of principals of its
// own, so that no two writers touch the same principal and what the nodes
// contend on is the kernel's own shared state. The genesis world is
// installed (by node 0), so that the store holds what a real world holds;
// a transfer is kernel-judged and runs no contract. The clock is the wall
// clock; cpu_rate and llm_rate are raised so that a long run measures the
// steady state.
//
// Besides ns/op and allocs/op (of the whole process: every node, and pgx)
// it reports actions/s; conflicts/op, the CONFLICT results per transfer
// (an action whose retries ran out); batch-conflicts/op, the committer
// batches PostgreSQL aborted with a serialisation failure, per transfer
// (each ran again with every action in it: the retries the results do not
// show); and actions/batch, the transfers per committed batch over every
// node (kernel.CommitStats).
//
// The name keeps BenchmarkAction's scheme (kernel/bench_test.go) so that
// `-bench 'BenchmarkAction/transfer-postgres'` selects these rows.
func BenchmarkAction(b *testing.B) {
	for _, c := range []struct {
		nodes, writers int
	}{{1, 16}, {1, 64}, {3, 16}, {3, 64}} {
		name := fmt.Sprintf("transfer-postgres-%dnode-%d", c.nodes, c.writers)
		if c.nodes > 1 {
			name = fmt.Sprintf("transfer-postgres-%dnodes-%d", c.nodes, c.writers)
		}
		b.Run(name, func(b *testing.B) { benchTransfers(b, c.nodes, c.writers) })
	}
}

// benchNodes opens n nodes, each with a wasm host of its own (the tests'
// configuration: the shared compilation cache), and installs genesis
// through node 0.
func benchNodes(b *testing.B, n int) []*node {
	b.Helper()
	ctx := context.Background()
	cfg := kernel.Config{
		Clock: time.Now, DefaultContract: genesis.DefaultContract, ContractTimeout: time.Second,
		// At least genesis.MinContentBytes: genesis installs the rights
		// registry, a Go module of a few MiB.
		MaxContentBytes: 8 << 20,
		DefaultQuotas:   map[kernel.Resource]int64{kernel.CPURate: 1 << 50, kernel.LLMRate: 1 << 50},
	}
	nodes := openNodes(b, n, cfg, func(int) kernel.Evaluator {
		h, err := host.New(ctx, testworld.HostConfig())
		require.NoError(b, err)
		b.Cleanup(func() { _ = h.Close(ctx) })
		return h
	})
	require.NoError(b, genesis.Install(ctx, nodes[0].k, genesis.Spec{}))
	return nodes
}

// benchTransfers runs b.N transfers from writers goroutines over n nodes
// and reports the metrics BenchmarkAction describes. Any failure other
// than CONFLICT fails the benchmark.
func benchTransfers(b *testing.B, n, writers int) {
	ctx := context.Background()
	nodes := benchNodes(b, n)
	type pair struct {
		k        *kernel.Kernel
		from, to string
	}
	pairs := make([]pair, writers)
	for g := range pairs {
		p := pair{k: nodes[g%n].k, from: fmt.Sprintf("payer-%d", g), to: fmt.Sprintf("payee-%d", g)}
		for _, id := range []string{p.from, p.to} {
			require.NoError(b, p.k.CreatePrincipal(ctx, id, benchRich))
		}
		pairs[g] = p
	}
	// The counters before the timed loop: genesis and the principals went
	// through the same committers.
	var batches0, actions0, conflicts0, lockRetries0 uint64
	for _, nd := range nodes {
		s := nd.k.CommitStats()
		batches0, actions0 = batches0+s.Batches, actions0+s.Actions
		lockRetries0 += s.LockRetries
		conflicts0 += uint64(nd.st.conflicts.Load())
	}
	var next, conflicts atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	for _, p := range pairs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := kernel.Action{Kind: kernel.KindTransfer, Caller: p.from, To: p.to, Amount: 1}
			for next.Add(1) <= int64(b.N) {
				res := p.k.Do(ctx, a)
				switch {
				case res.OK:
				case res.Code == abi.Conflict:
					conflicts.Add(1)
				default:
					b.Errorf("transfer: %s %s", res.ErrorCode, res.Message)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	var batches, actions, batchConflicts, lockRetries uint64
	for _, nd := range nodes {
		s := nd.k.CommitStats()
		batches, actions = batches+s.Batches, actions+s.Actions
		batchConflicts += uint64(nd.st.conflicts.Load())
		lockRetries += s.LockRetries
	}
	batches, actions, batchConflicts, lockRetries = batches-batches0, actions-actions0, batchConflicts-conflicts0, lockRetries-lockRetries0
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "actions/s")
	b.ReportMetric(float64(conflicts.Load())/float64(b.N), "conflicts/op")
	b.ReportMetric(float64(batchConflicts)/float64(b.N), "batch-conflicts/op")
	// Of those, the batches that lost the race for the event counter
	// before any action ran (cheap: run again at once).
	b.ReportMetric(float64(lockRetries)/float64(b.N), "lock-retries/op")
	if batches > 0 {
		b.ReportMetric(float64(actions)/float64(batches), "actions/batch")
	}
}
