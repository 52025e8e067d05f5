package host_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/host"
)

// TestEvaluate_allocs pins the warm path's allocations: wazero's interruption
// (WithCloseOnContextDone) costs 3 per call (a channel, a goroutine, a
// closure), the host adds none for a decision without strings.
//
// NB: it uses testing.Benchmark, not testing.AllocsPerRun: the latter sets
// GOMAXPROCS to 1, where wazero's per-call goroutines pile up unscheduled and
// each needs a fresh g, which counts as one more allocation.
func TestEvaluate_allocs(t *testing.T) {
	if raceEnabled || testing.Short() {
		// make test runs it again without -race (make test-allocs).
		t.Skip("needs a benchmark run without the race detector and -short: make test-allocs")
	}
	h := newHost(t, host.Config{})
	hash := prepare(t, h, "freeware")
	req := request(abi.ActionWrite, "alice", "alice")
	lim := abi.Limits{MemoryBytes: 1 << 20}
	res := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		ctx := context.Background()
		for i := 0; i < b.N; i++ {
			if _, _, err := h.Evaluate(ctx, hash, req, lim); err != nil {
				b.Fatal(err)
			}
		}
	})
	t.Logf("%s %s", res, res.MemString())
	require.LessOrEqual(t, res.AllocsPerOp(), int64(3))
}
