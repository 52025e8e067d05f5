package llm_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/auth"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/llm"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/server"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
	"github.com/kernelhost/kernelhost/store"
)

var ctx = context.Background()

// testKey is the gateway's API key in the tests: long enough to be
// redacted, distinctive enough to be found anywhere it leaks.
const testKey = "sk-test-9f8e7d6c5b4a39281706f5e4d3c2b1a0"

const model = "test-model"

// prices: 1 µ$ per input token, 2 per output token.
var prices = llm.Prices{model: {InputPer1K: 1000, OutputPer1K: 2000}, "other-model": {InputPer1K: 500, OutputPer1K: 500}}

// hello is a request whose prompt bound is 16 + 8 + len("user") +
// len("hello") = 33 tokens.
const (
	helloIn = 33
	hello   = `{"model":"test-model","messages":[{"role":"user","content":"hello"}],"max_tokens":100}`
)

// ---- the upstream: a small OpenAI-compatible server on 127.0.0.1 ----

// upReq is one request the upstream received.
type upReq struct {
	header http.Header
	body   map[string]any
}

type upstream struct {
	srv    *httptest.Server
	mu     sync.Mutex
	reqs   []upReq
	handle func(w http.ResponseWriter, r *http.Request, body map[string]any)
}

func newUpstream(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, body map[string]any)) *upstream {
	t.Helper()
	u := &upstream{handle: handle}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/chat/completions" || r.Method != http.MethodPost {
			http.Error(w, `{"error":{"message":"no such route"}}`, http.StatusNotFound)
			return
		}
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, `{"error":{"message":"bad json"}}`, http.StatusBadRequest)
			return
		}
		u.mu.Lock()
		u.reqs = append(u.reqs, upReq{header: r.Header.Clone(), body: body})
		u.mu.Unlock()
		u.handle(w, r, body)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) requests() []upReq {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]upReq(nil), u.reqs...)
}

// completionJSON is a chat completion with usage (in, out); in < 0 leaves
// the usage out.
func completionJSON(content string, in, out int64) string {
	c := map[string]any{
		"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
		"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": content}, "finish_reason": "stop"}},
	}
	if in >= 0 {
		c["usage"] = map[string]any{"prompt_tokens": in, "completion_tokens": out, "total_tokens": in + out}
	}
	b, _ := json.Marshal(c)
	return string(b)
}

func chunkJSON(content string) string {
	b, _ := json.Marshal(map[string]any{"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": model,
		"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"content": content}, "finish_reason": nil}}})
	return string(b)
}

func usageChunkJSON(in, out int64) string {
	b, _ := json.Marshal(map[string]any{"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": model,
		"choices": []any{}, "usage": map[string]any{"prompt_tokens": in, "completion_tokens": out, "total_tokens": in + out}})
	return string(b)
}

// answer answers every call with content and usage (in, out).
func answer(content string, in, out int64) func(http.ResponseWriter, *http.Request, map[string]any) {
	return func(w http.ResponseWriter, _ *http.Request, body map[string]any) {
		if body["stream"] == true {
			w.Header().Set("Content-Type", "text/event-stream")
			for _, c := range strings.Fields(content) {
				fmt.Fprintf(w, "data: %s\n\n", chunkJSON(c))
				w.(http.Flusher).Flush()
			}
			fmt.Fprintf(w, "data: %s\n\ndata: [DONE]\n\n", usageChunkJSON(in, out))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, completionJSON(content, in, out))
	}
}

// ---- the kernelhost side ----

// syncBuffer is a log sink for several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type env struct {
	w            *kerneltest.World
	up           *upstream
	gw           *llm.Gateway
	srv          *httptest.Server
	admin, alice string
	authPath     string
	logs         *syncBuffer
}

// newEnv is a server with an LLM gateway in front of an upstream that
// answers with handle; alice has llm_rate 100,000 and llm_budget
// 1,000,000 µ$.
func newEnv(t *testing.T, handle func(http.ResponseWriter, *http.Request, map[string]any), mutate func(*llm.Config)) *env {
	t.Helper()
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "alice", 100)
	require.NoError(t, w.K.SetQuota(ctx, "alice", kernel.LLMRate, 100_000))
	require.NoError(t, w.K.SetQuota(ctx, "alice", kernel.LLMBudget, 1_000_000))
	authPath := filepath.Join(t.TempDir(), "auth.json")
	a, admin, err := auth.Create(authPath)
	require.NoError(t, err)
	alice, err := a.Issue("alice")
	require.NoError(t, err)
	up := newUpstream(t, handle)
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := llm.Config{Kernel: w.K, Endpoint: up.srv.URL + "/v1", APIKey: testKey, Prices: prices, Logger: log}
	if mutate != nil {
		mutate(&cfg)
	}
	gw, err := llm.New(cfg)
	require.NoError(t, err)
	s, err := server.New(server.Config{Kernel: w.K, Auth: a, LLM: gw, Logger: log})
	require.NoError(t, err)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &env{w: w, up: up, gw: gw, srv: srv, admin: admin, alice: alice, authPath: authPath, logs: logs}
}

