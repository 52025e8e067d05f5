package mcp_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/auth"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/client"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/llm"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/mcp"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/server"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
)

// TestMCPLLMChat: the llm_chat tool asks the server's gateway (in front of
// a small OpenAI-compatible server on 127.0.0.1) as the token's principal:
// the reply's text and what was charged come back, alice's quotas and the
// llm_call event say the same; a call past her llm_budget is QUOTA_EXCEEDED
// and nothing reaches the provider.
func TestMCPLLMChat(t *testing.T) {
	var asked atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi alice"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}`)
	}))
	t.Cleanup(up.Close)
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "alice", 0)
	require.NoError(t, w.K.SetQuota(ctx, "alice", kernel.LLMRate, 100_000))
	require.NoError(t, w.K.SetQuota(ctx, "alice", kernel.LLMBudget, 500))
	a, _, err := auth.Create(filepath.Join(t.TempDir(), "auth.json"))
	require.NoError(t, err)
	tok, err := a.Issue("alice")
	require.NoError(t, err)
	gw, err := llm.New(llm.Config{Kernel: w.K, Endpoint: up.URL + "/v1", Prices: llm.Prices{"m": {InputPer1K: 1000, OutputPer1K: 2000}}})
	require.NoError(t, err)
	s, err := server.New(server.Config{Kernel: w.K, Auth: a, LLM: gw})
	require.NoError(t, err)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL, tok, nil)
	require.NoError(t, err)
	cs := connectServer(t, mcp.Config{Client: c, MaxCostCeiling: -1})

	out := ok(t, cs, "llm_chat", map[string]any{"model": "m", "max_tokens": 50,
		"messages": []any{map[string]any{"role": "user", "content": "hello"}}})
	require.Equal(t, "hi alice", out["text"])
	require.Equal(t, "stop", out["finish_reason"])
	require.EqualValues(t, 9, out["input_tokens"])
	require.EqualValues(t, 3, out["output_tokens"])
	require.EqualValues(t, 9+2*3, out["cost_microdollars"])
	st, err := w.K.QuotaStatus(ctx, "alice", kernel.LLMBudget)
	require.NoError(t, err)
	require.Equal(t, int64(15), st.Used)
	evs, err := w.K.Events(ctx, 0, 100)
	require.NoError(t, err)
	last := evs[len(evs)-1]
	require.Equal(t, kernel.KindLLMCall, last.Kind)
	require.Equal(t, "alice", last.Caller)
	require.EqualValues(t, out["event"], last.Seq)
	require.Equal(t, int64(1), asked.Load())

	// 485 µ$ left; 300 output tokens alone reserve 600.
	b := fails(t, cs, "llm_chat", map[string]any{"model": "m", "max_tokens": 300,
		"messages": []any{map[string]any{"role": "user", "content": "hello"}}}, abi.QuotaExceeded)
	require.Contains(t, b["message"], "llm_budget")
	require.Equal(t, int64(1), asked.Load(), "nothing was sent")
	b = fails(t, cs, "llm_chat", map[string]any{"model": "unpriced", "messages": []any{map[string]any{"role": "user", "content": "x"}}}, abi.InvalidArgument)
	raw, _ := json.Marshal(b)
	require.Contains(t, string(raw), "unpriced")
}
