package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/auth"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/server"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
	"github.com/kernelhost/kernelhost/store"
)

// tokEnv is two nodes serving one world: two kernels and two token stores
// on one in-memory store, each behind its own server, sharing the fake
// clock. Principals alice and bob (100 scrip each) hold default tokens;
// artifact "doc" costs 3 scrip to read (paid to bob), "free" nothing.
type tokEnv struct {
	w                 *kerneltest.World
	nodes             [2]*env
	admin, alice, bob string
}

func newTokEnv(t *testing.T) *tokEnv {
	t.Helper()
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "alice", 100)
	w.Principal(t, "bob", 100)
	w.Deploy(t, "bob", "priced", "private", func(req *abi.Request) (abi.Decision, error) {
		if req.Action == abi.ActionRead {
			return abi.Decision{Allowed: true, Cost: 3, Payee: "bob"}, nil
		}
		return abi.Decision{Allowed: true}, nil
	})
	for _, a := range []kernel.Action{
		{Kind: kernel.KindWrite, Caller: "bob", Target: "doc", Type: "text", Contract: "priced", Content: []byte("paid words")},
		{Kind: kernel.KindWrite, Caller: "bob", Target: "free", Type: "text", Content: []byte("free words")},
	} {
		res := w.Do(a)
		require.True(t, res.OK, res.Message)
	}
	a1, admin, toks, err := auth.Init(w.Store, []string{"alice", "bob"})
	require.NoError(t, err)
	a2, err := auth.Open(w.Store)
	require.NoError(t, err)
	k2, err := kernel.Open(ctx, kernel.Config{Store: w.Store, Evaluator: w.Eval, Clock: w.Clock.Now, DefaultContract: "freeware"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = k2.Close(ctx) })
	te := &tokEnv{w: w, admin: admin, alice: toks[0], bob: toks[1]}
	for i, n := range []struct {
		k *kernel.Kernel
		a *auth.Store
	}{{w.K, a1}, {k2, a2}} {
		s, err := server.New(server.Config{Kernel: n.k, Auth: n.a, Now: w.Clock.Now})
		require.NoError(t, err)
		srv := httptest.NewServer(s)
		t.Cleanup(srv.Close)
		te.nodes[i] = &env{w: w, srv: srv, s: s, admin: admin, alice: toks[0], bob: toks[1], auth: n.a}
	}
	return te
}

// token creates a named token of principal p through node 0 with the
// token by and returns its secret.
func (te *tokEnv) token(t *testing.T, by, p, body string) string {
	t.Helper()
	var out server.CreateTokenResponse
	resp := te.nodes[0].call(t, http.MethodPost, "/v1/principals/"+p+"/tokens", by, body, &out)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%+v", out)
	require.True(t, strings.HasPrefix(out.Secret, auth.TokenPrefix))
	return out.Secret
}

// eventCount is the number of audit events the world holds.
func (te *tokEnv) eventCount(t *testing.T) int {
	t.Helper()
	evs, err := te.w.K.Events(ctx, 0, 100000)
	require.NoError(t, err)
	return len(evs)
}