// chat posts body as token and returns the answer, read whole.
func (e *env) chat(t *testing.T, token, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/llm/chat", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

func (e *env) used(t *testing.T, res kernel.Resource) int64 {
	t.Helper()
	s, err := e.w.K.QuotaStatus(ctx, "alice", res)
	require.NoError(t, err)
	return s.Used
}

// llmEvents returns the llm_call events.
func (e *env) llmEvents(t *testing.T) []kernel.Event {
	t.Helper()
	evs, err := e.w.K.Events(ctx, 0, 1000)
	require.NoError(t, err)
	var out []kernel.Event
	for _, ev := range evs {
		if ev.Kind == kernel.KindLLMCall {
			out = append(out, ev)
		}
	}
	return out
}

// waitEvents waits until n llm_call events are recorded: a settlement
// that follows a client gone runs after the client's side has ended. The
// bound only keeps a broken build from hanging; nothing is timed.
func (e *env) waitEvents(t *testing.T, n int) []kernel.Event {
	t.Helper()
	for i := 0; i < 6000; i++ {
		if evs := e.llmEvents(t); len(evs) >= n {
			return evs
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no %d llm_call events", n)
	return nil
}

func requireAPIError(t *testing.T, resp *http.Response, b []byte, status int, code abi.Code) api.Error {
	t.Helper()
	var ae api.Error
	require.NoError(t, json.Unmarshal(b, &ae), "body: %s", b)
	require.Equal(t, status, resp.StatusCode, "body: %s", b)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	require.False(t, ae.OK)
	require.Equal(t, code.String(), ae.ErrorCode, ae.Message)
	require.NotEmpty(t, ae.Message)
	return ae
}

func requireEvent(t *testing.T, ev kernel.Event, in, out, cost int64) {
	t.Helper()
	require.Equal(t, kernel.KindLLMCall, ev.Kind)
	require.Equal(t, "alice", ev.Caller)
	require.Equal(t, model, ev.Target)
	require.Equal(t, []int64{in, out}, ev.Amounts)
	require.Equal(t, cost, ev.Amount)
}

// TestLLMSettlesToUsage: a call reserves its bounds, goes upstream with
// the gateway's key (and no kernelhost token), comes back byte for byte,
// and settles to the usage the provider reported: quotas, one llm_call
// event, the answer's headers and /metrics agree. A provider that reports
// no usage is charged the reservation; one that reports more than the
// reservation is charged the reservation.
func TestLLMSettlesToUsage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                 string
		body                 string
		in, out              int64 // what the provider reports (in < 0: no usage)
		wantIn, wantOut      int64 // what is charged
		wantMaxTokens        float64
		wantUpstreamMaxField string
	}{
		{"usage", hello, 10, 20, 10, 20, 100, "max_tokens"},
		{"default max_tokens", `{"model":"test-model","messages":[{"role":"user","content":"hello"}]}`, 10, 20, 10, 20, llm.DefaultMaxTokens, "max_tokens"},
		{"max_completion_tokens", `{"model":"test-model","messages":[{"role":"user","content":"hello"}],"max_completion_tokens":50}`, 10, 20, 10, 20, 50, "max_completion_tokens"},
		{"no usage", hello, -1, 0, helloIn, 100, 100, "max_tokens"},
		{"above the reservation", hello, 5000, 5000, helloIn, 100, 100, "max_tokens"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fixed := completionJSON("hi there", tc.in, tc.out)
			e := newEnv(t, func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, fixed)
			}, nil)
			resp, b := e.chat(t, e.alice, tc.body)
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
			require.Equal(t, fixed, string(b), "the provider's answer, byte for byte")
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"))

			reqs := e.up.requests()
			require.Len(t, reqs, 1)
			require.Equal(t, "Bearer "+testKey, reqs[0].header.Get("Authorization"))
			for k, vs := range reqs[0].header {
				for _, v := range vs {
					require.NotContains(t, v, e.alice, "the principal's token never goes upstream (%s)", k)
				}
			}
			require.Equal(t, model, reqs[0].body["model"])
			require.Equal(t, tc.wantMaxTokens, reqs[0].body[tc.wantUpstreamMaxField], "the provider is bounded by what was reserved")

			cost := tc.wantIn*1 + tc.wantOut*2
			require.Equal(t, tc.wantIn+tc.wantOut, e.used(t, kernel.LLMRate))
			require.Equal(t, cost, e.used(t, kernel.LLMBudget))
			evs := e.llmEvents(t)
			require.Len(t, evs, 1)
			requireEvent(t, evs[0], tc.wantIn, tc.wantOut, cost)
			require.Equal(t, "default", evs[0].Token, "the event names the token the call came with")
			require.Equal(t, strconv.FormatUint(evs[0].Seq, 10), resp.Header.Get(llm.HeaderEvent))
			require.Equal(t, strconv.FormatInt(tc.wantIn, 10), resp.Header.Get(llm.HeaderInputTokens))
			require.Equal(t, strconv.FormatInt(tc.wantOut, 10), resp.Header.Get(llm.HeaderOutputTokens))
			require.Equal(t, strconv.FormatInt(cost, 10), resp.Header.Get(llm.HeaderCost))

			m := e.metrics(t)
			require.Contains(t, m, fmt.Sprintf("kernelhost_llm_tokens_total{model=\"test-model\",direction=\"input\"} %d\n", tc.wantIn))
			require.Contains(t, m, fmt.Sprintf("kernelhost_llm_tokens_total{model=\"test-model\",direction=\"output\"} %d\n", tc.wantOut))
			require.Contains(t, m, fmt.Sprintf("kernelhost_llm_cost_microdollars_total{model=\"test-model\"} %d\n", cost))
			require.Contains(t, m, "kernelhost_llm_calls_total{model=\"test-model\",outcome=\"ok\"} 1\n")
		})
	}
}

