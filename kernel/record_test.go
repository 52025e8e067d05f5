package kernel_test

import (
	"context"
	"errors"
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

// recordedWorld runs a busy world with recording on, from an empty store:
// concurrent transfers, reads, writes, consume_quota, request ids, a paid
// read, failures, administrative calls and LLM calls. It returns the world.
func recordedWorld(t *testing.T) *kerneltest.World {
	w := kerneltest.NewWorld(t, func(c *kernel.Config) { c.Record = true })
	for i := 0; i < 6; i++ {
		w.Principal(t, fmt.Sprintf("p%d", i), 1000)
	}
	w.Deploy(t, "p0", "toll", "private", func(*abi.Request) (abi.Decision, error) {
		return abi.Decision{Allowed: true, Cost: 2, Payee: "p0"}, nil
	})
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindWrite, Caller: "p0", Target: "gate", Type: "data", Content: []byte("x"), Contract: "toll"}))
	requireCode(t, abi.OK, w.Do(write("p1", "doc", "hello", nil)))
	require.NoError(t, w.K.SetQuota(ctx, "p2", kernel.LLMRate, 500))
	require.NoError(t, w.K.SetQuota(ctx, "p2", kernel.LLMBudget, 10_000))
	var wg sync.WaitGroup
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			me := fmt.Sprintf("p%d", g)
			for i := 0; i < 15; i++ {
				var a kernel.Action
				switch i % 5 {
				case 0:
					a = kernel.Action{Kind: kernel.KindTransfer, Caller: me, To: fmt.Sprintf("p%d", (g+1)%6), Amount: int64(i + 1)}
				case 1:
					a = kernel.Action{Kind: kernel.KindRead, Caller: me, Target: "gate"} // paid: 2 to p0
				case 2:
					a = kernel.Action{Kind: kernel.KindRead, Caller: me, Target: "doc"}
				case 3:
					a = kernel.Action{Kind: kernel.KindConsumeQuota, Caller: me, Resource: "llm_rate", Amount: 300} // refused past the quota
				case 4:
					a = kernel.Action{Kind: kernel.KindTransfer, Caller: me, To: "p0", Amount: 5000, RequestID: fmt.Sprintf("big-%d", g)} // refused, kept
				}
				w.K.Do(context.Background(), a)
			}
		}(g)
	}
	wg.Wait()
	w.Clock.Advance(30 * time.Second)
	require.NoError(t, w.K.Mint(ctx, "p3", 50))
	r, res := w.K.ReserveLLM(ctx, kernel.LLMCall{Caller: "p2", Model: "m", MaxInputTokens: 40, MaxOutputTokens: 60, InputPrice: 10, OutputPrice: 20})
	requireCode(t, abi.OK, res)
	requireCode(t, abi.OK, w.K.SettleLLM(ctx, r, kernel.LLMUsage{InputTokens: 35, OutputTokens: 12}))
	requireCode(t, abi.OK, w.Do(pay("p4", "p5", 3, "again")))
	requireCode(t, abi.OK, w.Do(pay("p4", "p5", 3, "again"))) // replayed: writes nothing, records nothing
	return w
}

// replayInto replays recs on a fresh kernel with w's evaluator; it returns
// the kernel's store and the first error (a *kernel.Divergence when a
// result differs).
func replayInto(t *testing.T, w *kerneltest.World, recs []kernel.Record) (store.Store, error) {
	st := store.NewMem()
	clock := &kernel.ReplayClock{}
	k, err := kernel.Open(ctx, kernel.Config{Store: st, Evaluator: w.Eval, Clock: clock.Now, DefaultContract: "freeware", Record: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = k.Close(ctx) })
	p := &kernel.Replayer{K: k, Clock: clock}
	for _, r := range recs {
		if err := p.Run(ctx, r); err != nil {
			return st, err
		}
	}
	require.Equal(t, len(recs), p.Count())
	return st, nil
}

// TestRecordReplayIdentical: a world recorded under concurrent load,
// replayed input by input into a fresh kernel, gives every recorded result
// and ends in the same state.
func TestRecordReplayIdentical(t *testing.T) {
	w := recordedWorld(t)
	recs, err := kernel.Records(w.Store, 0, 100000)
	require.NoError(t, err)
	last, err := kernel.LastRecord(w.Store)
	require.NoError(t, err)
	require.Equal(t, uint64(len(recs)), last)
	for i, r := range recs {
		require.Equal(t, uint64(i+1), r.Seq, "records are gapless and in order")
	}
	require.Greater(t, len(recs), 90, "the inputs of the run are there")
	ops := map[kernel.RecordOp]int{}
	for _, r := range recs {
		ops[r.Op]++
	}
	require.Equal(t, 1, ops[kernel.RecordLLMReserve])
	require.Equal(t, 1, ops[kernel.RecordLLMSettle])
	require.Equal(t, 1, ops[kernel.RecordMint])
	require.NotZero(t, ops[kernel.RecordSetQuota])

	st, err := replayInto(t, w, recs)
	require.NoError(t, err)
	want, err := kernel.StateHash(w.Store)
	require.NoError(t, err)
	got, err := kernel.StateHash(st)
	require.NoError(t, err)
	require.Equal(t, want, got, "the replay ends in the recorded world's state")

	_, err = w.K.Explain(ctx, kernel.Action{Kind: kernel.KindRead, Caller: "p1", Target: "doc"})
	require.Equal(t, abi.Unavailable, codeOfErr(err), "explain is refused while recording")
	_, err = w.K.ListArtifacts(ctx, "p1", "", "", 10)
	require.Equal(t, abi.Unavailable, codeOfErr(err), "and so is a listing: its read checks are charged")

	// Repeats of a request id and the rest wrote no event, and left no gap.
	evs, err := w.K.Events(ctx, 0, 100000)
	require.NoError(t, err)
	for i, ev := range evs {
		require.Equal(t, uint64(i+1), ev.Seq)
	}
}

// TestReplayFindsDivergence: a recording whose input was altered (or a
// world that does not behave as recorded) is caught at the first input
// whose result differs.
func TestReplayFindsDivergence(t *testing.T) {
	w := recordedWorld(t)
	recs, err := kernel.Records(w.Store, 0, 100000)
	require.NoError(t, err)
	var at int
	for i, r := range recs {
		if r.Op == kernel.RecordDo && r.Action.Kind == kernel.KindTransfer && i > 20 {
			at = i
			break
		}
	}
	recs[at].Action.Amount++ // a different transfer than the one recorded
	_, err = replayInto(t, w, recs)
	var d *kernel.Divergence
	require.True(t, errors.As(err, &d), "%v", err)
	require.Equal(t, recs[at].Seq, d.Record.Seq)
	require.NotNil(t, d.Result)
}

func codeOfErr(err error) abi.Code {
	var ke *kernel.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	return abi.OK
}
