package genesis_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/genesis"
	"github.com/kernelhost/kernelhost/kernel"
)

// TestHostCallDecisionSpelling: a real executable (host/testdata/exec.wat,
// method "call") reads artifacts through the host API and returns the
// kernel's response as its output. The decision in it is spelled as the
// HTTP API spells it: "allowed", "cost", "reason" (payer and payee when
// set), never Go's field names ("Allowed", "Cost"), which the response
// carried before kernel.Result had its MarshalJSON.
func TestHostCallDecisionSpelling(t *testing.T) {
	exec, err := os.ReadFile("../host/testdata/exec.wasm")
	require.NoError(t, err)
	k := world(t, genesis.Spec{Principals: []genesis.PrincipalSpec{{ID: "alice", Balance: 100}, {ID: "bob"}}})
	for _, a := range []kernel.Action{
		{Kind: kernel.KindWrite, Caller: "alice", Target: "tool", Type: kernel.TypeExecutable, Content: exec},
		{Kind: kernel.KindWrite, Caller: "alice", Target: "open", Type: "data", Contract: genesis.Freeware, Content: []byte("o")},
		{Kind: kernel.KindWrite, Caller: "alice", Target: "diary", Type: "data", Contract: genesis.Private, Content: []byte("d")},
	} {
		res := k.Do(ctx, a)
		require.True(t, res.OK, res.Message)
	}
	for _, tc := range []struct {
		caller, target string
		allowed        bool
	}{
		{"alice", "open", true},
		{"bob", "diary", false}, // a denial carries the contract's reason
	} {
		t.Run(tc.caller+"/"+tc.target, func(t *testing.T) {
			res := k.Do(ctx, kernel.Action{Kind: kernel.KindInvoke, Caller: tc.caller, Target: "tool", Method: "call",
				Args: []byte(`{"action":{"kind":"read","target":"` + tc.target + `"}}`)})
			require.True(t, res.OK, res.Message)
			out := string(res.Output)
			require.NotContains(t, out, `"Allowed"`, out)
			require.NotContains(t, out, `"Cost"`, out)
			var resp struct {
				OK       bool                       `json:"ok"`
				Decision map[string]json.RawMessage `json:"decision"`
			}
			require.NoError(t, json.Unmarshal(res.Output, &resp), out)
			require.Equal(t, tc.allowed, resp.OK, out)
			require.NotNil(t, resp.Decision, out)
			for name := range resp.Decision {
				require.Contains(t, []string{"allowed", "cost", "payer", "payee", "reason"}, name, out)
			}
			require.JSONEq(t, map[bool]string{true: "true", false: "false"}[tc.allowed], string(resp.Decision["allowed"]), out)
			require.JSONEq(t, "0", string(resp.Decision["cost"]), out)
			if !tc.allowed {
				require.Contains(t, resp.Decision, "reason", out)
			}
			// The same read's Result, as the kernel encodes it for anyone
			// (kernel.Result's MarshalJSON), carries the same decision.
			direct, err := json.Marshal(k.Do(ctx, kernel.Action{Kind: kernel.KindRead, Caller: tc.caller, Target: tc.target}))
			require.NoError(t, err)
			var want, got struct {
				Decision json.RawMessage `json:"decision"`
			}
			require.NoError(t, json.Unmarshal(direct, &want))
			require.NoError(t, json.Unmarshal(res.Output, &got))
			require.JSONEq(t, string(want.Decision), string(got.Decision))
		})
	}
}