func (e *env) metrics(t *testing.T) string {
	t.Helper()
	resp, err := e.srv.Client().Get(e.srv.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// sseData returns the data payloads of a stream's events, in order.
func sseData(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	for _, ev := range strings.Split(string(b), "\n\n") {
		for _, line := range strings.Split(ev, "\n") {
			if d, ok := strings.CutPrefix(line, "data: "); ok {
				out = append(out, d)
			}
		}
	}
	return out
}

// TestLLMStreamingSettles: a streaming call asks the provider for the
// usage chunk (stream_options.include_usage) whatever the client asked,
// passes every chunk on as it comes (the client has the first chunk
// before the provider sends the second), drops the usage chunk the client
// did not ask for, and settles to the usage that chunk reported.
func TestLLMStreamingSettles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		options   string
		wantUsage bool
	}{
		{"usage not asked", ``, false},
		{"usage asked", `,"stream_options":{"include_usage":true}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := make(chan struct{}) // the client has the first chunk
			e := newEnv(t, func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
				w.Header().Set("Content-Type", "text/event-stream")
				fmt.Fprintf(w, "data: %s\n\n", chunkJSON("Hel"))
				w.(http.Flusher).Flush()
				<-got
				fmt.Fprintf(w, ": a comment\n\ndata: %s\n\n", chunkJSON("lo"))
				fmt.Fprintf(w, "data: %s\n\ndata: [DONE]\n\n", usageChunkJSON(12, 7))
			}, nil)
			body := `{"model":"test-model","messages":[{"role":"user","content":"hello"}],"max_tokens":100,"stream":true` + tc.options + `}`
			req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/llm/chat", strings.NewReader(body))
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+e.alice)
			resp, err := e.srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
			br := bufio.NewReader(resp.Body)
			first, err := br.ReadString('\n')
			require.NoError(t, err)
			require.Equal(t, "data: "+chunkJSON("Hel")+"\n", first, "the first chunk, before the provider sends more")
			close(got)
			rest, err := io.ReadAll(br)
			require.NoError(t, err)
			data := sseData(t, append([]byte(first), rest...))
			want := []string{chunkJSON("Hel"), chunkJSON("lo")}
			if tc.wantUsage {
				want = append(want, usageChunkJSON(12, 7))
			}
			want = append(want, "[DONE]")
			require.Equal(t, want, data)

			reqs := e.up.requests()
			require.Len(t, reqs, 1)
			require.Equal(t, true, reqs[0].body["stream"])
			require.Equal(t, map[string]any{"include_usage": true}, reqs[0].body["stream_options"])

			evs := e.waitEvents(t, 1)
			requireEvent(t, evs[0], 12, 7, 12+14)
			require.Equal(t, int64(19), e.used(t, kernel.LLMRate))
			require.Equal(t, int64(26), e.used(t, kernel.LLMBudget))
		})
	}
}

// TestLLMQuotaEnforced: callers at once never get more calls to the
// provider than llm_rate and then llm_budget admit; the others are
// refused QUOTA_EXCEEDED before anything is sent (429 with Retry-After
// for llm_rate, which refills; 403 for llm_budget, which does not), and
// what is charged never passes either quota.
func TestLLMQuotaEnforced(t *testing.T) {
	t.Parallel()
	const perCall = helloIn + 300 // tokens a call reserves
	const perCost = helloIn*1 + 300*2
	var (
		mu                sync.Mutex
		inFlight, peak    int
		arrived           = make(chan struct{}, 100)
		release           = make(chan struct{})
		body              = `{"model":"test-model","messages":[{"role":"user","content":"hello"}],"max_tokens":300}`
		callers, admitted = 12, 3
	)
	e := newEnv(t, func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
		mu.Lock()
		inFlight++
		peak = max(peak, inFlight)
		mu.Unlock()
		arrived <- struct{}{}
		<-release
		mu.Lock()
		inFlight--
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, completionJSON("ok", helloIn, 300)) // the whole reservation
	}, nil)

	// Round 1: llm_rate 1,000 admits three calls of 333 tokens.
	require.NoError(t, e.w.K.SetQuota(ctx, "alice", kernel.LLMRate, 3*perCall+1))
	type answer struct {
		resp *http.Response
		body []byte
		err  error
	}
	results := make(chan answer, callers)
	var wg sync.WaitGroup
	send := func(n int) {
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/llm/chat", strings.NewReader(body))
				if err != nil {
					results <- answer{err: err}
					return
				}
				req.Header.Set("Authorization", "Bearer "+e.alice)
				resp, err := e.srv.Client().Do(req)
				if err != nil {
					results <- answer{err: err}
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				results <- answer{resp, b, err}
			}()
		}
	}
	next := func() (*http.Response, []byte) {
		a := <-results
		require.NoError(t, a.err)
		return a.resp, a.body
	}
	send(callers)
	// The refused answer at once; the admitted wait at the provider.
	for i := 0; i < callers-admitted; i++ {
		resp, b := next()
		ae := requireAPIError(t, resp, b, http.StatusTooManyRequests, abi.QuotaExceeded)
		require.True(t, ae.Retriable)
		require.NotEmpty(t, resp.Header.Get("Retry-After"))
		var r api.Result
		require.NoError(t, json.Unmarshal(b, &r))
		require.Equal(t, "llm_rate", r.Resource)
	}
	for i := 0; i < admitted; i++ {
		<-arrived
	}
	require.Equal(t, int64(admitted*perCall), e.used(t, kernel.LLMRate), "held while in flight")
	close(release)
	for i := 0; i < admitted; i++ {
		resp, b := next()
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	}
	wg.Wait()
	require.Equal(t, admitted, peak)
	require.Len(t, e.up.requests(), admitted, "a refused call sends nothing")
	require.LessOrEqual(t, e.used(t, kernel.LLMRate), int64(3*perCall+1))
	require.Equal(t, int64(admitted*perCost), e.used(t, kernel.LLMBudget))

	// Round 2: llm_rate plenty, llm_budget admits two more calls.
	require.NoError(t, e.w.K.SetQuota(ctx, "alice", kernel.LLMRate, 1_000_000))
	budget := int64(admitted*perCost + 2*perCost + perCost/2)
	require.NoError(t, e.w.K.SetQuota(ctx, "alice", kernel.LLMBudget, budget))
	release = make(chan struct{})
	mu.Lock()
	peak = 0
	mu.Unlock()
	send(10)
	for i := 0; i < 8; i++ {
		resp, b := next()
		ae := requireAPIError(t, resp, b, http.StatusForbidden, abi.QuotaExceeded)
		require.False(t, ae.Retriable, "no wait refills a budget")
		require.Empty(t, resp.Header.Get("Retry-After"))
	}
	for i := 0; i < 2; i++ {
		<-arrived
	}
	close(release)
	for i := 0; i < 2; i++ {
		resp, b := next()
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	}
	wg.Wait()
	require.Equal(t, 2, peak)
	require.Len(t, e.up.requests(), admitted+2)
	require.LessOrEqual(t, e.used(t, kernel.LLMBudget), budget)
	require.Equal(t, int64((admitted+2)*perCost), e.used(t, kernel.LLMBudget))
	require.Len(t, e.llmEvents(t), admitted+2, "one event per call sent")
	require.Contains(t, e.metrics(t), "kernelhost_llm_calls_total{model=\"test-model\",outcome=\"quota_exceeded\"} 17\n")
}

// TestLLMKeyNeverStored: the API key reaches the provider in the
// Authorization header, and nowhere else: not in the store, the events,
// the logs (debug level), /metrics, the auth file, nor any answer, even
// from a provider that echoes it in a completion, a stream chunk and an
// error message.
func TestLLMKeyNeverStored(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request, body map[string]any) {
		echo := "your key is " + strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		switch {
		case body["stream"] == true:
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprintf(w, "data: %s\n\ndata: %s\n\ndata: [DONE]\n\n", chunkJSON(echo), usageChunkJSON(3, 4))
		case body["user"] == "fail":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, `{"error":{"message":"Incorrect API key provided: %s"}}`, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		default:
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, "%s", completionJSON(echo, 3, 4))
		}
	}, nil)
	var answers []string
	for _, body := range []string{
		hello,
		`{"model":"test-model","messages":[{"role":"user","content":"hello"}],"stream":true}`,
		`{"model":"test-model","messages":[{"role":"user","content":"hello"}],"user":"fail"}`,
	} {
		resp, b := e.chat(t, e.alice, body)
		var h bytes.Buffer
		require.NoError(t, resp.Header.Write(&h))
		answers = append(answers, h.String()+string(b))
	}
	require.Contains(t, answers[0], "your key is [redacted]")
	require.Contains(t, answers[1], "your key is [redacted]")
	require.Contains(t, answers[2], "Incorrect API key provided: [redacted]")
	reqs := e.up.requests()
	require.Len(t, reqs, 3)
	for _, r := range reqs {
		require.Equal(t, "Bearer "+testKey, r.header.Get("Authorization"), "the key goes upstream")
	}
	for i, a := range answers {
		require.NotContains(t, a, testKey, "answer %d", i)
	}

	// The store, every key and value.
	require.NoError(t, e.w.Store.View(func(tx store.Txn) error {
		return tx.Iterate(nil, nil, func(k, v []byte) error {
			require.NotContains(t, string(k), testKey)
			require.NotContains(t, string(v), testKey, "value of %q", k)
			return nil
		})
	}))
	evs, err := e.w.K.Events(ctx, 0, 1000)
	require.NoError(t, err)
	require.Len(t, e.llmEvents(t), 3)
	b, err := json.Marshal(evs)
	require.NoError(t, err)
	require.NotContains(t, string(b), testKey)
	authFile, err := os.ReadFile(e.authPath)
	require.NoError(t, err)
	require.NotContains(t, string(authFile), testKey)
	require.NotContains(t, e.metrics(t), testKey)
	logs := e.logs.String()
	require.Contains(t, logs, `"msg":"llm call"`, "the calls were logged")
	require.NotContains(t, logs, testKey)

	// The Secret type keeps it out of every format of the Config.
	cfg := llm.Config{APIKey: testKey, Endpoint: "http://x/v1"}
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		require.NotContains(t, fmt.Sprintf(f, cfg), testKey, f)
		require.NotContains(t, fmt.Sprintf(f, cfg.APIKey), testKey, f)
	}
	j, err := json.Marshal(cfg.APIKey)
	require.NoError(t, err)
	require.Equal(t, `"[redacted]"`, string(j))
	var lb bytes.Buffer
	slog.New(slog.NewJSONHandler(&lb, nil)).Info("x", "key", cfg.APIKey, "cfg", cfg)
	require.NotContains(t, lb.String(), testKey)
}

// TestLLMRefusedBeforeSending: requests the gateway refuses reach no
// provider and reserve nothing: an unknown model, over quota, malformed
// or unsupported bodies, no token, the admin token.
func TestLLMRefusedBeforeSending(t *testing.T) {
	t.Parallel()
	e := newEnv(t, answer("hi", 1, 1), nil)
	for _, tc := range []struct {
		name, token, body string
		status            int
		code              abi.Code
	}{
		{"unknown model", "alice", `{"model":"gpt-9","messages":[{"role":"user","content":"hi"}]}`, 400, abi.InvalidArgument},
		{"no model", "alice", `{"messages":[{"role":"user","content":"hi"}]}`, 400, abi.InvalidArgument},
		{"no messages", "alice", `{"model":"test-model"}`, 400, abi.InvalidArgument},
		{"empty messages", "alice", `{"model":"test-model","messages":[]}`, 400, abi.InvalidArgument},
		{"not an object", "alice", `[1,2]`, 400, abi.InvalidArgument},
		{"not JSON", "alice", `{"model":`, 400, abi.InvalidArgument},
		{"trailing data", "alice", hello + `{}`, 400, abi.InvalidArgument},
		{"key twice", "alice", `{"model":"test-model","model":"other-model","messages":[{"role":"user","content":"hi"}]}`, 400, abi.InvalidArgument},
		{"unknown field", "alice", `{"model":"test-model","messages":[{"role":"user","content":"hi"}],"web_search_options":{}}`, 400, abi.InvalidArgument},
		{"audio output", "alice", `{"model":"test-model","messages":[{"role":"user","content":"hi"}],"modalities":["audio"]}`, 400, abi.InvalidArgument},
		{"image part", "alice", `{"model":"test-model","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"http://x/a.png"}}]}]}`, 400, abi.InvalidArgument},
		{"bad role", "alice", `{"model":"test-model","messages":[{"role":"root","content":"hi"}]}`, 400, abi.InvalidArgument},
		{"max_tokens 0", "alice", `{"model":"test-model","messages":[{"role":"user","content":"hi"}],"max_tokens":0}`, 400, abi.InvalidArgument},
		{"max_tokens fraction", "alice", `{"model":"test-model","messages":[{"role":"user","content":"hi"}],"max_tokens":1.5}`, 400, abi.InvalidArgument},
		{"max_tokens string", "alice", `{"model":"test-model","messages":[{"role":"user","content":"hi"}],"max_tokens":"5"}`, 400, abi.InvalidArgument},
		{"both maxima", "alice", `{"model":"test-model","messages":[{"role":"user","content":"hi"}],"max_tokens":5,"max_completion_tokens":5}`, 400, abi.InvalidArgument},
		{"n too large", "alice", `{"model":"test-model","messages":[{"role":"user","content":"hi"}],"n":17}`, 400, abi.InvalidArgument},
		{"stream_options without stream", "alice", `{"model":"test-model","messages":[{"role":"user","content":"hi"}],"stream_options":{"include_usage":true}}`, 400, abi.InvalidArgument},
		{"stream_options unknown", "alice", `{"model":"test-model","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"x":1}}`, 400, abi.InvalidArgument},
		{"too large", "alice", `{"model":"test-model","messages":[{"role":"user","content":"` + strings.Repeat("a", llm.DefaultMaxBodyBytes) + `"}]}`, 413, abi.InvalidArgument},
		{"over llm_rate", "alice", `{"model":"test-model","messages":[{"role":"user","content":"hi"}],"max_tokens":100000}`, 403, abi.QuotaExceeded},
		{"no token", "", hello, 401, abi.Unauthenticated},
		{"admin token", "admin", hello, 403, abi.PermissionDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := map[string]string{"alice": e.alice, "admin": e.admin}[tc.token]
			resp, b := e.chat(t, tok, tc.body)
			if tc.status == 413 {
				require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
				return
			}
			requireAPIError(t, resp, b, tc.status, tc.code)
		})
	}
	// A call over llm_budget that fits llm_rate.
	require.NoError(t, e.w.K.SetQuota(ctx, "alice", kernel.LLMBudget, 100))
	resp, b := e.chat(t, e.alice, hello)
	ae := requireAPIError(t, resp, b, http.StatusForbidden, abi.QuotaExceeded)
	require.Contains(t, ae.Message, "llm_budget")

	require.Empty(t, e.up.requests(), "the provider saw no request")
	require.Zero(t, e.used(t, kernel.LLMRate))
	require.Zero(t, e.used(t, kernel.LLMBudget))
	require.Empty(t, e.llmEvents(t))

	// A server without a gateway answers UNAVAILABLE.
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "alice", 1)
	a, _, err := auth.Create(filepath.Join(t.TempDir(), "auth.json"))
	require.NoError(t, err)
	tok, err := a.Issue("alice")
	require.NoError(t, err)
	s, err := server.New(server.Config{Kernel: w.K, Auth: a})
	require.NoError(t, err)
	srv := httptest.NewServer(s)
	defer srv.Close()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/llm/chat", strings.NewReader(hello))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err = srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err = io.ReadAll(resp.Body)
	require.NoError(t, err)
	requireAPIError(t, resp, b, http.StatusServiceUnavailable, abi.Unavailable)
}

// TestLLMUpstreamErrorSettles: a provider's error answer, a provider that
// cannot be reached, a stream that breaks off and a provider slower than
// the gateway's timeout each settle the call: to the usage the provider
// reported, else to the reservation; to nothing when nothing was sent.
func TestLLMUpstreamErrorSettles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name            string
		body            string
		handle          func(http.ResponseWriter, *http.Request, map[string]any)
		mutate          func(*llm.Config)
		status          int
		code            abi.Code
		wantIn, wantOut int64
		outcome         string
	}{
		{"500 no usage", hello, func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(500)
			_, _ = io.WriteString(w, `{"error":{"message":"the GPU fell over"}}`)
		}, nil, 503, abi.Unavailable, helloIn, 100, llm.OutcomeUpstreamError},
		{"400 with usage", hello, func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(400)
			_, _ = io.WriteString(w, `{"error":{"message":"context too long"},"usage":{"prompt_tokens":0,"completion_tokens":0}}`)
		}, nil, 400, abi.InvalidArgument, 0, 0, llm.OutcomeUpstreamError},
		{"garbage answer", hello, func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
			_, _ = io.WriteString(w, `not json`)
		}, nil, 200, abi.OK, helloIn, 100, llm.OutcomeOK},
		{"timeout", hello, func(_ http.ResponseWriter, r *http.Request, _ map[string]any) {
			<-r.Context().Done() // slower than any timeout: until the gateway gives up
		}, func(c *llm.Config) { c.Timeout = 50 * time.Millisecond }, 503, abi.Unavailable, helloIn, 100, llm.OutcomeTimeout},
		{"stream breaks off", `{"model":"test-model","messages":[{"role":"user","content":"hello"}],"max_tokens":100,"stream":true}`,
			func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
				w.Header().Set("Content-Type", "text/event-stream")
				fmt.Fprintf(w, "data: %s\n\n", chunkJSON("Hel"))
				w.(http.Flusher).Flush()
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					conn.Close() // mid-stream, no usage
				}
			}, nil, 200, abi.OK, helloIn, 100, llm.OutcomeUpstreamError},
		{"unreachable", hello, nil, func(c *llm.Config) {
			l := httptest.NewServer(http.NotFoundHandler())
			c.Endpoint = l.URL + "/v1"
			l.Close() // nothing listens there now
		}, 503, abi.Unavailable, 0, 0, llm.OutcomeUpstreamError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			handle := tc.handle
			if handle == nil {
				handle = answer("unused", 1, 1)
			}
			e := newEnv(t, handle, tc.mutate)
			resp, b := e.chat(t, e.alice, tc.body)
			if tc.code == abi.OK {
				require.Equal(t, tc.status, resp.StatusCode, "%s", b)
			} else {
				ae := requireAPIError(t, resp, b, tc.status, tc.code)
				require.Contains(t, ae.Message, "LLM")
			}
			if tc.name == "stream breaks off" {
				data := sseData(t, b)
				require.Len(t, data, 2)
				require.Contains(t, data[1], `"error":{"ok":false,"error_code":"UNAVAILABLE"`)
			}
			evs := e.waitEvents(t, 1)
			requireEvent(t, evs[0], tc.wantIn, tc.wantOut, tc.wantIn+2*tc.wantOut)
			require.Equal(t, tc.wantIn+tc.wantOut, e.used(t, kernel.LLMRate))
			require.Equal(t, tc.wantIn+2*tc.wantOut, e.used(t, kernel.LLMBudget))
			require.Contains(t, e.metrics(t), fmt.Sprintf("kernelhost_llm_calls_total{model=\"test-model\",outcome=%q} 1\n", tc.outcome))
		})
	}
}