// TestTokenScopes: a read-only token reads and queries, and cannot write,
// transfer or invoke (nor upload, move quota, call the LLM gateway or make
// tokens): each is 403 PERMISSION_DENIED naming the missing scope, before
// anything runs (no event, no charge). A token without the query scope
// cannot query.
func TestTokenScopes(t *testing.T) {
	t.Parallel()
	te := newTokEnv(t)
	ro := te.token(t, te.alice, "alice", `{"name":"ro","scopes":["read-only"]}`)
	xfer := te.token(t, te.admin, "alice", `{"name":"pay","scopes":["transfer"]}`)

	for _, n := range te.nodes {
		var res api.Result
		resp := n.call(t, http.MethodPost, "/v1/actions", ro, `{"kind":"read","target":"free"}`, &res)
		require.Equal(t, http.StatusOK, resp.StatusCode, res.Message)
		resp = n.call(t, http.MethodGet, "/v1/artifacts/free", ro, "", &res)
		require.Equal(t, http.StatusOK, resp.StatusCode, res.Message)
		for _, path := range []string{"/v1/principals", "/v1/principals/alice", "/v1/quotas", "/v1/events", "/v1/principals/alice/tokens"} {
			resp := n.call(t, http.MethodGet, path, ro, "", nil)
			require.Equal(t, http.StatusOK, resp.StatusCode, path)
		}
		resp = n.call(t, http.MethodPost, "/v1/explain", ro, `{"kind":"read","target":"free"}`, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}

	balance := te.w.Balance(t, "alice")
	events := te.eventCount(t)
	for _, tc := range []struct {
		name, method, path, token, body, scope string
	}{
		{"write", http.MethodPost, "/v1/actions", ro, `{"kind":"write","target":"mine","type":"text","text":"x"}`, "write"},
		{"transfer", http.MethodPost, "/v1/actions", ro, `{"kind":"transfer","to":"bob","amount":5}`, "transfer"},
		{"invoke", http.MethodPost, "/v1/actions", ro, `{"kind":"invoke","target":"free","method":"run"}`, "invoke"},
		{"upload", http.MethodPut, "/v1/artifacts/mine?type=text", ro, "x", "write"},
		{"quota transfer", http.MethodPost, "/v1/quotas/transfer", ro, `{"to":"bob","resource":"cpu_rate","amount":1}`, "transfer_quota"},
		{"llm", http.MethodPost, "/v1/llm/chat", ro, `{}`, "llm_call"},
		{"query without the scope", http.MethodGet, "/v1/principals", xfer, "", "query"},
		{"read without the scope", http.MethodGet, "/v1/artifacts/free", xfer, "", "read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, n := range te.nodes {
				req, err := http.NewRequest(tc.method, n.srv.URL+tc.path, strings.NewReader(tc.body))
				require.NoError(t, err)
				req.Header.Set("Authorization", "Bearer "+tc.token)
				if tc.method == http.MethodPut {
					req.Header.Set("Content-Type", "text/plain")
				}
				var ae api.Error
				resp := do(t, n.srv.Client(), req, &ae)
				requireError(t, resp, ae, http.StatusForbidden, abi.PermissionDenied)
				require.Contains(t, ae.Message, fmt.Sprintf("lacks the scope %q", tc.scope))
			}
		})
	}
	var ae api.Error
	resp := te.nodes[0].call(t, http.MethodPost, "/v1/principals/alice/tokens", ro, `{"name":"wider","scopes":["*"]}`, &ae)
	requireError(t, resp, ae, http.StatusForbidden, abi.PermissionDenied)
	require.Contains(t, ae.Message, "only an unrestricted token")
	resp = te.nodes[0].call(t, http.MethodPost, "/v1/principals/alice/tokens", te.bob, `{"name":"mine","scopes":["*"]}`, &ae)
	requireError(t, resp, ae, http.StatusForbidden, abi.PermissionDenied)

	require.Equal(t, balance, te.w.Balance(t, "alice"), "nothing was charged")
	require.Equal(t, events, te.eventCount(t), "nothing ran: no audit event")
	ids, err := te.w.K.ArtifactIDs(ctx)
	require.NoError(t, err)
	require.NotContains(t, ids, "mine")

	// The transfer-only token transfers; the default token still does all.
	var res api.Result
	resp = te.nodes[1].call(t, http.MethodPost, "/v1/actions", xfer, `{"kind":"transfer","to":"bob","amount":5}`, &res)
	require.Equal(t, http.StatusOK, resp.StatusCode, res.Message)
	resp = te.nodes[1].call(t, http.MethodPost, "/v1/actions", te.alice, `{"kind":"write","target":"mine","type":"text","text":"x"}`, &res)
	require.Equal(t, http.StatusOK, resp.StatusCode, res.Message)
}

// do sends req and decodes the JSON answer into out.
func do(t *testing.T, hc *http.Client, req *http.Request, out any) *http.Response {
	t.Helper()
	resp, err := hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	if out != nil {
		require.NoError(t, decodeBody(resp, out))
	}
	return resp
}

