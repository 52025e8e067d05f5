package server_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/server"
)

// TestTokenAttribution: every use of a token is in the audit events by
// the token's name (default for a principal's default token), never its
// secret, whichever node served it.
func TestTokenAttribution(t *testing.T) {
	t.Parallel()
	te := newTokEnv(t)
	ro := te.token(t, te.alice, "alice", `{"name":"ro","scopes":["read-only"]}`)
	var res api.Result
	te.nodes[1].call(t, http.MethodGet, "/v1/artifacts/free", ro, "", &res)
	require.True(t, res.OK, res.Message)
	te.nodes[0].call(t, http.MethodPost, "/v1/actions", te.alice, `{"kind":"transfer","to":"bob","amount":1}`, &res)
	require.True(t, res.OK, res.Message)
	var page server.EventsResponse
	resp := te.nodes[0].call(t, http.MethodGet, "/v1/events", te.alice, "", &page)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Len(t, page.Events, 2)
	require.Equal(t, "ro", page.Events[0].Token)
	require.Equal(t, "read", string(page.Events[0].Kind))
	require.Equal(t, "default", page.Events[1].Token)
	for _, e := range page.Events {
		require.NotContains(t, e.Token, "kh_")
	}
}