// TestLLMClientDisconnectSettles: a client that goes mid-stream ends the
// upstream call (the provider sees its request cancelled) and the call
// settles to the reservation, the provider having reported no usage yet.
func TestLLMClientDisconnectSettles(t *testing.T) {
	t.Parallel()
	cancelled := make(chan struct{})
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "data: %s\n\n", chunkJSON("Hel"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		close(cancelled)
	}, nil)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	body := `{"model":"test-model","messages":[{"role":"user","content":"hello"}],"max_tokens":100,"stream":true}`
	req, err := http.NewRequestWithContext(cctx, http.MethodPost, e.srv.URL+"/v1/llm/chat", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+e.alice)
	resp, err := e.srv.Client().Do(req)
	require.NoError(t, err)
	first, err := bufio.NewReader(resp.Body).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "data: "+chunkJSON("Hel")+"\n", first)
	require.Equal(t, int64(helloIn+100), e.used(t, kernel.LLMRate), "held while the stream runs")
	cancel() // the client goes
	resp.Body.Close()
	<-cancelled // the gateway ended the upstream call
	evs := e.waitEvents(t, 1)
	requireEvent(t, evs[0], helloIn, 100, helloIn+200)
	require.Equal(t, int64(helloIn+100), e.used(t, kernel.LLMRate))
	require.Equal(t, int64(helloIn+200), e.used(t, kernel.LLMBudget))
	const gone = "kernelhost_llm_calls_total{model=\"test-model\",outcome=\"client_gone\"} 1\n"
	for i := 0; i < 6000 && !strings.Contains(e.metrics(t), gone); i++ {
		time.Sleep(5 * time.Millisecond) // the counter follows the settlement
	}
	require.Contains(t, e.metrics(t), gone)
}

