package llm_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/llm"
	"github.com/kernelhost/kernelhost/host"
	"github.com/kernelhost/kernelhost/internal/testworld"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/store"
)

// TestLLMExecutableReplays: a real WebAssembly executable under wazero
// (host/testdata/exec.wasm: "call" passes its args to kernel.call and
// returns the answer) asks the gateway, which asks a real upstream over
// HTTP; the world is recorded. Replayed into a fresh kernel with no
// gateway at all, every result and the final state are as recorded and
// the upstream is asked nothing more: the answers and the CPU of the
// interrupted runs come from the record.
func TestLLMExecutableReplays(t *testing.T) {
	h, err := host.New(ctx, testworld.HostConfig())
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Close(ctx) })
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "host", "testdata", name))
		require.NoError(t, err)
		return b
	}
	allow, exec := read("allow.wasm"), read("exec.wasm")
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	open := func(st store.Store, clock func() time.Time) *kernel.Kernel {
		k, err := kernel.Open(ctx, kernel.Config{Store: st, Evaluator: h, Clock: clock, DefaultContract: "allow", Record: true})
		require.NoError(t, err)
		t.Cleanup(func() { _ = k.Close(ctx) })
		return k
	}
	rec := store.NewMem()
	k := open(rec, func() time.Time { return start })
	require.NoError(t, k.CreatePrincipal(ctx, "alice", 100))
	require.NoError(t, k.SetQuota(ctx, "alice", kernel.LLMRate, 100_000))
	require.NoError(t, k.SetQuota(ctx, "alice", kernel.LLMBudget, 1_000_000))
	for _, a := range []kernel.Action{
		{Kind: kernel.KindWrite, Caller: "alice", Target: "allow", Type: kernel.TypeContract, Contract: "allow", Content: allow},
		{Kind: kernel.KindWrite, Caller: "alice", Target: "exec", Type: kernel.TypeExecutable, Content: exec},
	} {
		res := k.Do(ctx, a)
		require.True(t, res.OK, res.Message)
	}
	up := newUpstream(t, answer("hello from upstream", 12, 7))
	gw, err := llm.New(llm.Config{Kernel: k, Endpoint: up.srv.URL + "/v1", APIKey: testKey, Prices: prices})
	require.NoError(t, err)
	k.SetLLMGateway(gw)

	invoke := func(maxLLMCost *int64) execReply {
		res := k.Do(ctx, kernel.Action{Kind: kernel.KindInvoke, Caller: "alice", Target: "exec", Method: "call",
			Args: []byte(`{"llm":` + hello + `}`), MaxLLMCost: maxLLMCost})
		require.True(t, res.OK, res.Message)
		var r execReply
		require.NoError(t, json.Unmarshal(res.Output, &r), "%s", res.Output)
		return r
	}
	budget := int64(1000)
	r := invoke(&budget)
	require.True(t, r.OK, r.Message)
	require.Equal(t, "hello from upstream", r.Response.Choices[0].Message.Content)
	require.Equal(t, int64(26), r.Cost)
	r = invoke(nil)
	require.Equal(t, abi.PermissionDenied.String(), r.ErrorCode)
	r = invoke(&budget)
	require.True(t, r.OK, r.Message)
	require.Len(t, up.requests(), 2)

	recs, err := kernel.Records(rec, 0, 1000)
	require.NoError(t, err)
	var taped int
	for _, r := range recs {
		taped += len(r.Tape)
	}
	require.Equal(t, 3, taped)

	st := store.NewMem()
	clock := &kernel.ReplayClock{}
	k2 := open(st, clock.Now)
	p := &kernel.Replayer{K: k2, Clock: clock}
	for _, r := range recs {
		require.NoError(t, p.Run(ctx, r), "record %d (%s)", r.Seq, r.Op)
	}
	want, err := kernel.StateHash(rec)
	require.NoError(t, err)
	got, err := kernel.StateHash(st)
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.Len(t, up.requests(), 2, "the replay asked the upstream nothing")
}
