package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/internal/testenv"
)

// server is a running `kernelhost serve` child process.
type server struct {
	url    string
	tokens map[string]string // principal id -> token
	stderr *syncBuffer
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex // guards b: the copier goroutine writes, the test reads
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

// startServer builds the kernelhost binary, creates a world with alice and
// bob, and serves it on a loopback port the kernel picks, reading the address
// from serve's banner. The server gets SIGTERM when the test ends; the test
// fails if it does not stop cleanly within 10 s (it is then killed).
func startServer(t *testing.T) *server {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is needed to build kernelhost")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "kernelhost")
	out, err := exec.Command(goBin, "build", "-o", bin, "github.com/kernelhost/kernelhost/cmd/kernelhost").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	dataDir := filepath.Join(tmp, "world")
	gen := filepath.Join(tmp, "genesis.json")
	require.NoError(t, os.WriteFile(gen, []byte(`{"principals": [{"id": "alice", "balance": 1000}, {"id": "bob", "balance": 1000}]}`), 0o600))
	// The genesis Go executables compile once per machine in the tests' cache
	// (the one for the binary's wazero version, which cmd/kernelhost's tests
	// share; this test binary's is another).
	env := append(os.Environ(), "KERNELHOST_WAZERO_CACHE="+testenv.BinaryCacheDir(bin))
	initCmd := exec.Command(bin, "--data-dir", dataDir, "--output", "json", "init", "--genesis", gen)
	initCmd.Env = env
	out, err = initCmd.Output()
	require.NoError(t, err, "kernelhost init: %s", out)
	var initOut struct {
		Principals []struct{ ID, Token string }
	}
	require.NoError(t, json.Unmarshal(out, &initOut), "%s", out)
	s := &server{tokens: map[string]string{}, stderr: &syncBuffer{}}
	for _, p := range initOut.Principals {
		s.tokens[p.ID] = p.Token
	}
	require.Len(t, s.tokens, 2)

	cmd := exec.Command(bin, "--data-dir", dataDir, "serve", "--addr", "127.0.0.1:0", "--grace", "5s")
	cmd.Env = env
	pipe, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	banner := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`serving .* on (http://127\.0\.0\.1:\d+)`)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			fmt.Fprintln(s.stderr, sc.Text())
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case banner <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(s.stderr, pipe)
		done <- cmd.Wait() // after the pipe is drained, as Wait requires
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			require.NoError(t, err, "serve: %s", s.stderr.String())
			require.Contains(t, s.stderr.String(), "kernelhost: stopped")
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("serve did not stop within 10 s of SIGTERM: %s", s.stderr.String())
		}
	})
	select {
	case s.url = <-banner:
	case err := <-done:
		t.Fatalf("serve exited: %v: %s", err, s.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("serve printed no address within 30 s: %s", s.stderr.String())
	}
	return s
}

// Test_main runs the agent as alice against a real server, after bob has
// written the board, and checks what it reports and what the server holds.
func Test_main(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	bob := newAgent(config{URL: s.url, Token: s.tokens["bob"]}, io.Discard)
	r, err := bob.call(ctx, http.MethodPost, "/v1/actions", action("write", map[string]any{
		"target": "board/welcome", "type": "text", "text": "welcome, agents"}))
	require.NoError(t, err)
	require.True(t, r.OK, r.String())

	var out bytes.Buffer
	require.NoError(t, run(ctx, config{URL: s.url, Token: s.tokens["alice"], Me: "alice", Peer: "bob",
		Board: "board/welcome", Tip: 25, Think: 400, Steps: 3, MaxWait: 2 * time.Second}, &out))
	got := out.String()
	t.Logf("agent output:\n%s", got)
	for _, want := range []string{
		`read board/welcome           OK revision 1: "welcome, agents"` + "\n",
		"write alice/notes/1          OK revision 1\n",
		`write board/welcome          PERMISSION_DENIED (HTTP 403): write of "board/welcome" denied by genesis/freeware: freeware: only the controller may write` + "\n",
		"tip bob 25 scrip             OK\n",
		"think 1 (400 tokens)         OK\n",
		"think 2 (400 tokens)         OK\n",
		"think 3 (200 tokens)         OK\n",
		"balance                      975\n",
	} {
		require.Contains(t, got, want)
	}
	require.Regexp(t, `think 3 \(400 tokens\) +QUOTA_EXCEEDED on llm_rate: 200 available, retry after \d+s, beyond my 2s bound`, got)

	// The server agrees: alice's notes, bob's tip, the board unchanged.
	r, err = bob.call(ctx, http.MethodGet, "/v1/artifacts/alice/notes/1", nil)
	require.NoError(t, err)
	require.True(t, r.OK, r.String())
	require.Equal(t, `the board said: "welcome, agents"`, *r.Text)
	r, err = bob.call(ctx, http.MethodGet, "/v1/principals/bob", nil)
	require.NoError(t, err)
	require.Equal(t, uint64(1025), r.Balance)
	r, err = bob.call(ctx, http.MethodGet, "/v1/artifacts/board/welcome", nil)
	require.NoError(t, err)
	require.Equal(t, uint64(1), r.Revision)

	// A wrong token stops the agent at its first request.
	require.EqualError(t, run(ctx, config{URL: s.url, Token: "kh_wrong", Me: "alice", Board: "board/welcome", MaxWait: time.Second}, io.Discard),
		"the server refused the token: unknown or revoked token")
}

// TestRetryWaits checks the waiting path against a stub that answers
// QUOTA_EXCEEDED with a short retry-after twice, then succeeds; and that a
// retry-after beyond the bound is not waited for.
func TestRetryWaits(t *testing.T) {
	var calls int
	stub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"ok":false,"error_code":"UNAUTHENTICATED","message":"stub: wrong token"}`)
			return
		}
		calls++
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/far":
			w.Header().Set("Retry-After", "60")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"ok":false,"error_code":"QUOTA_EXCEEDED","retriable":true,"resource":"llm_rate","available":3}`)
		case calls <= 2:
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"ok":false,"error_code":"QUOTA_EXCEEDED","retriable":true,"resource":"llm_rate","retry_after_seconds":0.25}`)
		default:
			_, _ = io.WriteString(w, `{"ok":true,"retriable":false}`)
		}
	}))
	defer stub.Close()
	var out bytes.Buffer
	a := newAgent(config{URL: stub.URL, Token: "tok", MaxWait: time.Second}, &out)
	var waits []time.Duration
	a.sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }

	r, err := a.retrying(context.Background(), "think", http.MethodPost, "/v1/actions", map[string]any{})
	require.NoError(t, err)
	require.True(t, r.OK)
	require.Equal(t, 3, calls)
	require.Equal(t, []time.Duration{250 * time.Millisecond, 250 * time.Millisecond}, waits)
	require.Contains(t, out.String(), "QUOTA_EXCEEDED on llm_rate: waiting 250ms as told")

	r, err = a.retrying(context.Background(), "far", http.MethodGet, "/far", nil)
	require.ErrorIs(t, err, errTooLong)
	require.Equal(t, int64(3), r.Available)
	require.Equal(t, 60.0, r.RetryAfterSeconds, "from the Retry-After header")
	require.Len(t, waits, 2, "no wait beyond the bound")
	require.True(t, strings.HasSuffix(out.String(), "far                          QUOTA_EXCEEDED on llm_rate: 3 available, retry after 60s, beyond my 1s bound\n"), out.String())
}

// TestNoToken checks the agent refuses to start without a token.
func TestNoToken(t *testing.T) {
	require.ErrorContains(t, run(context.Background(), config{URL: "http://127.0.0.1:1"}, io.Discard), "no token")
}