// TestLLMPromptBound: the prompt's bound is the UTF-8 bytes of the texts,
// the per-message and per-request overheads, the raw JSON of tool calls
// and tools (with ToolsOverhead), and n multiplies the completion's.
func TestLLMPromptBound(t *testing.T) {
	t.Parallel()
	tools := `[{"type":"function","function":{"name":"f","parameters":{}}}]`
	// A provider that reports nothing is charged the bounds.
	e2 := newEnv(t, func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
		_, _ = io.WriteString(w, completionJSON("hi", -1, 0))
	}, nil)
	for _, tc := range []struct {
		body    string
		in, out int64
	}{
		{hello, helloIn, 100},
		{`{"model":"test-model","messages":[{"role":"user","content":"héllo"}],"max_tokens":1}`, 16 + 8 + 4 + 6, 1},
		{`{"model":"test-model","messages":[{"role":"user","content":"\u00e9\n"}],"max_tokens":1}`, 16 + 8 + 4 + 3, 1},
		{`{"model":"test-model","messages":[{"role":"system","content":"be"},{"role":"user","content":[{"type":"text","text":"ab"},{"type":"text","text":"cd"}]}],"max_tokens":1}`, 16 + 8 + 6 + 2 + 8 + 4 + 4, 1},
		{`{"model":"test-model","messages":[{"role":"user","content":"x"}],"tools":` + tools + `,"max_tokens":1}`, 16 + 8 + 4 + 1 + int64(len(tools)) + llm.ToolsOverhead, 1},
		{`{"model":"test-model","messages":[{"role":"user","content":"x"}],"max_tokens":10,"n":3}`, 16 + 8 + 4 + 1, 30},
		{`{"model":"test-model","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"1","content":"42"}],"max_tokens":1}`,
			16 + 8 + 9 + int64(len(`[{"id":"1","type":"function","function":{"name":"f","arguments":"{}"}}]`)) + 8 + 4 + 1 + 2, 1},
	} {
		n := len(e2.llmEvents(t))
		resp, b := e2.chat(t, e2.alice, tc.body)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
		evs := e2.llmEvents(t)
		require.Len(t, evs, n+1)
		require.Equal(t, []int64{tc.in, tc.out}, evs[n].Amounts, tc.body)
	}
}