// TestTokenSpendCap: concurrent callers on one capped token, through both
// nodes, never spend more than the cap in a window: reads priced 3 scrip
// stop once less than 3 is left (max_cost lowered to what is left), and
// transfers that do not fit are 429 QUOTA_EXCEEDED with Retry-After; what
// an action did not spend (a free read) is given back; the next window
// starts afresh. Kinds that would let others spend outside the cap are
// refused to a capped token.
func TestTokenSpendCap(t *testing.T) {
	t.Parallel()
	te := newTokEnv(t)
	capped := te.token(t, te.alice, "alice", `{"name":"agent","scopes":["*"],"caps":{"scrip":20},"window_seconds":3600}`)
	start := te.w.Balance(t, "alice")

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		ok, deny int
	)
	for g := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := te.nodes[g%2]
			for range 3 {
				var res api.Result
				resp := n.call(t, http.MethodPost, "/v1/actions", capped, `{"kind":"read","target":"doc"}`, &res)
				mu.Lock()
				switch {
				case resp.StatusCode == http.StatusOK:
					ok++
				case res.ErrorCode == abi.CostLimitExceeded.String():
					deny++
				default:
					t.Errorf("read: %d %+v", resp.StatusCode, res)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Equal(t, 6, ok, "six reads of 3 fit in 20")
	require.Equal(t, 36-6, deny)
	require.Equal(t, start-18, te.w.Balance(t, "alice"), "the cap held across 12 concurrent callers on two nodes")

	var res api.Result
	resp := te.nodes[0].call(t, http.MethodPost, "/v1/actions", capped, `{"kind":"read","target":"doc"}`, &res)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Contains(t, res.Message, `token "agent"`, "the refusal names the cap")
	resp = te.nodes[1].call(t, http.MethodPost, "/v1/actions", capped, `{"kind":"read","target":"free"}`, &res)
	require.Equal(t, http.StatusOK, resp.StatusCode, "a free read costs nothing of the cap: %s", res.Message)

	// Transfers of 1, concurrently: exactly the 2 left go through.
	ok = 0
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var res api.Result
			resp := te.nodes[g%2].call(t, http.MethodPost, "/v1/actions", capped, `{"kind":"transfer","to":"bob","amount":1}`, &res)
			mu.Lock()
			defer mu.Unlock()
			switch resp.StatusCode {
			case http.StatusOK:
				ok++
			case http.StatusTooManyRequests:
				if res.ErrorCode != abi.QuotaExceeded.String() || resp.Header.Get("Retry-After") == "" || res.Resource != "token:scrip" {
					t.Errorf("transfer refusal: %+v %v", res, resp.Header)
				}
			default:
				t.Errorf("transfer: %d %+v", resp.StatusCode, res)
			}
		}()
	}
	wg.Wait()
	require.Equal(t, 2, ok)
	require.Equal(t, start-20, te.w.Balance(t, "alice"), "exactly the cap, never more")

	var list server.TokensResponse
	te.nodes[1].call(t, http.MethodGet, "/v1/principals/alice/tokens", te.alice, "", &list)
	require.Len(t, list.Tokens, 2)
	require.Equal(t, "agent", list.Tokens[0].Name)
	require.Equal(t, map[string]int64{"scrip": 20}, list.Tokens[0].Spent)

	for _, body := range []string{`{"kind":"grant_consent","contract":"priced","per_call_cap":5,"total_cap":50}`, `{"kind":"grant_standing","target":"doc"}`} {
		var ae api.Error
		resp := te.nodes[0].call(t, http.MethodPost, "/v1/actions", capped, body, &ae)
		requireError(t, resp, ae, http.StatusForbidden, abi.PermissionDenied)
		require.Contains(t, ae.Message, "spending cap")
	}

	te.w.Clock.Advance(time.Hour)
	resp = te.nodes[0].call(t, http.MethodPost, "/v1/actions", capped, `{"kind":"read","target":"doc"}`, &res)
	require.Equal(t, http.StatusOK, resp.StatusCode, "a new window: %s", res.Message)
	require.Equal(t, start-23, te.w.Balance(t, "alice"))
}

