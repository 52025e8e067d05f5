package api_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/kernel"
)

// TestHTTPStatus: every code has a deliberate status; only INTERNAL (and
// unknown codes) answer 500.
func TestHTTPStatus(t *testing.T) {
	for _, c := range abi.Codes() {
		s := api.HTTPStatus(c)
		if c == abi.Internal {
			require.Equal(t, http.StatusInternalServerError, s)
			continue
		}
		require.NotEqual(t, http.StatusInternalServerError, s, "%s", c)
		require.Equal(t, c == abi.OK, s == http.StatusOK, "%s", c)
	}
	require.Equal(t, http.StatusTooManyRequests, api.HTTPStatus(abi.QuotaExceeded))
	require.Equal(t, http.StatusUnauthorized, api.HTTPStatus(abi.Unauthenticated))
}

func TestErrorOf(t *testing.T) {
	_, err := kernel.DecodeAction([]byte(`{"caller":"bob"}`))
	e := api.ErrorOf(err)
	require.Equal(t, "INVALID_ARGUMENT", e.ErrorCode)
	require.Equal(t, "input", e.Category)
	require.False(t, e.OK)
	require.Equal(t, abi.Internal, api.CodeOf(errors.New("boom")))
	require.Equal(t, abi.OK, api.CodeOf(nil))
}

func TestResultOf(t *testing.T) {
	r := api.ResultOf(kernel.Result{
		OK: true, Decision: &abi.Decision{Allowed: true, Cost: 3, Payer: "s"},
		Content: []byte("hi"), RetryAfter: 1500 * time.Millisecond,
	})
	b, err := json.Marshal(r)
	require.NoError(t, err)
	require.JSONEq(t, `{"ok":true,"retriable":false,"decision":{"allowed":true,"cost":3,"payer":"s"},
		"content":"aGk=","text":"hi","retry_after_seconds":1.5}`, string(b))
	require.Nil(t, api.ResultOf(kernel.Result{Content: []byte{0xff}}).Text, "binary content has no text")
}

// TestResultOfReplayed: the answer to a repeated request_id says so over
// HTTP too ("replayed": true, docs/http.md), as kernel.Result does: a client
// that retried after a lost answer tells a replay from a second run by it.
func TestResultOfReplayed(t *testing.T) {
	b, err := json.Marshal(api.ResultOf(kernel.Result{OK: true, Event: 31, Replayed: true}))
	require.NoError(t, err)
	require.JSONEq(t, `{"ok":true,"retriable":false,"event":31,"replayed":true}`, string(b))
	b, err = json.Marshal(api.ResultOf(kernel.Result{OK: true, Event: 31}))
	require.NoError(t, err)
	require.NotContains(t, string(b), "replayed", "a first run is not a replay")
}

// TestResultOfInvokeAndSplit: an invoke's output and logs and a split's new
// ids reach the JSON.
func TestResultOfInvokeAndSplit(t *testing.T) {
	b, err := json.Marshal(api.ResultOf(kernel.Result{OK: true, Output: []byte(`{"v":1}`), Logs: []string{"l"}, IDs: []string{"r.1", "r.2"}}))
	require.NoError(t, err)
	require.JSONEq(t, `{"ok":true,"retriable":false,"output":"eyJ2IjoxfQ==","output_text":"{\"v\":1}","logs":["l"],"ids":["r.1","r.2"]}`, string(b))
	require.Nil(t, api.ResultOf(kernel.Result{Output: []byte{0xff}}).OutputText, "binary output has no text")
}

// TestDecisionSpelling: a decision has one spelling everywhere: the HTTP
// API's (api.Result) and the kernel's own (kernel.Result, which an
// executable's host calls receive) encode it alike, and the kernel's JSON
// decodes back to the same decision.
func TestDecisionSpelling(t *testing.T) {
	for _, d := range []abi.Decision{
		{},
		{Allowed: true},
		{Allowed: true, Cost: 10, Payer: "sponsor", Payee: "alice", Reason: "pay_per_read: paid read"},
		{Allowed: false, Reason: "private: only the controller may read"},
	} {
		ab, err := json.Marshal(api.DecisionOf(&d))
		require.NoError(t, err)
		for _, r := range []kernel.Result{{Decision: &d}, {OK: true, Decision: &d, Event: 3}} {
			kb, err := json.Marshal(r)
			require.NoError(t, err)
			hb, err := json.Marshal(api.ResultOf(r))
			require.NoError(t, err)
			var kd, hd struct {
				Decision json.RawMessage `json:"decision"`
			}
			require.NoError(t, json.Unmarshal(kb, &kd))
			require.NoError(t, json.Unmarshal(hb, &hd))
			require.Equal(t, string(ab), string(kd.Decision), "kernel.Result: %s", kb)
			require.Equal(t, string(ab), string(hd.Decision), "api.Result: %s", hb)
			var back kernel.Result
			require.NoError(t, json.Unmarshal(kb, &back))
			require.Equal(t, d, *back.Decision)
			require.Equal(t, r.Event, back.Event)
		}
		pb, err := json.Marshal(&kernel.Result{Decision: &d}) // through a pointer too
		require.NoError(t, err)
		require.Contains(t, string(pb), `"decision":`+string(ab))
	}
}