// TestParsePrices: the price table is strict.
func TestParsePrices(t *testing.T) {
	t.Parallel()
	p, err := llm.ParsePrices([]byte(`{"a": {"input_per_1k": 150, "output_per_1k": 600}, "b/c:7b": {"input_per_1k": 0, "output_per_1k": 0}}`))
	require.NoError(t, err)
	require.Equal(t, llm.Prices{"a": {InputPer1K: 150, OutputPer1K: 600}, "b/c:7b": {}}, p)
	require.Equal(t, []string{"a", "b/c:7b"}, p.Models())
	for _, bad := range []string{
		``, `null`, `{}`, `[]`, `{"a": null}`, `{"a": 1}`,
		`{"a": {"input_per_1k": 1}}`,
		`{"a": {"input_per_1k": 1, "output_per_1k": 1, "x": 1}}`,
		`{"a": {"input_per_1k": 1.5, "output_per_1k": 1}}`,
		`{"a": {"input_per_1k": -1, "output_per_1k": 1}}`,
		`{"a": {"input_per_1k": 1073741825, "output_per_1k": 1}}`,
		`{"a": {"input_per_1k": "1", "output_per_1k": 1}}`,
		`{"a": {"input_per_1k": 1, "input_per_1k": 2, "output_per_1k": 1}}`,
		`{"a": {"input_per_1k": 1, "output_per_1k": 1}, "a": {"input_per_1k": 1, "output_per_1k": 1}}`,
		`{"": {"input_per_1k": 1, "output_per_1k": 1}}`,
		`{"a\n": {"input_per_1k": 1, "output_per_1k": 1}}`,
		`{"a": {"input_per_1k": 1, "output_per_1k": 1}} {}`,
	} {
		_, err := llm.ParsePrices([]byte(bad))
		require.Error(t, err, bad)
	}
}

