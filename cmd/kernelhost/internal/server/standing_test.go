package server_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/kernel"
)

// TestNoStandingByArtifactID is the squatting attack over HTTP, with
// mallory's own token: she deploys an executable under the id of a
// principal ("alice", "genesis") and asks it to act as that principal, with
// the old as_self and with "as". The ids give her nothing: every invocation
// fails, alice keeps her scrip, and genesis's contract keeps its code.
func TestNoStandingByArtifactID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.w.Principal(t, "mallory", 0)
	mallory, err := e.auth.Issue("mallory")
	require.NoError(t, err)
	// The executable performs its args as one host call.
	code := []byte("exe:forward")
	e.w.Eval.RegisterExecutable(code, func(req *abi.Request, calls abi.HostCalls) (abi.InvokeResult, error) {
		out := calls.Call(req.Args)
		return abi.InvokeResult{OK: bytes.HasPrefix(out, []byte(`{"ok":true`)), Output: out}, nil
	})
	for _, id := range []string{"alice", "genesis"} {
		body, err := json.Marshal(map[string]any{"kind": "write", "target": id, "type": "executable", "content": base64.StdEncoding.EncodeToString(code)})
		require.NoError(t, err)
		var res api.Result
		resp := e.call(t, http.MethodPost, "/v1/actions", mallory, string(body), &res)
		require.Equal(t, http.StatusOK, resp.StatusCode, res.Message)
	}
	freeware0 := artifactHash(t, e, "freeware")
	steal := `{"kind":"transfer","to":"mallory","amount":100}`
	overwrite := `{"kind":"write","target":"freeware","text":"pwned"}`
	for _, tc := range []struct{ exe, call, want string }{
		{"alice", `{"action":` + steal + `,"as_self":true}`, "INVALID_ARGUMENT"},
		{"alice", `{"action":` + steal + `,"as":"alice"}`, "NO_STANDING"},
		{"genesis", `{"action":` + overwrite + `,"as_self":true}`, "INVALID_ARGUMENT"},
		{"genesis", `{"action":` + overwrite + `,"as":"genesis"}`, "NO_STANDING"},
	} {
		body, err := json.Marshal(map[string]any{"kind": "invoke", "target": tc.exe, "args_text": tc.call})
		require.NoError(t, err)
		var res api.Result
		resp := e.call(t, http.MethodPost, "/v1/actions", mallory, string(body), &res)
		require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, res.Message)
		require.Equal(t, abi.ExecutionFailed.String(), res.ErrorCode)
		require.Contains(t, res.Message, `"error_code":"`+tc.want+`"`)
		require.Equal(t, uint64(100), e.w.Balance(t, "alice"))
		require.Equal(t, uint64(0), e.w.Balance(t, "mallory"))
		require.Equal(t, freeware0, artifactHash(t, e, "freeware"))
	}
}

// artifactHash is the sha256 of artifact id's content, read in-process by
// genesis (which controls the fake world's contracts).
func artifactHash(t *testing.T, e *env, id string) string {
	t.Helper()
	res := e.w.Do(kernel.Action{Kind: kernel.KindRead, Caller: "genesis", Target: id})
	require.True(t, res.OK, res.Message)
	return res.Artifact.Hash
}
