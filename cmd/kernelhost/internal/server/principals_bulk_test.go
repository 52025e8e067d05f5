package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/auth"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/server"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
	"github.com/kernelhost/kernelhost/store"
)

// updateCounter counts the read-write transactions of a store.
type updateCounter struct {
	store.Store
	n atomic.Int64
}

func (c *updateCounter) Update(fn func(store.Txn) error) error {
	c.n.Add(1)
	return c.Store.Update(fn)
}

// bulkBody is the JSON list of n principals named prefix-i, i scrip each.
func bulkBody(prefix string, n int) string {
	var b strings.Builder
	b.WriteString("[")
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"id":"%s-%03d","balance":%d}`, prefix, i, i)
	}
	b.WriteString("]")
	return b.String()
}

// TestCreatePrincipalsBulk: POST /v1/principals with a list creates every
// principal with its token in one store transaction (the cost per
// principal of init, not one or two transactions each), answers them in
// order, and each token works at once; a list with a principal that
// exists, an id twice, a bad entry, too many entries or none is refused
// whole (nothing created, no token written); only the admin may post one;
// a server whose tokens live in a file creates lists too.
func TestCreatePrincipalsBulk(t *testing.T) {
	counter := &updateCounter{Store: store.NewMem()}
	t.Cleanup(func() { _ = counter.Close() })
	w := kerneltest.NewWorld(t, func(c *kernel.Config) { c.Store = counter })
	w.Principal(t, "alice", 100)
	a, admin, toks, err := auth.Init(counter, []string{"alice"})
	require.NoError(t, err)
	s, err := server.New(server.Config{Kernel: w.K, Auth: a})
	require.NoError(t, err)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	e := &env{w: w, srv: srv, s: s, admin: admin, alice: toks[0], auth: a}

	const n = server.MaxBulkPrincipals
	before := counter.n.Load()
	var out server.CreatePrincipalsResponse
	resp := e.call(t, http.MethodPost, "/v1/principals", admin, bulkBody("agent", n), &out)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.LessOrEqual(t, counter.n.Load()-before, int64(1), "one transaction for %d principals and their tokens", n)
	require.True(t, out.OK)
	require.Len(t, out.Principals, n)
	for i, p := range out.Principals {
		require.Equal(t, fmt.Sprintf("agent-%03d", i), p.Principal.ID, "in the order of the list")
		require.Equal(t, uint64(i), p.Principal.Balance)
		require.True(t, strings.HasPrefix(p.Token, auth.TokenPrefix))
	}
	for _, i := range []int{0, n / 2, n - 1} {
		id, ok := a.Authenticate(out.Principals[i].Token)
		require.True(t, ok)
		require.Equal(t, out.Principals[i].Principal.ID, id.Principal)
		resp := e.call(t, http.MethodGet, "/v1/quotas", out.Principals[i].Token, "", nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, "the token acts at once")
	}
	require.NoError(t, w.K.CheckLedger(ctx))

	count := func() int {
		ps, err := w.K.Principals(ctx)
		require.NoError(t, err)
		return len(ps)
	}
	tokens := func() int {
		ps, err := a.Principals()
		require.NoError(t, err)
		return len(ps)
	}
	have, haveTok := count(), tokens()
	for _, tc := range []struct {
		name, body string
		status     int
		code       abi.Code
	}{
		{"one exists", `[{"id":"new-1","balance":1},{"id":"alice"}]`, http.StatusConflict, abi.AlreadyExists},
		{"listed twice", `[{"id":"new-1"},{"id":"new-2"},{"id":"new-1"}]`, http.StatusBadRequest, abi.InvalidArgument},
		{"bad id", `[{"id":"new-1"},{"id":"../x"}]`, http.StatusBadRequest, abi.InvalidArgument},
		{"negative balance", `[{"id":"new-1"},{"id":"new-2","balance":-1}]`, http.StatusBadRequest, abi.InvalidArgument},
		{"unknown field", `[{"id":"new-1","quota":5}]`, http.StatusBadRequest, abi.InvalidArgument},
		{"name in another case", `[{"ID":"new-1"}]`, http.StatusBadRequest, abi.InvalidArgument},
		{"key twice", `[{"id":"new-1","id":"new-2"}]`, http.StatusBadRequest, abi.InvalidArgument},
		{"not an object", `[{"id":"new-1"},7]`, http.StatusBadRequest, abi.InvalidArgument},
		{"empty", `[]`, http.StatusBadRequest, abi.InvalidArgument},
		{"too many", bulkBody("more", n+1), http.StatusBadRequest, abi.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ae api.Error
			resp := e.call(t, http.MethodPost, "/v1/principals", admin, tc.body, &ae)
			requireError(t, resp, ae, tc.status, tc.code)
			require.Equal(t, have, count(), "no principal created")
			require.Equal(t, haveTok, tokens(), "no token written")
		})
	}
	var ae api.Error
	resp = e.call(t, http.MethodPost, "/v1/principals", e.alice, `[{"id":"new-1"}]`, &ae)
	requireError(t, resp, ae, http.StatusForbidden, abi.PermissionDenied)
	require.Equal(t, have, count())

	// The single form answers as before, and commits the principal and
	// its token in one transaction too.
	var one server.CreatePrincipalResponse
	before = counter.n.Load()
	resp = e.call(t, http.MethodPost, "/v1/principals", admin, `{"id":"solo","balance":3}`, &one)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.LessOrEqual(t, counter.n.Load()-before, int64(1))
	require.Equal(t, "solo", one.Principal.ID)
	id, ok := a.Authenticate(one.Token)
	require.True(t, ok)
	require.Equal(t, "solo", id.Principal)
	resp = e.call(t, http.MethodPost, "/v1/principals", admin, `{"id":"../x"}`, &ae)
	requireError(t, resp, ae, http.StatusBadRequest, abi.InvalidArgument)
	require.NotContains(t, ae.Message, "principals[", "a single principal's message names no list entry")

	// Tokens in a file: the list is created, its tokens issued one by one.
	fe := newEnv(t, nil)
	out = server.CreatePrincipalsResponse{}
	resp = fe.call(t, http.MethodPost, "/v1/principals", fe.admin, " \n"+bulkBody("f", 3), &out)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Len(t, out.Principals, 3)
	id, ok = fe.auth.Authenticate(out.Principals[2].Token)
	require.True(t, ok)
	require.Equal(t, "f-002", id.Principal)
	b, err := json.Marshal(out)
	require.NoError(t, err)
	require.Contains(t, string(b), `"principals":[{"ok":true,"principal":{"id":"f-000"`)
}
