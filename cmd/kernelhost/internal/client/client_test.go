package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/auth"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/client"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/server"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
)

var ctx = context.Background()

// env is a server over a kerneltest world with alice and bob (100 scrip
// each), and their tokens and the admin's.
type env struct {
	w                 *kerneltest.World
	url               string
	admin, alice, bob string
}

func newEnv(t *testing.T, mutate func(*server.Config)) *env {
	t.Helper()
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "alice", 100)
	w.Principal(t, "bob", 100)
	a, admin, err := auth.Create(filepath.Join(t.TempDir(), "auth.json"))
	require.NoError(t, err)
	alice, err := a.Issue("alice")
	require.NoError(t, err)
	bob, err := a.Issue("bob")
	require.NoError(t, err)
	cfg := server.Config{Kernel: w.K, Auth: a}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := server.New(cfg)
	require.NoError(t, err)
	srv := httptest.NewServer(s)
	t.Cleanup(func() { s.Shutdown(); srv.Close() })
	return &env{w: w, url: srv.URL, admin: admin, alice: alice, bob: bob}
}

func (e *env) client(t *testing.T, token string) *client.Client {
	t.Helper()
	c, err := client.New(e.url, token, nil)
	require.NoError(t, err)
	return c
}

func TestParseServer(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: "http://127.0.0.1:8080", want: "http://127.0.0.1:8080"},
		{in: "https://kh.example/", want: "https://kh.example"},
		{in: "https://kh.example/proxy/kh/", want: "https://kh.example/proxy/kh"},
		{in: "127.0.0.1:8080", err: "is not a URL: use http://HOST:PORT"},
		{in: "localhost:8080", err: "use an http:// or https:// URL"},
		{in: "ftp://x", err: "use an http:// or https:// URL"},
		{in: "http://", err: "names no host"},
		{in: "http://u:secret@host", err: "user information is refused"},
		{in: "http://host/?a=1", err: "without a query"},
		{in: "http://host/#f", err: "without a query or fragment"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			u, err := client.ParseServer(tc.in)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				require.NotContains(t, err.Error(), "secret")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, u.String())
		})
	}
	_, err := client.New("http://x", "", nil)
	require.ErrorContains(t, err, "no token")
	_, err = client.New("http://x", "kh_a b", nil)
	require.ErrorContains(t, err, "white space")
}

// TestClientActs: an action goes out without a caller and comes back as the
// server's result, failed or not; the token's identity is the principal's
// or the admin's; server errors keep their code and status.
func TestClientActs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	alice := e.client(t, e.alice)

	id, err := alice.Whoami(ctx)
	require.NoError(t, err)
	require.Equal(t, client.Identity{Principal: "alice"}, id)
	id, err = e.client(t, e.admin).Whoami(ctx)
	require.NoError(t, err)
	require.Equal(t, client.Identity{Admin: true}, id)
	_, err = e.client(t, "kh_nope").Whoami(ctx)
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, http.StatusUnauthorized, ce.Status)
	require.Equal(t, abi.Unauthenticated, ce.Code())
	require.Equal(t, abi.Unauthenticated, api.CodeOf(err))

	// The caller field of the action is never sent: alice's token pays.
	res, err := alice.Do(ctx, kernel.Action{Kind: kernel.KindTransfer, Caller: "bob", To: "bob", Amount: 7})
	require.NoError(t, err)
	require.True(t, res.OK, res.Message)
	p, err := alice.Principal(ctx, "alice")
	require.NoError(t, err)
	require.Equal(t, uint64(93), p.Balance)

	res, err = alice.Do(ctx, kernel.Action{Kind: kernel.KindTransfer, To: "bob", Amount: 1000})
	require.NoError(t, err, "a failed action is a result, not an error")
	require.False(t, res.OK)
	require.Equal(t, "INSUFFICIENT_FUNDS", res.ErrorCode)

	// Admin routes: the admin token may, a principal's may not.
	_, err = alice.Mint(ctx, "bob", 5)
	require.ErrorAs(t, err, &ce)
	require.Equal(t, http.StatusForbidden, ce.Status)
	pb, err := e.client(t, e.admin).Mint(ctx, "bob", 5)
	require.NoError(t, err)
	require.Equal(t, uint64(112), pb.Balance)

	ps, err := alice.Principals(ctx)
	require.NoError(t, err)
	require.Len(t, ps, 3) // alice, bob and the world's genesis principal
	_, err = alice.Principal(ctx, "nobody")
	require.ErrorAs(t, err, &ce)
	require.Equal(t, abi.NotFound, ce.Code())
}