// TestParseEndpoint: an endpoint is an http(s) URL without credentials;
// the chat-completions path is added unless given.
func TestParseEndpoint(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"http://127.0.0.1:8000/v1":                   "http://127.0.0.1:8000/v1/chat/completions",
		"http://127.0.0.1:8000/v1/":                  "http://127.0.0.1:8000/v1/chat/completions",
		"https://api.openai.com/v1/chat/completions": "https://api.openai.com/v1/chat/completions",
		"http://localhost:11434":                     "http://localhost:11434/chat/completions",
	} {
		got, err := llm.ParseEndpoint(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got)
	}
	for _, bad := range []string{"", "ftp://x/v1", "http:///v1", "http://user:sk-secret@x/v1", "http://x/v1?key=sk", "http://x/v1#f", "not a url"} {
		_, err := llm.ParseEndpoint(bad)
		require.Error(t, err, bad)
		if strings.Contains(bad, "sk-secret") {
			require.NotContains(t, err.Error(), "sk-secret")
		}
	}
}

// TestLLMSponsorPays: ?payer=P bills sponsor P only under P's
// grant_llm_consent for the caller, from P's quotas and within its caps;
// without one the call is refused before anything is sent.
func TestLLMSponsorPays(t *testing.T) {
	t.Parallel()
	fixed := completionJSON("hi there", 10, 20)
	e := newEnv(t, func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, fixed)
	}, nil)
	e.w.Principal(t, "sponsor", 0)
	require.NoError(t, e.w.K.SetQuota(ctx, "sponsor", kernel.LLMRate, 100_000))
	require.NoError(t, e.w.K.SetQuota(ctx, "sponsor", kernel.LLMBudget, 1_000_000))
	post := func(query string) (*http.Response, []byte) {
		req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/llm/chat"+query, strings.NewReader(hello))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+e.alice)
		resp, err := e.srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, b
	}
	resp, b := post("?payer=sponsor")
	requireAPIError(t, resp, b, http.StatusForbidden, abi.PayerNotAuthorized)
	require.Empty(t, e.up.requests(), "refused before anything is sent")
	resp, b = post("?payer=sponsor&payer=bob")
	requireAPIError(t, resp, b, http.StatusBadRequest, abi.InvalidArgument)
	resp, b = post("?sudo=1")
	requireAPIError(t, resp, b, http.StatusBadRequest, abi.InvalidArgument)

	res := e.w.Do(kernel.Action{Kind: kernel.KindGrantLLMConsent, Caller: "sponsor", To: "alice", PerCallCap: 10_000, TotalCap: 100_000, Amount: 100_000})
	require.True(t, res.OK, res.Message)
	resp, b = post("?payer=sponsor")
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	s, err := e.w.K.QuotaStatus(ctx, "sponsor", kernel.LLMBudget)
	require.NoError(t, err)
	require.Equal(t, int64(10*1+20*2), s.Used, "the sponsor paid the usage")
	require.Zero(t, e.used(t, kernel.LLMBudget), "alice paid nothing")
	c, err := e.w.K.LLMConsent(ctx, "sponsor", "alice")
	require.NoError(t, err)
	require.Equal(t, uint64(50), c.SpentCost)
	evs := e.llmEvents(t)
	require.Len(t, evs, 1)
	require.Equal(t, "sponsor", evs[0].To)
}
