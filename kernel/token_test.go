package kernel_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
)

// TestActionTokenAttributed: the token an action was authenticated with
// (Action.Token, set by the front end) is in its audit event and in those
// of every action its executables make, and in its record, so that a
// replay writes the same events; no client JSON can set it.
func TestActionTokenAttributed(t *testing.T) {
	ctx := context.Background()
	w := kerneltest.NewWorld(t, func(c *kernel.Config) { c.Record = true })
	w.Principal(t, "alice", 10)
	w.Principal(t, "bob", 0)
	w.DeployExecutable(t, "alice", "pay", "allow-all", func(req *abi.Request, calls abi.HostCalls) (abi.InvokeResult, error) {
		if r := call(calls, act(map[string]any{"kind": "transfer", "to": "bob", "amount": 1})); r["ok"] != true {
			return abi.InvokeResult{}, nil
		}
		return abi.InvokeResult{OK: true}, nil
	})
	before, err := w.K.Events(ctx, 0, 100000)
	require.NoError(t, err)
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindTransfer, Caller: "alice", To: "bob", Amount: 1, Token: "agent"}))
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindInvoke, Caller: "alice", Target: "pay", Token: "runner"}))
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindTransfer, Caller: "alice", To: "bob", Amount: 1}))
	evs, err := w.K.Events(ctx, before[len(before)-1].Seq, 100)
	require.NoError(t, err)
	var got []string
	for _, e := range evs {
		got = append(got, string(e.Kind)+"/"+e.Token)
	}
	require.Equal(t, []string{"transfer/agent", "transfer/runner", "invoke/runner", "transfer/"}, got, "nested actions carry the top-level token")

	recs, err := kernel.Records(w.Store, 0, 100000)
	require.NoError(t, err)
	var tokens []string
	for _, r := range recs {
		if r.Op == kernel.RecordDo && r.Caller == "alice" && (r.Action.Kind == kernel.KindTransfer || r.Action.Kind == kernel.KindInvoke) {
			tokens = append(tokens, r.Token)
		}
	}
	require.Equal(t, []string{"agent", "runner", ""}, tokens)

	_, err = kernel.DecodeAction([]byte(`{"kind":"transfer","to":"bob","amount":1,"token":"forged"}`))
	require.ErrorIs(t, err, kernel.ErrInvalidArgument, "no client sets the token")
}
