package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"testing"
	"time"

	gomcp "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"
)

// mcpCall calls a tool that must succeed and returns its JSON answer.
func mcpCall(t *testing.T, cs *gomcp.ClientSession, name string, args map[string]any) map[string]any {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &gomcp.CallToolParams{Name: name, Arguments: args})
	require.NoError(t, err)
	text := res.Content[0].(*gomcp.TextContent).Text
	require.False(t, res.IsError, "%s: %s", name, text)
	var out map[string]any
	require.NoError(t, json.Unmarshal([]byte(text), &out))
	return out
}

// TestMCPCommand runs 'kernelhost mcp' against a 'kernelhost serve'
// process: over stdio (the SDK's client on the command's stdin and stdout)
// as the token's principal, and over streamable HTTP with each request's
// own token; and refuses what would lend or misuse authority.
func TestMCPCommand(t *testing.T) {
	t.Parallel()
	s := newServed(t)

	// stdio: stdout carries MCP only.
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	var errOut syncBuffer
	root := newRootCmd(outW, &errOut)
	defer rootGlobals.Delete(root)
	root.SetIn(inR)
	root.SetArgs([]string{"--server", s.url, "mcp", "--token", s.tokens["alice"], "--max-cost", "3"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(context.Background()); _ = outW.Close() }()
	cs, err := gomcp.NewClient(&gomcp.Implementation{Name: "test-agent", Version: "v0"}, nil).
		Connect(context.Background(), &gomcp.IOTransport{Reader: outR, Writer: inW}, nil)
	require.NoError(t, err)
	require.Equal(t, "alice", mcpCall(t, cs, "whoami", nil)["principal"])
	tr := mcpCall(t, cs, "transfer", map[string]any{"to": "bob", "amount": 5})
	require.NotEmpty(t, tr["event"])
	w := mcpCall(t, cs, "write", map[string]any{"target": "notes/mcp", "type": "text", "text": "hi"})
	require.EqualValues(t, 3, w["max_cost"], "--max-cost is the default")
	require.NoError(t, cs.Close())
	_ = inW.Close()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("mcp did not end when its client went away")
	}
	require.Contains(t, errOut.String(), "MCP over stdio as alice")
	require.Equal(t, uint64(105), s.balance(t, "admin", "bob"), "bob got 5 from alice")

	// Refusals, before anything is served.
	for name, args := range map[string][]string{
		"no server":        {"mcp", "--token", s.tokens["alice"]},
		"admin token":      {"--server", s.url, "mcp", "--token", s.tokens["admin"]},
		"token over http":  {"--server", s.url, "mcp", "--http", "127.0.0.1:0", "--token", s.tokens["alice"]},
		"negative default": {"--server", s.url, "mcp", "--token", s.tokens["alice"], "--max-cost", "-1"},
		"above ceiling":    {"--server", s.url, "mcp", "--token", s.tokens["alice"], "--max-cost", "9", "--max-cost-ceiling", "5"},
	} {
		var out, errb bytes.Buffer
		code := runContext(context.Background(), append([]string{"--config", s.config}, args...), &out, &errb)
		require.Equal(t, exitUsage, code, "%s: %s", name, errb.String())
		require.Empty(t, out.String(), name)
	}

	// Streamable HTTP: no token of its own; each request's token acts.
	ctx, cancel := context.WithCancel(context.Background())
	var httpErr syncBuffer
	hroot := newRootCmd(io.Discard, &httpErr)
	defer rootGlobals.Delete(hroot)
	hroot.SetArgs([]string{"--server", s.url, "mcp", "--http", "127.0.0.1:0"})
	hdone := make(chan error, 1)
	go func() { hdone <- hroot.ExecuteContext(ctx) }()
	re := regexp.MustCompile(`at (http://127\.0\.0\.1:\d+/mcp) for`)
	var endpoint string
	require.Eventually(t, func() bool {
		m := re.FindStringSubmatch(httpErr.String())
		if m != nil {
			endpoint = m[1]
		}
		return m != nil
	}, 30*time.Second, 10*time.Millisecond, "stderr: %s", httpErr.String())
	hc := &http.Client{Transport: bearerRT{s.tokens["bob"]}}
	hs, err := gomcp.NewClient(&gomcp.Implementation{Name: "test-agent", Version: "v0"}, nil).
		Connect(context.Background(), &gomcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: hc, DisableStandaloneSSE: true}, nil)
	require.NoError(t, err)
	require.Equal(t, "bob", mcpCall(t, hs, "whoami", nil)["principal"])
	require.NoError(t, hs.Close())
	resp, err := http.Post(endpoint, "application/json", bytes.NewReader([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)))
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	cancel()
	select {
	case err := <-hdone:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("mcp --http did not stop")
	}
}

type bearerRT struct{ token string }

func (b bearerRT) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}