// TestClientRefusesRedirect: an answer that redirects is an error, and the
// client never follows it (it would carry the token where nobody said).
func TestClientRefusesRedirect(t *testing.T) {
	t.Parallel()
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/v1/actions", http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	c, err := client.New(redirect.URL, "kh_x", nil)
	require.NoError(t, err)
	_, err = c.Do(ctx, kernel.Action{Kind: kernel.KindTransfer, To: "bob", Amount: 1})
	require.ErrorContains(t, err, "redirect")
	require.Zero(t, elsewhere.Load(), "the redirect was not followed")

	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("<html>bad gateway</html>"))
	}))
	defer html.Close()
	c, err = client.New(html.URL, "kh_x", nil)
	require.NoError(t, err)
	_, err = c.Principals(ctx)
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, abi.Unavailable, ce.Code())
	require.Contains(t, err.Error(), "without a kernelhost error")

	c, err = client.New("http://127.0.0.1:1", "kh_x", nil)
	require.NoError(t, err)
	_, err = c.Principals(ctx)
	require.ErrorAs(t, err, &ce)
	require.Equal(t, abi.Unavailable, ce.Code())
	require.Contains(t, err.Error(), "cannot reach the server at http://127.0.0.1:1")
}

// TestFollowResumes: a follow whose stream the server ends (here after 50ms,
// its FollowMaxDuration) resumes after the last event it saw: every event
// comes once, in order, across many streams.
func TestFollowResumes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *server.Config) {
		c.FollowMaxDuration = 50 * time.Millisecond
		c.FollowPoll = 5 * time.Millisecond
	})
	bob := e.client(t, e.bob)
	alice := e.client(t, e.alice)
	const n = 20
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	got := make(chan kernel.Event, 2*n)
	done := make(chan error, 1)
	go func() {
		done <- bob.Follow(fctx, client.EventQuery{Kind: "transfer"}, func(ev kernel.Event) error {
			got <- ev
			return nil
		}, nil)
	}()
	var seqs []uint64
	for i := 0; i < n; i++ {
		res, err := alice.Do(ctx, kernel.Action{Kind: kernel.KindTransfer, To: "bob", Amount: 1})
		require.NoError(t, err)
		require.True(t, res.OK)
		seqs = append(seqs, res.Event)
		if i%5 == 0 {
			time.Sleep(60 * time.Millisecond) // let a stream end between transfers
		}
	}
	var seen []uint64
	for len(seen) < n {
		select {
		case ev := <-got:
			seen = append(seen, ev.Seq)
		case <-time.After(2 * time.Minute):
			t.Fatalf("follow saw %d of %d events", len(seen), n)
		}
	}
	require.Equal(t, seqs, seen)
	cancel()
	require.NoError(t, <-done)
	select {
	case ev := <-got:
		t.Fatalf("event %d came twice", ev.Seq)
	default:
	}

	// A refusal that retrying cannot cure ends the follow with it.
	err := bob.Follow(ctx, client.EventQuery{Kind: "no_such_kind"}, func(kernel.Event) error { return nil }, nil)
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, http.StatusBadRequest, ce.Status)
	// An error of fn ends it too.
	boom := errors.New("boom")
	err = bob.Follow(ctx, client.EventQuery{}, func(kernel.Event) error { return boom }, nil)
	require.ErrorIs(t, err, boom)
	require.True(t, strings.HasPrefix(ce.Error(), "INVALID_ARGUMENT: "))
}