// TestTokenExpiry: a token works until its expiry on the server's clock,
// then every node refuses it with 401 UNAUTHENTICATED saying it expired
// (not "unknown token"); the principal's other tokens are unaffected.
func TestTokenExpiry(t *testing.T) {
	t.Parallel()
	te := newTokEnv(t)
	short := te.token(t, te.admin, "alice", `{"name":"short","scopes":["read-only"],"expires_in_seconds":60}`)
	for _, n := range te.nodes {
		resp := n.call(t, http.MethodGet, "/v1/artifacts/free", short, "", nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	te.w.Clock.Advance(59 * time.Second)
	resp := te.nodes[1].call(t, http.MethodGet, "/v1/principals", short, "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, "one second left")
	te.w.Clock.Advance(time.Second)
	for _, n := range te.nodes {
		for _, path := range []string{"/v1/artifacts/free", "/v1/principals", "/v1/rights", "/v1/principals/alice/consents"} {
			var ae api.Error
			resp := n.call(t, http.MethodGet, path, short, "", &ae)
			requireError(t, resp, ae, http.StatusUnauthorized, abi.Unauthenticated)
			require.Contains(t, ae.Message, `token "short" of alice expired at`, path)
			require.NotContains(t, ae.Message, "unknown")
		}
		resp := n.call(t, http.MethodGet, "/v1/principals", te.alice, "", nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, "the default token does not expire")
	}
	var ae api.Error
	resp = te.nodes[0].call(t, http.MethodPost, "/v1/principals/alice/tokens", te.alice, `{"name":"late","scopes":["read"],"expires_at":"2020-01-01T00:00:00Z"}`, &ae)
	requireError(t, resp, ae, http.StatusBadRequest, abi.InvalidArgument)
}

// TestTokenRevocationImmediate: a token revoked on node A is refused by
// node B at its very next request (both read the shared store on every
// request: no node caches a token). A restricted token may revoke itself
// only; the principal's default token can be revoked too.
func TestTokenRevocationImmediate(t *testing.T) {
	t.Parallel()
	te := newTokEnv(t)
	a, b := te.nodes[0], te.nodes[1]
	agent := te.token(t, te.alice, "alice", `{"name":"agent","scopes":["read-only"]}`)
	other := te.token(t, te.alice, "alice", `{"name":"other","scopes":["read-only"]}`)
	for range 3 {
		resp := b.call(t, http.MethodGet, "/v1/artifacts/free", agent, "", nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}

	resp := a.call(t, http.MethodDelete, "/v1/principals/alice/tokens/agent", te.alice, "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var ae api.Error
	resp = b.call(t, http.MethodGet, "/v1/artifacts/free", agent, "", &ae)
	requireError(t, resp, ae, http.StatusUnauthorized, abi.Unauthenticated)
	require.Contains(t, ae.Message, "unknown or revoked")
	resp = b.call(t, http.MethodGet, "/v1/artifacts/free", other, "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, "only the revoked token stops")

	// A restricted token cannot revoke another, but may revoke itself.
	third := te.token(t, te.alice, "alice", `{"name":"third","scopes":["read-only"]}`)
	resp = b.call(t, http.MethodDelete, "/v1/principals/alice/tokens/other", third, "", &ae)
	requireError(t, resp, ae, http.StatusForbidden, abi.PermissionDenied)
	resp = b.call(t, http.MethodDelete, "/v1/principals/alice/tokens/third", third, "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp = a.call(t, http.MethodGet, "/v1/principals", third, "", &ae)
	requireError(t, resp, ae, http.StatusUnauthorized, abi.Unauthenticated)
	resp = a.call(t, http.MethodDelete, "/v1/principals/alice/tokens/third", te.alice, "", &ae)
	requireError(t, resp, ae, http.StatusNotFound, abi.NotFound)
	resp = a.call(t, http.MethodDelete, "/v1/principals/alice/tokens/other", te.bob, "", &ae)
	requireError(t, resp, ae, http.StatusForbidden, abi.PermissionDenied)

	// The admin revokes alice's default token on B: A refuses it at once.
	resp = b.call(t, http.MethodDelete, "/v1/principals/alice/tokens/default", te.admin, "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp = a.call(t, http.MethodGet, "/v1/principals", te.alice, "", &ae)
	requireError(t, resp, ae, http.StatusUnauthorized, abi.Unauthenticated)

	var list server.TokensResponse
	resp = a.call(t, http.MethodGet, "/v1/principals/alice/tokens", te.admin, "", &list)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Len(t, list.Tokens, 1)
	require.Equal(t, "other", list.Tokens[0].Name)
	require.NotNil(t, list.Tokens[0].LastUsed, "its use was recorded")
}

func decodeBody(resp *http.Response, out any) error {
	return json.NewDecoder(resp.Body).Decode(out)
}

// TestCapKindsCoverEveryKind: every action kind of the kernel is
// classified for spending caps (how its spending is bounded, or that it is
// refused to a capped token), so that a new kind is a decision, not an
// accident: until classified it is refused to capped tokens, and this test
// fails.
func TestCapKindsCoverEveryKind(t *testing.T) {
	for _, k := range kernel.Kinds() {
		require.True(t, server.CapClassified(k), "capKinds (tokens.go) does not say how a capped token's %s is bounded", k)
	}
}

// TestTokenRevocationEndsFollow: a live follow of the events opened with a
// token ends when the token is revoked (on another node), before it sends
// any event that happened after: an "event: error" UNAUTHENTICATED, then
// the end of the stream.
func TestTokenRevocationEndsFollow(t *testing.T) {
	t.Parallel()
	te := newTokEnv(t)
	s, err := server.New(server.Config{Kernel: te.w.K, Auth: te.nodes[0].auth, Now: te.w.Clock.Now, FollowPoll: 2 * time.Millisecond})
	require.NoError(t, err)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	a := &env{w: te.w, srv: srv, s: s, auth: te.nodes[0].auth}
	ro := te.token(t, te.alice, "alice", `{"name":"watch","scopes":["read-only"]}`)
	f := a.follow(t, ro, "", "")
	te.nodes[1].act(t, te.alice, `{"kind":"transfer","to":"bob","amount":1}`, http.StatusOK)
	ev, _ := f.next(t)
	require.Equal(t, kernel.KindTransfer, ev.Kind, "the follow works until the revocation")

	resp := te.nodes[1].call(t, http.MethodDelete, "/v1/principals/alice/tokens/watch", te.alice, "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	te.nodes[1].act(t, te.alice, `{"kind":"transfer","to":"bob","amount":2}`, http.StatusOK)
	var last sseMsg
	timeout := time.After(hang)
	for open := true; open; {
		select {
		case m, ok := <-f.msgs:
			open = ok
			if ok && m.data != "" {
				last = m
				require.NotEqual(t, "", m.event, "no event reaches the revoked token: %+v", m)
			}
		case <-timeout:
			require.FailNow(t, "the follow of a revoked token did not end")
		}
	}
	f.ended(t)
	require.Equal(t, "error", last.event)
	require.Contains(t, last.data, "UNAUTHENTICATED")
}

// TestTokenStoreUnreadable: when the tokens cannot be read, a request is
// 503 UNAVAILABLE (retriable), not 401: no verdict on the token, and
// nothing counted against the client's address.
func TestTokenStoreUnreadable(t *testing.T) {
	t.Parallel()
	w := kerneltest.NewWorld(t, nil)
	mem := store.NewMem()
	a, _, toks, err := auth.Init(mem, []string{"genesis"})
	require.NoError(t, err)
	e := newEnvWith(t, w, a)
	require.NoError(t, mem.Close())
	for range 30 { // more than the failed-authentication limit allows
		var ae api.Error
		resp := e.call(t, http.MethodGet, "/v1/principals", toks[0], "", &ae)
		requireError(t, resp, ae, http.StatusServiceUnavailable, abi.Unavailable)
	}
}

// newEnvWith is a server over world w with tokens a.
func newEnvWith(t *testing.T, w *kerneltest.World, a *auth.Store) *env {
	t.Helper()
	s, err := server.New(server.Config{Kernel: w.K, Auth: a})
	require.NoError(t, err)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &env{w: w, srv: srv, s: s, auth: a}
}
