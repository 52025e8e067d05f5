package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLLMChatCLI: 'kernelhost serve --llm-endpoint --llm-prices' (the key
// from the variable --llm-key-env names) serves the gateway, and
// 'kernelhost --server URL llm chat' calls it as the token's principal:
// the reply printed, the charge on stderr, a stream printed as it comes,
// QUOTA_EXCEEDED an error exit with its code; the key reaches the
// provider only.
func TestLLMChatCLI(t *testing.T) {
	// Not parallel: the key and the token go through the environment.
	const key = "sk-cli-test-0123456789abcdef0123456789"
	var mu sync.Mutex
	var auths []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		auths = append(auths, r.Header.Get("Authorization"))
		mu.Unlock()
		if body["stream"] == true {
			w.Header().Set("Content-Type", "text/event-stream")
			for _, c := range []string{"Hel", "lo!"} {
				fmt.Fprintf(w, `data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":%q}}]}`+"\n\n", c)
				w.(http.Flusher).Flush()
			}
			fmt.Fprint(w, `data: {"object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2}}`+"\n\ndata: [DONE]\n\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hi, alice."},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":3}}`)
	}))
	defer up.Close()

	dir := newWorld(t)
	ok(t, dir, "quota", "set", "alice", "--resource", "llm_rate", "--quota", "100000")
	ok(t, dir, "quota", "set", "alice", "--resource", "llm_budget", "--quota", "1000000")
	var tok principalToken
	require.NoError(t, json.Unmarshal([]byte(ok(t, dir, "principal", "token", "alice", "-o", "json")), &tok))
	prices := filepath.Join(t.TempDir(), "prices.json")
	require.NoError(t, os.WriteFile(prices, []byte(`{"m1": {"input_per_1k": 1000, "output_per_1k": 2000}}`), 0o600))

	// A named key variable that is unset is an error, before serving.
	_, errOut, code := cli(t, dir, "serve", "--addr", "127.0.0.1:0", "--llm-endpoint", up.URL+"/v1", "--llm-prices", prices, "--llm-key-env", "KH_TEST_UNSET_LLM_KEY")
	require.Equal(t, exitError, code, errOut)
	require.Contains(t, errOut, "KH_TEST_UNSET_LLM_KEY")
	_, errOut, code = cli(t, dir, "serve", "--addr", "127.0.0.1:0", "--llm-endpoint", up.URL+"/v1")
	require.Equal(t, exitUsage, code, errOut)
	require.Contains(t, errOut, "--llm-prices")

	t.Setenv("KH_TEST_LLM_KEY", key)
	srv := startServe(t, dir, "--llm-endpoint="+up.URL+"/v1", "--llm-prices="+prices, "--llm-key-env=KH_TEST_LLM_KEY", "--log-level=debug")
	t.Setenv(tokenEnv, tok.Token)
	t.Setenv(serverEnv, "")
	chat := func(args ...string) (string, string, int) {
		var out, errOut bytes.Buffer
		code := runContext(context.Background(), append([]string{"--server", "http://" + srv.addr, "llm", "chat"}, args...), &out, &errOut)
		return out.String(), errOut.String(), code
	}

	out, errOut, code := chat("--model", "m1", "hello")
	require.Equal(t, exitOK, code, errOut)
	require.Equal(t, "Hi, alice.\n", out)
	require.Contains(t, errOut, "9 input + 3 output tokens, 15 µ$ charged")

	out, errOut, code = chat("--model", "m1", "--stream", "--max-tokens", "10", "hello")
	require.Equal(t, exitOK, code, errOut)
	require.Equal(t, "Hello!\n", out)
	require.Contains(t, errOut, "5 input + 2 output tokens")

	out, errOut, code = chat("--model", "m1", "-o", "json", "hello")
	require.Equal(t, exitOK, code, errOut)
	var c map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &c), out)
	require.Equal(t, "chat.completion", c["object"])

	_, errOut, code = chat("--model", "nope", "hello")
	require.Equal(t, exitError, code)
	require.Contains(t, errOut, "INVALID_ARGUMENT")
	_, errOut, code = chat("--model", "m1", "--max-tokens", "1000000", "hello")
	require.Equal(t, exitError, code)
	require.Contains(t, errOut, "QUOTA_EXCEEDED")
	_, errOut, code = chat("hello")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "--model")

	// Without a server: a usage error naming --server.
	var o, e bytes.Buffer
	t.Setenv(tokenEnv, "")
	code = runContext(context.Background(), []string{"--data-dir", dir, "llm", "chat", "--model", "m1", "hi"}, &o, &e)
	require.Equal(t, exitUsage, code, e.String())
	require.Contains(t, e.String(), "--server")

	mu.Lock()
	require.Len(t, auths, 3, "the refused calls sent nothing")
	for _, a := range auths {
		require.Equal(t, "Bearer "+key, a)
	}
	mu.Unlock()
	require.NoError(t, srv.cmd.Process.Kill())
	<-srv.exited
	require.NotContains(t, srv.stderr.String(), key, "the key is in no log line")
	require.Contains(t, srv.stderr.String(), "llm call")
	srv.noRace(t)
}
