package server_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/server"
	"github.com/kernelhost/kernelhost/kernel"
)

// TestRights: the right primitives through POST /v1/actions, as the
// authenticated caller only, and the GET rights endpoints.
func TestRights(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	act := func(token, body string) (*http.Response, api.Result) {
		var res api.Result
		resp := e.call(t, http.MethodPost, "/v1/actions", token, body, &res)
		return resp, res
	}
	rights := func(path, token string) (*http.Response, server.RightsResponse) {
		var rr server.RightsResponse
		resp := e.call(t, http.MethodGet, path, token, "", &rr)
		return resp, rr
	}

	resp, res := act(e.alice, `{"kind":"mint_right","target":"r1","resource":"llm_rate","amount":300}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, res.Message)
	require.True(t, res.OK)

	resp, rr := rights("/v1/rights", e.alice)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "alice", rr.Holder)
	require.Equal(t, []kernel.Right{{ID: "r1", Resource: kernel.LLMRate, Amount: 300, Holder: "alice", CreatedBy: "alice", Contract: "freeware", Revision: 1}}, rr.Rights)
	_, rr = rights("/v1/principals/alice/rights", e.alice)
	require.Len(t, rr.Rights, 1)
	_, rr = rights("/v1/rights", e.bob)
	require.Equal(t, []kernel.Right{}, rr.Rights, "bob holds none: [] not null")

	// bob's token cannot redeem, transfer or split alice's right.
	for _, body := range []string{
		`{"kind":"redeem_right","target":"r1"}`,
		`{"kind":"transfer_right","target":"r1","to":"alice"}`,
		`{"kind":"split_right","target":"r1","amounts":[100,200]}`,
	} {
		resp, res := act(e.bob, body)
		require.Equal(t, http.StatusForbidden, resp.StatusCode, body)
		require.Equal(t, abi.PermissionDenied.String(), res.ErrorCode)
		require.Contains(t, res.Message, "only its holder may use a right")
		require.NotContains(t, res.Message, "alice", "the holder is not named to a non-holder")
	}
	// Nor name another caller, nor list alice's rights.
	var ae api.Error
	resp = e.call(t, http.MethodPost, "/v1/actions", e.bob, `{"kind":"redeem_right","target":"r1","caller":"alice"}`, &ae)
	requireError(t, resp, ae, http.StatusBadRequest, abi.InvalidArgument)
	for _, path := range []string{"/v1/principals/alice/rights", "/v1/rights?holder=alice"} {
		ae = api.Error{}
		resp = e.call(t, http.MethodGet, path, e.bob, "", &ae)
		requireError(t, resp, ae, http.StatusForbidden, abi.PermissionDenied)
	}
	ae = api.Error{}
	resp = e.call(t, http.MethodGet, "/v1/rights", "", "", &ae)
	requireError(t, resp, ae, http.StatusUnauthorized, abi.Unauthenticated)
	ae = api.Error{}
	resp = e.call(t, http.MethodPost, "/v1/actions", e.admin, `{"kind":"redeem_right","target":"r1"}`, &ae)
	requireError(t, resp, ae, http.StatusForbidden, abi.PermissionDenied)
	q, err := e.w.K.Quota(ctx, "alice", kernel.LLMRate)
	require.NoError(t, err)
	require.Equal(t, int64(700), q, "nothing was redeemed")

	// alice gives it to bob; bob splits (the ids come back) and redeems a part.
	resp, res = act(e.alice, `{"kind":"transfer_right","target":"r1","to":"bob"}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, res.Message)
	resp, res = act(e.bob, `{"kind":"split_right","target":"r1","amounts":[100,200]}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, res.Message)
	require.Equal(t, []string{"r1.1", "r1.2"}, res.IDs)
	resp, res = act(e.bob, `{"kind":"redeem_right","target":"r1.1"}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, res.Message)
	resp, res = act(e.alice, `{"kind":"redeem_right","target":"r1.2"}`)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "the minter has no claim left")
	require.Equal(t, abi.PermissionDenied.String(), res.ErrorCode)
	resp, res = act(e.bob, `{"kind":"redeem_right","target":"nothing"}`)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Equal(t, abi.NotFound.String(), res.ErrorCode)

	// The admin token sees every principal's rights, or one holder's.
	resp, rr = rights("/v1/rights", e.admin)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Empty(t, rr.Holder)
	require.Len(t, rr.Rights, 1)
	require.Equal(t, "r1.2", rr.Rights[0].ID)
	require.Equal(t, "bob", rr.Rights[0].Holder)
	_, rr = rights("/v1/principals/bob/rights", e.admin)
	require.Len(t, rr.Rights, 1)
	_, rr = rights("/v1/rights?holder=alice", e.admin)
	require.Empty(t, rr.Rights)
	ae = api.Error{}
	resp = e.call(t, http.MethodGet, "/v1/principals/nobody/rights", e.admin, "", &ae)
	requireError(t, resp, ae, http.StatusNotFound, abi.NotFound)
	ae = api.Error{}
	resp = e.call(t, http.MethodPost, "/v1/rights", e.admin, "", &ae)
	requireError(t, resp, ae, http.StatusMethodNotAllowed, abi.InvalidArgument)

	q, err = e.w.K.Quota(ctx, "bob", kernel.LLMRate)
	require.NoError(t, err)
	require.Equal(t, int64(1100), q)
	require.NoError(t, e.w.K.CheckLedger(ctx))
}

// TestInvokeOutput: an invoke answers with the executable's output and logs.
func TestInvokeOutput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.w.DeployExecutable(t, "alice", "echo", "freeware", func(req *abi.Request, calls abi.HostCalls) (abi.InvokeResult, error) {
		calls.Log([]byte("called by " + req.Caller))
		return abi.InvokeResult{OK: true, Output: append([]byte("echo: "), req.Args...)}, nil
	})
	var res api.Result
	resp := e.call(t, http.MethodPost, "/v1/actions", e.bob, `{"kind":"invoke","target":"echo","method":"m","args_text":"hi"}`, &res)
	require.Equal(t, http.StatusOK, resp.StatusCode, res.Message)
	require.Equal(t, []byte("echo: hi"), res.Output)
	require.Equal(t, "echo: hi", *res.OutputText)
	require.Equal(t, []string{"called by bob"}, res.Logs)
}
