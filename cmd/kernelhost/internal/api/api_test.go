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

// TestResultOfInvokeAndSplit: an invoke's output and logs and a split's new
// ids reach the JSON.
func TestResultOfInvokeAndSplit(t *testing.T) {
	b, err := json.Marshal(api.ResultOf(kernel.Result{OK: true, Output: []byte(`{"v":1}`), Logs: []string{"l"}, IDs: []string{"r.1", "r.2"}}))
	require.NoError(t, err)
	require.JSONEq(t, `{"ok":true,"retriable":false,"output":"eyJ2IjoxfQ==","output_text":"{\"v\":1}","logs":["l"],"ids":["r.1","r.2"]}`, string(b))
	require.Nil(t, api.ResultOf(kernel.Result{Output: []byte{0xff}}).OutputText, "binary output has no text")
}
