package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/kernel"
)

// TestAnswersAreCompactWithLength: every JSON answer, a success over 2 KiB
// (a read of 3000 bytes, base64 and text) and an error alike, is compact
// JSON on one line, exactly as json.Marshal writes its value, and comes
// with its Content-Length rather than chunked.
func TestAnswersAreCompactWithLength(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	text := strings.Repeat("<a & b>", 3000/7)
	res := e.w.Do(kernel.Action{Kind: kernel.KindWrite, Caller: "bob", Target: "bob/big", Type: "text", Content: []byte(text)})
	require.True(t, res.OK, res.Message)

	for _, tc := range []struct {
		name, method, path, token, body string
		status                          int
		into                            func() any
	}{
		{"read", http.MethodPost, "/v1/actions", e.alice, `{"kind":"read","target":"bob/big"}`, http.StatusOK, func() any { return &api.Result{} }},
		{"get", http.MethodGet, "/v1/artifacts/bob/big", e.alice, "", http.StatusOK, func() any { return &api.Result{} }},
		{"refused", http.MethodPost, "/v1/actions", e.alice, `{"kind":"read","target":"bob/big","x":1}`, http.StatusBadRequest, func() any { return &api.Error{} }},
		{"unauthenticated", http.MethodGet, "/v1/principals", "", "", http.StatusUnauthorized, func() any { return &api.Error{} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, e.srv.URL+tc.path, strings.NewReader(tc.body))
			require.NoError(t, err)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := e.srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, tc.status, resp.StatusCode, "%s", b)
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			require.Empty(t, resp.TransferEncoding, "not chunked")
			require.Equal(t, int64(len(b)), resp.ContentLength)
			require.Equal(t, 1, bytes.Count(b, []byte("\n")), "one line")
			v := tc.into()
			require.NoError(t, json.Unmarshal(b, v))
			want, err := json.Marshal(v)
			require.NoError(t, err)
			require.Equal(t, string(want)+"\n", string(b), "compact, as json.Marshal writes it")
			if r, ok := v.(*api.Result); ok {
				require.Equal(t, text, *r.Text)
				require.Equal(t, []byte(text), r.Content)
			}
		})
	}
}
